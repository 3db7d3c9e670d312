"""Signals delivered to the thread waiting on native_exec's process pool
lose no future."""

from __future__ import annotations

import concurrent.futures
import signal
import time

import pytest

from process_fixtures import WAIT, native_ppool, square  # noqa: F401  (fixtures)

pytestmark = pytest.mark.timeout(180)


class SlowToLoad:
    """A result whose unpickling takes a while: collection rounds last."""

    def __init__(self, i):
        self.i = i

    def __reduce__(self):
        return (load_slowly, (self.i,))


def load_slowly(i):
    deadline = time.perf_counter() + 0.0005
    while time.perf_counter() < deadline:
        pass
    return SlowToLoad(i)


def slow_to_load(i):
    return SlowToLoad(i)


class Tick(Exception):
    pass


def test_signals_in_the_waiting_thread_lose_no_future(native_ppool):
    # A signal handler that raises, every 5 ms, while the main thread waits
    # in result(): the waits are interrupted, but results are unpickled and
    # futures completed by the collector thread, out of the handler's reach.
    pool = native_ppool(2)
    futs = [pool.submit(slow_to_load, i) for i in range(1500)]

    waiting = [False]

    def tick(signum, frame):
        # raises only inside the try below, never in the test's own loop
        if waiting[0]:
            waiting[0] = False
            raise Tick

    old = signal.signal(signal.SIGALRM, tick)
    interrupted = 0
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.005, 0.005)
        deadline = time.monotonic() + 60
        pending = list(futs)
        while pending and time.monotonic() < deadline:
            try:
                waiting[0] = True
                pending[0].result()
                waiting[0] = False
                pending.pop(0)
            except Tick:
                interrupted += 1
            except RuntimeError as exc:
                # the stdlib's Condition.wait, interrupted while taking its
                # lock back, fails to release it: still the Tick, not a loss
                if not isinstance(exc.__context__, Tick):
                    raise
                waiting[0] = False
                interrupted += 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        signal.signal(signal.SIGALRM, old)
    done, not_done = concurrent.futures.wait(futs, timeout=WAIT)
    assert not not_done, f"{len(not_done)} futures never completed"
    assert interrupted > 0
    assert [f.result().i for f in futs] == list(range(1500))
    assert pool.submit(square, 5).result(timeout=WAIT) == 25
