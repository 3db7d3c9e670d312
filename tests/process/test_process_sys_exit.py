"""sys.exit() in a task, on both pools: the future fails with the
SystemExit (its code kept, the worker's traceback as __cause__, as the
stdlib sends every exception back), and the worker goes on serving.  A
worker that really ends (os._exit) still fails its task with WorkerDied."""

from __future__ import annotations

import os
import sys
from concurrent.futures.process import BrokenProcessPool

import pytest

from native_exec import WorkerDied
from process_fixtures import WAIT, getpid, make_ppool, native_ppool, proc_impl  # noqa: F401

pytestmark = pytest.mark.timeout(120)


def exit_with(code):
    sys.exit(code)


def interrupt():
    raise KeyboardInterrupt("from the task")


@pytest.mark.parametrize("code", [4, None, "a message"])
def test_sys_exit_comes_back_as_the_futures_exception(make_ppool, code):
    pool = make_ppool(1)
    before = pool.submit(getpid).result(timeout=WAIT)
    exc = pool.submit(exit_with, code).exception(timeout=WAIT)
    assert type(exc) is SystemExit and exc.code == code
    # the worker's traceback, as for any exception a task raises
    cause = exc.__cause__
    assert type(cause).__name__ == "_RemoteTraceback"
    assert "exit_with" in str(cause) and "sys.exit(code)" in str(cause)
    # the worker lives on: the pool and the same process serve the next call
    assert pool.submit(getpid).result(timeout=WAIT) == before


def test_keyboard_interrupt_in_a_task_comes_back_too(make_ppool):
    pool = make_ppool(1)
    before = pool.submit(getpid).result(timeout=WAIT)
    exc = pool.submit(interrupt).exception(timeout=WAIT)
    assert type(exc) is KeyboardInterrupt and exc.args == ("from the task",)
    assert pool.submit(getpid).result(timeout=WAIT) == before


def test_os_exit_still_ends_the_worker(native_ppool):
    pool = native_ppool(1)
    before = pool.submit(getpid).result(timeout=WAIT)
    exc = pool.submit(os._exit, 3).exception(timeout=WAIT)
    assert type(exc) is WorkerDied and isinstance(exc, BrokenProcessPool)
    assert exc.pid == before and exc.exitcode == 3
    assert pool.submit(getpid).result(timeout=WAIT) != before
