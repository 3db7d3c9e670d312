"""What a dead worker's ``BrokenProcessPool`` says about it.

Python 3.15 gives it a ``__cause__``, a ``_RemoteTraceback`` naming the
process and its exit code (CPython's
``test_traceback_when_child_process_terminates_abruptly``); native_exec's
``WorkerDied`` does so on every version, and carries the pid, exit code and
signal as attributes too."""

from __future__ import annotations

import os
import pickle
import signal
import sys
import traceback
from concurrent.futures.process import BrokenProcessPool, _RemoteTraceback

import pytest

import native_exec
from process_fixtures import (  # noqa: F401  (fixtures)
    WAIT, make_ppool, native_ppool, proc_impl)

pytestmark = pytest.mark.timeout(120)


def kill_myself(sig: int) -> None:
    os.kill(os.getpid(), sig)


def test_the_cause_names_the_exit_code(make_ppool, proc_impl):
    if proc_impl.name == "stdlib" and sys.version_info < (3, 15):
        pytest.skip("the stdlib attaches no cause before 3.15 (the native variant runs)")
    with make_ppool(1) as pool:
        fut = pool.submit(os._exit, 99)
        with pytest.raises(BrokenProcessPool) as info:
            fut.result(timeout=WAIT)
    cause = info.value.__cause__
    assert isinstance(cause, _RemoteTraceback)
    assert "terminated abruptly with exit code 99" in cause.tb


def test_a_printed_traceback_shows_the_details(native_ppool):
    pool = native_ppool(1)
    exc = pool.submit(os._exit, 3).exception(timeout=WAIT)
    printed = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    assert "Process %d terminated abruptly with exit code 3" % exc.pid in printed
    assert "direct cause" in printed


def test_a_signal_is_named_everywhere(native_ppool):
    pool = native_ppool(1)
    exc = pool.submit(kill_myself, signal.SIGTERM).exception(timeout=WAIT)
    assert type(exc) is native_exec.WorkerDied and isinstance(exc, BrokenProcessPool)
    assert (exc.exitcode, exc.signal) == (-signal.SIGTERM, signal.SIGTERM)
    text = "Process %d terminated abruptly with exit code -15" % exc.pid
    for where in (str(exc), exc.__cause__.tb):
        assert text in where and "SIGTERM" in where
    assert pool.submit(abs, -2).result(timeout=WAIT) == 2, "the pool goes on"


def test_the_details_survive_pickling():
    exc = native_exec.WorkerDied(4321, 99 << 8)   # a wait status: exit code 99
    back = pickle.loads(pickle.dumps(exc))
    assert (back.pid, back.exitcode, back.signal) == (4321, 99, None)
    assert str(back) == str(exc)
    assert back.__cause__.tb == exc.__cause__.tb
    assert "Process 4321 terminated abruptly with exit code 99" in back.__cause__.tb
