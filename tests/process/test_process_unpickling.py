"""A call that cannot be unpickled in the worker, or a result (or
exception) that cannot be unpickled in the parent.  On both pools the
future fails with a BrokenProcessPool, so code that catches it works
either way; the stdlib's pool then breaks, native_exec's fails only that
future with native_exec.UnpicklingFailed (a BrokenProcessPool) whose
__cause__ is the error unpickling raised, and stays usable."""

from __future__ import annotations

import pickle
import sys
from concurrent.futures.process import BrokenProcessPool

import pytest

import native_exec
from native_exec import UnpicklingFailed
from process_fixtures import WAIT, identity, make_ppool, native_ppool, proc_impl, square  # noqa: F401

pytestmark = pytest.mark.timeout(120)


def raise_unpickling_error():
    raise pickle.UnpicklingError("this object cannot be rebuilt")


def exit_while_loading():
    sys.exit(3)


def raise_value_error():
    raise ValueError("rebuilding failed")


LOADERS = {"error": raise_unpickling_error, "exit": exit_while_loading,
           "value": raise_value_error}
CAUSES = {"error": pickle.UnpicklingError, "exit": SystemExit, "value": ValueError}


class LoadsBadly:
    """Pickles fine; unpickling it calls the loader, which raises."""

    def __init__(self, how):
        self.how = how

    def __reduce__(self):
        return LOADERS[self.how], ()


def make_loads_badly(how):
    return LoadsBadly(how)


class RaisesLoadingBadly(Exception):
    def __reduce__(self):
        return raise_unpickling_error, ()


def raise_one_that_loads_badly():
    raise RaisesLoadingBadly()


@pytest.mark.parametrize("how", list(LOADERS))
def test_a_call_the_worker_cannot_unpickle_is_a_broken_process_pool(make_ppool, how):
    pool = make_ppool(1)
    with pytest.raises(BrokenProcessPool):
        pool.submit(identity, LoadsBadly(how)).result(timeout=WAIT)


@pytest.mark.parametrize("how", list(LOADERS))
def test_a_result_the_parent_cannot_unpickle_is_a_broken_process_pool(make_ppool, how):
    pool = make_ppool(1)
    with pytest.raises(BrokenProcessPool):
        pool.submit(make_loads_badly, how).result(timeout=WAIT)


@pytest.mark.parametrize("how", list(LOADERS))
def test_in_the_worker_only_that_future_fails(native_ppool, how):
    pool = native_ppool(1)
    exc = pool.submit(identity, LoadsBadly(how)).exception(timeout=WAIT)
    assert type(exc) is UnpicklingFailed and isinstance(exc, BrokenProcessPool)
    assert exc.side == "worker"
    assert "worker could not unpickle the call" in str(exc)
    cause = exc.__cause__
    assert type(cause) is CAUSES[how]
    # the cause carries the worker's traceback, as a task's own exceptions do
    assert type(cause.__cause__).__name__ == "_RemoteTraceback"
    assert LOADERS[how].__name__ in str(cause.__cause__)
    assert pool.submit(square, 7).result(timeout=WAIT) == 49
    assert not pool._broken


@pytest.mark.parametrize("how", list(LOADERS))
def test_in_the_parent_only_that_future_fails(native_ppool, how):
    pool = native_ppool(1)
    exc = pool.submit(make_loads_badly, how).exception(timeout=WAIT)
    assert type(exc) is UnpicklingFailed and exc.side == "parent"
    assert "could not unpickle the task's result" in str(exc)
    assert type(exc.__cause__) is CAUSES[how]
    assert pool.submit(square, 8).result(timeout=WAIT) == 64
    exc = pool.submit(raise_one_that_loads_badly).exception(timeout=WAIT)
    assert type(exc) is UnpicklingFailed and exc.side == "parent"
    assert "could not unpickle the task's exception" in str(exc)
    assert type(exc.__cause__) is pickle.UnpicklingError
    assert pool.submit(square, 9).result(timeout=WAIT) == 81
    assert not pool._broken


def test_it_pickles_with_its_cause(native_ppool):
    pool = native_ppool(1)
    exc = pool.submit(identity, LoadsBadly("value")).exception(timeout=WAIT)
    again = pickle.loads(pickle.dumps(exc))
    assert type(again) is UnpicklingFailed and again.side == "worker"
    assert str(again) == str(exc) and type(again.__cause__) is ValueError


def test_it_is_public():
    assert native_exec.UnpicklingFailed is UnpicklingFailed
    assert "UnpicklingFailed" in native_exec.__all__


def _fail_rebuilding():
    raise ValueError("this result cannot be rebuilt")


class RebuildsBadly:
    """Pickles fine in the worker; unpickling it in the parent raises."""

    def __reduce__(self):
        return _fail_rebuilding, ()


def make_rebuilds_badly():
    return RebuildsBadly()


class NeedsTwo(Exception):
    """Pickles as NeedsTwo(a): rebuilding it in the parent raises TypeError."""

    def __init__(self, a, b):
        super().__init__(a)


def raise_needs_two():
    raise NeedsTwo("a", "b")


def test_result_that_cannot_be_rebuilt_fails_that_future_only(native_ppool):
    # (the stdlib's pool breaks when its result thread cannot unpickle)
    pool = native_ppool(1)
    exc = pool.submit(make_rebuilds_badly).exception(timeout=WAIT)
    assert type(exc) is UnpicklingFailed and exc.side == "parent"
    assert type(exc.__cause__) is ValueError and "cannot be rebuilt" in str(exc.__cause__)
    assert pool.submit(square, 8).result(timeout=WAIT) == 64
    exc = pool.submit(raise_needs_two).exception(timeout=WAIT)
    assert type(exc) is UnpicklingFailed and type(exc.__cause__) is TypeError
    assert pool.submit(square, 9).result(timeout=WAIT) == 81
    assert not pool._broken
