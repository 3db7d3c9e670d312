"""What only native_exec's process pool does, or does where the stdlib
genuinely differs: ``pool.run`` and ``to_process`` from asyncio,
``max_tasks_per_child`` with fork, fork without the 3.12
DeprecationWarning, ``cancel()`` that withdraws a queued task, no zombies
and no /dev/shm leftovers after shutdown, workers that leave with a killed
parent, and the native ``_stats()``."""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import gc
import glob
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
import zlib

import psutil
import pytest

import native_exec
from native_exec import UnpicklingFailed
from process_fixtures import (  # noqa: F401  (fixtures)
    SCRIPTS, WAIT, blocked, at_barrier, children_of_me, getpid, gone, markers,
    native_ppool, new_barrier, open_gate, pool_family, run_script, shm_entries, square, touch,
    wait_started, wait_until, zombie_children)

pytestmark = pytest.mark.timeout(180)

MiB = 1 << 20


class Boom(Exception):
    def __init__(self, message, code):
        super().__init__(message, code)


def raise_boom(message, code):
    raise Boom(message, code)


def echo(*args, **kwargs):
    return args, kwargs


def pid_after(seconds):
    time.sleep(seconds)
    return os.getpid()


def zeros(n):
    return bytes(n)


def crc(data):
    return len(data), zlib.crc32(data)


def _fail_loading():
    raise ValueError("this result cannot be rebuilt")


class LoadsBadly:
    """Pickles fine in the worker; unpickling it in the parent raises."""

    def __reduce__(self):
        return _fail_loading, ()


def make_loads_badly():
    return LoadsBadly()


class NeedsTwo(Exception):
    """Pickles as NeedsTwo(a): rebuilding it in the parent raises TypeError."""

    def __init__(self, a, b):
        super().__init__(a)


def raise_needs_two():
    raise NeedsTwo("a", "b")


def log_init(path):
    with open(path, "a") as f:
        f.write("%d\n" % os.getpid())


def nested_pool(n):
    with native_exec.ProcessPoolExecutor(2) as inner:
        return list(inner.map(square, range(n))), os.getpid()


def nested_to_process(n):
    async def main():
        return await asyncio.gather(*(native_exec.to_process(square, i) for i in range(n)))
    return asyncio.run(main())


class SlowToLoad:
    """A result whose unpickling takes a while: collection rounds last."""

    def __init__(self, i):
        self.i = i

    def __reduce__(self):
        return (load_slowly, (self.i,))


def load_slowly(i):
    deadline = time.perf_counter() + 0.0005
    while time.perf_counter() < deadline:
        pass
    return SlowToLoad(i)


def slow_to_load(i):
    return SlowToLoad(i)


class Tick(Exception):
    pass


# ------------------------------------------------------- run / to_process

def test_run_from_asyncio(native_ppool):
    pool = native_ppool(2)

    async def main():
        fut = pool.run(square, 3)
        assert isinstance(fut, asyncio.Future)
        first = await fut
        many = await asyncio.gather(*(pool.run(square, i) for i in range(500)))
        kw = await pool.run(echo, 1, key="v")
        waited = await asyncio.wait_for(pool.run(square, 12), WAIT)
        task = await asyncio.create_task(pool.run(square, 13))
        return first, many, kw, waited, task

    first, many, kw, waited, task = asyncio.run(main())
    assert first == 9 and many == [i * i for i in range(500)]
    assert kw == ((1,), {"key": "v"}) and waited == 144 and task == 169


def test_run_exceptions(native_ppool):
    pool = native_ppool(2)

    async def main():
        outs = await asyncio.gather(pool.run(raise_boom, "async", 1), pool.run(square, 2),
                                    pool.run(int, "nope"), return_exceptions=True)
        with pytest.raises(Boom) as info:
            await pool.run(raise_boom, "direct", 2)
        return outs, info.value

    (boom, four, bad_int), direct = asyncio.run(main())
    assert type(boom) is Boom and boom.args == ("async", 1)
    assert "raise_boom" in str(boom.__cause__) and "Traceback" in str(boom.__cause__)
    assert four == 4 and type(bad_int) is ValueError
    assert direct.args == ("direct", 2)


def test_run_without_a_running_loop_defers_the_call(native_ppool):
    # asyncio.run(pool.run(f)) makes the awaitable before the loop exists:
    # as with to_thread, it is a coroutine that submits when it first runs
    pool = native_ppool(1)
    coro = pool.run(echo, 2, key="v")
    assert asyncio.iscoroutine(coro)
    assert pool._stats()["in_flight"] == 0
    assert asyncio.run(coro) == ((2,), {"key": "v"})
    assert asyncio.run(native_exec.to_process(square, 3)) == 9
    never = pool.run(square, 4)
    never.close()
    assert pool._stats()["in_flight"] == 0
    assert pool.submit(square, 2).result(timeout=WAIT) == 4


