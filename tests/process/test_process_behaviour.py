"""What a ProcessPoolExecutor does, written once and run against the stdlib
(``concurrent.futures.ProcessPoolExecutor`` with a fork context) and against
``native_exec.ProcessPoolExecutor`` through the ``proc_impl`` fixture.

Where the stdlib genuinely differs (memoryview arguments, which it cannot
pickle), the native behaviour is tested alone at the end of this file."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import os
import pickle
import random
import threading
import time
from concurrent.futures.process import BrokenProcessPool, _ExceptionWithTraceback

import psutil
import pytest

from process_fixtures import (  # noqa: F401  (fixtures)
    GATES, WAIT, blocked, at_barrier, getpid, identity, make_ppool, markers, native_ppool,
    new_barrier, open_gate, proc_impl, run_script, square, wait_started, wait_until, gone)

pytestmark = pytest.mark.timeout(120)

MiB = 1 << 20


# ------------------------------------------------ what the workers run

class Boom(Exception):
    def __init__(self, message, code):
        super().__init__(message, code)


def raise_boom(message, code):
    raise Boom(message, code)


def raise_chained():
    try:
        {}["missing-key"]
    except KeyError as exc:
        raise ValueError("while handling it") from exc


def echo(*args, **kwargs):
    return args, kwargs


def fail_on(i, bad):
    if i == bad:
        raise Boom("item", i)
    return i * 10


def pid_and_square(i):
    return os.getpid(), i * i


def sleep_then(value, seconds):
    time.sleep(seconds)
    return value, os.getpid()


def return_lock():
    return threading.Lock()


class UnpicklableError(Exception):
    def __init__(self):
        super().__init__("holds a lock")
        self.lock = threading.Lock()


def raise_unpicklable():
    raise UnpicklableError()


def make_blob(n, seed):
    return random.Random(seed).randbytes(n)


def digest(data):
    return type(data).__name__, len(data), hashlib.sha256(data).hexdigest()


def digest_tree(tree):
    return {k: [digest(b) for b in v] for k, v in tree.items()}


def digest_deep(nested):
    while isinstance(nested, list):
        nested = nested[0]
    return digest(nested)


def reversed_copy(data):
    return data[::-1]


class BufferHolder:
    """Exposes its buffer to pickle protocol 5 as a PickleBuffer (what numpy
    arrays do); with older protocols, pickles a bytes copy."""

    def __init__(self, buf):
        self.buf = bytearray(buf)

    def __reduce_ex__(self, protocol):
        if protocol >= 5:
            return type(self), (pickle.PickleBuffer(self.buf),)
        return type(self), (bytes(self.buf),)


def holder_digest_and_reverse(holder):
    assert type(holder) is BufferHolder
    return hashlib.sha256(holder.buf).hexdigest(), BufferHolder(holder.buf[::-1])


_INIT_TAG = None


def init_worker(path, tag):
    global _INIT_TAG
    _INIT_TAG = tag
    with open(path, "a") as f:
        f.write("%d\n" % os.getpid())


def init_fails():
    raise RuntimeError("initializer refuses")


def report_init():
    return os.getpid(), _INIT_TAG


def report_init_at_barrier():
    at_barrier()
    return report_init()


def sha(data):
    return hashlib.sha256(data).hexdigest()


def raise_keyboard_interrupt():
    raise KeyboardInterrupt("in the worker")


def digest_kwargs(*args, **kwargs):
    return [digest(a) for a in args[0]], {k: digest(v) for k, v in kwargs.items()}


# ------------------------------------------------------------- results

def test_submit_returns_a_future_with_the_result(make_ppool):
    pool = make_ppool(2)
    fut = pool.submit(pow, 2, 10)
    assert isinstance(fut, concurrent.futures.Future)
    assert fut.result(timeout=WAIT) == 1024
    assert fut.done() and not fut.cancelled() and fut.exception() is None


def test_runs_in_another_process(make_ppool):
    pool = make_ppool(2)
    assert pool.submit(getpid).result(timeout=WAIT) != os.getpid()


def test_positional_and_keyword_arguments(make_ppool):
    pool = make_ppool(2)
    fut = pool.submit(echo, 1, "two", (3.0, None), key=[4], fn=5, self=6, args=7)
    args, kwargs = fut.result(timeout=WAIT)
    assert args == (1, "two", (3.0, None))
    assert kwargs == {"key": [4], "fn": 5, "self": 6, "args": 7}


def test_no_arguments_and_none_result(make_ppool):
    pool = make_ppool(1)
    assert pool.submit(echo).result(timeout=WAIT) == ((), {})
    assert pool.submit(print, end="").result(timeout=WAIT) is None


def test_many_submits_each_get_their_result(make_ppool):
    pool = make_ppool(2)
    futs = [pool.submit(square, i) for i in range(3000)]
    assert [f.result(timeout=WAIT) for f in futs] == [i * i for i in range(3000)]


def test_results_of_growing_size_from_one_worker(make_ppool):
    # every result above a few hundred bytes travels through shared memory
    # (or a pipe); one worker's results must not depend on the previous one
    pool = make_ppool(1)
    for n in (1000, 2000, 5000, 70_000, 1000, 300_000, 3 * MiB, 500, 6 * MiB):
        out = pool.submit(bytes, n).result(timeout=WAIT)
        assert out == bytes(n)


def test_result_timeout_is_honoured(make_ppool, markers):
    pool = make_ppool(1)
    fut = pool.submit(blocked, markers)
    wait_started(markers, 1)
    for timeout in (0.2, 1.0):
        start = time.monotonic()
        with pytest.raises(concurrent.futures.TimeoutError):
            fut.result(timeout=timeout)
        elapsed = time.monotonic() - start
        assert timeout <= elapsed < timeout + 0.5, f"result({timeout}) took {elapsed:.3f}s"
        start = time.monotonic()
        with pytest.raises(concurrent.futures.TimeoutError):
            fut.exception(timeout=timeout)
        elapsed = time.monotonic() - start
        assert timeout <= elapsed < timeout + 0.5, f"exception({timeout}) took {elapsed:.3f}s"
    assert not fut.done()


def test_done_callbacks_run_once_and_may_submit(make_ppool):
    pool = make_ppool(2)
    calls = []
    chained = []
    finished = threading.Event()

    def then(fut):
        calls.append(fut)
        nxt = pool.submit(square, fut.result())
        nxt.add_done_callback(lambda g: (chained.append(g.result()), finished.set()))

    fut = pool.submit(square, 3)
    fut.add_done_callback(then)
    assert finished.wait(WAIT) and chained == [81]
    assert calls == [fut]
    late = []
    fut.add_done_callback(late.append)      # on a done future: at once
    assert late == [fut]


def test_callbacks_run_off_the_thread_waiting_in_result(make_ppool, markers, tmp_path):
    # A thread blocked in result() only waits: other futures' callbacks run
    # elsewhere, so one that waits for this thread cannot hold up its
    # timeout (nor be cut short by a signal meant for it).
    quick_gate = str(tmp_path / "quick")
    os.mkdir(quick_gate)
    GATES.add(quick_gate)
    pool = make_ppool(2)
    long = pool.submit(blocked, markers, "long")
    wait_started(markers, 1)
    released = threading.Event()
    ran_on = []

    def waits_for_main(fut):
        ran_on.append(threading.get_ident())
        released.wait(WAIT)

    quick = pool.submit(blocked, quick_gate, 3)
    # (not done before its callback is added: that one would run at once, here)
    quick.add_done_callback(waits_for_main)
    open_gate(quick_gate)
    try:
        with pytest.raises(concurrent.futures.TimeoutError):
            long.result(timeout=1.0)
        wait_until(lambda: ran_on, "the quick task's callback to run")
        assert ran_on[0] != threading.get_ident()
        assert quick.result(timeout=WAIT)[0] == 3
    finally:
        released.set()
        open_gate(markers)
    assert long.result(timeout=WAIT)[0] == "long"


def test_results_waited_for_in_several_threads(make_ppool):
    pool = make_ppool(2)
    futs = [pool.submit(square, i) for i in range(500)]
    outs = []

    def waiter():
        outs.append([f.result(timeout=WAIT) for f in futs])

    threads = [threading.Thread(target=waiter) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT * 2)
    assert len(outs) == 4 and all(o == [i * i for i in range(500)] for o in outs)


def test_submits_from_several_threads(make_ppool):
    pool = make_ppool(2)
    ok = {}

    def submitter(k):
        futs = [pool.submit(square, k * 1000 + i) for i in range(300)]
        ok[k] = [f.result(timeout=WAIT) for f in futs] == [(k * 1000 + i) ** 2 for i in range(300)]

    threads = [threading.Thread(target=submitter, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT * 2)
    assert ok == {k: True for k in range(6)}


def test_non_callable_fails_its_future(make_ppool):
    pool = make_ppool(1)
    exc = pool.submit(42).exception(timeout=WAIT)
    assert type(exc) is TypeError and "not callable" in str(exc)
    assert pool.submit(square, 4).result(timeout=WAIT) == 16


def test_keyboard_interrupt_in_a_task_is_its_exception(make_ppool):
    pool = make_ppool(1)
    exc = pool.submit(raise_keyboard_interrupt).exception(timeout=WAIT)
    assert type(exc) is KeyboardInterrupt and exc.args == ("in the worker",)
    assert pool.submit(square, 4).result(timeout=WAIT) == 16


def test_up_to_max_workers_run_at_once(make_ppool):
    new_barrier(6)
    pool = make_ppool(6)
    futs = [pool.submit(at_barrier) for _ in range(6)]
    pids = {f.result(timeout=WAIT) for f in futs}
    assert len(pids) == 6 and os.getpid() not in pids


def test_initargs_none_without_an_initializer(make_ppool):
    pool = make_ppool(1, initializer=None, initargs=None)
    assert pool.submit(square, 7).result(timeout=WAIT) == 49


def test_max_workers_must_be_positive(proc_impl):
    with pytest.raises(ValueError):
        proc_impl.make(0)
    with pytest.raises(ValueError):
        proc_impl.make(-1)


# ------------------------------------------------------------ exceptions

def test_exception_type_args_and_remote_traceback(make_ppool):
    pool = make_ppool(1)
    fut = pool.submit(raise_boom, "bad thing", 42)
    with pytest.raises(Boom) as info:
        fut.result(timeout=WAIT)
    exc = info.value
    assert type(exc) is Boom and exc.args == ("bad thing", 42)
    assert isinstance(fut.exception(), Boom)
    cause = exc.__cause__
    assert cause is not None and type(cause).__name__ == "_RemoteTraceback"
    text = str(cause)
    assert "Traceback (most recent call last)" in text
    assert "raise_boom" in text and "raise Boom(message, code)" in text
    assert "Boom: ('bad thing', 42)" in text


def test_builtin_exception_and_chained_cause_text(make_ppool):
    pool = make_ppool(1)
    exc = pool.submit(raise_chained).exception(timeout=WAIT)
    assert type(exc) is ValueError and exc.args == ("while handling it",)
    text = str(exc.__cause__)
    assert "KeyError: 'missing-key'" in text and "raise_chained" in text
    assert pool.submit(int, "x").exception(timeout=WAIT).__class__ is ValueError


def test_exceptions_do_not_hurt_the_pool(make_ppool):
    pool = make_ppool(2)
    futs = [pool.submit(fail_on, i, bad=i if i % 3 == 0 else -1) for i in range(60)]
    for i, f in enumerate(futs):
        if i % 3 == 0:
            assert isinstance(f.exception(timeout=WAIT), Boom)
        else:
            assert f.result(timeout=WAIT) == i * 10
    assert pool.submit(square, 9).result(timeout=WAIT) == 81


def test_unpicklable_exception_fails_that_future(make_ppool):
    pool = make_ppool(1)
    exc = pool.submit(raise_unpicklable).exception(timeout=WAIT)
    with pytest.raises(Exception) as here:
        pickle.dumps(_ExceptionWithTraceback(UnpicklableError(), None))
    assert type(exc) is type(here.value), repr(exc)     # pickle's own error
    assert "pickle" in str(exc).lower()
    assert pool.submit(square, 5).result(timeout=WAIT) == 25


# ------------------------------------------------------------------ map

def test_map_results_in_order(make_ppool):
    pool = make_ppool(2)
    assert list(pool.map(pow, range(50), [2] * 50)) == [i ** 2 for i in range(50)]
    assert list(pool.map(square, [])) == []


def test_map_chunksize_runs_each_chunk_in_one_worker(make_ppool):
    pool = make_ppool(2)
    out = list(pool.map(pid_and_square, range(40), chunksize=10))
    assert [sq for _, sq in out] == [i * i for i in range(40)]
    for start in range(0, 40, 10):
        pids = {pid for pid, _ in out[start:start + 10]}
        assert len(pids) == 1, f"chunk at {start} ran in {pids}"
    assert os.getpid() not in {pid for pid, _ in out}


def test_map_raises_at_the_failing_item(make_ppool):
    pool = make_ppool(2)
    it = pool.map(fail_on, range(10), [5] * 10)
    assert [next(it) for _ in range(5)] == [0, 10, 20, 30, 40]
    with pytest.raises(Boom) as info:
        next(it)
    assert info.value.args == ("item", 5)


def test_map_timeout(make_ppool, markers):
    pool = make_ppool(1)
    it = pool.map(blocked, [markers], timeout=0.3)
    with pytest.raises(concurrent.futures.TimeoutError):
        next(it)


# -------------------------------------------------------------- shutdown

def test_shutdown_wait_finishes_every_task_and_reaps_workers(make_ppool):
    pool = make_ppool(2)
    futs = [pool.submit(sleep_then, i, 0.02) for i in range(12)]
    pool.shutdown(wait=True)
    assert all(f.done() for f in futs)
    results = [f.result(timeout=0) for f in futs]
    assert [v for v, _ in results] == list(range(12))
    pids = {pid for _, pid in results}
    assert os.getpid() not in pids
    for pid in pids:
        assert gone(pid), f"worker {pid} still running after shutdown(wait=True)"
    assert not any(c.pid in pids for c in psutil.Process().children(recursive=True))


def test_shutdown_cancel_futures(make_ppool, markers):
    pool = make_ppool(2)
    running = [pool.submit(blocked, markers, i) for i in range(2)]
    wait_started(markers, 2)
    queued = [pool.submit(square, i) for i in range(20)]
    pool.shutdown(wait=False, cancel_futures=True)
    open_gate(markers)
    # (a second shutdown(wait=True) does not wait in the stdlib, and its
    # wait() does not count futures cancelled by shutdown as done)
    assert [f.result(timeout=WAIT)[0] for f in running] == [0, 1]
    for f in queued:
        if not f.cancelled():
            f.result(timeout=WAIT)
    assert all(f.done() for f in queued)
    cancelled = [f.cancelled() for f in queued]
    # the stdlib hands up to max_workers + 1 calls to its call queue
    # before any worker takes them; those can no longer be cancelled
    assert sum(cancelled) >= len(queued) - 3
    assert all(cancelled[3:])
    for i, f in enumerate(queued):
        if not f.cancelled():
            assert f.result(timeout=0) == i * i


def test_submit_after_shutdown_raises(make_ppool):
    pool = make_ppool(1)
    pool.submit(square, 2).result(timeout=WAIT)
    pool.shutdown()
    with pytest.raises(RuntimeError):
        pool.submit(square, 3)
    pool.shutdown()  # twice is fine


def test_shutdown_of_an_unused_pool(make_ppool):
    pool = make_ppool(3)
    pool.shutdown(wait=True)
    with pytest.raises(RuntimeError):
        pool.submit(square, 3)


def test_context_manager(make_ppool):
    with make_ppool(2) as pool:
        futs = [pool.submit(sleep_then, i, 0.01) for i in range(6)]
    assert all(f.done() for f in futs)
    assert [f.result(timeout=0)[0] for f in futs] == list(range(6))
    with pytest.raises(RuntimeError):
        pool.submit(square, 1)


# ----------------------------------------------------------- initializer

def test_initializer_runs_once_in_each_worker(make_ppool, tmp_path):
    log = str(tmp_path / "init.log")
    new_barrier(2)
    pool = make_ppool(2, initializer=init_worker, initargs=(log, "tag-1"))
    a = pool.submit(report_init_at_barrier)
    b = pool.submit(report_init_at_barrier)
    results = [a.result(timeout=WAIT), b.result(timeout=WAIT)]
    results += [pool.submit(report_init).result(timeout=WAIT) for _ in range(6)]
    pool.shutdown(wait=True)
    assert all(tag == "tag-1" for _, tag in results)
    with open(log) as f:
        init_pids = [int(line) for line in f.read().split()]
    assert len(init_pids) == len(set(init_pids)), "an initializer ran twice in one worker"
    assert {pid for pid, _ in results} <= set(init_pids)
    assert len({pid for pid, _ in results[:2]}) == 2
    assert os.getpid() not in init_pids and _INIT_TAG is None


def test_failing_initializer_breaks_the_pool(make_ppool):
    pool = make_ppool(1, initializer=init_fails)
    fut = pool.submit(square, 3)
    assert isinstance(fut.exception(timeout=WAIT), BrokenProcessPool)
    with pytest.raises(BrokenProcessPool):
        pool.submit(square, 4)


def test_initializer_must_be_callable(proc_impl):
    with pytest.raises(TypeError):
        proc_impl.make(1, initializer=42)


# --------------------------------------------------------------- asyncio

def test_loop_run_in_executor(make_ppool):
    pool = make_ppool(2)

    async def main():
        loop = asyncio.get_running_loop()
        calls = [loop.run_in_executor(pool, square, i) for i in range(40)]
        calls.append(loop.run_in_executor(pool, raise_boom, "async", 7))
        return await asyncio.gather(*calls, return_exceptions=True)

    out = asyncio.run(main())
    assert out[:40] == [i * i for i in range(40)]
    assert isinstance(out[40], Boom) and out[40].args == ("async", 7)


# ------------------------------------------------- wait / as_completed

def test_wait_all_completed(make_ppool):
    pool = make_ppool(2)
    futs = [pool.submit(square, i) for i in range(30)]
    done, not_done = concurrent.futures.wait(futs, timeout=WAIT)
    assert not not_done and done == set(futs)


def test_wait_first_completed_and_first_exception(make_ppool, markers):
    pool = make_ppool(2)
    slow = pool.submit(blocked, markers, "slow")
    wait_started(markers, 1)
    quick = pool.submit(square, 3)
    done, not_done = concurrent.futures.wait(
        [slow, quick], timeout=WAIT, return_when=concurrent.futures.FIRST_COMPLETED)
    assert done == {quick} and not_done == {slow}
    bad = pool.submit(raise_boom, "first", 1)
    done, not_done = concurrent.futures.wait(
        [slow, bad], timeout=WAIT, return_when=concurrent.futures.FIRST_EXCEPTION)
    assert done == {bad} and not_done == {slow}
    open_gate(markers)
    assert slow.result(timeout=WAIT)[0] == "slow"


def test_as_completed_yields_in_completion_order(make_ppool, markers):
    pool = make_ppool(2)
    slow = pool.submit(blocked, markers, "slow")
    wait_started(markers, 1)
    quick = [pool.submit(square, i) for i in range(5)]
    it = concurrent.futures.as_completed([slow] + quick, timeout=WAIT)
    first = [next(it) for _ in range(5)]
    assert set(first) == set(quick)
    open_gate(markers)
    assert next(it) is slow
    with pytest.raises(StopIteration):
        next(it)


def test_a_task_a_worker_runs_reports_running_and_cannot_be_cancelled(make_ppool, markers):
    pool = make_ppool(2)
    running = [pool.submit(blocked, markers, i) for i in range(2)]
    wait_started(markers, 2)
    for f in running:
        assert f.running() and not f.done()
        assert f.cancel() is False
        assert f.running() and not f.cancelled()
    open_gate(markers)
    assert [f.result(timeout=WAIT)[0] for f in running] == [0, 1]
    assert not any(f.running() for f in running)


def test_wait_and_as_completed_see_cancelled_futures(make_ppool, markers):
    pool = make_ppool(2)
    running = [pool.submit(blocked, markers, i) for i in range(2)]
    wait_started(markers, 2)
    # (the stdlib hands up to max_workers + 1 calls to its workers' queue,
    # where they can no longer be cancelled: the victim queues behind them)
    fillers = [pool.submit(square, i) for i in range(5)]
    victim = pool.submit(square, 100)
    assert victim.cancel() is True
    open_gate(markers)
    done, not_done = concurrent.futures.wait(running + fillers + [victim], timeout=WAIT)
    assert not not_done, f"wait() still waits for {not_done}"
    assert list(concurrent.futures.as_completed([victim], timeout=WAIT)) == [victim]
    done, not_done = concurrent.futures.wait(
        [victim], timeout=WAIT, return_when=concurrent.futures.FIRST_COMPLETED)
    assert done == {victim}


# ------------------------------------------------------------- pickling

@pytest.mark.parametrize("what", ["lambda-arg", "lock-arg", "lambda-fn", "local-fn"])
def test_unpicklable_call_fails_that_future_only(make_ppool, what):
    pool = make_ppool(2)

    def local():
        return 1

    fn, args = {
        "lambda-arg": (identity, (lambda: 1,)),
        "lock-arg": (identity, (threading.Lock(),)),
        "lambda-fn": (lambda: 1, ()),
        "local-fn": (local, ()),
    }[what]
    before = pool.submit(square, 2)
    fut = pool.submit(fn, *args)
    exc = fut.exception(timeout=WAIT)
    assert isinstance(exc, (pickle.PicklingError, TypeError, AttributeError)), repr(exc)
    assert "pickle" in str(exc).lower() or "local object" in str(exc), str(exc)
    assert before.result(timeout=WAIT) == 4
    assert [f.result(timeout=WAIT) for f in [pool.submit(square, i) for i in range(10)]] \
        == [i * i for i in range(10)]


def test_unpicklable_result_fails_that_future_only(make_ppool):
    pool = make_ppool(1)
    exc = pool.submit(return_lock).exception(timeout=WAIT)
    with pytest.raises(Exception) as here:
        pickle.dumps(return_lock())
    assert type(exc) is type(here.value), repr(exc)     # pickle's own error
    assert "pickle" in str(exc).lower()
    assert pool.submit(square, 7).result(timeout=WAIT) == 49


# -------------------------------------------------------- large payloads

def test_64mib_bytes_argument_arrives_intact(make_ppool):
    data = make_blob(64 * MiB, 1)
    pool = make_ppool(1)
    assert pool.submit(digest, data).result(timeout=WAIT) == digest(data)


def test_64mib_result_arrives_intact(make_ppool):
    expected = digest(make_blob(64 * MiB, 2))
    pool = make_ppool(1)
    out = pool.submit(make_blob, 64 * MiB, 2).result(timeout=WAIT)
    assert type(out) is bytes and digest(out) == expected


def test_64mib_round_trip(make_ppool):
    data = make_blob(64 * MiB, 3)
    pool = make_ppool(1)
    out = pool.submit(reversed_copy, data).result(timeout=WAIT)
    assert sha(out) == sha(data[::-1])


def test_bytearray_argument_and_result(make_ppool):
    data = bytearray(make_blob(8 * MiB + 3, 4))
    small = bytearray(b"tiny")
    pool = make_ppool(1)
    assert pool.submit(digest, data).result(timeout=WAIT) == digest(data)
    assert pool.submit(digest, small).result(timeout=WAIT) == digest(small)
    out = pool.submit(reversed_copy, data).result(timeout=WAIT)
    assert type(out) is bytearray and out == data[::-1]


def test_many_buffers_nested_in_containers(make_ppool):
    tree = {"a": [make_blob(MiB, 5), make_blob(100_000, 6)],
            "b": [bytearray(make_blob(3 * MiB, 7)), b"", b"x" * 70_000]}
    deep = [[[[[make_blob(2 * MiB, 8)]]]]]
    pool = make_ppool(1)
    assert pool.submit(digest_tree, tree).result(timeout=WAIT) == digest_tree(tree)
    assert pool.submit(digest_deep, deep).result(timeout=WAIT) == digest_deep(deep)
    out = pool.submit(identity, (tree, deep)).result(timeout=WAIT)
    assert out == (tree, deep)


def test_large_buffers_in_keyword_and_nested_arguments(make_ppool):
    a, b, c = make_blob(16 * MiB, 11), bytearray(make_blob(MiB, 12)), make_blob(200_000, 13)
    pool = make_ppool(1)
    out = pool.submit(digest_kwargs, [a, b], first=c, second=a).result(timeout=WAIT)
    assert out == ([digest(a), digest(b)], {"first": digest(c), "second": digest(a)})


@pytest.mark.parametrize("size", [10, 200 * 1024, 16 * MiB])
def test_pickle_buffer_object(make_ppool, size):
    holder = BufferHolder(make_blob(size, 9))
    pool = make_ppool(1)
    got, back = pool.submit(holder_digest_and_reverse, holder).result(timeout=WAIT)
    assert got == sha(holder.buf)
    assert type(back) is BufferHolder and back.buf == holder.buf[::-1]


def shared_in_arguments(a, b, nested, cyclic):
    """In a worker: which of the arguments' shared references survived."""
    a[:5] = b"HELLO"
    return {"same buffer": a is b, "write seen": bytes(b[:5]) == b"HELLO",
            "nested same": nested[0] is nested[1] is nested[2]["again"],
            "cycle kept": cyclic[1] is cyclic, "cycle buffer": len(cyclic[0])}


