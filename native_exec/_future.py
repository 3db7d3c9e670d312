"""The awaitable that ``to_thread`` and ``ThreadPoolExecutor.run`` return."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Dict, Tuple, TypeVar

_T = TypeVar("_T")


class NativeFuture(asyncio.Future):  # type: ignore[type-arg]
    """An ``asyncio.Future`` of the running loop that is also a coroutine.

    ``asyncio.gather``, ``wait_for``, ``wait``, ``shield`` and ``await`` take
    it as the future it is, so no ``Task`` is created per call (that Task is
    most of what ``asyncio.to_thread`` costs in a ``gather``).  Because it also
    implements ``send``, ``throw`` and ``close``, ``asyncio.create_task``,
    ``TaskGroup.create_task`` and ``asyncio.run`` accept it where they insist on
    a coroutine: the task then just waits for the future.

    Cancelling it before a worker starts the call means the call never runs;
    once running, the call finishes and its result is discarded, as with
    ``asyncio.to_thread``.
    """

    __slots__ = ()

    # The coroutine protocol, driven by a Task: the first send() yields the
    # future to wait on (itself); once it is done, send() returns its result
    # by raising StopIteration, and throw() re-raises what the Task got.

    def send(self, value: Any) -> "NativeFuture":
        if not self.done():
            self._asyncio_future_blocking = True
            return self
        raise StopIteration(self.result())

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> "NativeFuture":
        if val is None:
            exc = typ() if isinstance(typ, type) else typ
        else:
            exc = val if isinstance(val, BaseException) else typ(val)
        if tb is not None:
            exc = exc.with_traceback(tb)
        self.close()
        raise exc

    def close(self) -> None:
        """Give up on the result: a call not yet started will not run."""
        if not self.done():
            self.cancel()


async def deferred_run(runner: Callable[..., Any], func: Callable[..., _T],
                       args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> _T:
    """What ``to_thread``, ``to_process`` and ``pool.run`` return when no
    event loop is running yet.

    ``asyncio.run(to_thread(f))`` evaluates ``to_thread(f)`` before the loop
    exists; like ``asyncio.to_thread``, the call is then scheduled (and the
    context copied) when the coroutine first runs.
    """
    return await runner(func, *args, **kwargs)
