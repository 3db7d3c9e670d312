"""Optional third-party peers: found if installed, reported as skipped if not.

Nothing here imports a peer at module import time; a peer that is missing is
never an error, only a ``Skipped("not installed")``.

* Event loops: ``asyncio`` (always) and ``uvloop``; :func:`new_event_loop`.
* Thread peers: :func:`anyio_to_thread` (``anyio.to_thread.run_sync``).
* Process-pool peers, for the process scenarios to come:
  :data:`PROCESS_POOL_PEERS` maps ``"loky"`` and ``"multiprocessing.Pool"``
  to a function ``(workers) -> Contender | Skipped`` whose ``call(fn, *args)``
  runs ``fn(*args)`` in that peer's worker processes.  ``fn`` and its
  arguments must be picklable (module-level functions).
"""

from __future__ import annotations

import asyncio
import importlib.util
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable, Dict, Optional, Union

from .model import Contender, Skipped
from .workloads import Call

NOT_INSTALLED = "not installed"


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def version(distribution: str) -> Optional[str]:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


# ------------------------------------------------------------ event loops

LOOPS = ("asyncio", "uvloop")


def loop_available(kind: str) -> Optional[str]:
    """None if loops of ``kind`` can be made, else why not."""
    if kind == "asyncio":
        return None
    if kind == "uvloop":
        return None if installed("uvloop") else NOT_INSTALLED
    return "unknown event loop %r" % kind


def new_event_loop(kind: str = "asyncio") -> asyncio.AbstractEventLoop:
    if kind == "asyncio":
        return asyncio.new_event_loop()
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    raise ValueError("unknown event loop %r" % kind)


# ---------------------------------------------------------- thread peers

def anyio_to_thread(loop: str = "asyncio") -> Union[Contender, Skipped]:
    """``anyio.to_thread.run_sync`` (its default limiter: 40 threads)."""
    if not installed("anyio"):
        return Skipped(NOT_INSTALLED)

    @asynccontextmanager
    async def open_anyio() -> AsyncIterator[Call]:
        from anyio import to_thread

        yield to_thread.run_sync

    return Contender("anyio.to_thread.run_sync", open_anyio, loop=loop)


# --------------------------------------------------- process-pool peers

def loky_pool(workers: int, loop: str = "asyncio") -> Union[Contender, Skipped]:
    """``loky.get_reusable_executor(workers)``, awaited via ``wrap_future``."""
    if not installed("loky"):
        return Skipped(NOT_INSTALLED)

    @asynccontextmanager
    async def open_loky() -> AsyncIterator[Call]:
        import loky

        executor = loky.get_reusable_executor(max_workers=workers)

        def call(fn: Callable[..., Any], *args: Any) -> "asyncio.Future[Any]":
            return asyncio.wrap_future(executor.submit(fn, *args))

        try:
            yield call
        finally:
            executor.shutdown(wait=True)

    return Contender("loky reusable executor (%d)" % workers, open_loky, loop=loop)


def multiprocessing_pool(workers: int, loop: str = "asyncio",
                         start_method: str = "fork") -> Union[Contender, Skipped]:
    """``multiprocessing.Pool(workers).apply_async``, results posted to the loop."""

    @asynccontextmanager
    async def open_mp() -> AsyncIterator[Call]:
        import multiprocessing

        running = asyncio.get_running_loop()
        pool = multiprocessing.get_context(start_method).Pool(workers)

        def call(fn: Callable[..., Any], *args: Any) -> "asyncio.Future[Any]":
            fut = running.create_future()

            def done(result: Any) -> None:
                running.call_soon_threadsafe(_settle, fut, result, None)

            def failed(exc: BaseException) -> None:
                running.call_soon_threadsafe(_settle, fut, None, exc)

            pool.apply_async(fn, args, callback=done, error_callback=failed)
            return fut

        try:
            yield call
        finally:
            pool.close()
            pool.join()

    return Contender("multiprocessing.Pool(%d)" % workers, open_mp, loop=loop)


def _settle(fut: "asyncio.Future[Any]", result: Any, exc: Optional[BaseException]) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(result)


PROCESS_POOL_PEERS: Dict[str, Callable[..., Union[Contender, Skipped]]] = {
    "loky": loky_pool,
    "multiprocessing.Pool": multiprocessing_pool,
}

# Distributions whose versions the report records.
DISTRIBUTIONS = ("native_exec", "uvloop", "anyio", "loky", "matplotlib")
