"""``ProcessPoolExecutor``: the stdlib class's interface on fork and shared memory."""

from __future__ import annotations

import multiprocessing
import signal
from concurrent.futures import Future
from concurrent.futures import process as _stdlib_process
from typing import Any, Callable, Iterable, Iterator, Optional, TypeVar

from . import _map, _native, _serialize
from ._future import NativeFuture
from ._stats import PoolStats
from ._process_future import default_max_workers

_T = TypeVar("_T")

# The stdlib's operation names (3.14: concurrent.futures.process._TERMINATE
# and _KILL), on every version.
_TERMINATE = getattr(_stdlib_process, "_TERMINATE", "terminate")
_KILL = getattr(_stdlib_process, "_KILL", "kill")
_FORCE_SHUTDOWN_SIGNALS = {_TERMINATE: signal.SIGTERM, _KILL: signal.SIGKILL}


class ProcessPoolExecutor(_stdlib_process.ProcessPoolExecutor):
    """A drop-in ``concurrent.futures.ProcessPoolExecutor`` built on ``fork()``.

    Creating the pool forks a small single-threaded *zygote*, which forks the
    workers on demand, so no worker inherits a lock held by one of the
    caller's threads.  Calls and results travel through shared memory
    (pickle protocol 5; large buffers beside the pickle), never a pipe.

    What pickle cannot send by reference (lambdas, closures, local classes,
    and functions or classes of ``__main__`` defined after the pool was
    created, which its workers never saw) goes by value with
    ``cloudpickle``, as with loky; everything else by reference, as with
    the stdlib.  A worker that dies fails only the task it was running (with
    :class:`native_exec.WorkerDied`) and is replaced.

    ``mp_context`` may be None or any ``multiprocessing`` context: whatever
    its start method, workers are forked from the zygote, which gives what
    ``forkserver`` promises (no inherited threads or locks) but with the
    program's state as it was when the pool was created (see the README).
    ``max_tasks_per_child`` works with every context.

    Beyond the stdlib, as pebble offers:

    - ``task_timeout`` (seconds): a call still running that long after a
      worker took it has that worker stopped (SIGTERM, then SIGKILL one
      second later if it is still there) and fails with
      :class:`native_exec.TaskTimeout`, a ``TimeoutError``; the worker is
      replaced.  Time spent queued does not count.
    - ``cancel_running``: ``future.cancel()`` on a call a worker is running
      stops that worker the same way and the future becomes cancelled,
      where the stdlib's ``cancel()`` returns False.  Cancelling the
      awaitable of ``pool.run()`` does the same, so ``asyncio.wait_for`` and
      task-group cancellation stop the work, not just the waiting.

    Other tasks, and the rest of the pool, are untouched by either, as by
    any worker's death.

    - ``max_memory_per_child`` (bytes), as loky and billiard offer: a worker
      whose resident set is larger than that after a call leaves before its
      next one and is replaced.  Works with ``max_tasks_per_child``.
    """

    def __init__(self, max_workers: Optional[int] = None, mp_context: Any = None,
                 initializer: Optional[Callable[..., object]] = None,
                 initargs: Iterable[Any] = (), *,
                 max_tasks_per_child: Optional[int] = None,
                 task_timeout: Optional[float] = None,
                 cancel_running: bool = False,
                 max_memory_per_child: Optional[int] = None) -> None:
        if max_workers is None:
            max_workers = default_max_workers()
        elif max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        if mp_context is not None and not callable(getattr(mp_context, "get_start_method", None)):
            raise TypeError("mp_context must be None or a multiprocessing context, not %r"
                            % type(mp_context).__name__)
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        if max_tasks_per_child is not None:
            if not isinstance(max_tasks_per_child, int):
                raise TypeError("max_tasks_per_child must be an integer")
            if max_tasks_per_child <= 0:
                raise ValueError("max_tasks_per_child must be >= 1")
        if task_timeout is not None:
            if isinstance(task_timeout, bool) or not isinstance(task_timeout, (int, float)):
                raise TypeError("task_timeout must be None or a number of seconds, not %r"
                                % type(task_timeout).__name__)
            if not task_timeout > 0 or task_timeout == float("inf"):
                raise ValueError("task_timeout must be None or a number of seconds > 0")
        if max_memory_per_child is not None:
            if isinstance(max_memory_per_child, bool) or not isinstance(max_memory_per_child, int):
                raise TypeError("max_memory_per_child must be None or a number of bytes, not %r"
                                % type(max_memory_per_child).__name__)
            if not 0 < max_memory_per_child < 1 << 63:
                raise ValueError("max_memory_per_child must be None or a number of bytes > 0")
        self._max_workers = max_workers
        if mp_context is None:
            # what the stdlib would pick, for code that inspects it; the
            # workers are forked from the zygote whatever it says
            mp_context = multiprocessing.get_context(
                "spawn" if max_tasks_per_child is not None else None)
        self._mp_context = mp_context
        self._initializer = initializer
        # the stdlib only unpacks initargs to call the initializer
        self._initargs = tuple(initargs) if initializer is not None else ()
        self._max_tasks_per_child = max_tasks_per_child
        self._task_timeout = task_timeout
        self._cancel_running = bool(cancel_running)
        self._max_memory_per_child = max_memory_per_child
        _serialize.note_pool_forking()
        self._pool = _native.ProcessPool(max_workers, initializer, self._initargs,
                                         max_tasks_per_child or 0, float(task_timeout or 0),
                                         self._cancel_running, max_memory_per_child or 0)

    def submit(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> "Future[_T]":
        """Run ``fn(*args, **kwargs)`` in a worker; return a ``concurrent.futures.Future``.

        If the call cannot be pickled, neither by reference nor by value
        (cloudpickle), the future fails with pickle's error, as with the
        stdlib.
        """
        return self._pool.submit(fn, *args, **kwargs)

    def run(self, func: Callable[..., _T], /, *args: Any, **kwargs: Any) -> NativeFuture:
        """``await pool.run(f, x)``: ``f(x)`` in a worker, awaited from asyncio."""
        return self._pool.run(func, *args, **kwargs)

    def map(self, fn: Callable[..., _T], *iterables: Iterable[Any],
            timeout: Optional[float] = None, chunksize: int = 1,
            buffersize: Optional[int] = None) -> Iterator[_T]:
        """``map(fn, *iterables)`` in the workers, with 3.14's ``buffersize``.

        3.14's ``ProcessPoolExecutor.map`` on every Python, not the running
        stdlib's, so that ``buffersize`` works on 3.10 as well and the pool
        behaves the same everywhere.  Each task is a chunk of ``chunksize``
        calls, pickled as the stdlib pickles it, so that one round trip
        carries many small calls; ``buffersize`` counts chunks.
        """
        return _map.map_chunks(self, fn, iterables, timeout, chunksize, buffersize)

    def terminate_workers(self) -> None:
        """Stop the pool now: ``shutdown(wait=False, cancel_futures=True)``,
        then SIGTERM to every worker, and SIGKILL to any still alive a second
        later.  The calls they were running fail with :class:`WorkerDied`
        naming the signal; no worker or zygote is left.  Safe to call twice,
        after ``shutdown``, or before any worker started.
        """
        self._force_shutdown(operation=_TERMINATE)

    def kill_workers(self) -> None:
        """As :meth:`terminate_workers`, with SIGKILL at once."""
        self._force_shutdown(operation=_KILL)

    def _force_shutdown(self, operation: str) -> None:
        # The stdlib's name and contract (3.14), which its tests mock.
        if operation not in _FORCE_SHUTDOWN_SIGNALS:
            raise ValueError(f"Unsupported operation: {operation!r}")
        self._pool.force_shutdown(_FORCE_SHUTDOWN_SIGNALS[operation])

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Refuse new work; with ``wait``, return when every task has finished
        and the worker processes and the zygote have exited.

        ``cancel_futures`` cancels the tasks no worker has been handed: a
        worker that was started, woken or is free for a task still runs it
        (so a burst followed at once by this runs ``min(max_workers,
        calls)`` of them), as the stdlib runs the calls it has handed to
        its workers' queue.
        """
        self._pool.shutdown(wait, cancel_futures=cancel_futures)

    @property
    def _broken(self) -> Any:  # type: ignore[override]
        return self._pool.stats()["broken"] or False

    def stats(self) -> PoolStats:
        """A snapshot of what the pool has done and is doing: see
        :class:`native_exec.PoolStats`."""
        return PoolStats(**self._pool.counts())

    def _stats(self) -> dict:
        return self._pool.stats()

    def __del__(self) -> None:
        pool = self.__dict__.get("_pool")
        if pool is not None:
            pool.shutdown(False)
