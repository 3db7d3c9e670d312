"""A worker of native_exec's process pool killed while a payload moves
through a named shared-memory segment (a result it writes, an argument
streaming in) fails no task but that one and leaves no segment behind."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from native_exec import WorkerDied
from process_fixtures import (  # noqa: F401  (fixtures)
    WAIT, getpid, native_ppool, shm_entries, wait_until)

pytestmark = pytest.mark.timeout(180)


def zeros(n):
    return bytes(n)


def length(data):
    return len(data)


@pytest.mark.timeout(300)
def test_worker_killed_while_writing_a_named_result(native_ppool):
    pool = native_ppool(1)
    worker = pool.submit(getpid).result(timeout=WAIT)
    fut = pool.submit(zeros, 600 * (1 << 20))    # larger than the result window
    prefix = "/dev/shm/native_exec-%d-" % worker
    wait_until(lambda: shm_entries([worker]), "the worker to create its result segment",
               interval=0.0002)
    os.kill(worker, signal.SIGKILL)
    exc = fut.exception(timeout=WAIT)
    assert type(exc) is WorkerDied and exc.pid == worker
    wait_until(lambda: not shm_entries([worker]), f"{prefix}* to be unlinked")
    assert pool.submit(getpid).result(timeout=WAIT) != worker
    pool.shutdown(wait=True)
    assert not shm_entries([worker, os.getpid()])


@pytest.mark.timeout(300)
def test_worker_killed_while_a_large_argument_streams_in(native_ppool):
    pool = native_ppool(1)
    worker = pool.submit(getpid).result(timeout=WAIT)
    data = os.urandom(8 << 20) * 32                     # 256 MiB
    killer = threading.Timer(0.02, os.kill, (worker, signal.SIGKILL))
    killer.start()
    fut = pool.submit(length, data)
    killer.join()
    exc = fut.exception(timeout=WAIT)
    # killed while reading it (WorkerDied) or before claiming it (it ran on
    # the replacement)
    assert exc is None and fut.result() == len(data) or type(exc) is WorkerDied
    assert pool.submit(length, data).result(timeout=WAIT) == len(data)
    assert not pool._broken
    pool.shutdown(wait=True)
    assert not shm_entries([worker, os.getpid()])
