"""Calls and results that cannot be pickled fail their own future only, on
the stdlib's process pool and on native_exec's (which sends lambdas and
local functions by value instead: tests/process/test_process_by_value.py)."""

from __future__ import annotations

import pickle
import threading

import pytest

from process_fixtures import (  # noqa: F401  (fixtures)
    WAIT, identity, make_ppool, proc_impl, square)

pytestmark = pytest.mark.timeout(120)


def return_lock():
    return threading.Lock()


@pytest.mark.parametrize("what", ["lambda-arg", "lock-arg", "lambda-fn", "local-fn"])
def test_unpicklable_call_fails_that_future_only(make_ppool, proc_impl, what):
    pool = make_ppool(2)

    def local():
        return 1

    fn, args = {
        "lambda-arg": (identity, (lambda: 1,)),
        "lock-arg": (identity, (threading.Lock(),)),
        "lambda-fn": (lambda: 1, ()),
        "local-fn": (local, ()),
    }[what]
    before = pool.submit(square, 2)
    fut = pool.submit(fn, *args)
    exc = fut.exception(timeout=WAIT)
    if proc_impl.name == "native" and what != "lock-arg":
        # native_exec sends these by value (cloudpickle), as loky does
        assert exc is None, repr(exc)
        result = fut.result()
        assert result() == 1 if what == "lambda-arg" else result == 1
    else:
        assert isinstance(exc, (pickle.PicklingError, TypeError, AttributeError)), repr(exc)
        assert "pickle" in str(exc).lower() or "local object" in str(exc), str(exc)
    assert before.result(timeout=WAIT) == 4
    assert [f.result(timeout=WAIT) for f in [pool.submit(square, i) for i in range(10)]] \
        == [i * i for i in range(10)]


def test_unpicklable_result_fails_that_future_only(make_ppool):
    pool = make_ppool(1)
    exc = pool.submit(return_lock).exception(timeout=WAIT)
    with pytest.raises(Exception) as here:
        pickle.dumps(return_lock())
    assert type(exc) is type(here.value), repr(exc)     # pickle's own error
    assert "pickle" in str(exc).lower()
    assert pool.submit(square, 7).result(timeout=WAIT) == 49
