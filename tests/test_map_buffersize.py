"""``Executor.map`` as Python 3.14 defines it, ``buffersize`` included, on both
pools: validation at the call and in 3.14's order, a bounded look-ahead over
infinite input (chunks of ``chunksize`` calls on a process pool), results in
order, a timeout counted from the call, the rest cancelled when the iterator
ends early, and what happens when the pool is collected or shut down while an
iterator is alive.

Each test runs on four pools (the ``kind`` fixture): the stdlib's thread and
process pools, which define what correct means, and native_exec's.  Where
this Python's stdlib has no ``buffersize`` (before 3.14) its variants are
skipped; native_exec's run on every version.  Everything is asserted by
structure: how many items were taken from the input, how many tasks were
submitted or started, which futures were cancelled.  Calls that must not
finish yet wait at a file gate (``blocked``), which works in a thread as in
a worker process and is opened when the test ends.
"""

from __future__ import annotations

import concurrent.futures
import functools
import gc
import inspect
import itertools
import threading
import time
import weakref
from concurrent.futures.process import _process_chunk

import pytest

from conftest import IMPLS
from process_fixtures import (  # noqa: F401  (fixtures)
    PROC_IMPLS, WAIT, PoolFactory, blocked, bounded_shutdown, markers, open_gate,
    square, started_count, wait_started)

pytestmark = pytest.mark.timeout(120)

STDLIB_HAS_BUFFERSIZE = "buffersize" in inspect.signature(
    concurrent.futures.Executor.map).parameters


# ------------------------------------------------ what the pools run
# (module-level, so that a worker process finds them by name)

class Boom(Exception):
    pass


def echo(x):
    return x


def join3(a, b, c):
    return f"{a}{b}{c}"


def hold_at(x, which, marker_dir):
    """x, once the gate is open if x is ``which``."""
    if x == which:
        blocked(marker_dir)
    return x


def hold_from(x, first, marker_dir):
    """x, once the gate is open if x >= ``first``."""
    if x >= first:
        blocked(marker_dir)
    return x


def fail_at(x, bad, marker_dir):
    """x below ``bad``; Boom at ``bad``; above it, x once the gate is open."""
    if x == bad:
        raise Boom(x)
    if x > bad:
        blocked(marker_dir)
    return x


# ------------------------------------------------------------ helpers

class Counted:
    """An iterator that counts the items taken from it."""

    def __init__(self, iterable):
        self._it = iter(iterable)
        self.taken = 0

    def __iter__(self):
        return self

    def __next__(self):
        item = next(self._it)
        self.taken += 1
        return item


def record_submits(pool):
    """Every (fn, args, future) the pool is asked to submit from now on
    (map calls ``self.submit``, which this instance attribute shadows)."""
    calls = []
    submit = pool.submit

    def recording(fn, *args, **kwargs):
        future = submit(fn, *args, **kwargs)
        calls.append((fn, args, future))
        return future

    pool.submit = recording
    return calls


def futures_of(calls):
    return [future for _, _, future in calls]


def error_of(thunk):
    """(type, message) of what thunk raises: for messages that vary with
    the Python version."""
    try:
        thunk()
    except Exception as exc:
        return type(exc), str(exc)
    raise AssertionError("did not raise")


class Clock:
    """time.monotonic, plus an offset the test moves forward, in the test's
    thread only: map reads its deadline there, and the calls that wait at
    a gate in worker threads keep their own timeout on the real clock."""

    def __init__(self):
        self.real = time.monotonic
        self.offset = 0.0
        self.thread = threading.get_ident()

    def __call__(self):
        if threading.get_ident() == self.thread:
            return self.real() + self.offset
        return self.real()


# --------------------------------------------------------- the four pools

class Kind:
    """A thread or process pool, the stdlib's or native_exec's."""

    def __init__(self, name):
        self.name = name
        self.pool, self.impl = name.split("-")
        self.processes = self.pool == "process"
        self.stdlib = self.impl == "stdlib"
        # The stdlib process pool marks a future running once it hands the
        # call to its workers' queue (up to max_workers + 1 ahead), after
        # which cancel() fails: it cancels fewer of the futures it buffered.
        self.cancels_every_waiting_call = not (self.processes and self.stdlib)

    def __repr__(self):
        return self.name

    def new(self, max_workers):
        if self.processes:
            return PROC_IMPLS[self.impl].make(max_workers)
        return IMPLS[self.impl].ThreadPoolExecutor(max_workers)

    def calls_per_task(self, chunksize):
        # a thread pool ignores chunksize, as the stdlib's does
        return chunksize if self.processes else 1


