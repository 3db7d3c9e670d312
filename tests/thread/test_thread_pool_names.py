"""Worker threads are named f"{prefix}_{i}" as the stdlib names them; the
default prefix is ThreadPoolExecutor-N with N from the stdlib's own counter.
native_exec also names the OS thread (/proc/.../comm), cut to the 15 bytes
Linux keeps without losing the _i suffix."""

from __future__ import annotations

import concurrent.futures
import os
import re
import threading
import warnings

import pytest

import native_exec

from conftest import WAIT


def names_of_all_workers(pool, n):
    barrier = threading.Barrier(n, timeout=WAIT)

    def meet():
        barrier.wait()
        return threading.current_thread().name

    return sorted(f.result(timeout=WAIT) for f in [pool.submit(meet) for _ in range(n)])


def test_prefix_and_index(make_pool):
    pool = make_pool(3, thread_name_prefix="worker")
    assert names_of_all_workers(pool, 3) == ["worker_0", "worker_1", "worker_2"]


def test_default_prefix_counts_pools(make_pool):
    first = names_of_all_workers(make_pool(2), 2)
    second = names_of_all_workers(make_pool(1), 1)
    m = [re.fullmatch(r"ThreadPoolExecutor-(\d+)_(\d+)", n) for n in first + second]
    assert all(m), first + second
    assert [int(x.group(2)) for x in m] == [0, 1, 0]
    n1, n2 = int(m[0].group(1)), int(m[2].group(1))
    assert m[1].group(1) == m[0].group(1)
    assert n2 == n1 + 1


def test_current_thread_is_a_registered_thread(make_pool):
    pool = make_pool(1, thread_name_prefix="reg")

    def look():
        me = threading.current_thread()
        return (me.name, me.ident == threading.get_ident(),
                me.native_id == threading.get_native_id(), me.is_alive(),
                me in threading.enumerate(), me is threading.main_thread())

    assert pool.submit(look).result(timeout=WAIT) == ("reg_0", True, True, True, True, False)


def test_worker_thread_objects_can_be_joined(make_pool, gate):
    # The Thread object a worker sees as current_thread() is a thread like
    # any other to the rest of the program: joinable with a timeout while it
    # works, not alive once the pool has shut down.
    pool = make_pool(1, thread_name_prefix="joinable")
    fut = pool.submit(lambda: (threading.current_thread(), gate.block()))
    gate.wait_started(1)
    worker = [t for t in threading.enumerate() if t.name == "joinable_0"][0]
    worker.join(timeout=0.01)
    assert worker.is_alive()
    gate.open()
    assert fut.result(timeout=WAIT)[0] is worker
    pool.shutdown(wait=True)
    worker.join(timeout=WAIT)
    assert not worker.is_alive()


def test_worker_thread_objects_are_gone_in_a_forked_child(make_pool, gate):
    # Only the forking thread exists in the child: the parent's busy worker
    # is not alive there, and joining it returns at once.
    pool = make_pool(1, thread_name_prefix="forked")
    fut = pool.submit(gate.block)
    gate.wait_started(1)
    worker = [t for t in threading.enumerate() if t.name == "forked_0"][0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # forking with threads
        pid = os.fork()
    if pid == 0:
        worker.join(timeout=5)
        os._exit(1 if worker.is_alive() else 0)
    gate.open()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    fut.result(timeout=WAIT)


def test_names_are_stable_for_a_worker(make_pool):
    pool = make_pool(1, thread_name_prefix="stable")
    names = {pool.submit(lambda: threading.current_thread().name).result(timeout=WAIT)
             for _ in range(20)}
    assert names == {"stable_0"}


def test_native_default_prefix_shares_the_stdlib_counter(native_pool):
    # The stdlib's counter is ThreadPoolExecutor._counter: a native pool made
    # between two stdlib pools takes the number between theirs.
    numbers = []
    for make in (concurrent.futures.ThreadPoolExecutor, native_pool,
                 concurrent.futures.ThreadPoolExecutor):
        pool = make(1)
        name = pool.submit(lambda: threading.current_thread().name).result(timeout=WAIT)
        pool.shutdown(wait=False)
        numbers.append(int(re.fullmatch(r"ThreadPoolExecutor-(\d+)_0", name).group(1)))
    assert numbers == [numbers[0], numbers[0] + 1, numbers[0] + 2]


def os_name():
    with open(f"/proc/self/task/{threading.get_native_id()}/comm", "rb") as f:
        return f.read().rstrip(b"\n").decode("utf-8")


@pytest.mark.parametrize("prefix, expected", [
    ("io", ["io_0", "io_1", "io_2"]),
    ("a_rather_long_prefix", ["a_rather_long_0", "a_rather_long_1", "a_rather_long_2"]),
    ("exactly15bytes_", ["exactly15byte_0", "exactly15byte_1", "exactly15byte_2"]),
])
def test_native_os_thread_name(native_pool, prefix, expected):
    pool = native_pool(3, thread_name_prefix=prefix)
    barrier = threading.Barrier(3, timeout=WAIT)

    def meet():
        barrier.wait()
        return os_name(), threading.current_thread().name

    got = sorted(f.result(timeout=WAIT) for f in [pool.submit(meet) for _ in range(3)])
    assert [g[0] for g in got] == expected
    assert [g[1] for g in got] == [f"{prefix}_{i}" for i in range(3)]
    assert all(len(g[0].encode()) <= 15 for g in got)


def test_native_os_thread_name_keeps_two_digit_suffix(native_pool):
    pool = native_pool(12, thread_name_prefix="ThreadPoolExecutor-7")
    barrier = threading.Barrier(12, timeout=WAIT)

    def meet():
        barrier.wait()
        return os_name()

    got = {f.result(timeout=WAIT) for f in [pool.submit(meet) for _ in range(12)]}
    assert got == {f"ThreadPoolExe_{i}" for i in range(10)} | {"ThreadPoolEx_10", "ThreadPoolEx_11"}


def test_native_os_thread_name_never_splits_a_character(native_pool):
    # 'é' is two bytes in UTF-8; a cut through it would leave invalid UTF-8.
    pool = native_pool(1, thread_name_prefix="ééééééé")  # 14 bytes
    name = pool.submit(os_name).result(timeout=WAIT)  # decode would fail if split
    assert name == "éééééé_0"


def test_native_default_executor_os_thread_name():
    # the loop's default executor, installed by to_thread, is named as the
    # one run_in_executor installs: asyncio_N
    import asyncio

    name = asyncio.run(native_exec.to_thread(os_name))
    assert re.fullmatch(r"asyncio_\d+", name)
