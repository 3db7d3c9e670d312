"""Bad input to ThreadPoolExecutor fails as the stdlib's does: a non-callable
submitted fails its future with TypeError and the pool goes on; max_workers
must be positive; the initializer must be callable; submit needs a function.
"""

from __future__ import annotations

import pytest

from conftest import WAIT


@pytest.mark.parametrize("not_callable", [42, "text", None])
def test_non_callable_fails_its_future_and_the_pool_goes_on(make_pool, not_callable):
    pool = make_pool(1)
    fut = pool.submit(not_callable)
    with pytest.raises(TypeError):
        fut.result(timeout=WAIT)
    assert isinstance(fut.exception(), TypeError)
    assert pool.submit(abs, -3).result(timeout=WAIT) == 3


def test_non_callable_in_map(make_pool):
    with pytest.raises(TypeError):
        list(make_pool(1).map(7, [1, 2]))


@pytest.mark.parametrize("max_workers", [0, -1])
def test_max_workers_must_be_positive(impl, max_workers):
    with pytest.raises(ValueError):
        impl.ThreadPoolExecutor(max_workers)
    with pytest.raises(ValueError):
        impl.ThreadPoolExecutor(max_workers=max_workers)


@pytest.mark.parametrize("initializer", [1, "init", object()])
def test_initializer_must_be_callable(impl, initializer):
    with pytest.raises(TypeError):
        impl.ThreadPoolExecutor(1, initializer=initializer)


def test_submit_without_a_function(make_pool):
    pool = make_pool(1)
    with pytest.raises(TypeError):
        pool.submit()
    assert pool.submit(int).result(timeout=WAIT) == 0


def test_default_max_workers_is_the_stdlibs(impl):
    from conftest import default_max_workers

    pool = impl.ThreadPoolExecutor()
    try:
        assert pool._max_workers == default_max_workers()
    finally:
        pool.shutdown()
