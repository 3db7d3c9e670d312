"""Bad input to to_thread fails as the stdlib's does, and leaves the pool
usable: a non-callable raises TypeError from the awaitable; a call without a
function raises TypeError at once."""

from __future__ import annotations

import asyncio

import pytest

from conftest import run


@pytest.mark.parametrize("not_callable", [42, "text", None, [1]])
def test_non_callable_raises_type_error_when_awaited(impl, not_callable):
    async def main():
        with pytest.raises(TypeError):
            await impl.to_thread(not_callable)
        return await impl.to_thread(len, "pool still works")

    assert run(main()) == len("pool still works")


def test_non_callable_among_good_calls(impl):
    async def main():
        return await asyncio.gather(impl.to_thread(abs, -1), impl.to_thread(3),
                                    impl.to_thread(abs, -2), return_exceptions=True)

    first, error, last = run(main())
    assert (first, last) == (1, 2)
    assert isinstance(error, TypeError)


def test_missing_function_in_a_running_loop(impl):
    async def main():
        with pytest.raises(TypeError):
            impl.to_thread()
        return await impl.to_thread(len, "ok")

    assert run(main()) == 2


def test_missing_function_without_a_loop(impl):
    with pytest.raises(TypeError):
        impl.to_thread()


def test_wrong_arguments_for_the_function(impl):
    def one(x):
        return x

    async def main():
        with pytest.raises(TypeError):
            await impl.to_thread(one, 1, 2)
        with pytest.raises(TypeError):
            await impl.to_thread(one, y=1)
        return await impl.to_thread(one, x=5)

    assert run(main()) == 5