def skip_without_buffersize(kind):
    if kind.stdlib and not STDLIB_HAS_BUFFERSIZE:
        pytest.skip("this Python's stdlib Executor.map has no buffersize (3.14+)")


@pytest.fixture(params=["thread-stdlib", "thread-native",
                        "process-stdlib", "process-native"])
def kind(request):
    return Kind(request.param)


@pytest.fixture
def make_any_pool(kind):
    """``make(max_workers)``: a pool of this kind, shut down when the test ends."""
    processes = PoolFactory(PROC_IMPLS[kind.impl]) if kind.processes else None
    threads = []

    def make(max_workers):
        if processes is not None:
            return processes(max_workers)
        pool = kind.new(max_workers)
        threads.append(pool)
        return pool

    yield make
    if processes is not None:
        processes.close()
    for pool in threads:
        pool.shutdown(wait=False, cancel_futures=True)


@pytest.fixture
def make_pool_314(kind, make_any_pool):
    """make_any_pool, for a test of what only 3.14's map does (buffersize)."""
    skip_without_buffersize(kind)
    return make_any_pool


@pytest.fixture
def make_unowned_pool(kind):
    """``make(max_workers)``: a pool nothing else refers to, so that the test
    can drop it; one still alive when the test ends is shut down."""
    skip_without_buffersize(kind)
    refs = []

    def make(max_workers):
        pool = kind.new(max_workers)
        refs.append(weakref.ref(pool))
        return pool

    yield make
    alive = [pool for pool in (ref() for ref in refs) if pool is not None]
    problems = [p for p in map(bounded_shutdown, alive) if p is not None]
    if problems:
        pytest.fail("; ".join(problems))


@pytest.fixture
def clock(monkeypatch):
    """The clock map reads its deadline from (concurrent.futures and
    native_exec both call time.monotonic), with a settable offset."""
    c = Clock()
    monkeypatch.setattr(time, "monotonic", c)
    return c


def next_past_the_deadline(results, marker_dir):
    """next(results), with the gate the pending call waits at opened after
    WAIT seconds should next() wait for it instead of timing out: a late
    deadline then shows as a result rather than as a hang."""
    safety = threading.Timer(WAIT, open_gate, (marker_dir,))
    safety.start()
    try:
        return next(results)
    finally:
        safety.cancel()


def check_rest_cancelled(futures, ran):
    """After an iterator ended early: every future ends, those after some
    point were cancelled (the last one at least) and never ran, and every
    one before it ran.  Returns how many ran."""
    _, not_done = concurrent.futures.wait(futures, timeout=WAIT)
    assert not not_done
    cancelled = [f.cancelled() for f in futures]
    assert True in cancelled, "nothing was cancelled"
    first = cancelled.index(True)
    assert cancelled == [False] * first + [True] * (len(futures) - first)
    assert ran() == first
    return first


# --------------------------------------------------------------- validation

BUFFERSIZE_TYPE = (TypeError, "buffersize must be an integer or None")
BUFFERSIZE_VALUE = (ValueError, "buffersize must be None or > 0")
CHUNKSIZE_VALUE = (ValueError, "chunksize must be >= 1.")
NOT_ITERABLE = error_of(lambda: zip(5))
BAD_TIMEOUT = error_of(lambda: "x" + time.monotonic())
CHUNKSIZE_NOT_COMPARABLE = error_of(lambda: "a" < 1)
CHUNKSIZE_NOT_INDEX = (TypeError, "'float' object cannot be interpreted as an integer")
CHUNKSIZE_OVERFLOW = (OverflowError, "Python int too large to convert to C ssize_t")

