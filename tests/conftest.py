"""Fixtures for the thread-side tests of native_exec.

Behavioural tests are written once and run twice through the ``impl``
fixture: against the stdlib (``asyncio.to_thread`` and
``concurrent.futures.ThreadPoolExecutor``), which defines what correct means,
and against native_exec.  What only native_exec does is tested by tests that
do not take ``impl``.

Nothing may hang: every test of the thread side gets a timeout (pytest-timeout
when it is installed; otherwise faulthandler ends the run with every thread's
stack, which fails it rather than blocking it).  Workers that a test blocks
wait on a ``Gate`` that is opened when the test ends, whatever happened.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import faulthandler
import functools
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, List, Optional

import pytest

import native_exec
from native_exec import _native

TESTS = Path(__file__).resolve().parent
SCRIPTS = TESTS / "scripts"

#: Seconds any one test of the thread side may take.
DEFAULT_TIMEOUT = 60
#: Seconds a structural wait (for a worker to start, a count to be reached)
#: may take before the test fails; nothing here should need more than a
#: fraction of a second.
WAIT = 20.0

_OWN_FILES = re.compile(
    r"^test_(thread_.*|to_thread.*|leaks_thread|lifecycle_thread)\.py$")


# --------------------------------------------------------------- timeouts

_fallback_timeout = False


def pytest_configure(config: pytest.Config) -> None:
    global _fallback_timeout
    # CI's ".[test]" extra may lack pytest-timeout (or it may be disabled).
    _fallback_timeout = not config.pluginmanager.hasplugin("timeout")
    if _fallback_timeout:
        config.addinivalue_line(
            "markers", "timeout(seconds): end the run if the test takes longer")


def pytest_collection_modifyitems(config: pytest.Config,
                                  items: List[pytest.Item]) -> None:
    for item in items:
        if (_OWN_FILES.match(item.path.name)
                and item.get_closest_marker("timeout") is None):
            item.add_marker(pytest.mark.timeout(DEFAULT_TIMEOUT))


def _end_the_run(item: pytest.Item, seconds: float) -> None:
    """Print every thread's stack where the terminal shows it, then exit."""
    capman = item.config.pluginmanager.getplugin("capturemanager")
    if capman is not None:
        capman.suspend_global_capture(in_=True)
    sys.stderr.write(f"\n+++ {item.nodeid} still running after {seconds}s: "
                     "ending the run +++\n")
    sys.stderr.flush()
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    sys.stderr.flush()
    os._exit(1)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """Without pytest-timeout: a test that outlives its timeout ends the run
    with every thread's stack (a failure, not a hang).  A watchdog thread
    does it; if even that cannot run (a deadlock holding the GIL),
    faulthandler's own watchdog ends the process a little later."""
    marker = item.get_closest_marker("timeout")
    if not _fallback_timeout or marker is None or not marker.args:
        yield
        return
    seconds = float(marker.args[0])
    watchdog = threading.Timer(seconds, _end_the_run, args=(item, seconds))
    watchdog.daemon = True
    watchdog.start()
    faulthandler.dump_traceback_later(seconds + 15, exit=True)
    try:
        yield
    finally:
        watchdog.cancel()
        faulthandler.cancel_dump_traceback_later()


# ------------------------------------------------------- the two versions

def default_max_workers() -> int:
    """The stdlib ThreadPoolExecutor's default size, min(32, cpus + 4)."""
    count = getattr(os, "process_cpu_count", os.cpu_count)()
    return min(32, (count or 1) + 4)


class Impl:
    """One implementation of to_thread and ThreadPoolExecutor."""

    name: str
    to_thread: Callable[..., Any]
    ThreadPoolExecutor: type

    def __repr__(self) -> str:
        return self.name

    def thread_count(self, pool: Any) -> int:
        """How many worker threads the pool has started and not lost."""
        raise NotImplementedError

    def to_thread_on(self, pool: Any, func: Callable[..., Any], *args: Any,
                     **kwargs: Any) -> Any:
        """An awaitable: what to_thread does, on the given pool."""
        raise NotImplementedError

    async def default_workers(self) -> int:
        """In a running loop: how many workers serve ``self.to_thread``.

        Both run to_thread on the loop's default executor: a fresh pool of
        known size is installed.
        """
        raise NotImplementedError


class StdlibImpl(Impl):
    name = "stdlib"
    to_thread = staticmethod(asyncio.to_thread)
    ThreadPoolExecutor = concurrent.futures.ThreadPoolExecutor

    def thread_count(self, pool: Any) -> int:
        return len(pool._threads)

    async def to_thread_on(self, pool: Any, func: Callable[..., Any], *args: Any,
                           **kwargs: Any) -> Any:
        # asyncio.to_thread's own body, with the executor named.
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()
        call = functools.partial(ctx.run, func, *args, **kwargs)
        return await loop.run_in_executor(pool, call)

    async def default_workers(self) -> int:
        n = default_max_workers()
        asyncio.get_running_loop().set_default_executor(
            concurrent.futures.ThreadPoolExecutor(n))
        return n


