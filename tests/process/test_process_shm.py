"""native_exec's shared memory: pools created in overlapping threads keep
their own regions, and no /dev/shm segment is left after payloads larger
than the region or the arena."""

from __future__ import annotations

import os
import threading
import time
import zlib

import pytest

from process_fixtures import (  # noqa: F401  (fixtures)
    WAIT, blocked, getpid, markers, native_ppool, open_gate, pool_family, run_script,
    shm_entries, wait_started, wait_until)

pytestmark = pytest.mark.timeout(180)


MiB = 1 << 20


def zeros(n):
    return bytes(n)


def crc(data):
    return len(data), zlib.crc32(data)


def test_pools_created_in_overlapping_threads_keep_their_regions():
    proc = run_script("overlapping_pool_creations.py", timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["first", "100000", "second", "100000"], proc.stderr


class ShmWatcher:
    """Records the /dev/shm entries of the given processes seen meanwhile."""

    def __init__(self, pids):
        self.pids = pids
        self.seen = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.seen |= shm_entries(self.pids)
            time.sleep(0.0005)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


@pytest.mark.timeout(300)
def test_no_shm_left_after_a_result_larger_than_the_region(native_ppool):
    pool = native_ppool(1)
    worker = pool.submit(getpid).result(timeout=WAIT)
    ours = pool_family(pool) | {worker}
    with ShmWatcher(ours) as watcher:
        out = pool.submit(zeros, 300 * MiB).result(timeout=120)
    assert len(out) == 300 * MiB and out == bytes(300 * MiB)
    del out
    assert watcher.seen, "the 300 MiB result never went through a named segment"
    assert all(e.startswith("/dev/shm/native_exec-%d-" % worker) for e in watcher.seen)
    wait_until(lambda: not shm_entries(ours), "the result's segment to be unlinked")
    assert pool.submit(getpid).result(timeout=WAIT) == worker
    pool.shutdown(wait=True)
    assert shm_entries(ours) == set()


@pytest.mark.timeout(300)
def test_no_shm_left_after_arguments_larger_than_the_arena(native_ppool, markers):
    # The worker is kept busy while 256 MiB arguments queue up; once the
    # argument area is full, the next goes to a named segment.  One of those
    # is cancelled (the parent unlinks it), another is read by the worker
    # (which unlinks it).
    pool = native_ppool(1)
    busy = pool.submit(blocked, markers, "busy")
    wait_started(markers, 1)
    ours = pool_family(pool)
    assert not shm_entries(ours)
    data = bytes(range(256)) * (MiB // 256) * 256
    queued = []
    while not shm_entries([os.getpid()]):
        if len(queued) == 6:
            pytest.fail("six queued 256 MiB arguments and none in a named segment")
        queued.append(pool.submit(crc, data))
    victim = queued.pop()
    assert victim.cancel() is True
    assert not shm_entries(ours), "a cancelled task's segment was left behind"
    queued.append(pool.submit(crc, data))
    assert shm_entries([os.getpid()]), "the next argument did not go to a named segment"
    open_gate(markers)
    expected = crc(data)
    assert busy.result(timeout=WAIT)[0] == "busy"
    assert [f.result(timeout=120) for f in queued] == [expected] * len(queued)
    wait_until(lambda: not shm_entries(ours), "read segments to be unlinked")
    pool.shutdown(wait=True)
    assert shm_entries(ours) == set()
