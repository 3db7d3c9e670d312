"""to_thread's awaitable behaves as asyncio.to_thread's coroutine does: the
call starts only when something consumes it, the context is copied then, a
second await fails, and one never awaited warns.  And to_thread runs on the
loop's default executor, so asyncio.run() waits for its calls and joins its
threads.  Written once, run against both implementations."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import gc
import sys
import threading
import warnings

import pytest

import native_exec

from conftest import WAIT, run, run_script, until

var = contextvars.ContextVar("var", default="unset")


class Peak:
    """Calls that hold for a moment and count how many were inside at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.inside = 0
        self.peak = 0
        self.calls = 0
        self.release = threading.Event()

    def hold(self) -> None:
        with self.lock:
            self.calls += 1
            self.inside += 1
            self.peak = max(self.peak, self.inside)
        try:
            # long enough for every call that is going to run to pile up
            self.release.wait(0.05)
        finally:
            with self.lock:
                self.inside -= 1


async def ticks(n: int = 20) -> None:
    """Let the loop (and the workers) run for a while."""
    for _ in range(n):
        await asyncio.sleep(0.001)


def test_nothing_runs_until_awaited(impl):
    async def main():
        ran = []
        aw = impl.to_thread(ran.append, "ran")
        await ticks()
        before = list(ran)
        await aw
        return before, ran

    assert run(main()) == ([], ["ran"])


def test_a_semaphore_bounds_the_calls_made_beforehand(impl):
    # The idiom: make the awaitables first, await each under a semaphore.
    peak = Peak()

    async def main():
        await impl.default_workers()
        sem = asyncio.Semaphore(2)
        aws = [impl.to_thread(peak.hold) for _ in range(6)]

        async def guarded(aw):
            async with sem:
                return await aw

        await asyncio.gather(*(guarded(aw) for aw in aws))

    run(main())
    assert (peak.calls, peak.peak) == (6, 2)


def test_the_context_is_copied_when_it_starts(impl):
    async def main():
        aw = impl.to_thread(var.get)
        var.set("set after the call, before the await")
        return await aw

    assert run(main()) == "set after the call, before the await"


def test_a_second_await_raises(impl):
    async def main():
        aw = impl.to_thread(abs, -4)
        first = await aw
        with pytest.raises(RuntimeError, match="cannot reuse already awaited coroutine"):
            await aw
        return first

    assert run(main()) == 4


def test_one_never_awaited_warns_and_never_runs(impl):
    ran = []

    async def main():
        impl.to_thread(ran.append, "ran")
        await ticks()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(main())
        gc.collect()
    never = [w for w in caught if issubclass(w.category, RuntimeWarning)
             and "was never awaited" in str(w.message)]
    assert len(never) == 1, [str(w.message) for w in caught]
    assert "to_thread" in str(never[0].message)
    assert ran == []


def test_one_closed_unawaited_neither_runs_nor_warns(impl):
    ran = []

    async def main():
        aw = impl.to_thread(ran.append, "ran")
        aw.close()
        await ticks()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run(main())
        gc.collect()
    assert not [w for w in caught if "never awaited" in str(w.message)]
    assert ran == []


@pytest.mark.parametrize("how", ["gather", "wait_for", "shield", "as_completed",
                                 "create_task", "ensure_future", "task_group"])
def test_handing_it_to_asyncio_starts_it(impl, how, gate):
    if how == "task_group" and sys.version_info < (3, 11):
        pytest.skip("TaskGroup is new in 3.11")

    async def main():
        aw = impl.to_thread(gate.block, how)
        if how == "gather":
            outer = asyncio.ensure_future(asyncio.gather(aw))
        elif how == "wait_for":
            outer = asyncio.ensure_future(asyncio.wait_for(aw, WAIT))
        elif how == "shield":
            outer = asyncio.shield(aw)
        elif how == "as_completed":
            async def first():
                for f in asyncio.as_completed([aw]):
                    return await f
            outer = asyncio.ensure_future(first())
        elif how == "create_task":
            outer = asyncio.create_task(aw)
        elif how == "ensure_future":
            outer = asyncio.ensure_future(aw)
        else:
            group = asyncio.TaskGroup()
            await group.__aenter__()
            outer = group.create_task(aw)
        # nothing awaits outer yet: handing the call over started it
        await gate.until_started(1)
        gate.open()
        result = await outer
        if how == "task_group":
            await group.__aexit__(None, None, None)
        return result

    result = run(main())
    assert result in (how, [how])


def test_cancelled_before_it_starts_it_never_runs(impl):
    ran = []

    async def main():
        task = asyncio.ensure_future(impl.to_thread(ran.append, "ran"))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await ticks()

    run(main())
    assert ran == []


# ------------------------------------------------- the default executor

def test_it_runs_on_a_default_executor_the_user_set(impl):
    async def main():
        loop = asyncio.get_running_loop()
        loop.set_default_executor(
            concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mine"))
        return await impl.to_thread(lambda: threading.current_thread().name)

    assert run(main()).startswith("mine")


def test_it_runs_on_a_native_default_executor_the_user_set(impl):
    async def main():
        loop = asyncio.get_running_loop()
        loop.set_default_executor(
            native_exec.ThreadPoolExecutor(1, thread_name_prefix="native-mine"))
        return await impl.to_thread(lambda: threading.current_thread().name)

    assert run(main()).startswith("native-mine")


def test_without_one_it_installs_a_default_executor(impl):
    async def main():
        loop = asyncio.get_running_loop()
        name = await impl.to_thread(lambda: threading.current_thread().name)
        executor = loop._default_executor
        # run_in_executor(None) and asyncio.to_thread now share it
        other = await loop.run_in_executor(None, lambda: threading.current_thread().name)
        return name, executor, other

    name, executor, other = run(main())
    assert isinstance(executor, concurrent.futures.ThreadPoolExecutor)
    assert name.startswith("asyncio_") and other.startswith("asyncio_")


def test_after_shutdown_default_executor_it_refuses(impl):
    async def main():
        await impl.to_thread(int)
        await asyncio.get_running_loop().shutdown_default_executor()
        with pytest.raises(RuntimeError):
            await impl.to_thread(int)

    run(main())


def test_asyncio_run_waits_and_joins_the_threads(impl):
    # In a fresh interpreter: after asyncio.run() no worker thread is left,
    # so a fork gives no multi-threaded-fork DeprecationWarning (3.12+), and
    # a call nobody awaited to the end still finished first.
    proc = run_script("to_thread_then_fork.py", impl.name, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["finished", "threads=1", "forked"], proc.stdout
