"""How many calls a ThreadPoolExecutor runs at once, on which threads, in
what order: never more than max_workers at once and exactly that many when
there is enough work; threads start lazily; one worker runs calls in
submission order.  Asserted by structure: calls count themselves in and out
under a lock and are released one at a time by the test."""

from __future__ import annotations

import asyncio
import collections
import threading

import pytest

from conftest import WAIT, run, wait_until


class Turnstile:
    """Calls that enter, then wait for a token from the test to leave."""

    def __init__(self):
        self.lock = threading.Lock()
        self.tokens = threading.Semaphore(0)
        self.inside = 0
        self.peak = 0
        self.entered = 0
        self.left = 0
        self.threads = set()

    def call(self, i):
        with self.lock:
            self.entered += 1
            self.inside += 1
            self.peak = max(self.peak, self.inside)
            self.threads.add(threading.get_ident())
        try:
            if not self.tokens.acquire(timeout=WAIT * 3):
                raise RuntimeError("no token")
        finally:
            with self.lock:
                self.inside -= 1
                self.left += 1
        return i


@pytest.mark.parametrize("max_workers, n_tasks", [(3, 10), (1, 4), (4, 4)])
def test_peak_concurrency_is_max_workers(make_pool, impl, max_workers, n_tasks):
    pool = make_pool(max_workers)
    ts = Turnstile()
    futs = [pool.submit(ts.call, i) for i in range(n_tasks)]
    try:
        # Each round: as many calls inside as there can be, then one leaves.
        for done in range(n_tasks):
            expect = min(max_workers, n_tasks - done)
            wait_until(lambda: ts.inside == expect and ts.left == done,
                       f"{expect} calls inside after {done} left")
            with ts.lock:
                assert ts.inside == expect
            ts.tokens.release()
    finally:
        ts.tokens.release(n_tasks)
    assert [f.result(timeout=WAIT) for f in futs] == list(range(n_tasks))
    assert ts.peak == max_workers
    assert len(ts.threads) == max_workers
    assert impl.thread_count(pool) == max_workers


def test_peak_concurrency_of_asyncio_calls(make_pool, impl):
    pool = make_pool(3)
    ts = Turnstile()

    async def main():
        futs = [asyncio.ensure_future(impl.to_thread_on(pool, ts.call, i)) for i in range(10)]
        try:
            for done in range(10):
                expect = min(3, 10 - done)
                deadline = asyncio.get_running_loop().time() + WAIT
                while not (ts.inside == expect and ts.left == done):
                    assert asyncio.get_running_loop().time() < deadline, (ts.inside, done)
                    await asyncio.sleep(0.001)
                ts.tokens.release()
        finally:
            ts.tokens.release(10)
        return await asyncio.gather(*futs)

    assert run(main()) == list(range(10))
    assert ts.peak == 3 and len(ts.threads) == 3


def test_lazy_start_serial_submits_use_one_thread(make_pool, impl):
    # Each call is waited for before the next is submitted: a worker is
    # idle again by then, so no second thread is started.  Neither pool can
    # promise it outright: a worker counts as idle only once the future's
    # done-callbacks have run (they may submit and wait), and under load
    # the caller can submit first.  So: never more than two threads, and
    # nearly always one.  (Many fresh pools, so that a thread started per
    # call, or routinely, cannot slip through.)
    counts = collections.Counter()
    for _ in range(300):
        pool = make_pool(4)
        idents = {pool.submit(threading.get_ident).result(timeout=WAIT) for _ in range(20)}
        counts[len(idents)] += 1
        assert len(idents) == impl.thread_count(pool) <= 2
        pool.shutdown()
    assert counts[1] >= 270, counts


def test_native_lazy_start_serial_awaits_use_one_thread(native_pool):
    # The asyncio path of native_exec: each pool.run call is awaited before
    # the next is made, so one worker serves them all.  (The stdlib's
    # run_in_executor does not promise this: the worker marks itself idle
    # after the loop may already have submitted the next call.)
    async def serial(pool):
        return {await pool.run(threading.get_ident) for _ in range(20)}

    for _ in range(20):
        pool = native_pool(4)
        idents = run(serial(pool))
        assert len(idents) == 1
        assert pool._stats()["threads"] == 1
        pool.shutdown()


def test_no_thread_before_the_first_submit(make_pool, impl):
    pool = make_pool(4)
    assert impl.thread_count(pool) == 0
    pool.submit(int).result(timeout=WAIT)
    assert impl.thread_count(pool) == 1


def test_threads_grow_only_with_concurrent_demand(make_pool, impl, gate):
    pool = make_pool(8)
    futs = [pool.submit(gate.block, i) for i in range(3)]
    gate.wait_started(3)
    assert impl.thread_count(pool) == 3
    gate.open()
    assert [f.result(timeout=WAIT) for f in futs] == [0, 1, 2]


def test_one_worker_runs_calls_in_submission_order(make_pool, gate):
    pool = make_pool(1)
    order = []
    pool.submit(gate.block)  # everything below queues behind it
    gate.wait_started(1)
    futs = [pool.submit(order.append, i) for i in range(50)]
    gate.open()
    for f in futs:
        f.result(timeout=WAIT)
    assert order == list(range(50))


def test_workers_are_reused(make_pool, impl):
    # Rounds that each need both workers at once run on the same two threads.
    pool = make_pool(2)
    barrier = threading.Barrier(2, timeout=WAIT)

    def meet():
        barrier.wait()
        return threading.get_ident()

    idents = set()
    for _ in range(10):
        idents |= {f.result(timeout=WAIT) for f in [pool.submit(meet) for _ in range(2)]}
    assert len(idents) == 2
    assert impl.thread_count(pool) == 2
