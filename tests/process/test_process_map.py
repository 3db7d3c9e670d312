"""``Executor.map`` on a process pool, against the stdlib's and native_exec's:
results in order, one chunk to one worker, the failing item, the timeout.
(``buffersize`` and 3.14's rules on both pools: tests/test_map_buffersize.py.)"""

from __future__ import annotations

import concurrent.futures
import os

import pytest

from process_fixtures import (  # noqa: F401  (fixtures)
    Boom, blocked, make_ppool, proc_impl, markers, square)

pytestmark = pytest.mark.timeout(120)


def fail_on(i, bad):
    if i == bad:
        raise Boom("item", i)
    return i * 10


def pid_and_square(i):
    return os.getpid(), i * i


def test_map_results_in_order(make_ppool):
    pool = make_ppool(2)
    assert list(pool.map(pow, range(50), [2] * 50)) == [i ** 2 for i in range(50)]
    assert list(pool.map(square, [])) == []


def test_map_chunksize_runs_each_chunk_in_one_worker(make_ppool):
    pool = make_ppool(2)
    out = list(pool.map(pid_and_square, range(40), chunksize=10))
    assert [sq for _, sq in out] == [i * i for i in range(40)]
    for start in range(0, 40, 10):
        pids = {pid for pid, _ in out[start:start + 10]}
        assert len(pids) == 1, f"chunk at {start} ran in {pids}"
    assert os.getpid() not in {pid for pid, _ in out}


def test_map_raises_at_the_failing_item(make_ppool):
    pool = make_ppool(2)
    it = pool.map(fail_on, range(10), [5] * 10)
    assert [next(it) for _ in range(5)] == [0, 10, 20, 30, 40]
    with pytest.raises(Boom) as info:
        next(it)
    assert info.value.args == ("item", 5)


def test_map_timeout(make_ppool, markers):
    pool = make_ppool(1)
    it = pool.map(blocked, [markers], timeout=0.3)
    with pytest.raises(concurrent.futures.TimeoutError):
        next(it)