def test_to_process(tmp_path):
    async def main():
        many = await asyncio.gather(*(native_exec.to_process(square, i) for i in range(300)))
        pids = await asyncio.gather(*(native_exec.to_process(getpid) for _ in range(20)))
        kw = await native_exec.to_process(echo, "a", b=2)
        with pytest.raises(Boom) as info:
            await native_exec.to_process(raise_boom, "default pool", 3)
        return many, pids, kw, info.value

    many, pids, kw, exc = asyncio.run(main())
    assert many == [i * i for i in range(300)]
    assert os.getpid() not in pids
    assert kw == (("a",), {"b": 2})
    assert exc.args == ("default pool", 3) and "raise_boom" in str(exc.__cause__)
    # the default pool outlives one event loop
    assert asyncio.run(main())[0] == many


def test_run_cancel_withdraws_an_unclaimed_task(native_ppool, markers, tmp_path):
    pool = native_ppool(1)
    victim_file = str(tmp_path / "victim")

    async def main():
        busy = asyncio.ensure_future(pool.run(blocked, markers, "busy"))
        await asyncio.get_running_loop().run_in_executor(None, wait_started, markers, 1)
        victim = asyncio.ensure_future(pool.run(touch, victim_file))
        assert victim.cancel()   # queued behind busy: withdrawn
        open_gate(markers)
        out = await busy
        with pytest.raises(asyncio.CancelledError):
            await victim
        return out, await pool.run(square, 6)

    out, after = asyncio.run(main())
    assert out[0] == "busy" and after == 36
    pool.shutdown(wait=True)
    assert not os.path.exists(victim_file)


# ------------------------------------------------------------ arguments