def shared_in_result(n):
    big = bytes(range(256)) * (n // 256)
    cyclic = [big]
    cyclic.append(cyclic)
    return big, [big, big], {"x": big, "l": cyclic}


@pytest.mark.parametrize("size", [1000, 256 * 1024])
def test_shared_references_in_arguments_and_results_stay_shared(make_ppool, size):
    # pickle keeps what is shared shared: small or large, in-band or not
    pool = make_ppool(1)
    buf = bytearray(size)
    lst = [bytes(size)]
    cyclic = [bytes(size)]
    cyclic.append(cyclic)
    seen = pool.submit(shared_in_arguments, buf, buf, [lst, lst, {"again": lst}],
                       cyclic).result(timeout=WAIT)
    assert seen == {"same buffer": True, "write seen": True, "nested same": True,
                    "cycle kept": True, "cycle buffer": size}
    big, pair, tree = pool.submit(shared_in_result, size).result(timeout=WAIT)
    assert pair[0] is pair[1] is big and tree["x"] is big
    assert tree["l"][1] is tree["l"] and tree["l"][0] is big


# ------------------------------------------------------------ parallelism

def test_two_tasks_run_at_once_in_different_processes(make_ppool):
    new_barrier(2)
    pool = make_ppool(2)
    a = pool.submit(at_barrier)
    b = pool.submit(at_barrier)
    # each waits for the other at the barrier: both ran at the same time
    pids = {a.result(timeout=WAIT), b.result(timeout=WAIT)}
    assert len(pids) == 2 and os.getpid() not in pids


# ------------------------------------------------ functions in __main__

def test_functions_defined_in_main_script(proc_impl):
    proc = run_script("main_functions.py", proc_impl.name, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["submit"] == 49
    assert out["map"] == [i * i + 1 for i in range(20)]
    assert out["class"] == "Point(3, 4)"
    assert out["error"] == ["MainError", ["from main"]]
    assert out["parent"] not in out["pids"]


# --------------------------------------- native only: memoryview arguments

def test_native_memoryview_argument(native_ppool):
    # the stdlib cannot pickle memoryview objects at all
    data = make_blob(8 * MiB, 10)
    pool = native_ppool(1)
    mv = memoryview(data)
    assert pool.submit(digest, mv).result(timeout=WAIT) == ("memoryview",) + digest(data)[1:]
    ints = memoryview(bytearray(data)).cast("i")
    out = pool.submit(identity, ints).result(timeout=WAIT)
    assert isinstance(out, memoryview) and out.format == "i" and out.shape == ints.shape
    assert out.tobytes() == data
    out = pool.submit(identity, mv[:4 * MiB]).result(timeout=WAIT)
    assert bytes(out) == data[:4 * MiB]
    assert pool.submit(square, 3).result(timeout=WAIT) == 9
