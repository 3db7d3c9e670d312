"""``max_tasks_per_child`` with fork (the stdlib refuses the two together):
validated, each worker retired after that many tasks and replaced, with
the initializer run again in each replacement."""

from __future__ import annotations

import collections
import os
import time

import pytest

import native_exec
from process_fixtures import WAIT, getpid, gone, native_ppool, wait_until  # noqa: F401  (fixtures)

pytestmark = pytest.mark.timeout(180)


def pid_after(seconds):
    time.sleep(seconds)
    return os.getpid()


def log_init(path):
    with open(path, "a") as f:
        f.write("%d\n" % os.getpid())


def test_max_tasks_per_child_validation():
    with pytest.raises(ValueError):
        native_exec.ProcessPoolExecutor(1, max_tasks_per_child=0)
    with pytest.raises(TypeError):
        native_exec.ProcessPoolExecutor(1, max_tasks_per_child="2")


def test_max_tasks_per_child_replaces_workers(native_ppool):
    pool = native_ppool(1, max_tasks_per_child=2)
    pids = [pool.submit(getpid).result(timeout=WAIT) for _ in range(6)]
    assert pids[0] == pids[1] and pids[2] == pids[3] and pids[4] == pids[5]
    assert len({pids[0], pids[2], pids[4]}) == 3
    # a burst, queued at once: still two tasks per process
    burst = [f.result(timeout=WAIT) for f in [pool.submit(getpid) for _ in range(10)]]
    counts = collections.Counter(burst)
    assert set(counts.values()) == {2} and len(counts) == 5
    assert not set(burst) & set(pids)
    for pid in pids:
        wait_until(lambda: gone(pid), f"retired worker {pid} to exit")


def test_max_tasks_per_child_with_several_workers(native_ppool):
    pool = native_ppool(2, max_tasks_per_child=3)
    futs = [pool.submit(pid_after, 0.001) for _ in range(60)]
    counts = collections.Counter(f.result(timeout=WAIT) for f in futs)
    assert max(counts.values()) <= 3 and len(counts) >= 20
    assert os.getpid() not in counts


def test_max_tasks_per_child_runs_the_initializer_in_each_replacement(native_ppool, tmp_path):
    log = str(tmp_path / "init.log")
    pool = native_ppool(1, initializer=log_init, initargs=(log,), max_tasks_per_child=2)
    pids = [pool.submit(getpid).result(timeout=WAIT) for _ in range(6)]
    pool.shutdown(wait=True)
    with open(log) as f:
        init_pids = [int(line) for line in f.read().split()]
    assert init_pids == sorted(set(pids), key=pids.index)
