"""The at-fork and at-exit hooks that serve both pools, thread and process,
registered once as ``native_exec`` is imported (by ``_thread``)."""

from __future__ import annotations

import os
import threading

from . import _native


def register_hooks() -> None:
    # The pools' own locks are handled by pthread_atfork handlers in C;
    # this completes, with the GIL, the futures the parent's workers held.
    os.register_at_fork(after_in_child=_native._after_fork_child)
    # Runs before threading joins its threads, as concurrent.futures' own
    # exit hook: submitted work finishes, then workers leave cleanly before
    # the interpreter is finalised.
    threading._register_atexit(_native._shutdown_all)  # type: ignore[attr-defined]
