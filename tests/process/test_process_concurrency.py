"""How many tasks a process pool runs at once, against the stdlib's and
native_exec's: up to ``max_workers``, each in a process of its own."""

from __future__ import annotations

import os

import pytest

from process_fixtures import (  # noqa: F401  (fixtures)
    WAIT, at_barrier, make_ppool, proc_impl, new_barrier)

pytestmark = pytest.mark.timeout(120)


def test_up_to_max_workers_run_at_once(make_ppool):
    new_barrier(6)
    pool = make_ppool(6)
    futs = [pool.submit(at_barrier) for _ in range(6)]
    pids = {f.result(timeout=WAIT) for f in futs}
    assert len(pids) == 6 and os.getpid() not in pids


def test_two_tasks_run_at_once_in_different_processes(make_ppool):
    new_barrier(2)
    pool = make_ppool(2)
    a = pool.submit(at_barrier)
    b = pool.submit(at_barrier)
    # each waits for the other at the barrier: both ran at the same time
    pids = {a.result(timeout=WAIT), b.result(timeout=WAIT)}
    assert len(pids) == 2 and os.getpid() not in pids
