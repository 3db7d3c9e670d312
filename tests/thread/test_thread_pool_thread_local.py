"""threading.local data set by a call stays with its worker thread: the next
call on that worker sees it, calls on other workers do not, and it goes with
the worker when the pool shuts down."""

from __future__ import annotations

import threading
import weakref

from conftest import WAIT, run

local = threading.local()


def store(value):
    local.value = value
    return threading.get_ident()


def load():
    return getattr(local, "value", None), threading.get_ident()


def test_persists_between_calls_on_the_same_worker(make_pool):
    pool = make_pool(1)
    ident = pool.submit(store, "kept").result(timeout=WAIT)
    for _ in range(5):
        assert pool.submit(load).result(timeout=WAIT) == ("kept", ident)


def test_persists_between_asyncio_calls_on_the_same_worker(make_pool, impl):
    pool = make_pool(1)

    async def main():
        ident = await impl.to_thread_on(pool, store, "kept")
        return ident, [await impl.to_thread_on(pool, load) for _ in range(5)]

    ident, loads = run(main())
    assert loads == [("kept", ident)] * 5


def test_each_worker_has_its_own(make_pool):
    pool = make_pool(2)
    barrier = threading.Barrier(2, timeout=WAIT)

    def store_then_meet(value):
        local.value = value
        barrier.wait()
        return threading.get_ident(), local.value

    first = [pool.submit(store_then_meet, v) for v in ("a", "b")]
    pairs = dict(f.result(timeout=WAIT) for f in first)
    assert sorted(pairs.values()) == ["a", "b"]

    def meet_and_load():
        barrier.wait()
        return load()

    second = [pool.submit(meet_and_load) for _ in range(2)]
    seen = dict((ident, value) for value, ident in (f.result(timeout=WAIT) for f in second))
    assert seen == pairs


def test_main_thread_does_not_see_workers_values(make_pool):
    make_pool(1).submit(store, "worker only").result(timeout=WAIT)
    assert getattr(local, "value", None) is None


def test_released_when_the_worker_exits(make_pool):
    class Payload:
        pass

    pool = make_pool(1)
    refs = []

    def keep():
        payload = Payload()
        local.payload = payload
        refs.append(weakref.ref(payload))

    pool.submit(keep).result(timeout=WAIT)
    assert refs[0]() is not None
    pool.shutdown(wait=True)
    assert refs[0]() is None