# (map's keyword arguments, its iterable, what a thread pool raises, what a
# process pool raises); None: the call is accepted.  3.14 checks, on a
# thread pool: buffersize's type, its value, then timeout (end_time =
# timeout + now), then the iterables (zip); on a process pool: chunksize's
# value, the iterables (zip), chunksize's type (batched), then as a thread
# pool.  A thread pool ignores chunksize.
VALIDATION = {
    "buffersize-str": (dict(buffersize="2"), [1], BUFFERSIZE_TYPE, BUFFERSIZE_TYPE),
    "buffersize-float": (dict(buffersize=2.0), [1], BUFFERSIZE_TYPE, BUFFERSIZE_TYPE),
    "buffersize-list": (dict(buffersize=[2]), [1], BUFFERSIZE_TYPE, BUFFERSIZE_TYPE),
    "buffersize-zero": (dict(buffersize=0), [1], BUFFERSIZE_VALUE, BUFFERSIZE_VALUE),
    "buffersize-negative": (dict(buffersize=-1), [1], BUFFERSIZE_VALUE, BUFFERSIZE_VALUE),
    "buffersize-False": (dict(buffersize=False), [1], BUFFERSIZE_VALUE, BUFFERSIZE_VALUE),
    "buffersize-value-before-timeout": (
        dict(buffersize=0, timeout="x"), [1], BUFFERSIZE_VALUE, BUFFERSIZE_VALUE),
    "timeout-after-buffersize": (
        dict(buffersize=1, timeout="x"), [1], BAD_TIMEOUT, BAD_TIMEOUT),
    "buffersize-before-iterables": (
        dict(buffersize="x"), 5, BUFFERSIZE_TYPE, NOT_ITERABLE),
    "timeout-before-iterables": (
        dict(buffersize=1, timeout="x"), 5, BAD_TIMEOUT, NOT_ITERABLE),
    "chunksize-value-first": (
        dict(chunksize=0, buffersize="x", timeout="x"), 5, BUFFERSIZE_TYPE, CHUNKSIZE_VALUE),
    "chunksize-zero": (dict(chunksize=0, buffersize=1), [1], None, CHUNKSIZE_VALUE),
    "chunksize-str": (
        dict(chunksize="a", buffersize="x"), [1], BUFFERSIZE_TYPE, CHUNKSIZE_NOT_COMPARABLE),
    "chunksize-float-before-buffersize": (
        dict(chunksize=2.0, buffersize="x"), [1], BUFFERSIZE_TYPE, CHUNKSIZE_NOT_INDEX),
    "iterables-before-chunksize-type": (
        dict(chunksize=2.0, buffersize=1), 5, NOT_ITERABLE, NOT_ITERABLE),
    "chunksize-huge": (dict(chunksize=2 ** 70, buffersize=1), [1], None, CHUNKSIZE_OVERFLOW),
    "True-for-both": (dict(chunksize=True, buffersize=True), [1], None, None),
}


@pytest.mark.parametrize("case", list(VALIDATION))
def test_arguments_are_checked_at_the_call_in_314s_order(make_pool_314, kind, case):
    kwargs, iterable, thread_error, process_error = VALIDATION[case]
    expected = process_error if kind.processes else thread_error
    pool = make_pool_314(1)
    calls = record_submits(pool)
    if expected is None:
        assert list(pool.map(echo, iterable, **kwargs)) == [1]
        return
    with pytest.raises(expected[0]) as info:
        pool.map(echo, iterable, **kwargs)  # the call itself: no next()
    assert str(info.value) == expected[1]
    assert calls == []


def test_a_bad_buffersize_is_refused_before_any_input_is_taken(make_pool_314):
    pool = make_pool_314(1)
    calls = record_submits(pool)
    for bad in (0, "1"):
        inputs = Counted(range(100))
        with pytest.raises((TypeError, ValueError)):
            pool.map(echo, inputs, buffersize=bad)
        assert inputs.taken == 0
    assert calls == []


def test_buffersize_True_is_1_and_an_int_subclass_is_an_int(make_pool_314, kind):
    class Two(int):
        pass

    pool = make_pool_314(1)
    for buffersize, ahead in ((True, 1), (Two(2), 2)):
        endless = Counted(itertools.count())
        results = pool.map(echo, endless, buffersize=buffersize)
        assert endless.taken == ahead
        assert next(results) == 0
        assert endless.taken == ahead + 1
        results.close()


# ------------------------------------------------- laziness, eagerness

