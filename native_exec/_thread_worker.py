"""Python-side hooks the thread pool's C workers call as they start and
stop, and in a forked child for the futures the parent's pools held.

A native worker is not a ``threading.Thread``, so ``threading`` would call it
"Dummy-N"; registering a named stand-in makes ``current_thread().name`` give
``f"{prefix}_{i}"`` as the stdlib pool's threads do.  :func:`run_initializer`
also runs the process pool's initializer in its workers.
"""

from __future__ import annotations

import sys
import threading
from concurrent.futures import _base
from typing import Any, Callable, Optional, Tuple


class _WorkerThread(threading._DummyThread):  # type: ignore[name-defined,misc]
    """Stands for a native worker in ``threading``'s table of threads.

    Like the stdlib pool's threads it is not a daemon, and it can be joined:
    ``join()`` returns once the worker has left.
    """

    def __init__(self, name: str) -> None:
        # set before threading can list it (super().__init__ registers it)
        self._left = threading.Event()
        super().__init__()
        self._name = name
        self._daemonic = False

    def is_alive(self) -> bool:
        # in a forked child, threading keeps only the thread that forked
        return (not self._left.is_set()
                and threading._active.get(self._ident) is self)  # type: ignore[attr-defined]

    def join(self, timeout: Optional[float] = None) -> None:
        if self is threading.current_thread():
            raise RuntimeError("cannot join current thread")
        if self.is_alive():
            self._left.wait(timeout)


def enter_worker(name: str, initializer: Optional[Callable[..., Any]],
                 initargs: Tuple[Any, ...]) -> bool:
    """Register the calling worker thread and run the pool's initializer.

    Returns False when the initializer raised, which breaks the pool; the
    exception is logged as ``concurrent.futures`` logs it.
    """
    _WorkerThread(name)
    # as threading.Thread does as it starts: tracers and profilers set with
    # threading.settrace/setprofile (coverage.py's, say) see the tasks
    trace_hook = threading._trace_hook  # type: ignore[attr-defined]
    if trace_hook is not None:
        sys.settrace(trace_hook)
    profile_hook = threading._profile_hook  # type: ignore[attr-defined]
    if profile_hook is not None:
        sys.setprofile(profile_hook)
    return run_initializer(initializer, initargs)


def run_initializer(initializer: Optional[Callable[..., Any]],
                    initargs: Tuple[Any, ...]) -> bool:
    """Run a pool's initializer; False, logged as concurrent.futures logs
    it, if it raised."""
    if initializer is not None:
        try:
            initializer(*initargs)
        except BaseException:
            _base.LOGGER.critical("Exception in initializer:", exc_info=True)
            return False
    return True


def leave_worker() -> None:
    with threading._active_limbo_lock:  # type: ignore[attr-defined]
        thread = threading._active.pop(threading.get_ident(), None)  # type: ignore[attr-defined]
    if isinstance(thread, _WorkerThread):
        thread._left.set()


def settle_inherited(future: Any, exc: Optional[BaseException]) -> None:
    """In a forked child: fail (or, exc None, cancel) a future the parent's
    pool held.  A thread that does not exist here may have held its lock at
    the fork; then it is left as it is rather than wait forever (the stdlib
    pool leaves all of them so)."""
    condition = future._condition
    if future._waiters or not condition.acquire(blocking=False):
        return
    try:
        if future.done():
            return
        if exc is None:
            future.cancel()
        else:
            future.set_exception(exc)
    finally:
        condition.release()
