"""stats() on both pools: a PoolStats snapshot whose counts match what
was done to the pool, taken while calls are queued, running and done.

native_exec only (the stdlib pools have no statistics).  Every count is
asserted exactly; the percentiles only for their shape (present, ordered,
positive), never for a duration.
"""

from __future__ import annotations

import dataclasses
import os
import threading

import pytest

import native_exec
from native_exec import PoolStats
from process_fixtures import (  # noqa: F401  (fixtures)
    WAIT, blocked, markers, native_ppool, open_gate, square, stuck, wait_started, wait_until)

pytestmark = pytest.mark.timeout(180)

ZERO = dict(submitted=0, queued=0, running=0, completed=0, failed=0, cancelled=0,
            workers_alive=0, workers_started=0, worker_deaths=0, timeouts=0, recycled=0,
            queue_wait_p50=None, queue_wait_p99=None, run_time_p50=None, run_time_p99=None)


def check_percentiles(stats):
    for name in ("queue_wait", "run_time"):
        p50, p99 = getattr(stats, name + "_p50"), getattr(stats, name + "_p99")
        assert p50 is not None and 0 <= p50 <= p99


def test_a_new_pool_has_done_nothing(native_ppool):
    with native_exec.ThreadPoolExecutor(2) as tp:
        assert tp.stats() == PoolStats(**ZERO)
    stats = native_ppool(2).stats()
    assert dataclasses.replace(stats, workers_alive=0) == PoolStats(**ZERO)
    assert stats.done == 0


def test_thread_pool_counts_what_it_was_given():
    gate = threading.Event()
    with native_exec.ThreadPoolExecutor(1) as tp:
        first = tp.submit(gate.wait, WAIT)
        wait_until(lambda: tp.stats().running == 1, "the first call to start")
        queued = [tp.submit(square, i) for i in range(5)]
        during = tp.stats()
        assert (during.submitted, during.queued, during.running) == (6, 5, 1)
        assert all(f.cancel() for f in queued[:2])
        gate.set()
        failing = tp.submit(int, "not a number")
        assert failing.exception(WAIT) is not None
        assert [f.result(WAIT) for f in queued[2:]] == [4, 9, 16] and first.result(WAIT)
        wait_until(lambda: tp.stats().done == 7, "every call to be counted")
        after = tp.stats()
    assert (after.submitted, after.completed, after.failed, after.cancelled) == (7, 4, 1, 2)
    assert (after.queued, after.running, after.workers_started) == (0, 0, 1)
    check_percentiles(after)


def test_process_pool_counts_what_it_was_given(native_ppool, markers):
    pool = native_ppool(1, task_timeout=3600)
    first = pool.submit(blocked, markers, "first")
    wait_started(markers, 1)
    queued = [pool.submit(square, i) for i in range(5)]
    during = pool.stats()
    assert (during.submitted, during.queued, during.running) == (6, 5, 1)
    assert all(f.cancel() for f in queued[:2])
    open_gate(markers)
    assert pool.submit(int, "x").exception(WAIT) is not None
    assert [f.result(WAIT) for f in queued[2:]] == [4, 9, 16] and first.result(WAIT)
    after = pool.stats()
    assert (after.submitted, after.completed, after.failed, after.cancelled) == (7, 4, 1, 2)
    assert (after.queued, after.running, after.workers_alive) == (0, 0, 1)
    check_percentiles(after)


def test_process_pool_counts_its_workers(native_ppool, markers):
    pool = native_ppool(1, max_tasks_per_child=2, task_timeout=0.3)
    pids = [pool.submit(os.getpid).result(WAIT) for _ in range(4)]
    assert len(set(pids)) == 2
    assert type(pool.submit(stuck, markers, "spin").exception(WAIT)) is native_exec.TaskTimeout
    assert pool.submit(os._exit, 3).exception(WAIT) is not None
    wait_until(lambda: pool.stats().workers_started == 4 and pool.stats().recycled == 2,
               "the recycled workers to be counted")
    stats = pool.stats()
    # two recycled at max_tasks_per_child, one stopped (a timeout, not a
    # death), one that died by itself
    assert (stats.recycled, stats.timeouts, stats.worker_deaths) == (2, 1, 1)
    assert (stats.submitted, stats.completed, stats.failed) == (6, 4, 2)


def test_stats_is_cheap_to_take_in_a_loop(native_ppool):
    pool = native_ppool(2)
    futures = [pool.submit(square, i) for i in range(2000)]
    seen = []
    while not all(f.done() for f in futures):
        seen.append(pool.stats().done)
    assert seen == sorted(seen)  # progress only moves forward
    assert pool.stats().done == 2000


def test_the_progress_example_draws_to_the_end(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "examples" / "beyond_stdlib" / "progress.py"
    proc = subprocess.run([sys.executable, str(script), "500"], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("sum of 500 results: ")
    # the last frame drawn (plain line or tqdm bar) shows every item done
    assert "500/500" in proc.stderr.replace("\r", "\n").splitlines()[-1]
