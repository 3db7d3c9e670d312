"""What the C process pool calls into: its future classes, WorkerDied, and
the worker-side helpers (initializer, exceptions, exit).  Imported by the C
module as it initialises, so it must not import native_exec._native at
module level."""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
from concurrent.futures import Future, _base
from concurrent.futures.process import (BrokenProcessPool, _ExceptionWithTraceback,
                                        _RemoteTraceback)
from typing import Any, Callable, Optional, Tuple

from ._future import NativeFuture
from ._workers import run_initializer


class WorkerDied(BrokenProcessPool):
    """The worker process running this task died: killed by a signal, or it
    exited (``os._exit``, a crash) before returning.

    Only this task fails; the pool replaces the worker and stays usable.
    ``pid``, ``exitcode`` (negative: the signal number, as
    ``multiprocessing`` reports it) and ``signal`` (a ``signal.Signals`` or
    None) say what happened.  As on Python 3.15, ``__cause__`` is a
    ``concurrent.futures.process._RemoteTraceback`` whose text names the
    process and its exit code, so a printed traceback shows them.
    """

    def __init__(self, pid: int, status: int) -> None:
        self.pid = pid
        self.status = status
        self.signal: Optional[signal.Signals] = None
        if os.WIFSIGNALED(status):
            number = os.WTERMSIG(status)
            try:
                self.signal = signal.Signals(number)
                name = "%d, %s" % (number, self.signal.name)
            except ValueError:
                name = "%d" % number
            self.exitcode = -number
            how = " (killed by signal %s)" % name
        else:
            self.exitcode = os.WEXITSTATUS(status) if os.WIFEXITED(status) else status
            how = ""
        # 3.15's wording for a dead worker, which its tests look for
        details = "Process %d terminated abruptly with exit code %d%s" % (
            pid, self.exitcode, how)
        super().__init__(details + " while running this task")
        self.__cause__ = _RemoteTraceback("\n'''\n%s'''" % details)

    def __reduce__(self) -> Tuple[Any, ...]:
        return type(self), (self.pid, self.status)


class UnpicklingFailed(BrokenProcessPool):
    """This task's call could not be unpickled in the worker (``side ==
    "worker"``), or its result or exception could not be unpickled in the
    parent (``side == "parent"``).  ``__cause__`` is the error unpickling
    raised (``pickle.UnpicklingError``, ``SystemExit``, whatever a
    ``__reduce__``'s callable raised), with the worker's traceback as its own
    ``__cause__`` when it was raised there.

    The stdlib's pool breaks in these cases; native_exec fails only this
    task, and the pool stays usable.  Being a ``BrokenProcessPool``, it is
    caught where the stdlib's would be.
    """

    def __init__(self, message: str, side: str) -> None:
        super().__init__(message)
        self.side = side

    @classmethod
    def of(cls, side: str, what: str, error: BaseException) -> "UnpicklingFailed":
        """The failure of unpickling `what` on `side`, caused by error."""
        where = "a worker" if side == "worker" else "the parent"
        exc = cls("%s could not unpickle %s (%s: %s); only this task failed, the "
                  "process pool is still usable"
                  % (where, what, type(error).__name__, error), side)
        exc.__cause__ = error
        return exc

    def __reduce__(self) -> Tuple[Any, ...]:
        # The cause travels with its traceback as text, which becomes its
        # own __cause__ (a _RemoteTraceback) where it is rebuilt, as the
        # stdlib sends a task's exception back.
        cause, remote = self.__cause__, None
        if cause is not None:
            remote = '\n"""\n%s"""' % "".join(
                traceback.format_exception(type(cause), cause, cause.__traceback__))
        return _rebuild_unpickling_failed, (type(self), self.args[0], self.side, cause, remote)


def _rebuild_unpickling_failed(cls: Any, message: str, side: str,
                               cause: Optional[BaseException],
                               remote: Optional[str]) -> UnpicklingFailed:
    exc = cls(message, side)
    if cause is not None and remote is not None:
        cause.__cause__ = _RemoteTraceback(remote)
    exc.__cause__ = cause
    return exc


