"""The parent's side of the process pool: the future classes its tasks
complete (:class:`ProcessFuture` for ``submit``, :class:`ProcessNativeFuture`
for ``run`` and ``to_process``), the default pool size and the pool behind
``to_process``, and the error a task fails with when its outcome cannot be
unpickled here.  The C module imports this as it initialises, once the
NativeFuture type that ._future takes from it exists; the rest of the
module (ProcessPool) is looked up only when a function runs."""

from __future__ import annotations

import os
from concurrent.futures import Future, _base
from typing import Any

from ._errors import UnpicklingFailed
from ._future import NativeFuture


#: ProcessPool._withdraw: a worker has the task and, with cancel_running,
#: is being stopped.
_STOPPING = 2


class ProcessFuture(Future):  # type: ignore[type-arg]
    """The ``concurrent.futures.Future`` of a process-pool task.

    ``cancel()`` asks the pool first: a task no worker has claimed is
    withdrawn from shared memory and never runs; one a worker holds makes
    ``cancel()`` return False, as for a running stdlib future, and
    ``running()`` return True, unless the pool has ``cancel_running``: then
    that worker is stopped and the future cancelled.
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
        withdrawn = pool._withdraw(self._ne_ticket) if pool is not None else -1
        if withdrawn == 0:
            with self._condition:
                if self._state == _base.PENDING:
                    self._state = _base.RUNNING
            return False
        if withdrawn == _STOPPING:
            # Its worker is being stopped and the pool leaves this future
            # to us: running or not in the stdlib's terms, it cancels.
            with self._condition:
                if self._state == _base.RUNNING:
                    self._state = _base.PENDING
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
    already running finishes in its worker and its result is dropped, or,
    if the pool has ``cancel_running``, its worker is stopped.
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
    from ._serialize import note_pool_forking

    note_pool_forking()
    return ProcessPool(default_max_workers())


def outcome_unpickle_failed(error: BaseException, is_error: bool) -> UnpicklingFailed:
    """In the parent: a result (or exception) that could not be unpickled."""
    return UnpicklingFailed.of(
        "parent", "the task's exception" if is_error else "the task's result", error)
