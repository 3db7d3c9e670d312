"""Thread-pool scenarios: ``asyncio.to_thread`` and friends vs native_exec.

Sizes are the full-run sizes; ``build(scale)`` multiplies the task counts
(never the sleep lengths or the worker counts) so tests can run tiny.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import shutil
import tempfile
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, AsyncIterator, Callable, List, Optional, Sequence

import native_exec

from . import peers
from .model import Contender, Scenario, Skipped
from .workloads import (Call, gather_calls, gather_each, noop, read_file, sequential_calls,
                        sleep, stat)

ORDER = 10  # thread scenarios come first in the report

GATHER_NOOP = 10_000
SEQUENTIAL_NOOP = 2_000
SLEEP_1MS = 1_000
SLEEP_1MS_WORKERS = 32
SMALL_FILES = 1_000
SMALL_FILE_BYTES = 1_024
STATS = 10_000
FANOUT_WORKERS = (8, 32, 128)
FANOUT_TASKS_PER_WORKER = 4
RUN_IN_EXECUTOR_NOOP = 10_000


# ------------------------------------------------------------ contenders

def stdlib_to_thread(loop: str = "asyncio") -> Contender:
    """``asyncio.to_thread`` on the loop's own default executor."""

    @asynccontextmanager
    async def open_() -> AsyncIterator[Call]:
        yield asyncio.to_thread

    return Contender("asyncio.to_thread", open_, loop=loop)


def stdlib_pool_to_thread(workers: int) -> Contender:
    """``asyncio.to_thread`` with a ``concurrent.futures`` pool as default executor."""

    @asynccontextmanager
    async def open_() -> AsyncIterator[Call]:
        pool = concurrent.futures.ThreadPoolExecutor(workers)
        asyncio.get_running_loop().set_default_executor(pool)
        try:
            yield asyncio.to_thread
        finally:
            pool.shutdown(wait=True)

    return Contender("asyncio.to_thread, default executor "
                     "concurrent.futures.ThreadPoolExecutor(%d)" % workers, open_)


def native_to_thread(loop: str = "asyncio") -> Contender:
    """``native_exec.to_thread`` on the loop's default executor (native, installed on first use)."""

    @asynccontextmanager
    async def open_() -> AsyncIterator[Call]:
        yield native_exec.to_thread

    return Contender("native_exec.to_thread", open_, loop=loop)


def native_pool_run(workers: int) -> Contender:
    """``pool.run`` on a ``native_exec.ThreadPoolExecutor(workers)``."""

    @asynccontextmanager
    async def open_() -> AsyncIterator[Call]:
        pool = native_exec.ThreadPoolExecutor(workers)
        try:
            yield pool.run
        finally:
            pool.shutdown(wait=True)

    return Contender("native_exec.ThreadPoolExecutor(%d).run" % workers, open_)


def run_in_default_executor(label: str,
                            make_executor: Optional[Callable[[], Any]]) -> Contender:
    """``loop.run_in_executor(None, fn)``; with ``make_executor``, set as default first."""

    @asynccontextmanager
    async def open_() -> AsyncIterator[Call]:
        loop = asyncio.get_running_loop()
        executor = make_executor() if make_executor is not None else None
        if executor is not None:
            loop.set_default_executor(executor)

        def call(fn: Callable[..., Any], *args: Any) -> "asyncio.Future[Any]":
            return loop.run_in_executor(None, fn, *args)

        try:
            yield call
        finally:
            if executor is not None:
                executor.shutdown(wait=True)

    return Contender(label, open_)


# -------------------------------------------------------------- fixtures

class SmallFiles:
    """``count`` files of ``size`` bytes in a temporary directory.

    Made when entered (once per scenario, not per repeat), removed on exit.
    ``cycle(n)`` lists ``n`` of their paths, going round as often as needed.
    """

    def __init__(self, count: int, size: int = SMALL_FILE_BYTES) -> None:
        self.count, self.size = count, size
        self.paths: List[str] = []
        self._dir: Optional[str] = None

    def __enter__(self) -> "SmallFiles":
        self._dir = tempfile.mkdtemp(prefix="native_exec_bench_")
        for i in range(self.count):
            path = os.path.join(self._dir, "f%05d" % i)
            with open(path, "wb") as f:
                f.write(os.urandom(self.size))
            self.paths.append(path)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
        self._dir, self.paths = None, []

    def cycle(self, n: int) -> Sequence[str]:
        return [self.paths[i % len(self.paths)] for i in range(n)]


# ------------------------------------------------------------- scenarios