class ProcessFuture(Future):  # type: ignore[type-arg]
    """The ``concurrent.futures.Future`` of a process-pool task.

    ``cancel()`` asks the pool first: a task no worker has claimed is
    withdrawn from shared memory and never runs; one a worker holds makes
    ``cancel()`` return False, as for a running stdlib future, and
    ``running()`` return True.
    """

    __slots__ = ("_ne_pool", "_ne_ticket")

    def running(self) -> bool:
        # The stdlib marks a future running when it hands the call to its
        # workers' queue; here a task is running once a worker claims it,
        # the moment cancel() starts returning False.
        if self._state == _base.PENDING:
            pool = getattr(self, "_ne_pool", None)
            if pool is not None and pool._claimed(self._ne_ticket) == 1:
                with self._condition:
                    if self._state == _base.PENDING:
                        self._state = _base.RUNNING
        return super().running()

    def cancel(self) -> bool:
        pool = getattr(self, "_ne_pool", None)
        self._ne_pool = None
        if pool is not None and pool._withdraw(self._ne_ticket) == 0:
            with self._condition:
                if self._state == _base.PENDING:
                    self._state = _base.RUNNING
            return False
        if not super().cancel():
            return False
        # No worker will meet this task to notify its waiters, as the stdlib
        # executor does when it dequeues a cancelled call: do it here, or
        # concurrent.futures.wait() and as_completed() would not see it.
        with self._condition:
            if self._state == _base.CANCELLED:
                self.set_running_or_notify_cancel()
        return True


class ProcessNativeFuture(NativeFuture):
    """The awaitable of ``ProcessPoolExecutor.run`` and ``to_process``.

    Cancelling it withdraws the task if no worker has claimed it yet; a task
    already running finishes in its worker and its result is dropped.
    """

    __slots__ = ("_ne_pool", "_ne_ticket")

    def cancel(self, msg: Any = None) -> bool:
        pool = getattr(self, "_ne_pool", None)
        self._ne_pool = None
        if pool is not None:
            pool._withdraw(self._ne_ticket)
        return super().cancel(msg)


def default_max_workers() -> int:
    """The stdlib ProcessPoolExecutor default: the CPUs this process may use."""
    return getattr(os, "process_cpu_count", os.cpu_count)() or 1


def default_process_pool() -> Any:
    """The pool behind ``native_exec.to_process``, made on its first call."""
    from ._native import ProcessPool

    return ProcessPool(default_max_workers())


# ------------------------------------------------------- in the workers

def _stdlib_runs_atexit() -> bool:
    """Whether the stdlib's fork workers run atexit handlers on this Python:
    from 3.13 (gh-83856) popen_fork clears the inherited ones at fork,
    registers multiprocessing's exit function and runs them all before
    os._exit(); before, a worker runs none.  Read from the running stdlib
    rather than its version, so a backport is followed."""
    from multiprocessing import popen_fork

    return "_run_exitfuncs" in popen_fork.Popen._launch.__code__.co_names


#: Read once, in the parent, at import.
STDLIB_RUNS_ATEXIT = _stdlib_runs_atexit()


def start_process() -> None:
    """In a new worker, before its initializer: what the stdlib's fork
    workers do between fork() and the pool's code (popen_fork's _launch,
    BaseProcess._bootstrap).  The parent's multiprocessing finalizers,
    children and atexit handlers are not the worker's: they would run once
    per worker (and terminate the parent's children); objects registered
    with multiprocessing.util.register_after_fork (queues, managers'
    proxies, ForkAwareLocal) learn that they are in a new process."""
    import atexit
    import itertools
    from multiprocessing import process, util

    if STDLIB_RUNS_ATEXIT:
        atexit._clear()
        atexit.register(util._exit_function)
    process._children = set()  # type: ignore[attr-defined]
    process._process_counter = itertools.count(1)  # type: ignore[attr-defined]
    util._finalizer_registry.clear()  # type: ignore[attr-defined]
    util._run_after_forkers()  # type: ignore[attr-defined]


