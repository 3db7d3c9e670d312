"""``initializer``/``initargs`` on a process pool, against the stdlib's and
native_exec's: run once in each worker, a failing one breaks the pool, both
validated at construction (as is ``max_workers``)."""

from __future__ import annotations

import os
from concurrent.futures.process import BrokenProcessPool

import pytest

from process_fixtures import (  # noqa: F401  (fixtures)
    WAIT, at_barrier, make_ppool, new_barrier, proc_impl, square)

pytestmark = pytest.mark.timeout(120)


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


def test_initargs_none_without_an_initializer(make_ppool):
    pool = make_ppool(1, initializer=None, initargs=None)
    assert pool.submit(square, 7).result(timeout=WAIT) == 49


def test_max_workers_must_be_positive(proc_impl):
    with pytest.raises(ValueError):
        proc_impl.make(0)
    with pytest.raises(ValueError):
        proc_impl.make(-1)


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
