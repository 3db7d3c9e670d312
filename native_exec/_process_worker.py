"""What runs in the process pool's worker processes and its zygote: the
stdlib fork worker's steps as a worker starts (:func:`enter_worker`) and
leaves (:func:`leave_process`), and what a worker sends back in place of a
call it could not unpickle or an outcome it could not pickle.

The C module holds this module as ``process_worker`` and calls these
hooks by name.  Imported by the C module as it initialises, so it must not
import native_exec._native at module level."""

from __future__ import annotations

import sys
import threading
import traceback
from concurrent.futures.process import _ExceptionWithTraceback
from typing import Any, Callable, Optional, Tuple

from ._errors import UnpicklingFailed
from ._thread_worker import run_initializer


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
