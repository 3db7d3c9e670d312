"""ThreadPoolExecutor.map: results in input order, several iterables,
chunksize accepted, exceptions raised at their position, and a timeout that
raises TimeoutError when a call cannot finish in time."""

from __future__ import annotations

import concurrent.futures

import pytest

from conftest import WAIT


class Boom(Exception):
    pass


def square(x):
    return x * x


def test_results_in_input_order(make_pool, make_gate):
    # The first input finishes last; map still yields it first.
    pool = make_pool(3)
    first = make_gate()

    def work(x):
        if x == 0:
            first.block()
        return x * 10

    results = pool.map(work, range(6))
    first.wait_started(1)
    first.open()
    assert list(results) == [0, 10, 20, 30, 40, 50]


def test_several_iterables_stop_at_the_shortest(make_pool):
    assert list(make_pool(2).map(pow, [2, 3, 4], [2, 2, 2, 2])) == [4, 9, 16]


@pytest.mark.parametrize("chunksize", [1, 3, 100])
def test_chunksize(make_pool, chunksize):
    assert list(make_pool(2).map(square, range(20), chunksize=chunksize)) == \
        [x * x for x in range(20)]


def test_empty_input(make_pool):
    assert list(make_pool(2).map(square, [])) == []


def test_exception_is_raised_at_its_position(make_pool):
    def f(x):
        if x == 3:
            raise Boom(x)
        return x

    results = make_pool(2).map(f, range(6))
    assert [next(results) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(Boom):
        next(results)


def test_timeout_raises_timeout_error(make_pool, gate):
    pool = make_pool(2)
    results = pool.map(gate.block, ["a", "b"], timeout=0.05)
    with pytest.raises(concurrent.futures.TimeoutError):
        list(results)
    assert gate.finished == 0  # nothing could have finished
    gate.open()
    assert pool.submit(square, 3).result(timeout=WAIT) == 9


def test_timeout_only_counts_when_calls_are_late(make_pool):
    assert list(make_pool(2).map(square, range(5), timeout=WAIT)) == [0, 1, 4, 9, 16]


def test_calls_are_submitted_at_once(make_pool, gate):
    # map submits every call before the first result is asked for.
    pool = make_pool(3)
    results = pool.map(gate.block, range(3))
    gate.wait_started(3)
    gate.open()
    assert list(results) == [0, 1, 2]
