"""The futures a ThreadPoolExecutor returns work with concurrent.futures.wait
and as_completed; which call finishes when is decided by gates."""

from __future__ import annotations

import concurrent.futures as cf

import pytest

from conftest import WAIT


class Boom(Exception):
    pass


def fail():
    raise Boom("x")


def test_wait_all_completed(make_pool):
    pool = make_pool(3)
    futs = [pool.submit(pow, i, 2) for i in range(10)]
    done, not_done = cf.wait(futs, timeout=WAIT)
    assert done == set(futs) and not_done == set()
    assert [f.result() for f in futs] == [i * i for i in range(10)]


def test_wait_first_completed(make_pool, gate):
    pool = make_pool(2)
    slow = pool.submit(gate.block, "slow")
    gate.wait_started(1)
    fast = pool.submit(abs, -1)
    done, not_done = cf.wait([slow, fast], timeout=WAIT, return_when=cf.FIRST_COMPLETED)
    assert (done, not_done) == ({fast}, {slow})
    gate.open()
    assert slow.result(timeout=WAIT) == "slow"


def test_wait_first_exception(make_pool, gate):
    pool = make_pool(3)
    slow = pool.submit(gate.block, "slow")
    gate.wait_started(1)
    ok = pool.submit(abs, -1)
    ok.result(timeout=WAIT)
    bad = pool.submit(fail)
    done, not_done = cf.wait([slow, ok, bad], timeout=WAIT,
                             return_when=cf.FIRST_EXCEPTION)
    assert (done, not_done) == ({ok, bad}, {slow})
    gate.open()


def test_wait_timeout(make_pool, gate):
    pool = make_pool(1)
    slow = pool.submit(gate.block, "slow")
    done, not_done = cf.wait([slow], timeout=0.05)
    assert (done, not_done) == (set(), {slow})
    gate.open()
    assert slow.result(timeout=WAIT) == "slow"


def test_as_completed_in_completion_order(make_pool, make_gate):
    pool = make_pool(4)
    order = [3, 1, 0, 2]
    gates = [make_gate() for _ in order]
    futs = [pool.submit(g.block, i) for i, g in enumerate(gates)]
    for g in gates:
        g.wait_started(1)
    iterator = cf.as_completed(futs, timeout=WAIT)
    seen = []
    for i in order:
        gates[i].open()
        seen.append(next(iterator).result())
    assert seen == order
    with pytest.raises(StopIteration):
        next(iterator)


def test_as_completed_timeout(make_pool, gate):
    pool = make_pool(2)
    futs = [pool.submit(abs, -1), pool.submit(gate.block, "late")]
    got = []
    with pytest.raises(cf.TimeoutError):
        for fut in cf.as_completed(futs, timeout=0.2):
            got.append(fut.result())
    assert got == [1]
    gate.open()


def test_as_completed_with_exceptions(make_pool):
    pool = make_pool(2)
    futs = [pool.submit(fail), pool.submit(abs, -2)]
    outcomes = sorted(repr(f.exception() or f.result())
                      for f in cf.as_completed(futs, timeout=WAIT))
    assert outcomes == sorted([repr(Boom("x")), "2"])
