"""An exception raised by the function reaches the awaiter as itself: same
type, same object, chained causes kept, and a traceback that shows the
function's own frames."""

from __future__ import annotations

import asyncio
import traceback

import pytest

from conftest import run


class Boom(Exception):
    pass


def inner_raiser(box):
    exc = Boom("from the worker")
    box.append(exc)
    raise exc


def outer_raiser(box):
    inner_raiser(box)


def frame_names(exc):
    return [frame.name for frame in traceback.extract_tb(exc.__traceback__)]


def test_type_identity_and_traceback(impl):
    box = []

    async def main():
        await impl.to_thread(outer_raiser, box)

    with pytest.raises(Boom) as info:
        run(main())
    assert info.value is box[0]
    assert str(info.value) == "from the worker"
    names = frame_names(info.value)
    assert "outer_raiser" in names and "inner_raiser" in names
    # The innermost frame is where it was raised.
    assert names[-1] == "inner_raiser"


def test_builtin_exception_from_a_builtin_function(impl):
    async def main():
        await impl.to_thread(int, "not a number")

    with pytest.raises(ValueError, match="invalid literal"):
        run(main())


def test_cause_is_kept(impl):
    def chained():
        try:
            {}["missing"]
        except KeyError as exc:
            raise RuntimeError("wrapped") from exc

    async def main():
        await impl.to_thread(chained)

    with pytest.raises(RuntimeError, match="wrapped") as info:
        run(main())
    assert isinstance(info.value.__cause__, KeyError)
    assert "chained" in frame_names(info.value)


def test_exception_can_be_caught_and_the_loop_goes_on(impl):
    async def main():
        try:
            await impl.to_thread(outer_raiser, [])
        except Boom:
            caught = True
        return caught, await impl.to_thread(len, "abc")

    assert run(main()) == (True, 3)


def test_system_exit_from_the_function_ends_asyncio_run(impl):
    def leave():
        raise SystemExit(3)

    async def main():
        await impl.to_thread(leave)

    with pytest.raises(SystemExit) as info:
        run(main())
    assert info.value.code == 3


def test_gathered_failures_each_keep_their_traceback(impl):
    def fail(i):
        raise Boom(i)

    async def main():
        return await asyncio.gather(*(impl.to_thread(fail, i) for i in range(20)),
                                    return_exceptions=True)

    results = run(main())
    assert [type(r) for r in results] == [Boom] * 20
    assert [r.args[0] for r in results] == list(range(20))
    assert all("fail" in frame_names(r) for r in results)
