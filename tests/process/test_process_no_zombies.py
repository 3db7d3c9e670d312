"""native_exec's process pool leaves no zombie and no process behind: after
shutdown (of a used or an unused pool), when the pool is dropped without
shutdown, when the interpreter exits without it, and for a pool made
while the interpreter exits."""

from __future__ import annotations

import gc
import json

import psutil
import pytest

import native_exec
from process_fixtures import (  # noqa: F401  (fixtures)
    WAIT, at_barrier, children_of_me, gone, native_ppool, new_barrier, run_script, square,
    wait_until, zombie_children)

pytestmark = pytest.mark.timeout(180)


def test_no_zombies_after_shutdown(native_ppool):
    zombies_before = set(zombie_children())
    new_barrier(2)
    pool = native_ppool(2)
    pids = {f.result(timeout=WAIT) for f in [pool.submit(at_barrier), pool.submit(at_barrier)]}
    stats = pool._stats()
    zygote, workers = stats["zygote_pid"], set(stats["worker_pids"])
    assert len(workers) == 2 and pids <= workers
    mine = children_of_me()
    assert zygote in mine and workers <= mine
    pool.shutdown(wait=True)
    for pid in workers | {zygote}:
        assert not psutil.pid_exists(pid), f"process {pid} still exists after shutdown"
    assert set(zombie_children()) - zombies_before == set()
    assert not (children_of_me() & (workers | {zygote}))


def test_no_zombies_after_an_unused_pool_shuts_down(native_ppool):
    pool = native_ppool(2)
    zygote = pool._stats()["zygote_pid"]
    pool.shutdown(wait=True)
    assert not psutil.pid_exists(zygote)


def test_pool_dropped_without_shutdown_takes_its_processes(native_ppool):
    pool = native_exec.ProcessPoolExecutor(2)
    assert [f.result(timeout=WAIT) for f in [pool.submit(square, i) for i in range(10)]] \
        == [i * i for i in range(10)]
    stats = pool._stats()
    pids = set(stats["worker_pids"]) | {stats["zygote_pid"]}
    del pool
    gc.collect()
    for pid in pids:
        wait_until(lambda: not psutil.pid_exists(pid), f"process {pid} to exit")


def test_interpreter_exit_without_shutdown(tmp_path):
    for extra in ((), ("--pending",)):
        proc = run_script("exit_without_shutdown.py", *extra, timeout=60)
        assert proc.returncode == 0, proc.stderr
        info = json.loads(proc.stdout.splitlines()[0])
        for pid in info["zygotes"] + info["workers"]:
            wait_until(lambda: gone(pid), f"process {pid} of the exited script to go")


def test_a_pool_made_while_the_interpreter_exits():
    proc = run_script("pool_made_during_exit.py", timeout=60)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout.splitlines()[-1])
    assert info["submit"].startswith("RuntimeError: cannot schedule new futures")
    assert info["zygote"] == 0   # stopped and reaped, not left behind