class NativeImpl(Impl):
    name = "native"
    to_thread = staticmethod(native_exec.to_thread)
    ThreadPoolExecutor = native_exec.ThreadPoolExecutor

    def thread_count(self, pool: Any) -> int:
        return pool._stats()["threads"]

    def to_thread_on(self, pool: Any, func: Callable[..., Any], *args: Any,
                     **kwargs: Any) -> Any:
        return pool.run(func, *args, **kwargs)

    async def default_workers(self) -> int:
        n = default_max_workers()
        asyncio.get_running_loop().set_default_executor(native_exec.ThreadPoolExecutor(n))
        return n


IMPLS = {"stdlib": StdlibImpl(), "native": NativeImpl()}


@pytest.fixture(params=["stdlib", "native"])
def impl(request: pytest.FixtureRequest) -> Impl:
    """Runs the test once on the stdlib and once on native_exec."""
    return IMPLS[request.param]


@pytest.fixture
def make_pool(impl: Impl):
    """``make_pool(*args, **kwargs)``: an impl.ThreadPoolExecutor shut down
    (without waiting) when the test ends."""
    pools: List[Any] = []

    def make(*args: Any, **kwargs: Any) -> Any:
        pool = impl.ThreadPoolExecutor(*args, **kwargs)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.shutdown(wait=False, cancel_futures=True)


@pytest.fixture
def native_pool():
    """``native_pool(*args, **kwargs)``: a native ThreadPoolExecutor, shut
    down (without waiting) when the test ends."""
    pools: List[Any] = []

    def make(*args: Any, **kwargs: Any) -> Any:
        pool = native_exec.ThreadPoolExecutor(*args, **kwargs)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.shutdown(wait=False, cancel_futures=True)


# ------------------------------------------------- structural helpers

class Gate:
    """Calls that block in a worker until the test opens the gate.

    ``gate.block(value)`` counts itself started, waits for the gate, counts
    itself finished and returns value.  It also records how many calls were
    inside it at once (``peak``) and which threads ran them.
    """

    def __init__(self) -> None:
        self.event = threading.Event()
        self.lock = threading.Lock()
        self.started = 0
        self.finished = 0
        self.inside = 0
        self.peak = 0
        self.threads: List[str] = []

    def block(self, value: Any = None) -> Any:
        with self.lock:
            self.started += 1
            self.inside += 1
            self.peak = max(self.peak, self.inside)
            self.threads.append(threading.current_thread().name)
        try:
            if not self.event.wait(WAIT * 3):
                raise RuntimeError("the test never opened the gate")
        finally:
            with self.lock:
                self.inside -= 1
                self.finished += 1
        return value

    def open(self) -> None:
        self.event.set()

    def wait_started(self, n: int) -> None:
        wait_until(lambda: self.started >= n,
                   f"{n} blocked calls to start (got {self.started})")

    async def until_started(self, n: int) -> None:
        await until(lambda: self.started >= n,
                    f"{n} blocked calls to start (got {self.started})")


@pytest.fixture
def gate():
    g = Gate()
    yield g
    g.open()


@pytest.fixture
def make_gate():
    gates: List[Gate] = []

    def make() -> Gate:
        g = Gate()
        gates.append(g)
        return g

    yield make
    for g in gates:
        g.open()


def wait_until(predicate: Callable[[], bool], what: str = "condition",
               timeout: float = WAIT) -> None:
    """Poll predicate until it holds; fail the test if it never does."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.001)


async def until(predicate: Callable[[], bool], what: str = "condition",
                timeout: float = WAIT) -> None:
    """wait_until for a coroutine: polls without blocking the loop."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.001)


def run(coro: Any) -> Any:
    """asyncio.run, with a fresh loop per call."""
    return asyncio.run(coro)


# ------------------------------------------------------ subprocesses

def _signal_group(proc: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(proc.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def run_script(name: str, *args: str, timeout: float = 60,
               env: Optional[dict] = None,
               python: str = sys.executable) -> subprocess.CompletedProcess:
    """Run tests/scripts/<name> with this interpreter; fail on a hang.

    A script that hangs gets SIGABRT first, so that faulthandler prints
    where every thread of it was, then SIGKILL."""
    full_env = dict(os.environ)
    full_env.pop("PYTHONWARNINGS", None)
    full_env["PYTHONFAULTHANDLER"] = "1"
    if env:
        full_env.update(env)
    cmd = [python, str(SCRIPTS / name), *args]
    # Its own process group: a forked child of the script that hangs too is
    # killed with it (it would otherwise hold the output pipes open).
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=full_env, cwd=str(TESTS),
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _signal_group(proc, signal.SIGABRT)
        try:
            out, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            out, err = proc.communicate()
        pytest.fail(f"{name} {' '.join(args)} hung for {timeout}s\n"
                    f"stdout:\n{out}\nstderr:\n{err}")
    except BaseException:
        _signal_group(proc, signal.SIGKILL)
        proc.communicate()
        raise
    finally:
        _signal_group(proc, signal.SIGKILL)  # leave no stray child behind
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