def leave_process(code: int) -> int:
    """A worker leaving (shut down, max_tasks_per_child, its initializer
    failed): what a stdlib fork worker runs after its loop, on this Python,
    then the caller calls os._exit() with the status returned.

    multiprocessing's finalizers run (util._exit_function: a
    multiprocessing.Queue's feeder thread is flushed and joined, so nothing
    a task put is lost and its lock is not left taken), non-daemon threads
    are joined and threading's exit hooks run (threading._shutdown(), as
    the stdlib's workers run it: native_exec's own hook there only shuts
    down pools this worker made, since the process pools it inherited are
    foreign here and the fork handlers emptied its thread pools), the
    standard streams are flushed, and from 3.13 the atexit handlers
    registered in the worker run, multiprocessing's exit function last."""
    import atexit
    from multiprocessing import util

    def step(fn: Callable[[], Any]) -> None:
        nonlocal code
        try:
            fn()
        except BaseException:
            # as _bootstrap reports what escapes a process's run()
            traceback.print_exc()
            code = code or 1

    if not STDLIB_RUNS_ATEXIT:
        step(util._exit_function)  # type: ignore[attr-defined]
    step(_threading_shutdown)
    step(util._flush_std_streams)  # type: ignore[attr-defined]
    if STDLIB_RUNS_ATEXIT:
        step(atexit._run_exitfuncs)
    flush_std_streams()
    return code


def _threading_shutdown() -> None:
    """threading._shutdown(), as a process leaving runs it: threading's exit
    hooks, then non-daemon threads joined.  A pool made on a thread that
    threading did not start (a native_exec worker, a C library's thread)
    forks its workers from that thread, which threading then takes for
    the main thread although it has none of the main thread's state, and
    _shutdown() fails on some versions: do the same by hand there."""
    main = threading.main_thread()
    if not isinstance(main, threading._DummyThread):  # type: ignore[attr-defined]
        threading._shutdown()  # type: ignore[attr-defined]
        return
    for hook in reversed(threading._threading_atexits):  # type: ignore[attr-defined]
        hook()
    for thread in threading.enumerate():
        if thread is not main and not thread.daemon:
            thread.join()


def enter_worker(initializer: Optional[Callable[..., Any]], initargs: Tuple[Any, ...]) -> bool:
    """Run the pool's initializer; False (and the pool breaks) if it raised."""
    start_process()
    # A pool created inside a running event loop forks with that loop marked
    # running in this thread (3.12+ resets it at fork; older versions not):
    # a task must be free to call asyncio.run().
    import asyncio.events

    asyncio.events._set_running_loop(None)
    return run_initializer(initializer, initargs)


def call_unpickle_failed(error: BaseException) -> Any:
    """In a worker, sent back (as the task's exception) when the call could
    not be unpickled: UnpicklingFailed, error as its cause."""
    import pickle

    cause = error
    try:
        pickle.dumps(error, 5)
    except BaseException:
        cause = RuntimeError("%s: %s (the error could not be pickled either)"
                             % (type(error).__name__, error))
        cause.__traceback__ = error.__traceback__
    return UnpicklingFailed.of("worker", "the call", cause)


def outcome_unpickle_failed(error: BaseException, is_error: bool) -> UnpicklingFailed:
    """In the parent: a result (or exception) that could not be unpickled."""
    return UnpicklingFailed.of(
        "parent", "the task's exception" if is_error else "the task's result", error)


def wrap_exception(exc: BaseException) -> Any:
    """What the parent will raise: exc, with the remote traceback as __cause__."""
    return _ExceptionWithTraceback(exc, exc.__traceback__)


def unpicklable(error: BaseException, value: Any, is_error: bool) -> Any:
    """Sent instead of a result (or exception) that pickle refused: pickle's
    own error, as the stdlib sends it, so handlers written for it match."""
    if hasattr(error, "add_note"):
        error.add_note("(the task's %s could not be pickled)"
                       % ("exception" if is_error else "result"))
    return _ExceptionWithTraceback(error, error.__traceback__)


def last_resort() -> Any:
    return _ExceptionWithTraceback(
        RuntimeError("native_exec: the task's outcome could not be sent back"), None)


def flush_std_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except Exception:
            pass