def scaled(n: int, scale: float, minimum: int = 1) -> int:
    return max(minimum, int(round(n * scale)))


def _uvloop_row(name: str, description: str, tasks: int, workload: Any,
                target: Optional[float]) -> Scenario:
    why = peers.loop_available("uvloop")
    if why is not None:
        return Scenario(name, description, tasks, workload, None, None,
                        target=target, skipped=Skipped(why), params={"loop": "uvloop"})
    return Scenario(name, description, tasks, workload,
                    stdlib_to_thread(loop="uvloop"), native_to_thread(loop="uvloop"),
                    target=target, params={"loop": "uvloop"})


def build(scale: float = 1.0) -> List[Scenario]:
    out: List[Scenario] = []

    # (a) throughput: many no-op calls in flight at once.
    n = scaled(GATHER_NOOP, scale)
    gather_noop = partial(gather_calls, n=n, fn=noop)
    out.append(Scenario(
        "thread/gather_noop", "%d no-op calls through asyncio.gather" % n, n, gather_noop,
        stdlib_to_thread(), native_to_thread(), peers={"anyio": peers.anyio_to_thread()},
        target=10.0, params={"calls": n}))
    out.append(_uvloop_row(
        "thread/gather_noop@uvloop", "as thread/gather_noop, on uvloop", n, gather_noop,
        target=None))

    # (b) latency: one call at a time.
    n = scaled(SEQUENTIAL_NOOP, scale)
    sequential_noop = partial(sequential_calls, n=n, fn=noop)
    out.append(Scenario(
        "thread/sequential_noop", "%d no-op calls, each awaited before the next" % n, n,
        sequential_noop, stdlib_to_thread(), native_to_thread(),
        peers={"anyio": peers.anyio_to_thread()}, target=1.5, params={"calls": n}))
    out.append(_uvloop_row(
        "thread/sequential_noop@uvloop", "as thread/sequential_noop, on uvloop", n,
        sequential_noop, target=None))

    # (c) blocking calls on a 32-thread pool.
    n, w = scaled(SLEEP_1MS, scale), SLEEP_1MS_WORKERS
    out.append(Scenario(
        "thread/gather_sleep_1ms_%dw" % w,
        "%d calls of time.sleep(0.001) through gather, %d workers" % (n, w), n,
        partial(gather_calls, n=n, fn=sleep, args=(0.001,)),
        stdlib_pool_to_thread(w), native_pool_run(w), target=1.0,
        params={"calls": n, "workers": w, "sleep_s": 0.001}))

    # Realistic blocking I/O on the default pools.
    files = SmallFiles(scaled(SMALL_FILES, scale))
    out.append(Scenario(
        "thread/read_small_files",
        "read %d files of %d bytes through to_thread, gathered" % (files.count, files.size),
        files.count, partial(gather_each, fn=read_file, items=lambda f=files: f.paths),
        stdlib_to_thread(), native_to_thread(), fixture=files,
        params={"files": files.count, "file_bytes": files.size}))

    n = scaled(STATS, scale)
    stat_files = SmallFiles(min(n, scaled(SMALL_FILES, scale)), size=0)
    out.append(Scenario(
        "thread/os_stat", "%d os.stat calls through to_thread, gathered" % n, n,
        partial(gather_each, fn=stat, items=lambda f=stat_files, k=n: f.cycle(k)),
        stdlib_to_thread(), native_to_thread(), fixture=stat_files,
        params={"calls": n, "files": stat_files.count}))

    # Fan-out of longer blocking calls, FANOUT_TASKS_PER_WORKER waves.
    for w in FANOUT_WORKERS:
        n = scaled(FANOUT_TASKS_PER_WORKER * w, scale)
        out.append(Scenario(
            "thread/fanout_sleep_10ms_%dw" % w,
            "%d calls of time.sleep(0.01) through gather, %d workers" % (n, w), n,
            partial(gather_calls, n=n, fn=sleep, args=(0.01,)),
            stdlib_pool_to_thread(w), native_pool_run(w),
            params={"calls": n, "workers": w, "sleep_s": 0.01}))

    # The drop-in: native pool as the loop's default executor.
    n = scaled(RUN_IN_EXECUTOR_NOOP, scale)
    out.append(Scenario(
        "thread/run_in_executor_default",
        "%d no-op loop.run_in_executor(None, f) calls, gathered" % n, n,
        partial(gather_calls, n=n, fn=noop),
        run_in_default_executor("stdlib default executor", None),
        run_in_default_executor("native_exec.ThreadPoolExecutor() as default executor",
                                native_exec.ThreadPoolExecutor),
        params={"calls": n}))
    return out
