"""What submit() gives on a process pool, run against the stdlib's (fork
context) and native_exec's through the ``proc_impl`` fixture: a future
with the result computed in another process, arguments of every kind,
many submits and submits from several threads, non-callables and
KeyboardInterrupt failing only their future."""

from __future__ import annotations

import concurrent.futures
import os
import threading

import pytest

from process_fixtures import WAIT, getpid, make_ppool, proc_impl, square  # noqa: F401  (fixtures)

pytestmark = pytest.mark.timeout(120)


MiB = 1 << 20


def echo(*args, **kwargs):
    return args, kwargs


def raise_keyboard_interrupt():
    raise KeyboardInterrupt("in the worker")


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
