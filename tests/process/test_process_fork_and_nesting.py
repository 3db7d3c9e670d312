"""native_exec's process pool beside fork and other pools: no 3.12 fork
DeprecationWarning in a multithreaded process, a pool (and ``to_process``)
inside a worker, a child forked by the user that cannot use the parent's
pool while the parent still can, a stdlib pool running beside it."""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import os

import pytest

import native_exec
from process_fixtures import (  # noqa: F401  (fixtures)
    WAIT, blocked, markers, native_ppool, open_gate, run_script, square, wait_started)

pytestmark = pytest.mark.timeout(180)


def nested_pool(n):
    with native_exec.ProcessPoolExecutor(2) as inner:
        return list(inner.map(square, range(n))), os.getpid()


def nested_to_process(n):
    async def main():
        return await asyncio.gather(*(native_exec.to_process(square, i) for i in range(n)))
    return asyncio.run(main())


def test_no_fork_deprecation_warning_in_multithreaded_process():
    proc = run_script("warnings_error.py", python_args=["-W", "error::DeprecationWarning"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
    assert "DeprecationWarning" not in proc.stderr


def test_a_pool_inside_a_worker(native_ppool):
    pool = native_ppool(2)
    out, pid = pool.submit(nested_pool, 6).result(timeout=WAIT)
    assert out == [i * i for i in range(6)] and pid != os.getpid()
    assert pool.submit(square, 3).result(timeout=WAIT) == 9


def test_to_process_inside_a_worker_after_the_parent_used_it(native_ppool):
    # the parent's default pool exists before this pool (and its zygote) is
    # made; a task calling to_process needs a default pool of its own, as
    # the stdlib lets a worker make its own ProcessPoolExecutor
    async def use():
        return await native_exec.to_process(square, 2)

    assert asyncio.run(use()) == 4
    pool = native_ppool(1)
    assert pool.submit(nested_to_process, 6).result(timeout=WAIT) == [i * i for i in range(6)]
    assert pool.submit(square, 3).result(timeout=WAIT) == 9


def test_a_forked_child_cannot_use_the_pool_and_the_parent_can(native_ppool, markers):
    pool = native_ppool(2)
    inflight = [pool.submit(blocked, markers, i) for i in range(2)]
    wait_started(markers, 2)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 3
        try:
            pool.submit(square, 2)
        except RuntimeError:
            code = 0
        except BaseException:
            code = 4
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    open_gate(markers)
    assert [f.result(timeout=WAIT)[0] for f in inflight] == [0, 1]
    assert pool.submit(square, 5).result(timeout=WAIT) == 25


def test_a_stdlib_pool_beside_native_tasks(native_ppool, markers):
    pool = native_ppool(2)
    inflight = [pool.submit(blocked, markers, i) for i in range(2)]
    wait_started(markers, 2)
    with concurrent.futures.ProcessPoolExecutor(
            2, mp_context=multiprocessing.get_context("fork")) as stdlib_pool:
        assert list(stdlib_pool.map(square, range(10))) == [i * i for i in range(10)]
    open_gate(markers)
    assert [f.result(timeout=WAIT)[0] for f in inflight] == [0, 1]
    assert pool.submit(square, 5).result(timeout=WAIT) == 25
