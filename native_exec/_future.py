"""The awaitable that ``to_thread``, ``to_process`` and ``pool.run`` return.

Inside a running loop it is a :class:`NativeFuture` (``native_future.c``):
an ``asyncio.Future`` that is also a coroutine and, like one, starts its call
only when it is awaited or handed to asyncio.  With no running loop yet, it
is the coroutine :func:`deferred_run`.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Tuple, TypeVar

from ._native import NativeFuture

__all__ = ["NativeFuture", "deferred_run"]

_T = TypeVar("_T")


async def deferred_run(runner: Callable[..., Any], func: Callable[..., _T],
                       args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> _T:
    """What ``to_thread``, ``to_process`` and ``pool.run`` return when no
    event loop is running yet.

    ``asyncio.run(to_thread(f))`` evaluates ``to_thread(f)`` before the loop
    exists; like ``asyncio.to_thread``, the call is then scheduled (and the
    context copied) when the coroutine first runs.
    """
    return await runner(func, *args, **kwargs)
