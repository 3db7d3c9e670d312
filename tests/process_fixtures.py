"""Fixtures and helpers for the process-pool tests of native_exec.

Behavioural tests take ``proc_impl`` (through ``make_ppool``) and run twice:
against the stdlib ``concurrent.futures.ProcessPoolExecutor`` with a fork
context, which defines what correct means, and against
``native_exec.ProcessPoolExecutor``.  What only native_exec does (or where
the stdlib genuinely differs) is tested without ``proc_impl``.

Workers inherit their synchronisation objects: a test puts fork-context
``multiprocessing`` objects in ``SHARED`` *before* it creates its pool (the
stdlib forks its workers at the first submit, native_exec forks its zygote
when the pool is created), and the worker functions below find them there.
Every event in ``SHARED`` is set when the test ends, whatever happened, so
no worker stays blocked; every wait in a worker has a timeout as well.

Nothing may hang: the test modules carry pytest-timeout marks, and the
teardown of every pool made here waits a bounded time for its shutdown,
failing the test rather than blocking the run.
"""

from __future__ import annotations

import concurrent.futures
import glob
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Set

import psutil
import pytest

import native_exec

CTX = multiprocessing.get_context("fork")

TESTS = Path(__file__).resolve().parent
SCRIPTS = TESTS / "process_scripts"

#: Seconds a structural wait (a worker to start, a file to appear, a
#: process to go) may take before the test fails.
WAIT = 30.0
#: Seconds a worker blocked by a test waits before giving up by itself.
BLOCK = 90.0
#: Seconds the teardown gives a pool to shut down.
SHUTDOWN_WAIT = 60.0

#: Synchronisation objects the workers inherit (see the module docstring).
SHARED: Dict[str, Any] = {}
#: Marker directories whose gates are opened when the test ends.
GATES: Set[str] = set()


# ------------------------------------------------------------ waiting

def wait_until(predicate: Callable[[], bool], what: str = "condition",
               timeout: float = WAIT, interval: float = 0.002) -> None:
    """Poll predicate until it holds; fail the test if it never does."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------- what workers run

def new_barrier(parties: int, name: str = "barrier") -> Any:
    barrier = CTX.Barrier(parties)
    SHARED[name] = barrier
    return barrier


def blocked(marker_dir: str, value: Any = None) -> Any:
    """In a worker: say it started (a file in marker_dir), wait until the
    test opens the gate (open_gate(marker_dir)), return (value, pid).

    The gate is a file, polled: unlike a multiprocessing Event, it stays
    usable when a process waiting on it is killed."""
    pid = os.getpid()
    path = os.path.join(marker_dir, "started-%d-%d" % (pid, time.monotonic_ns()))
    with open(path, "w") as f:
        f.write(str(pid))
    gate = os.path.join(marker_dir, "open")
    deadline = time.monotonic() + BLOCK
    while not os.path.exists(gate):
        if time.monotonic() > deadline:
            raise RuntimeError("the test never opened the gate")
        time.sleep(0.002)
    return value, pid


def stuck(marker_dir: str, how: str = "sleep") -> None:
    """In a worker: say it started (as blocked() does), then never return:
    sleep, spin, or spin deaf to SIGTERM ("deaf").  Only killing the
    process ends it (task_timeout, cancel_running)."""
    if how == "deaf":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    pid = os.getpid()
    path = os.path.join(marker_dir, "started-%d-%d" % (pid, time.monotonic_ns()))
    with open(path, "w") as f:
        f.write(str(pid))
    while True:
        if how == "sleep":
            time.sleep(BLOCK)


def started_pids(marker_dir: str) -> List[int]:
    """The pids that blocked() or stuck() calls ran in, in start order."""
    paths = sorted(glob.glob(os.path.join(marker_dir, "started-*")),
                   key=lambda p: int(p.rsplit("-", 1)[1]))
    return [int(p.rsplit("-", 2)[1]) for p in paths]


def open_gate(marker_dir: str) -> None:
    with open(os.path.join(marker_dir, "open"), "w"):
        pass


def started_count(marker_dir: str) -> int:
    return len(glob.glob(os.path.join(marker_dir, "started-*")))


def wait_started(marker_dir: str, n: int) -> None:
    wait_until(lambda: started_count(marker_dir) >= n,
               f"{n} blocked tasks to start (got {started_count(marker_dir)})")


def at_barrier(name: str = "barrier") -> int:
    """In a worker: wait at SHARED[name] (fails rather than hangs), return pid."""
    SHARED[name].wait(BLOCK)
    return os.getpid()


def touch(path: str) -> int:
    with open(path, "w") as f:
        f.write(str(os.getpid()))
    return os.getpid()


def getpid(_: Any = None) -> int:
    return os.getpid()


def identity(x: Any) -> Any:
    return x


def square(x: int) -> int:
    return x * x


class Boom(Exception):
    """An exception with arguments, to see them survive the trip back."""

    def __init__(self, message, code):
        super().__init__(message, code)


def raise_boom(message, code):
    raise Boom(message, code)


# ------------------------------------------------------- the two versions

class ProcImpl:
    name: str

    def __repr__(self) -> str:
        return self.name

    def make(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


class StdlibProcImpl(ProcImpl):
    name = "stdlib"

    def make(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("mp_context", CTX)
        return concurrent.futures.ProcessPoolExecutor(*args, **kwargs)


class NativeProcImpl(ProcImpl):
    name = "native"

    def make(self, *args: Any, **kwargs: Any) -> Any:
        return native_exec.ProcessPoolExecutor(*args, **kwargs)


PROC_IMPLS = {"stdlib": StdlibProcImpl(), "native": NativeProcImpl()}


def release_all() -> None:
    for marker_dir in GATES:
        open_gate(marker_dir)
    objs = list(SHARED.values())

    def wake() -> None:
        # (a multiprocessing Condition waits for its sleepers to wake: one
        # killed while waiting would block this, hence the helper thread)
        for obj in objs:
            if hasattr(obj, "set") and hasattr(obj, "is_set"):
                obj.set()
            elif hasattr(obj, "abort"):
                obj.abort()

    t = threading.Thread(target=wake, daemon=True)
    t.start()
    t.join(5.0)


def bounded_shutdown(pool: Any, timeout: float = SHUTDOWN_WAIT) -> Optional[str]:
    """shutdown(wait=True) in a helper thread; a message if it did not return."""
    errors: List[BaseException] = []

    def stop() -> None:
        try:
            pool.shutdown(wait=True, cancel_futures=True)
        except BaseException as exc:  # reported below
            errors.append(exc)

    t = threading.Thread(target=stop, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        return f"{pool!r}.shutdown(wait=True) did not return within {timeout}s"
    if errors:
        return f"{pool!r}.shutdown raised {errors[0]!r}"
    return None


class PoolFactory:
    """``make_ppool(*args, **kwargs)``: pools shut down when the test ends."""

    def __init__(self, impl: ProcImpl) -> None:
        self.impl = impl
        self.pools: List[Any] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        pool = self.impl.make(*args, **kwargs)
        self.pools.append(pool)
        return pool

    def close(self) -> None:
        release_all()
        problems = []
        for pool in self.pools:
            pids = pool_pids(pool)
            problem = bounded_shutdown(pool)
            if problem is not None:
                # unstick it (and the interpreter's exit) before reporting
                kill_all(pids)
                bounded_shutdown(pool, 10.0)
                problems.append(problem)
        self.pools.clear()
        SHARED.clear()
        GATES.clear()
        if problems:
            pytest.fail("; ".join(problems))


def pool_pids(pool: Any) -> List[int]:
    """The processes of a pool: workers first, then a native pool's zygote."""
    if isinstance(pool, native_exec.ProcessPoolExecutor):
        try:
            stats = pool._stats()
        except Exception:
            return []
        return list(stats["worker_pids"]) + ([stats["zygote_pid"]] if stats["zygote_pid"] else [])
    return list((getattr(pool, "_processes", None) or {}).keys())


