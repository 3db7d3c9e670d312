"""to_thread copies the caller's contextvars context at call time: the
function sees what the caller set, and what the function sets stays in its
copy.  concurrent.futures' submit() copies nothing: a call runs in its
worker thread's own context."""

from __future__ import annotations

import asyncio
import contextvars

from conftest import run

var = contextvars.ContextVar("var", default="unset")


def read():
    return var.get()


def write(value):
    var.set(value)
    return var.get()


def test_value_set_before_the_call_is_seen_in_the_worker(impl):
    async def main():
        var.set("caller")
        return await impl.to_thread(read)

    assert run(main()) == "caller"


def test_set_in_the_worker_does_not_leak_back(impl):
    async def main():
        var.set("caller")
        inside = await impl.to_thread(write, "worker")
        return inside, var.get()

    assert run(main()) == ("worker", "caller")


def test_each_call_gets_its_own_copy(impl):
    async def main():
        var.set("caller")
        first = await impl.to_thread(write, "first")
        second = await impl.to_thread(read)
        return first, second

    assert run(main()) == ("first", "caller")


def test_copies_are_per_call_on_the_same_worker(impl, make_pool):
    # One worker runs every call, so nothing can hide in another thread.
    pool = make_pool(1)

    async def main():
        var.set("caller")
        wrote = await impl.to_thread_on(pool, write, "leaked?")
        seen = await impl.to_thread_on(pool, read)
        return wrote, seen, var.get()

    assert run(main()) == ("leaked?", "caller", "caller")


def test_each_task_passes_its_own_context(impl):
    async def call_with(value):
        var.set(value)
        await asyncio.sleep(0)
        return await impl.to_thread(read)

    async def main():
        return await asyncio.gather(*(call_with(f"task{i}") for i in range(20)))

    assert run(main()) == [f"task{i}" for i in range(20)]


def test_context_is_the_callers_at_call_time(impl):
    async def main():
        var.set("before")
        value = await impl.to_thread(read)
        var.set("after")
        return value

    assert run(main()) == "before"


def test_submit_does_not_carry_the_callers_context(impl, make_pool):
    pool = make_pool(1)
    token = var.set("submitter")
    try:
        assert pool.submit(read).result() == "unset"
    finally:
        var.reset(token)


def test_submit_calls_share_their_worker_threads_context(impl, make_pool):
    # A submitted call runs in the worker thread's own context, as any code
    # that thread runs: what it sets, the next call on that thread sees.
    pool = make_pool(1)
    assert pool.submit(write, "first call").result() == "first call"
    assert pool.submit(read).result() == "first call"
    assert var.get() == "unset"
