"""ThreadPoolExecutor.submit returns a concurrent.futures.Future that carries
the call's result or exception (with the function's frames)."""

from __future__ import annotations

import concurrent.futures
import threading
import traceback

import pytest

from conftest import WAIT


class Boom(Exception):
    pass


def echo(*args, **kwargs):
    return args, kwargs


def raiser(box):
    exc = Boom("in the worker")
    box.append(exc)
    raise exc


def test_returns_a_concurrent_future(make_pool):
    fut = make_pool(2).submit(abs, -1)
    assert type(fut) is concurrent.futures.Future
    assert fut.result(timeout=WAIT) == 1
    assert fut.done() and not fut.cancelled() and fut.exception() is None


def test_result_is_the_functions_object(make_pool):
    sentinel = object()
    assert make_pool(1).submit(lambda: sentinel).result(timeout=WAIT) is sentinel


def test_positional_and_keyword_arguments(make_pool):
    pool = make_pool(2)
    a = object()
    fut = pool.submit(echo, a, 2, key=3, fn=4, func=5, self=6)
    args, kwargs = fut.result(timeout=WAIT)
    assert args == (a, 2) and args[0] is a
    assert kwargs == {"key": 3, "fn": 4, "func": 5, "self": 6}


def test_exception_type_identity_and_traceback(make_pool):
    box = []
    fut = make_pool(1).submit(raiser, box)
    with pytest.raises(Boom) as info:
        fut.result(timeout=WAIT)
    assert info.value is box[0] and fut.exception() is box[0]
    names = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
    assert "raiser" in names


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit])
def test_base_exceptions_are_carried_and_the_worker_survives(make_pool, exc_type):
    pool = make_pool(1)

    def leave():
        raise exc_type("from the worker")

    fut = pool.submit(leave)
    assert isinstance(fut.exception(timeout=WAIT), exc_type)
    assert pool.submit(len, "ok").result(timeout=WAIT) == 2


def test_runs_in_a_worker_thread(make_pool):
    ident = make_pool(1).submit(threading.get_ident).result(timeout=WAIT)
    assert ident != threading.get_ident()


def test_many_submits_each_get_their_result(make_pool):
    pool = make_pool(4)
    futs = [pool.submit(pow, i, 2) for i in range(2000)]
    assert [f.result(timeout=WAIT) for f in futs] == [i * i for i in range(2000)]


def test_done_callbacks_run(make_pool):
    pool = make_pool(2)
    seen = []
    done = threading.Event()

    def callback(fut):
        seen.append(fut.result())
        done.set()

    fut = pool.submit(abs, -9)
    fut.add_done_callback(callback)
    assert done.wait(WAIT)
    assert seen == [9]


def test_cancel_a_queued_future(make_pool, gate):
    pool = make_pool(1)
    blocker = pool.submit(gate.block, "b")
    gate.wait_started(1)
    ran = []
    queued = pool.submit(ran.append, "ran")
    assert queued.cancel()
    assert not blocker.cancel()  # running: cannot be cancelled
    gate.open()
    assert blocker.result(timeout=WAIT) == "b"
    assert pool.submit(len, "").result(timeout=WAIT) == 0  # FIFO: the victim's turn passed
    assert ran == [] and queued.cancelled()


def test_submit_from_a_worker(make_pool):
    pool = make_pool(2)

    def outer():
        return pool.submit(abs, -5).result(timeout=WAIT) * 2

    assert pool.submit(outer).result(timeout=WAIT) == 10


def test_submits_from_many_threads_at_once(make_pool):
    pool = make_pool(3)
    n_threads, per_thread = 8, 500
    barrier = threading.Barrier(n_threads, timeout=WAIT)
    results = {}

    def submitter(k):
        barrier.wait()
        futs = [pool.submit(divmod, k * per_thread + i, per_thread) for i in range(per_thread)]
        results[k] = [f.result(timeout=WAIT) for f in futs]

    threads = [threading.Thread(target=submitter, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT * 2)
    assert results == {k: [(k, i) for i in range(per_thread)] for k in range(n_threads)}


def test_a_done_callback_can_submit_and_wait(make_pool):
    # The callback runs on the worker that finished the task; the pool has
    # room for another worker, so the task it waits for must not be left
    # to the worker that is busy running the callback.
    pool = make_pool(4)
    outcome = []
    done = threading.Event()

    def callback(_fut):
        try:
            outcome.append(pool.submit(abs, -2).result(timeout=WAIT))
        except BaseException as exc:
            outcome.append(exc)
        done.set()

    release = threading.Event()
    fut = pool.submit(release.wait, WAIT)
    fut.add_done_callback(callback)     # before it is done: on the worker
    release.set()
    assert done.wait(WAIT + 1)
    assert outcome == [2]