def kill_all(pids: Iterable[int]) -> None:
    mine = children_of_me()
    for pid in pids:
        if pid in mine:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass


@pytest.fixture(params=["stdlib", "native"])
def proc_impl(request: pytest.FixtureRequest) -> ProcImpl:
    """Runs the test once on the stdlib (fork context) and once on native_exec."""
    return PROC_IMPLS[request.param]


@pytest.fixture
def make_ppool(proc_impl: ProcImpl):
    factory = PoolFactory(proc_impl)
    yield factory
    factory.close()


@pytest.fixture
def native_ppool():
    """``native_ppool(*args, **kwargs)``: native_exec.ProcessPoolExecutor
    instances shut down (bounded) when the test ends."""
    factory = PoolFactory(PROC_IMPLS["native"])
    yield factory
    factory.close()


@pytest.fixture
def markers(tmp_path: Path) -> str:
    d = tmp_path / "markers"
    d.mkdir()
    GATES.add(str(d))
    yield str(d)
    open_gate(str(d))
    GATES.discard(str(d))


# ------------------------------------------------------- processes, shm

def shm_entries(pids: Optional[Iterable[int]] = None) -> Set[str]:
    """native_exec's named shared-memory segments that exist now; with pids,
    only those created by these processes (/dev/shm/native_exec-<pid>-<n>):
    other test runs on the machine may have their own."""
    entries = set(glob.glob("/dev/shm/native_exec-*"))
    if pids is None:
        return entries
    prefixes = tuple("/dev/shm/native_exec-%d-" % pid for pid in pids)
    return {e for e in entries if e.startswith(prefixes)}


def pool_family(pool: Any) -> Set[int]:
    """This process, the pool's zygote and its live workers."""
    stats = pool._stats()
    pids = {os.getpid(), *stats["worker_pids"]}
    if stats["zygote_pid"]:
        pids.add(stats["zygote_pid"])
    return pids


def gone(pid: int) -> bool:
    """The process has exited: it no longer exists, or is a zombie nobody
    of ours is responsible for reaping."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def children_of_me() -> Set[int]:
    return {c.pid for c in psutil.Process().children(recursive=True)}


def zombie_children() -> List[int]:
    out = []
    for c in psutil.Process().children(recursive=True):
        try:
            if c.status() == psutil.STATUS_ZOMBIE:
                out.append(c.pid)
        except psutil.NoSuchProcess:
            pass
    return out


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def run_script(name: str, *args: str, timeout: float = 120,
               python_args: Iterable[str] = (),
               env: Optional[dict] = None) -> subprocess.CompletedProcess:
    """Run tests/process_scripts/<name> with this interpreter; fail on a hang."""
    full_env = dict(os.environ)
    full_env.pop("PYTHONWARNINGS", None)
    full_env["PYTHONFAULTHANDLER"] = "1"
    if env:
        full_env.update(env)
    cmd = [sys.executable, *python_args, str(SCRIPTS / name), *args]
    try:
        return subprocess.run(cmd, capture_output=True, text=True,
                              timeout=timeout, env=full_env, cwd=str(TESTS))
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{name} {' '.join(args)} hung for {timeout}s\n"
                    f"stdout:\n{exc.stdout}\nstderr:\n{exc.stderr}")
