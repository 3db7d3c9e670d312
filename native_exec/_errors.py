"""The process pool's exceptions: :class:`WorkerDied`, :class:`TaskTimeout`
and :class:`UnpicklingFailed` (public, re-exported by ``native_exec``), and
what rebuilds an ``UnpicklingFailed`` sent from a worker.  Pickled by
reference between the parent and its workers, so found by this module's
path."""

from __future__ import annotations

import os
import signal
import traceback
from concurrent.futures.process import BrokenProcessPool, _RemoteTraceback
from typing import Any, Optional, Tuple


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


class TaskTimeout(TimeoutError):
    """This task was still running ``timeout`` seconds after a worker took
    it (the pool's ``task_timeout``): its worker process, ``pid``, was
    stopped (SIGTERM, then SIGKILL one second later) and replaced.

    Only this task fails; the rest of the pool carries on.  A subclass of
    the builtin ``TimeoutError``, so ``except TimeoutError`` catches it as
    it catches ``concurrent.futures.TimeoutError`` on 3.11+.
    """

    def __init__(self, timeout: float, pid: int) -> None:
        self.timeout = timeout
        self.pid = pid
        super().__init__("the call was still running after task_timeout=%gs; its worker "
                         "process %d was stopped" % (timeout, pid))

    def __reduce__(self) -> Tuple[Any, ...]:
        return type(self), (self.timeout, self.pid)


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
