"""The initializer runs once in each worker, before its first call, with
initargs; one that raises is logged and breaks the pool: queued futures
fail with BrokenThreadPool and later submits raise it."""

from __future__ import annotations

import logging
import threading
from concurrent.futures.thread import BrokenThreadPool

import pytest

from conftest import WAIT

local = threading.local()


def test_runs_once_per_worker_with_initargs(make_pool):
    calls = []
    lock = threading.Lock()

    def init(a, b):
        with lock:
            calls.append((threading.get_ident(), a, b))

    pool = make_pool(3, initializer=init, initargs=("x", 2))
    barrier = threading.Barrier(3, timeout=WAIT)

    def task():
        barrier.wait()
        return threading.get_ident()

    # Three rounds that each need all three workers at once.
    idents = []
    for _ in range(3):
        idents += [f.result(timeout=WAIT) for f in [pool.submit(task) for _ in range(3)]]
    assert len(set(idents)) == 3
    assert sorted(c[0] for c in calls) == sorted(set(idents))
    assert all(c[1:] == ("x", 2) for c in calls)


def test_runs_in_the_worker_before_its_first_call(make_pool):
    def init(value):
        local.value = value

    pool = make_pool(1, initializer=init, initargs=(41,))
    assert pool.submit(lambda: local.value + 1).result(timeout=WAIT) == 42


def test_initargs_may_be_any_iterable(make_pool):
    got = []
    pool = make_pool(1, initializer=lambda *a: got.extend(a), initargs=[1, 2, 3])
    pool.submit(int).result(timeout=WAIT)
    assert got == [1, 2, 3]


def test_initargs_none_without_an_initializer(make_pool):
    pool = make_pool(1, initializer=None, initargs=None)
    assert pool.submit(int, "7").result(timeout=WAIT) == 7


def test_no_initializer_runs_when_nothing_is_submitted(make_pool):
    calls = []
    pool = make_pool(2, initializer=calls.append, initargs=(1,))
    pool.shutdown(wait=True)
    assert calls == []


def failing_init():
    raise ValueError("initializer failed on purpose")


def test_failing_initializer_breaks_the_pool(make_pool, caplog):
    caplog.set_level(logging.CRITICAL, logger="concurrent.futures")
    pool = make_pool(1, initializer=failing_init)
    fut = pool.submit(abs, -1)
    with pytest.raises(BrokenThreadPool):
        fut.result(timeout=WAIT)
    with pytest.raises(BrokenThreadPool):
        pool.submit(abs, -1)
    records = [r for r in caplog.records if r.name == "concurrent.futures"]
    assert records and records[0].levelno == logging.CRITICAL
    assert "initializer" in records[0].getMessage()
    assert records[0].exc_info[0] is ValueError


def test_failing_initializer_fails_every_queued_future(make_pool, caplog):
    caplog.set_level(logging.CRITICAL, logger="concurrent.futures")
    entered = threading.Event()
    release = threading.Event()

    def init():
        entered.set()
        release.wait(WAIT)
        raise ValueError("late failure")

    pool = make_pool(1, initializer=init)
    futs = [pool.submit(abs, -i) for i in range(5)]
    assert entered.wait(WAIT)
    release.set()
    for fut in futs:
        with pytest.raises(BrokenThreadPool):
            fut.result(timeout=WAIT)
    with pytest.raises(BrokenThreadPool):
        pool.submit(abs, -1)


def test_broken_pool_can_still_be_shut_down(make_pool, caplog):
    caplog.set_level(logging.CRITICAL, logger="concurrent.futures")
    pool = make_pool(2, initializer=failing_init)
    with pytest.raises(BrokenThreadPool):
        pool.submit(abs, -1).result(timeout=WAIT)
    pool.shutdown(wait=True)
