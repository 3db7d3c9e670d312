"""``ThreadPoolExecutor``: the stdlib class's interface on the native pool."""

from __future__ import annotations

import math
import operator
import os
import weakref
from concurrent.futures import Future
from concurrent.futures import thread as _stdlib_thread
from typing import Any, Callable, Iterable, Iterator, Optional, Tuple, TypeVar

from . import _map, _native
from ._exit_and_fork import register_hooks
from ._stats import PoolStats
from ._future import NativeFuture

_T = TypeVar("_T")

#: The native pool counts its threads in a C int.
_INT_MAX = 2**31 - 1


def default_max_workers() -> int:
    """The stdlib ThreadPoolExecutor default: ``min(32, cpus + 4)``."""
    count = getattr(os, "process_cpu_count", os.cpu_count)()
    return min(32, (count or 1) + 4)


def _thread_limit(max_workers: Any) -> int:
    """How many threads the stdlib would start: one while
    ``len(threads) < max_workers``, so an int's worth, and the ceiling of a
    real number (2.0 gives 2, 2.5 gives 3); infinity is no limit."""
    try:
        limit = operator.index(max_workers)
    except TypeError:
        try:
            limit = math.ceil(max_workers)
        except OverflowError:
            limit = _INT_MAX
    return min(limit, _INT_MAX)


class ThreadPoolExecutor(_stdlib_thread.ThreadPoolExecutor):
    """A drop-in ``concurrent.futures.ThreadPoolExecutor`` on native threads.

    It subclasses the stdlib class, so ``loop.set_default_executor`` accepts
    it (``asyncio.to_thread`` then runs on native workers), and
    ``loop.run_in_executor``, ``concurrent.futures.wait`` and ``as_completed``
    work with the ``concurrent.futures.Future`` that ``submit`` returns.

    ``run(func, *args, **kwargs)`` is the asyncio fast path on this pool: it
    returns an awaitable ``NativeFuture`` bound to the running loop.
    """

    def __init__(self, max_workers: Optional[int] = None, thread_name_prefix: str = "",
                 initializer: Optional[Callable[..., object]] = None,
                 initargs: Iterable[Any] = ()) -> None:
        # The stdlib's checks, in its order and with its errors: whatever
        # compares with 0 is accepted (a float, True), the rest raises the
        # comparison's TypeError.
        if max_workers is None:
            max_workers = default_max_workers()
        if max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        self._max_workers = max_workers
        # Kept as given, as the stdlib keeps it; its threads are named
        # '%s_%d' % (prefix, i), so any object names them by its str().
        self._thread_name_prefix = (thread_name_prefix
                                    or "ThreadPoolExecutor-%d" % self._counter())
        self._initializer = initializer
        # the stdlib only unpacks initargs to call the initializer
        self._initargs = tuple(initargs) if initializer is not None else ()
        self._pool = _native.ThreadPool(_thread_limit(max_workers),
                                        "%s" % (self._thread_name_prefix,),
                                        initializer, self._initargs)

    def submit(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> "Future[_T]":
        """Schedule ``fn(*args, **kwargs)``; return a ``concurrent.futures.Future``."""
        return self._pool.submit(fn, *args, **kwargs)

    def run(self, func: Callable[..., _T], /, *args: Any, **kwargs: Any) -> NativeFuture:
        """``await pool.run(f, x)``: ``asyncio.to_thread(f, x)`` on this pool."""
        return self._pool.run(func, *args, **kwargs)

    def map(self, fn: Callable[..., _T], *iterables: Iterable[Any],
            timeout: Optional[float] = None, chunksize: int = 1,
            buffersize: Optional[int] = None) -> Iterator[_T]:
        """``map(fn, *iterables)`` on the pool, with 3.14's ``buffersize``.

        3.14's ``Executor.map`` on every Python, not the running stdlib's,
        so that ``buffersize`` works on 3.10 as well and the pool behaves
        the same everywhere.  ``chunksize`` is ignored, as by the stdlib's
        thread pool: a call here costs no pickling to amortise.
        """
        return _map.map_calls(self, fn, iterables, timeout, buffersize)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Refuse new work; with ``wait``, return when every worker has exited.

        Queued calls still run unless ``cancel_futures`` is true, in which
        case their futures are cancelled.
        """
        self._pool.shutdown(wait, cancel_futures=cancel_futures)

    # The stdlib class's state attributes, which some code inspects.
    @property
    def _shutdown(self) -> bool:  # type: ignore[override]
        return bool(self._pool.stats()["shutdown"])

    @property
    def _broken(self) -> Any:  # type: ignore[override]
        if self._pool.stats()["broken"]:
            return "A thread initializer failed, the thread pool is not usable anymore"
        return False

    def stats(self) -> PoolStats:
        """A snapshot of what the pool has done and is doing: see
        :class:`native_exec.PoolStats`."""
        return PoolStats(**self._pool.counts())

    def _stats(self) -> dict:
        return self._pool.stats()

    def __del__(self) -> None:
        # As the stdlib pool's workers do when it is collected: finish what
        # was submitted, then exit.
        pool = self.__dict__.get("_pool")
        if pool is not None:
            pool.shutdown(False)


# Loops that do not expose their default executor (uvloop's is private to
# its Cython class): the one to_thread installed in each.
_hidden_defaults: "weakref.WeakKeyDictionary[Any, ThreadPoolExecutor]" = weakref.WeakKeyDictionary()


def loop_default_pool(loop: Any) -> Any:
    """The native pool ``to_thread`` runs on in ``loop``, or None.

    As ``asyncio.to_thread`` does, ``to_thread`` runs on the loop's default
    executor.  When the loop has none, a native one is installed there, as
    ``run_in_executor(None, ...)`` installs a stdlib one, so that
    ``asyncio.run()`` and ``loop.shutdown_default_executor()`` wait for its
    calls and join its threads.  None: the default executor is not native,
    and ``to_thread`` hands the call to ``asyncio.to_thread``.  (The C
    module asks here only when the loop's default executor is not a native
    pool already.)
    """
    try:
        executor = loop._default_executor
        hidden = False
    except AttributeError:
        executor = _hidden_defaults.get(loop)
        hidden = True
    if executor is None:
        if getattr(loop, "_executor_shutdown_called", False):
            raise RuntimeError("Executor shutdown has been called")
        executor = ThreadPoolExecutor(thread_name_prefix="asyncio")
        loop.set_default_executor(executor)
        if hidden:
            _hidden_defaults[loop] = executor
    if isinstance(executor, ThreadPoolExecutor):
        return executor._pool
    return None


# Both pools' at-fork and at-exit hooks; here, once concurrent.futures.thread
# (imported above) has registered its own exit hook.
register_hooks()
