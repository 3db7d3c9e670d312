"""Workers of native_exec's process pool killed from outside: at random
while a thousand tasks run (every future completes), while idle
(harmless), while starting up (the pool goes on); a killed zygote breaks
the pool cleanly."""

from __future__ import annotations

import concurrent.futures
import os
import random
import signal
import threading
import time
from concurrent.futures.process import BrokenProcessPool

import psutil
import pytest

from native_exec import WorkerDied
from process_fixtures import (  # noqa: F401  (fixtures)
    WAIT, blocked, getpid, gone, markers, native_ppool, open_gate, square, wait_started,
    wait_until, zombie_children)

pytestmark = pytest.mark.timeout(180)


def describe(pool):
    """The pool's state and its processes, for a failure message."""
    out = [repr(pool._stats())]
    for proc in psutil.Process().children(recursive=True):
        try:
            with open("/proc/%d/wchan" % proc.pid) as f:
                wchan = f.read()
            out.append("%d (parent %d) %s %s in %s" % (
                proc.pid, proc.ppid(), proc.name(), proc.status(), wchan))
        except (psutil.Error, OSError):
            pass
    return "; ".join(out)


def short_task(i):
    time.sleep(0.002)
    return i


@pytest.mark.timeout(300)
def test_workers_killed_at_random_while_1000_tasks_run(native_ppool):
    pool = native_ppool(3)
    zygote = pool._stats()["zygote_pid"]
    futs = [pool.submit(short_task, i) for i in range(1000)]
    killed = []
    stop = threading.Event()
    rng = random.Random(1234)

    def killer():
        while not stop.is_set() and len(killed) < 40:
            live = [p for p in pool._stats()["worker_pids"] if p not in killed]
            if live:
                pid = rng.choice(live)
                try:
                    # only ever a live worker of this pool's zygote
                    if psutil.Process(pid).ppid() == zygote:
                        os.kill(pid, signal.SIGKILL)
                        killed.append(pid)
                except (psutil.NoSuchProcess, ProcessLookupError):
                    pass
            stop.wait(rng.uniform(0.005, 0.06))

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        done, not_done = concurrent.futures.wait(futs, timeout=240)
    finally:
        stop.set()
        thread.join(30)
    assert not not_done, (f"{len(not_done)} futures never completed: tasks "
                          f"{sorted(futs.index(f) for f in not_done)[:20]}...; "
                          f"killed {killed}; {describe(pool)}")
    died = []
    for i, f in enumerate(futs):
        exc = f.exception(timeout=0)
        if exc is None:
            assert f.result(timeout=0) == i
        else:
            assert type(exc) is WorkerDied, repr(exc)
            assert exc.pid in killed and exc.signal == signal.SIGKILL
            died.append(exc.pid)
    assert killed, "the killer never found a worker to kill"
    # a worker runs one task at a time: each kill fails at most one task
    assert len(died) == len(set(died)) and len(died) <= len(killed)
    assert not pool._broken
    assert [f.result(timeout=WAIT) for f in [pool.submit(square, i) for i in range(50)]] \
        == [i * i for i in range(50)]
    for pid in killed:
        wait_until(lambda: not psutil.pid_exists(pid), f"killed worker {pid} to be reaped")


def test_killing_idle_workers_is_harmless(native_ppool):
    pool = native_ppool(2)
    futs = [pool.submit(getpid) for _ in range(20)]
    concurrent.futures.wait(futs, timeout=WAIT)
    # a worker may serve every call before the zygote, descheduled after
    # its fork(), has recorded it as alive
    wait_until(lambda: pool._stats()["worker_pids"], "the workers to be recorded alive")
    idle = pool._stats()["worker_pids"]
    for pid in idle:
        os.kill(pid, signal.SIGKILL)
    for pid in idle:
        wait_until(lambda: pid not in pool._stats()["worker_pids"], f"{pid} to be buried")
    results = [f.result(timeout=WAIT) for f in [pool.submit(getpid) for _ in range(20)]]
    assert not set(results) & set(idle)
    assert not pool._broken


def test_zygote_killed_breaks_the_pool(native_ppool, markers):
    zombies_before = set(zombie_children())
    pool = native_ppool(2)
    running = pool.submit(blocked, markers, "x")
    wait_started(markers, 1)
    stats = pool._stats()
    zygote, workers = stats["zygote_pid"], stats["worker_pids"]
    os.kill(zygote, signal.SIGKILL)
    exc = running.exception(timeout=WAIT)
    assert isinstance(exc, BrokenProcessPool)
    wait_until(lambda: pool._broken, "the pool to be marked broken")
    with pytest.raises(BrokenProcessPool):
        pool.submit(square, 2)
    open_gate(markers)
    pool.shutdown(wait=True)
    for pid in workers + [zygote]:
        wait_until(lambda: not psutil.pid_exists(pid) or gone(pid), f"process {pid} to go")
    assert not (set(zombie_children()) - zombies_before) & set(workers + [zygote])


def test_worker_killed_while_starting_up_does_not_break_the_pool(native_ppool):
    # no initializer: a worker killed before it took any task is just replaced
    pool = native_ppool(1)
    fut = pool.submit(time.sleep, 0.2)
    wait_until(lambda: pool._stats()["worker_pids"], "the worker to be forked", interval=0)
    pid = pool._stats()["worker_pids"][0]
    os.kill(pid, signal.SIGKILL)
    exc = fut.exception(timeout=WAIT)
    assert exc is None or type(exc) is WorkerDied, repr(exc)
    assert pool._stats()["broken"] is None
    assert pool.submit(square, 6).result(timeout=WAIT) == 36
