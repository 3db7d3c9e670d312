"""A process pool serves asyncio through ``loop.run_in_executor``, the
stdlib's and native_exec's alike."""

from __future__ import annotations

import asyncio

import pytest

from process_fixtures import Boom, raise_boom, make_ppool, proc_impl, square  # noqa: F401  (fixtures)

pytestmark = pytest.mark.timeout(120)


def test_loop_run_in_executor(make_ppool):
    pool = make_ppool(2)

    async def main():
        loop = asyncio.get_running_loop()
        calls = [loop.run_in_executor(pool, square, i) for i in range(40)]
        calls.append(loop.run_in_executor(pool, raise_boom, "async", 7))
        return await asyncio.gather(*calls, return_exceptions=True)

    out = asyncio.run(main())
    assert out[:40] == [i * i for i in range(40)]
    assert isinstance(out[40], Boom) and out[40].args == ("async", 7)
