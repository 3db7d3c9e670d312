"""``mp_context``: any multiprocessing context is accepted.

The stdlib starts its workers by the context's method; native_exec forks
them from its zygote whatever the context says.  What both give a caller
(the calls run, in other processes, ``max_tasks_per_child`` honoured) is
tested against both; what follows from forking at pool creation, where a
spawned worker would start afresh, is tested on native_exec alone."""

from __future__ import annotations

import multiprocessing
import os
import sys

import pytest

import native_exec
import process_fixtures
from process_fixtures import (  # noqa: F401  (fixtures)
    WAIT, getpid, make_ppool, native_ppool, proc_impl, square)

pytestmark = pytest.mark.timeout(180)

METHODS = multiprocessing.get_all_start_methods()

#: Set by a test after import and before it makes its pool: a forked worker
#: sees the new value, a spawned one re-imports this module and sees None.
LATE = None


def read_late(_: object = None) -> object:
    return LATE


@pytest.mark.parametrize("method", METHODS)
def test_every_start_method_runs_calls(make_ppool, method):
    pool = make_ppool(2, mp_context=multiprocessing.get_context(method))
    assert list(pool.map(square, range(10))) == [i * i for i in range(10)]
    pids = {pool.submit(getpid).result(timeout=WAIT) for _ in range(4)}
    assert os.getpid() not in pids


def test_the_default_context(make_ppool):
    # on 3.14+ the default start method is forkserver
    pool = make_ppool(1, mp_context=multiprocessing.get_context())
    assert pool.submit(square, 7).result(timeout=WAIT) == 49


@pytest.mark.parametrize("method", METHODS)
def test_max_tasks_per_child_with_every_context(make_ppool, proc_impl, method):
    if proc_impl.name == "stdlib" and sys.version_info < (3, 11):
        pytest.skip("the stdlib has no max_tasks_per_child before 3.11 (native runs it)")
    if proc_impl.name == "stdlib" and method == "fork":
        pytest.skip("the stdlib refuses max_tasks_per_child with fork (native runs it)")
    pool = make_ppool(1, mp_context=multiprocessing.get_context(method),
                      max_tasks_per_child=1)
    pids = [pool.submit(getpid).result(timeout=WAIT) for _ in range(3)]
    assert len(set(pids)) == 3, "each worker ran one task"


def test_the_context_is_kept_for_inspection(native_ppool):
    ctx = multiprocessing.get_context("spawn")
    assert native_ppool(1, mp_context=ctx)._mp_context is ctx
    # None: what the stdlib picks (spawn with max_tasks_per_child)
    assert native_ppool(1, max_tasks_per_child=2)._mp_context.get_start_method() == "spawn"
    assert (native_ppool(1)._mp_context.get_start_method()
            == multiprocessing.get_start_method())


def test_something_else_is_refused():
    with pytest.raises(TypeError, match="multiprocessing context"):
        native_exec.ProcessPoolExecutor(1, mp_context="spawn")


@pytest.mark.parametrize("method", METHODS)
def test_workers_see_the_program_as_at_pool_creation(native_ppool, method):
    # The documented difference: forked from the zygote, a worker of a
    # "spawn" or "forkserver" pool inherits module state set before the
    # pool was made, and nothing set after it.
    global LATE
    LATE = "before"
    try:
        pool = native_ppool(1, mp_context=multiprocessing.get_context(method))
        LATE = "after"
        assert pool.submit(read_late).result(timeout=WAIT) == "before"
    finally:
        LATE = None


def test_no_main_guard_is_needed_with_spawn():
    # A script that makes a spawn pool at module level, without
    # `if __name__ == "__main__":`, runs once: nothing re-imports __main__.
    proc = process_fixtures.run_script("spawn_without_main_guard.py")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["made", "49", "done"]
