"""How a scenario issues its calls, whatever makes them.

A workload is ``async workload(call)``, where ``call(fn, *args)`` returns an
awaitable for ``fn(*args)`` run elsewhere (a thread, later a process).  The
same workload is given every contender's ``call``; only the time it takes
differs.  Build one with :func:`functools.partial` over the functions here.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any, Awaitable, Callable, Sequence

Call = Callable[..., Awaitable[Any]]


def noop() -> None:
    """The smallest call there is: measures the executor, not the work."""
    return None


def sleep(seconds: float) -> None:
    """Blocking sleep, standing for a blocking I/O call."""
    time.sleep(seconds)


def read_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


stat = os.stat


async def gather_calls(call: Call, n: int, fn: Callable[..., Any],
                       args: Sequence[Any] = ()) -> None:
    """``n`` calls of ``fn(*args)`` in flight at once through ``asyncio.gather``."""
    await asyncio.gather(*[call(fn, *args) for _ in range(n)])


async def sequential_calls(call: Call, n: int, fn: Callable[..., Any],
                           args: Sequence[Any] = ()) -> None:
    """``n`` calls, each awaited before the next starts: latency of one call."""
    for _ in range(n):
        await call(fn, *args)


async def gather_each(call: Call, fn: Callable[[Any], Any],
                      items: Callable[[], Sequence[Any]]) -> None:
    """``fn(item)`` for every item, all in flight at once through ``gather``.

    ``items`` is called at run time, so it may read a fixture made after the
    workload was built (a temporary directory's files, say).
    """
    await asyncio.gather(*[call(fn, item) for item in items()])
