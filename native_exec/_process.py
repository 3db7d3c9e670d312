"""``ProcessPoolExecutor``: the stdlib class's interface on fork and shared memory."""

from __future__ import annotations

from concurrent.futures import Future
from concurrent.futures import process as _stdlib_process
from typing import Any, Callable, Iterable, Optional, TypeVar

from . import _native
from ._future import NativeFuture
from ._process_hooks import default_max_workers

_T = TypeVar("_T")


class ProcessPoolExecutor(_stdlib_process.ProcessPoolExecutor):
    """A drop-in ``concurrent.futures.ProcessPoolExecutor`` built on ``fork()``.

    Creating the pool forks a small single-threaded *zygote*, which forks the
    workers on demand, so no worker inherits a lock held by one of the
    caller's threads.  Calls and results travel through shared memory
    (pickle protocol 5; large buffers beside the pickle), never a pipe.

    Functions must be importable by the workers, as with the stdlib's fork
    context; those in ``__main__`` must be defined before the pool is
    created.  A worker that dies fails only the task it was running (with
    :class:`native_exec.WorkerDied`) and is replaced.

    ``mp_context`` may be None or a ``"fork"`` context.  ``max_tasks_per_child``
    works, unlike with the stdlib's fork context.
    """

    def __init__(self, max_workers: Optional[int] = None, mp_context: Any = None,
                 initializer: Optional[Callable[..., object]] = None,
                 initargs: Iterable[Any] = (), *,
                 max_tasks_per_child: Optional[int] = None) -> None:
        if max_workers is None:
            max_workers = default_max_workers()
        elif max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        if mp_context is not None:
            method = mp_context.get_start_method(allow_none=False)
            if method != "fork":
                raise ValueError(
                    "native_exec.ProcessPoolExecutor forks its workers: mp_context must "
                    "be None or a 'fork' context, not %r" % method)
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        if max_tasks_per_child is not None:
            if not isinstance(max_tasks_per_child, int):
                raise TypeError("max_tasks_per_child must be an integer")
            if max_tasks_per_child <= 0:
                raise ValueError("max_tasks_per_child must be >= 1")
        self._max_workers = max_workers
        self._mp_context = mp_context
        self._initializer = initializer
        # the stdlib only unpacks initargs to call the initializer
        self._initargs = tuple(initargs) if initializer is not None else ()
        self._max_tasks_per_child = max_tasks_per_child
        self._pool = _native.ProcessPool(max_workers, initializer, self._initargs,
                                         max_tasks_per_child or 0)

    def submit(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> "Future[_T]":
        """Run ``fn(*args, **kwargs)`` in a worker; return a ``concurrent.futures.Future``.

        If the call cannot be pickled, the future fails with the pickling
        error, as with the stdlib.
        """
        return self._pool.submit(fn, *args, **kwargs)

    def run(self, func: Callable[..., _T], /, *args: Any, **kwargs: Any) -> NativeFuture:
        """``await pool.run(f, x)``: ``f(x)`` in a worker, awaited from asyncio."""
        return self._pool.run(func, *args, **kwargs)

    # map() is the stdlib's: it submits chunks of `chunksize` calls.

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Refuse new work; with ``wait``, return when every task has finished
        and the worker processes and the zygote have exited.

        ``cancel_futures`` cancels the tasks no worker has started.
        """
        self._pool.shutdown(wait, cancel_futures=cancel_futures)

    @property
    def _broken(self) -> Any:  # type: ignore[override]
        return self._pool.stats()["broken"] or False

    def _stats(self) -> dict:
        return self._pool.stats()

    def __del__(self) -> None:
        pool = self.__dict__.get("_pool")
        if pool is not None:
            pool.shutdown(False)
