"""Optional third-party peers: found if installed, reported as skipped if not.

Nothing here imports a peer at module import time; a peer that is missing is
never an error, only a ``Skipped("not installed")``.

* Event loops: ``asyncio`` (always) and ``uvloop``; :func:`new_event_loop`.
* Thread peers: :func:`anyio_to_thread` (``anyio.to_thread.run_sync``).
* Process-pool peers: :data:`PROCESS_POOL_PEERS` maps ``"loky"`` and
  ``"multiprocessing.Pool"`` to a function ``(workers, sizes=...) ->
  Contender | Skipped`` whose ``open()`` yields a warmed-up
  :class:`~.process_pools.PoolHandle`: ``handle(fn, *args)`` is awaitable,
  ``handle.submit(fn, *args).result()`` and ``handle.map(...)`` block.
  ``fn`` and its arguments must be picklable (module-level functions).
"""

from __future__ import annotations

import asyncio
import importlib.util
from contextlib import asynccontextmanager
from typing import AsyncIterator, Callable, Dict, Iterable, Optional, Union

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

def loky_pool(workers: int, loop: str = "asyncio",
              sizes: Iterable[int] = ()) -> Union[Contender, Skipped]:
    """``loky.get_reusable_executor(max_workers=workers)``, warmed up.

    Yields a :class:`~.process_pools.PoolHandle`; ``sizes`` are the result
    blobs each worker makes while warming up.
    """
    if not installed("loky"):
        return Skipped(NOT_INSTALLED)
    from . import process_pools

    return Contender("loky.get_reusable_executor(max_workers=%d)" % workers,
                     process_pools.open_loky(workers, sizes), loop=loop)


def multiprocessing_pool(workers: int, loop: str = "asyncio", sizes: Iterable[int] = (),
                         start_method: str = "fork") -> Union[Contender, Skipped]:
    """``multiprocessing.Pool(workers)`` (``apply_async``, ``map``), warmed up."""
    from . import process_pools

    return Contender("multiprocessing.get_context(%r).Pool(%d)" % (start_method, workers),
                     process_pools.open_multiprocessing(workers, sizes, start_method),
                     loop=loop)


PROCESS_POOL_PEERS: Dict[str, Callable[..., Union[Contender, Skipped]]] = {
    "loky": loky_pool,
    "multiprocessing.Pool": multiprocessing_pool,
}

# Distributions whose versions the report records.
DISTRIBUTIONS = ("native_exec", "uvloop", "anyio", "loky", "matplotlib")
