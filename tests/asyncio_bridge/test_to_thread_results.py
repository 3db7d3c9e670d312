"""to_thread returns what the function returns and passes its arguments."""

from __future__ import annotations

import threading

from conftest import run


def echo(*args, **kwargs):
    return args, kwargs


def test_returns_the_functions_own_object(impl):
    sentinel = object()

    async def main():
        return await impl.to_thread(lambda: sentinel)

    assert run(main()) is sentinel


def test_none_result(impl):
    calls = []

    async def main():
        return await impl.to_thread(calls.append, 7)

    assert run(main()) is None
    assert calls == [7]


def test_positional_arguments(impl):
    a, b = object(), [1, 2]

    async def main():
        return await impl.to_thread(echo, a, b, "c")

    args, kwargs = run(main())
    assert args == (a, b, "c") and args[0] is a and args[1] is b
    assert kwargs == {}


def test_keyword_arguments(impl):
    async def main():
        return await impl.to_thread(echo, 1, x=2, y=[3])

    assert run(main()) == ((1,), {"x": 2, "y": [3]})


def test_keywords_named_like_the_parameters_reach_the_function(impl):
    # to_thread(func, /, *args, **kwargs): 'func' and friends are the callee's.
    async def main():
        return await impl.to_thread(echo, func=1, fn=2, args=3, kwargs=4)

    assert run(main()) == ((), {"func": 1, "fn": 2, "args": 3, "kwargs": 4})


def test_unpacked_arguments(impl):
    args = tuple(range(50))
    kwargs = {f"k{i}": i for i in range(50)}

    async def main():
        return await impl.to_thread(echo, *args, **kwargs)

    assert run(main()) == (args, kwargs)


def test_bound_method_and_builtin(impl):
    items = [3, 1, 2]

    async def main():
        await impl.to_thread(items.sort, reverse=True)
        return await impl.to_thread(sum, items, 10)

    assert run(main()) == 16
    assert items == [3, 2, 1]


def test_runs_in_a_worker_thread_not_the_loops(impl):
    def where():
        return threading.get_ident(), threading.current_thread() is threading.main_thread()

    async def main():
        return await impl.to_thread(where)

    ident, on_main = run(main())
    assert ident != threading.get_ident()
    assert on_main is False


def test_each_concurrent_call_gets_its_own_result(impl):
    import asyncio

    async def main():
        return await asyncio.gather(*(impl.to_thread(pow, i, 2) for i in range(300)))

    assert run(main()) == [i * i for i in range(300)]
