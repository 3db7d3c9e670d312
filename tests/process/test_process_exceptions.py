"""Exceptions raised by tasks on a process pool, against the stdlib's and
native_exec's: type, args and the remote traceback, chained causes, an
unpicklable exception failing its future, and a pool that goes on."""

from __future__ import annotations

import pickle
import threading
from concurrent.futures.process import _ExceptionWithTraceback

import pytest

from process_fixtures import Boom, raise_boom, WAIT, make_ppool, proc_impl, square  # noqa: F401  (fixtures)

pytestmark = pytest.mark.timeout(120)


def raise_chained():
    try:
        {}["missing-key"]
    except KeyError as exc:
        raise ValueError("while handling it") from exc


def fail_on(i, bad):
    if i == bad:
        raise Boom("item", i)
    return i * 10


class UnpicklableError(Exception):
    def __init__(self):
        super().__init__("holds a lock")
        self.lock = threading.Lock()


def raise_unpicklable():
    raise UnpicklableError()


def test_exception_type_args_and_remote_traceback(make_ppool):
    pool = make_ppool(1)
    fut = pool.submit(raise_boom, "bad thing", 42)
    with pytest.raises(Boom) as info:
        fut.result(timeout=WAIT)
    exc = info.value
    assert type(exc) is Boom and exc.args == ("bad thing", 42)
    assert isinstance(fut.exception(), Boom)
    cause = exc.__cause__
    assert cause is not None and type(cause).__name__ == "_RemoteTraceback"
    text = str(cause)
    assert "Traceback (most recent call last)" in text
    assert "raise_boom" in text and "raise Boom(message, code)" in text
    assert "Boom: ('bad thing', 42)" in text


def test_builtin_exception_and_chained_cause_text(make_ppool):
    pool = make_ppool(1)
    exc = pool.submit(raise_chained).exception(timeout=WAIT)
    assert type(exc) is ValueError and exc.args == ("while handling it",)
    text = str(exc.__cause__)
    assert "KeyError: 'missing-key'" in text and "raise_chained" in text
    assert pool.submit(int, "x").exception(timeout=WAIT).__class__ is ValueError


def test_exceptions_do_not_hurt_the_pool(make_ppool):
    pool = make_ppool(2)
    futs = [pool.submit(fail_on, i, bad=i if i % 3 == 0 else -1) for i in range(60)]
    for i, f in enumerate(futs):
        if i % 3 == 0:
            assert isinstance(f.exception(timeout=WAIT), Boom)
        else:
            assert f.result(timeout=WAIT) == i * 10
    assert pool.submit(square, 9).result(timeout=WAIT) == 81


def test_unpicklable_exception_fails_that_future(make_ppool):
    pool = make_ppool(1)
    exc = pool.submit(raise_unpicklable).exception(timeout=WAIT)
    with pytest.raises(Exception) as here:
        pickle.dumps(_ExceptionWithTraceback(UnpicklableError(), None))
    assert type(exc) is type(here.value), repr(exc)     # pickle's own error
    assert "pickle" in str(exc).lower()
    assert pool.submit(square, 5).result(timeout=WAIT) == 25
