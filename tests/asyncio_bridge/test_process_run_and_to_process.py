"""native_exec's process pool from asyncio, which the stdlib has no counterpart
for: ``pool.run`` awaited in a running loop (and deferred without one),
its exceptions, ``to_process``, and cancelling a ``run`` whose task no
worker has claimed yet."""

from __future__ import annotations

import asyncio
import os

import pytest

import native_exec
from process_fixtures import (Boom, raise_boom,   # noqa: F401  (fixtures)
    WAIT, blocked, getpid, markers, native_ppool, open_gate, square, touch, wait_started)

pytestmark = pytest.mark.timeout(180)


def echo(*args, **kwargs):
    return args, kwargs


def test_run_from_asyncio(native_ppool):
    pool = native_ppool(2)

    async def main():
        fut = pool.run(square, 3)
        assert isinstance(fut, asyncio.Future)
        first = await fut
        many = await asyncio.gather(*(pool.run(square, i) for i in range(500)))
        kw = await pool.run(echo, 1, key="v")
        waited = await asyncio.wait_for(pool.run(square, 12), WAIT)
        task = await asyncio.create_task(pool.run(square, 13))
        return first, many, kw, waited, task

    first, many, kw, waited, task = asyncio.run(main())
    assert first == 9 and many == [i * i for i in range(500)]
    assert kw == ((1,), {"key": "v"}) and waited == 144 and task == 169


def test_run_exceptions(native_ppool):
    pool = native_ppool(2)

    async def main():
        outs = await asyncio.gather(pool.run(raise_boom, "async", 1), pool.run(square, 2),
                                    pool.run(int, "nope"), return_exceptions=True)
        with pytest.raises(Boom) as info:
            await pool.run(raise_boom, "direct", 2)
        return outs, info.value

    (boom, four, bad_int), direct = asyncio.run(main())
    assert type(boom) is Boom and boom.args == ("async", 1)
    assert "raise_boom" in str(boom.__cause__) and "Traceback" in str(boom.__cause__)
    assert four == 4 and type(bad_int) is ValueError
    assert direct.args == ("direct", 2)


def test_run_without_a_running_loop_defers_the_call(native_ppool):
    # asyncio.run(pool.run(f)) makes the awaitable before the loop exists:
    # as with to_thread, it is a coroutine that submits when it first runs
    pool = native_ppool(1)
    coro = pool.run(echo, 2, key="v")
    assert asyncio.iscoroutine(coro)
    assert pool._stats()["in_flight"] == 0
    assert asyncio.run(coro) == ((2,), {"key": "v"})
    assert asyncio.run(native_exec.to_process(square, 3)) == 9
    never = pool.run(square, 4)
    never.close()
    assert pool._stats()["in_flight"] == 0
    assert pool.submit(square, 2).result(timeout=WAIT) == 4


def test_to_process(tmp_path):
    async def main():
        many = await asyncio.gather(*(native_exec.to_process(square, i) for i in range(300)))
        pids = await asyncio.gather(*(native_exec.to_process(getpid) for _ in range(20)))
        kw = await native_exec.to_process(echo, "a", b=2)
        with pytest.raises(Boom) as info:
            await native_exec.to_process(raise_boom, "default pool", 3)
        return many, pids, kw, info.value

    many, pids, kw, exc = asyncio.run(main())
    assert many == [i * i for i in range(300)]
    assert os.getpid() not in pids
    assert kw == (("a",), {"b": 2})
    assert exc.args == ("default pool", 3) and "raise_boom" in str(exc.__cause__)
    # the default pool outlives one event loop
    assert asyncio.run(main())[0] == many


def test_run_cancel_withdraws_an_unclaimed_task(native_ppool, markers, tmp_path):
    pool = native_ppool(1)
    victim_file = str(tmp_path / "victim")

    async def main():
        busy = asyncio.ensure_future(pool.run(blocked, markers, "busy"))
        await asyncio.get_running_loop().run_in_executor(None, wait_started, markers, 1)
        victim = asyncio.ensure_future(pool.run(touch, victim_file))
        assert victim.cancel()   # queued behind busy: withdrawn
        open_gate(markers)
        out = await busy
        with pytest.raises(asyncio.CancelledError):
            await victim
        return out, await pool.run(square, 6)

    out, after = asyncio.run(main())
    assert out[0] == "busy" and after == 36
    pool.shutdown(wait=True)
    assert not os.path.exists(victim_file)
