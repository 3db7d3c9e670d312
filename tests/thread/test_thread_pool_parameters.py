"""What ThreadPoolExecutor makes of max_workers and thread_name_prefix, as
the stdlib does on every version: max_workers is compared with 0 (so what
cannot be compared raises the comparison's TypeError, and what is not
positive ValueError) and bounds the threads by `len(threads) < max_workers`
(2.0 gives two, 2.5 three, True one); thread_name_prefix is formatted with
%s into f"{prefix}_{i}", and a false one (None, "") gives the default
ThreadPoolExecutor-N.  Thread counts are read as the calls are submitted
and block, so they are final: no thread becomes idle to take another."""

from __future__ import annotations

import re

import pytest

from conftest import default_max_workers


def saturate(impl, pool, gate, calls=6):
    """Submit calls that block; return (threads started, their names)."""
    for i in range(calls):
        pool.submit(gate.block, i)
    threads = impl.thread_count(pool)
    gate.wait_started(threads)
    return threads, sorted(gate.threads)


@pytest.mark.parametrize("max_workers, threads", [
    (2.0, 2),
    (2.5, 3),
    (True, 1),
    (1, 1),
    (3, 3),
])
def test_max_workers_bounds_the_threads_as_the_stdlib_compares(
        impl, make_pool, gate, max_workers, threads):
    pool = make_pool(max_workers, thread_name_prefix="mw")
    assert pool._max_workers == max_workers
    assert type(pool._max_workers) is type(max_workers)
    assert saturate(impl, pool, gate) == (threads, [f"mw_{i}" for i in range(threads)])
    gate.open()
    pool.shutdown(wait=True)


def test_max_workers_none_is_the_default(impl, make_pool):
    pool = make_pool(None)
    assert pool._max_workers == default_max_workers()


@pytest.mark.parametrize("max_workers", [0, -1, False, -0.5, 0.0])
def test_max_workers_not_positive_raises_value_error(impl, max_workers):
    with pytest.raises(ValueError, match=r"^max_workers must be greater than 0$"):
        impl.ThreadPoolExecutor(max_workers)


@pytest.mark.parametrize("max_workers, other", [("2", "str"), ([2], "list")])
def test_max_workers_that_cannot_be_compared_raises_type_error(impl, max_workers, other):
    message = f"'<=' not supported between instances of '{other}' and 'int'"
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        impl.ThreadPoolExecutor(max_workers)


@pytest.mark.parametrize("prefix, names", [
    (123, ["123_0", "123_1"]),
    (1.5, ["1.5_0", "1.5_1"]),
    ("io", ["io_0", "io_1"]),
])
def test_thread_name_prefix_is_formatted_with_percent_s(impl, make_pool, gate, prefix, names):
    pool = make_pool(2, thread_name_prefix=prefix)
    assert pool._thread_name_prefix == prefix
    assert saturate(impl, pool, gate) == (2, names)


@pytest.mark.parametrize("prefix", [None, "", 0])
def test_a_false_thread_name_prefix_gives_the_default(impl, make_pool, gate, prefix):
    pool = make_pool(2, thread_name_prefix=prefix)
    threads, names = saturate(impl, pool, gate)
    assert threads == 2
    match = [re.fullmatch(r"ThreadPoolExecutor-(\d+)_(\d)", n) for n in names]
    assert all(match), names
    assert match[0].group(1) == match[1].group(1)
    assert [m.group(2) for m in match] == ["0", "1"]
    assert pool._thread_name_prefix == f"ThreadPoolExecutor-{match[0].group(1)}"