@pytest.mark.parametrize("chunksize", [1, 3])
def test_an_infinite_input_is_taken_buffersize_tasks_ahead(make_pool_314, kind, chunksize):
    # Each result yielded lets one more task in: after k results from
    # tasks of c calls, b + ceil(k / c) tasks (b * c calls at the call).
    per_task = kind.calls_per_task(chunksize)
    buffersize = 4
    pool = make_pool_314(2)
    calls = record_submits(pool)
    endless = Counted(itertools.count())
    results = pool.map(square, endless, chunksize=chunksize, buffersize=buffersize)
    assert len(calls) == buffersize
    assert endless.taken == buffersize * per_task
    for k in range(1, 13):
        assert next(results) == (k - 1) ** 2
        tasks = buffersize + -(-k // per_task)
        assert len(calls) == tasks, f"after {k} results"
        assert endless.taken == tasks * per_task, f"after {k} results"
    results.close()


@pytest.mark.parametrize("chunksize", [1, 4])
def test_without_buffersize_every_call_is_submitted_at_the_call(make_any_pool, kind,
                                                                 chunksize):
    # As before 3.14: these variants run on every version.
    per_task = kind.calls_per_task(chunksize)
    pool = make_any_pool(2)
    calls = record_submits(pool)
    inputs = Counted(range(10))
    results = pool.map(square, inputs, chunksize=chunksize)
    assert inputs.taken == 10
    assert len(calls) == -(-10 // per_task)
    assert list(results) == [x * x for x in range(10)]


def test_a_process_pool_submits_the_stdlib_chunks(make_pool_314, kind):
    # A process pool's task is the stdlib's _process_chunk over a tuple of
    # argument tuples (so it pickles as the stdlib's); a thread pool's is
    # the call itself.
    pool = make_pool_314(2)
    calls = record_submits(pool)
    results = pool.map(square, range(7), chunksize=3, buffersize=2)
    if kind.processes:
        fn, args, _ = calls[0]
        assert isinstance(fn, functools.partial)
        assert fn.func is _process_chunk and fn.args == (square,) and not fn.keywords
        assert [args for _, args, _ in calls] == [(((0,), (1,), (2,)),),
                                                  (((3,), (4,), (5,)),)]
    else:
        assert [(fn, args) for fn, args, _ in calls] == [(square, (0,)), (square, (1,))]
    assert list(results) == [x * x for x in range(7)]
    if kind.processes:
        assert calls[2][1] == (((6,),),)


def test_buffersize_larger_than_the_input(make_pool_314):
    pool = make_pool_314(2)
    inputs = Counted(range(3))
    results = pool.map(square, inputs, buffersize=10)
    assert inputs.taken == 3
    assert list(results) == [0, 1, 4]


def test_empty_input_and_no_input(make_pool_314):
    pool = make_pool_314(2)
    assert list(pool.map(square, [], buffersize=2)) == []
    assert list(pool.map(square, buffersize=2)) == []


def test_several_iterables_stop_at_the_shortest_lazily(make_pool_314):
    pool = make_pool_314(2)
    short, endless, letters = Counted(range(5)), Counted(itertools.count(10)), Counted("abcdefg")
    results = pool.map(join3, short, endless, letters, buffersize=2)
    assert (short.taken, endless.taken, letters.taken) == (2, 2, 2)
    assert next(results) == "010a"
    assert (short.taken, endless.taken, letters.taken) == (3, 3, 3)
    assert list(results) == ["111b", "212c", "313d", "414e"]
    # zip stops at the first exhausted input: the others gave one per call
    assert (short.taken, endless.taken, letters.taken) == (5, 5, 5)


# ------------------------------------------------------------- order

def test_results_come_in_input_order(make_pool_314, markers):
    # Item 0 finishes last; it is still yielded first.
    pool = make_pool_314(3)
    calls = record_submits(pool)
    results = pool.map(hold_at, itertools.count(), itertools.repeat(0),
                       itertools.repeat(markers), buffersize=4)
    wait_started(markers, 1)
    futures = futures_of(calls)
    _, not_done = concurrent.futures.wait(futures[1:], timeout=WAIT)
    assert not not_done
    assert not futures[0].done()
    open_gate(markers)
    assert list(itertools.islice(results, 20)) == list(range(20))
    results.close()


# ----------------------------------------------------------- timeout

def test_timeout_counts_from_the_call_for_calls_submitted_later(make_pool_314, kind,
                                                               markers, clock):
    # 1 is submitted by the first next(), after the call; once the clock
    # is past call + timeout, waiting for it fails at once.
    pool = make_pool_314(1)
    calls = record_submits(pool)
    results = pool.map(hold_at, itertools.count(), itertools.repeat(1),
                       itertools.repeat(markers), timeout=1000, buffersize=1)
    assert next(results) == 0
    assert len(calls) == 2
    wait_started(markers, 1)
    clock.offset = 1001
    with pytest.raises(concurrent.futures.TimeoutError):
        next_past_the_deadline(results, markers)
    assert len(calls) == 3
    if kind.cancels_every_waiting_call:
        assert futures_of(calls)[2].cancelled()
    with pytest.raises(StopIteration):
        next(results)


def test_a_call_timed_out_before_it_started_is_cancelled_with_the_rest(
        make_pool_314, kind, markers, clock):
    # The only worker is busy with a call of the test's: every call of
    # map's is still waiting when the deadline passes.
    pool = make_pool_314(1)
    pool.submit(blocked, markers)
    wait_started(markers, 1)
    calls = record_submits(pool)
    results = pool.map(echo, range(5), timeout=1000, buffersize=2)
    clock.offset = 1001
    with pytest.raises(concurrent.futures.TimeoutError):
        next_past_the_deadline(results, markers)
    futures = futures_of(calls)
    assert len(futures) == 3
    if kind.cancels_every_waiting_call:
        assert [f.cancelled() for f in futures] == [True, True, True]
    else:
        assert futures[-1].cancelled()
    with pytest.raises(StopIteration):
        next(results)


# ---------------------------------------- an early end cancels the rest

@pytest.mark.parametrize("end", ["close", "collect"])
def test_an_iterator_ended_early_cancels_what_it_buffered(make_pool_314, kind, markers, end):
    # One worker: 0 returns, 1 waits at the gate, the rest of the buffer
    # waits for the worker when the iterator is closed or collected.
    pool = make_pool_314(1)
    calls = record_submits(pool)
    endless = Counted(itertools.count())
    results = pool.map(hold_from, endless, itertools.repeat(1),
                       itertools.repeat(markers), buffersize=6)
    assert next(results) == 0
    wait_started(markers, 1)
    if end == "close":
        results.close()
    else:
        del results
        gc.collect()
    assert len(calls) == 7 and endless.taken == 7  # nothing more submitted
    open_gate(markers)
    ran = check_rest_cancelled(futures_of(calls),
                               lambda: 1 + started_count(markers))
    if kind.cancels_every_waiting_call:
        assert ran == 2


def test_an_exception_ends_the_iteration_and_cancels_the_rest(make_pool_314, kind, markers):
    pool = make_pool_314(1)
    calls = record_submits(pool)
    endless = Counted(itertools.count())
    results = pool.map(fail_at, endless, itertools.repeat(3),
                       itertools.repeat(markers), buffersize=6)
    assert [next(results) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(Boom) as info:
        next(results)
    assert info.value.args == (3,)
    assert len(calls) == 10 and endless.taken == 10  # 0-3, and 4-9 buffered
    with pytest.raises(StopIteration):
        next(results)
    assert len(calls) == 10
    open_gate(markers)
    check_rest_cancelled(futures_of(calls),
                         lambda: 4 + started_count(markers))


# ------------------------------ the pool collected or shut down meanwhile

def test_a_pool_collected_before_the_first_result_submits_nothing_more(
        make_unowned_pool):
    # The iterator holds the pool by a weak reference only: it can be
    # collected, and then what was submitted is yielded and nothing more.
    pool = make_unowned_pool(2)
    ref = weakref.ref(pool)
    endless = Counted(itertools.count())
    results = pool.map(square, endless, buffersize=3)
    del pool
    gc.collect()
    assert ref() is None
    assert list(results) == [0, 1, 4]
    assert endless.taken == 3


def test_once_iterating_the_iterator_keeps_its_pool_until_it_ends(make_unowned_pool):
    # 3.14's iterator keeps the pool it last submitted to (a local of its
    # generator) from the first next() on: a pool dropped then still
    # delivers every result, and is released when the iterator ends.
    pool = make_unowned_pool(2)
    ref = weakref.ref(pool)
    endless = Counted(itertools.count())
    results = pool.map(square, endless, buffersize=3)
    assert next(results) == 0
    del pool
    gc.collect()
    assert ref() is not None
    assert list(itertools.islice(results, 10)) == [x * x for x in range(1, 11)]
    assert endless.taken == 3 + 11
    results.close()
    gc.collect()
    assert ref() is None


@pytest.mark.parametrize("when", ["before-first-result", "after-first-result"])
def test_a_shut_down_pool_is_asked_to_submit_and_refuses(make_pool_314, when):
    # The iterator does not look at the pool's state: the next refill asks
    # it to submit, its RuntimeError ends the iteration.
    pool = make_pool_314(2)
    endless = Counted(itertools.count())
    results = pool.map(square, endless, buffersize=2)
    if when == "after-first-result":
        assert next(results) == 0
    pool.shutdown(wait=True)
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        next(results)
    with pytest.raises(StopIteration):
        next(results)


def test_a_shut_down_pool_still_yields_what_it_ran_when_the_input_is_spent(make_pool_314):
    pool = make_pool_314(2)
    results = pool.map(square, range(3), buffersize=3)
    pool.shutdown(wait=True)
    assert list(results) == [0, 1, 4]