def test_pools_created_in_overlapping_threads_keep_their_regions():
    proc = run_script("overlapping_pool_creations.py", timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["first", "100000", "second", "100000"], proc.stderr


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


def test_one_task_at_a_time_needs_one_worker(native_ppool):
    # Workers start on demand, as the stdlib's do with other start methods:
    # calls made one after another find the worker that served the last one
    # idle (whether asleep or still awake), and never start a second.
    pool = native_ppool(4)
    pids = {pool.submit(getpid).result(timeout=WAIT) for _ in range(300)}
    assert len(pids) == 1
    assert len(pool._stats()["worker_pids"]) == 1


def test_no_fork_deprecation_warning_in_multithreaded_process():
    proc = run_script("warnings_error.py", python_args=["-W", "error::DeprecationWarning"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
    assert "DeprecationWarning" not in proc.stderr


def test_function_defined_in_main_after_the_pool():
    proc = run_script("main_functions.py", "native", "--late")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["late"][:2] == ["UnpicklingFailed", "AttributeError"] and "late" in out["late"][2]
    assert out["after_late"] == 25 and out["submit"] == 49


def test_result_that_cannot_be_rebuilt_fails_that_future_only(native_ppool):
    # (the stdlib's pool breaks when its result thread cannot unpickle)
    pool = native_ppool(1)
    exc = pool.submit(make_loads_badly).exception(timeout=WAIT)
    assert type(exc) is UnpicklingFailed and exc.side == "parent"
    assert type(exc.__cause__) is ValueError and "cannot be rebuilt" in str(exc.__cause__)
    assert pool.submit(square, 8).result(timeout=WAIT) == 64
    exc = pool.submit(raise_needs_two).exception(timeout=WAIT)
    assert type(exc) is UnpicklingFailed and type(exc.__cause__) is TypeError
    assert pool.submit(square, 9).result(timeout=WAIT) == 81
    assert not pool._broken


def test_max_tasks_per_child_runs_the_initializer_in_each_replacement(native_ppool, tmp_path):
    log = str(tmp_path / "init.log")
    pool = native_ppool(1, initializer=log_init, initargs=(log,), max_tasks_per_child=2)
    pids = [pool.submit(getpid).result(timeout=WAIT) for _ in range(6)]
    pool.shutdown(wait=True)
    with open(log) as f:
        init_pids = [int(line) for line in f.read().split()]
    assert init_pids == sorted(set(pids), key=pids.index)


def test_a_pool_inside_a_worker(native_ppool):
    pool = native_ppool(2)
    out, pid = pool.submit(nested_pool, 6).result(timeout=WAIT)
    assert out == [i * i for i in range(6)] and pid != os.getpid()
    assert pool.submit(square, 3).result(timeout=WAIT) == 9


def test_to_process_inside_a_worker_after_the_parent_used_it(native_ppool):
    # the parent's default pool exists before this pool (and its zygote) is
    # made; a task calling to_process needs a default pool of its own, as
    # the stdlib lets a worker make its own ProcessPoolExecutor
    async def use():
        return await native_exec.to_process(square, 2)

    assert asyncio.run(use()) == 4
    pool = native_ppool(1)
    assert pool.submit(nested_to_process, 6).result(timeout=WAIT) == [i * i for i in range(6)]
    assert pool.submit(square, 3).result(timeout=WAIT) == 9


def test_a_forked_child_cannot_use_the_pool_and_the_parent_can(native_ppool, markers):
    pool = native_ppool(2)
    inflight = [pool.submit(blocked, markers, i) for i in range(2)]
    wait_started(markers, 2)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 3
        try:
            pool.submit(square, 2)
        except RuntimeError:
            code = 0
        except BaseException:
            code = 4
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    open_gate(markers)
    assert [f.result(timeout=WAIT)[0] for f in inflight] == [0, 1]
    assert pool.submit(square, 5).result(timeout=WAIT) == 25


def test_a_stdlib_pool_beside_native_tasks(native_ppool, markers):
    pool = native_ppool(2)
    inflight = [pool.submit(blocked, markers, i) for i in range(2)]
    wait_started(markers, 2)
    with concurrent.futures.ProcessPoolExecutor(
            2, mp_context=multiprocessing.get_context("fork")) as stdlib_pool:
        assert list(stdlib_pool.map(square, range(10))) == [i * i for i in range(10)]
    open_gate(markers)
    assert [f.result(timeout=WAIT)[0] for f in inflight] == [0, 1]
    assert pool.submit(square, 5).result(timeout=WAIT) == 25


def test_signals_in_the_waiting_thread_lose_no_future(native_ppool):
    # A signal handler that raises, every 5 ms, while the main thread waits
    # in result(): the waits are interrupted, but results are unpickled and
    # futures completed by the collector thread, out of the handler's reach.
    pool = native_ppool(2)
    futs = [pool.submit(slow_to_load, i) for i in range(1500)]

    waiting = [False]

    def tick(signum, frame):
        # raises only inside the try below, never in the test's own loop
        if waiting[0]:
            waiting[0] = False
            raise Tick

    old = signal.signal(signal.SIGALRM, tick)
    interrupted = 0
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.005, 0.005)
        deadline = time.monotonic() + 60
        pending = list(futs)
        while pending and time.monotonic() < deadline:
            try:
                waiting[0] = True
                pending[0].result()
                waiting[0] = False
                pending.pop(0)
            except Tick:
                interrupted += 1
            except RuntimeError as exc:
                # the stdlib's Condition.wait, interrupted while taking its
                # lock back, fails to release it: still the Tick, not a loss
                if not isinstance(exc.__context__, Tick):
                    raise
                waiting[0] = False
                interrupted += 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        signal.signal(signal.SIGALRM, old)
    done, not_done = concurrent.futures.wait(futs, timeout=WAIT)
    assert not not_done, f"{len(not_done)} futures never completed"
    assert interrupted > 0
    assert [f.result().i for f in futs] == list(range(1500))
    assert pool.submit(square, 5).result(timeout=WAIT) == 25


# ----------------------------------------------------------------- cancel

def test_cancel_withdraws_a_task_no_worker_claimed(native_ppool, markers, tmp_path):
    pool = native_ppool(2)
    running = [pool.submit(blocked, markers, i) for i in range(2)]
    wait_started(markers, 2)
    victim_file = str(tmp_path / "victim")
    victim = pool.submit(touch, victim_file)
    assert pool._stats()["in_flight"] == 3
    assert victim.cancel() is True
    assert victim.cancelled() and victim.done()
    assert pool._stats()["in_flight"] == 2
    with pytest.raises(concurrent.futures.CancelledError):
        victim.result(timeout=0)
    # a running task cannot be cancelled
    assert running[0].cancel() is False
    open_gate(markers)
    assert [f.result(timeout=WAIT)[0] for f in running] == [0, 1]
    assert pool.submit(square, 4).result(timeout=WAIT) == 16
    assert running[1].cancel() is False and victim.cancel() is True
    pool.shutdown(wait=True)
    assert not os.path.exists(victim_file)


def test_a_task_no_worker_claimed_is_not_running(native_ppool, markers, tmp_path):
    pool = native_ppool(2)
    running = [pool.submit(blocked, markers, i) for i in range(2)]
    wait_started(markers, 2)
    queued = pool.submit(touch, str(tmp_path / "queued"))
    victim = pool.submit(touch, str(tmp_path / "victim"))
    assert all(f.running() for f in running)
    assert not queued.running() and not victim.running()
    assert victim.cancel() is True and not victim.running()
    open_gate(markers)
    assert queued.result(timeout=WAIT) != os.getpid()
    assert not queued.running()
    assert [f.result(timeout=WAIT)[0] for f in running] == [0, 1]
    assert os.path.exists(tmp_path / "queued") and not os.path.exists(tmp_path / "victim")


def test_cancel_in_shared_memory_and_in_the_parents_queue(native_ppool, markers, tmp_path):
    # more tasks than shared-memory slots: the rest wait in the parent
    pool = native_ppool(2)
    running = [pool.submit(blocked, markers, i) for i in range(2)]
    wait_started(markers, 2)
    files = [str(tmp_path / ("t%d" % i)) for i in range(1100)]
    futs = [pool.submit(touch, path) for path in files]
    stats = pool._stats()
    assert stats["pending"] > 0 and stats["in_flight"] + stats["pending"] == 1102
    victims = {5, 500, 1090, 1099}
    assert all(futs[i].cancel() for i in victims)
    assert pool._stats()["in_flight"] + pool._stats()["pending"] == 1102 - len(victims)
    open_gate(markers)
    for i, f in enumerate(futs):
        if i not in victims:
            assert f.result(timeout=WAIT) in _pids_of(pool, running)
    pool.shutdown(wait=True)
    created = {i for i, path in enumerate(files) if os.path.exists(path)}
    assert created == set(range(1100)) - victims


def _pids_of(pool, running):
    return {f.result(timeout=WAIT)[1] for f in running}


def test_shutdown_cancel_futures_cancels_every_unclaimed_task(native_ppool, markers, tmp_path):
    pool = native_ppool(2)
    running = [pool.submit(blocked, markers, i) for i in range(2)]
    wait_started(markers, 2)
    files = [str(tmp_path / ("t%d" % i)) for i in range(1500)]
    queued = [pool.submit(touch, path) for path in files]
    pool.shutdown(wait=False, cancel_futures=True)
    assert all(f.cancelled() for f in queued)
    open_gate(markers)
    assert [f.result(timeout=WAIT)[0] for f in running] == [0, 1]
    pool.shutdown(wait=True)
    assert not any(os.path.exists(p) for p in files)


def test_cancel_racing_the_workers_is_consistent(native_ppool, tmp_path):
    # cancel() right after submit() races the workers' claims: True must
    # mean the task never ran, False that it ran (and has its result)
    pool = native_ppool(2)
    records = []
    for i in range(4000):
        path = str(tmp_path / ("t%d" % i))
        fut = pool.submit(touch, path)
        if i % 3 == 0:
            time.sleep(0)
        records.append((path, fut, fut.cancel()))
    pool.shutdown(wait=True)
    withdrawn = 0
    for path, fut, cancelled in records:
        if cancelled:
            withdrawn += 1
            assert fut.cancelled() and not os.path.exists(path)
        else:
            assert os.path.exists(path) and fut.result(timeout=0) != os.getpid()
    assert withdrawn > 0


def test_cancel_after_completion_returns_false(native_ppool):
    pool = native_ppool(1)
    fut = pool.submit(square, 3)
    assert fut.result(timeout=WAIT) == 9
    assert fut.cancel() is False and not fut.cancelled()


# ----------------------------------------------------- processes and shm

def test_stats_shape(native_ppool):
    pool = native_ppool(3)
    stats = pool._stats()
    assert set(stats) == {"worker_pids", "in_flight", "pending", "max_workers",
                          "zygote_pid", "shutdown", "broken"}
    assert stats["max_workers"] == 3 and stats["worker_pids"] == []
    assert stats["zygote_pid"] in children_of_me()
    assert stats["shutdown"] is False and stats["broken"] is None
    assert pool.submit(square, 2).result(timeout=WAIT) == 4
    # (the zygote may mark its new worker alive just after the task is done)
    wait_until(lambda: 1 <= len(pool._stats()["worker_pids"]) <= 3, "a live worker")
    pool.shutdown()
    stats = pool._stats()
    assert stats["shutdown"] is True and stats["zygote_pid"] == 0 and stats["worker_pids"] == []


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


class ShmWatcher:
    """Records the /dev/shm entries of the given processes seen meanwhile."""

    def __init__(self, pids):
        self.pids = pids
        self.seen = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.seen |= shm_entries(self.pids)
            time.sleep(0.0005)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


@pytest.mark.timeout(300)
def test_no_shm_left_after_a_result_larger_than_the_region(native_ppool):
    pool = native_ppool(1)
    worker = pool.submit(getpid).result(timeout=WAIT)
    ours = pool_family(pool) | {worker}
    with ShmWatcher(ours) as watcher:
        out = pool.submit(zeros, 300 * MiB).result(timeout=120)
    assert len(out) == 300 * MiB and out == bytes(300 * MiB)
    del out
    assert watcher.seen, "the 300 MiB result never went through a named segment"
    assert all(e.startswith("/dev/shm/native_exec-%d-" % worker) for e in watcher.seen)
    wait_until(lambda: not shm_entries(ours), "the result's segment to be unlinked")
    assert pool.submit(getpid).result(timeout=WAIT) == worker
    pool.shutdown(wait=True)
    assert shm_entries(ours) == set()


@pytest.mark.timeout(300)
def test_no_shm_left_after_arguments_larger_than_the_arena(native_ppool, markers):
    # The worker is kept busy while 256 MiB arguments queue up; once the
    # argument area is full, the next goes to a named segment.  One of those
    # is cancelled (the parent unlinks it), another is read by the worker
    # (which unlinks it).
    pool = native_ppool(1)
    busy = pool.submit(blocked, markers, "busy")
    wait_started(markers, 1)
    ours = pool_family(pool)
    assert not shm_entries(ours)
    data = bytes(range(256)) * (MiB // 256) * 256
    queued = []
    while not shm_entries([os.getpid()]):
        if len(queued) == 6:
            pytest.fail("six queued 256 MiB arguments and none in a named segment")
        queued.append(pool.submit(crc, data))
    victim = queued.pop()
    assert victim.cancel() is True
    assert not shm_entries(ours), "a cancelled task's segment was left behind"
    queued.append(pool.submit(crc, data))
    assert shm_entries([os.getpid()]), "the next argument did not go to a named segment"
    open_gate(markers)
    expected = crc(data)
    assert busy.result(timeout=WAIT)[0] == "busy"
    assert [f.result(timeout=120) for f in queued] == [expected] * len(queued)
    wait_until(lambda: not shm_entries(ours), "read segments to be unlinked")
    pool.shutdown(wait=True)
    assert shm_entries(ours) == set()


def run_until_killed(script: str, marker_dir) -> tuple:
    """Start a script that prints one JSON line about its pool, then sleeps;
    return the process and that line, parsed."""
    env = dict(os.environ, PYTHONFAULTHANDLER="1")
    env.pop("PYTHONWARNINGS", None)
    proc = subprocess.Popen([sys.executable, str(SCRIPTS / script), str(marker_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(120)
    if not (line and line[0].strip()):
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"{script} printed nothing: {err}")
    return proc, json.loads(line[0])


def kill_leftovers(proc, pids) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    for pid in pids:
        try:
            if psutil.Process(pid).cmdline()[:1] == [sys.executable]:
                os.kill(pid, signal.SIGKILL)
        except (psutil.Error, ProcessLookupError):
            pass


def test_parent_killed_takes_zygote_and_workers(tmp_path):
    marker_dir = tmp_path / "markers"
    marker_dir.mkdir()
    proc, info = run_until_killed("parent_killed.py", marker_dir)
    pids = [info["zygote"]] + info["workers"]
    try:
        assert len(info["workers"]) == 2 and all(pids)
        for pid in pids:
            assert psutil.Process(pid).ppid() in (info["parent"], info["zygote"])
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        for pid in pids:
            wait_until(lambda: gone(pid), f"process {pid} to exit after its owner was killed",
                       timeout=5)
    finally:
        kill_leftovers(proc, pids)


@pytest.mark.timeout(300)
def test_parent_killed_with_a_payload_in_a_named_segment_leaves_none(tmp_path):
    # An argument too big for the shared area waits for the busy worker in
    # a /dev/shm segment; killed, the parent cannot unlink it: the zygote,
    # which outlives it just long enough to reap the workers, does.
    marker_dir = tmp_path / "markers"
    marker_dir.mkdir()
    proc, info = run_until_killed("parent_killed_mid_payload.py", marker_dir)
    try:
        assert info["segments"] and all(os.path.exists(e) for e in info["segments"])
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        wait_until(lambda: gone(info["zygote"]), "the zygote to exit", timeout=5)
        assert shm_entries([info["parent"]]) == set()
    finally:
        kill_leftovers(proc, [info["zygote"]])
        for e in shm_entries([info["parent"]]):
            os.unlink(e)