"""max_memory_per_child: a worker whose resident set is over the limit
after a call leaves before its next one; the call itself completes.

native_exec only (loky and billiard have the like).  The calls keep a
buffer alive in the worker, so its resident set grows by a known amount per
call; the limit is set between two and three calls' worth above what a
fresh worker of the same pool holds, so each worker serves exactly two.
"""

from __future__ import annotations

import os

import pytest

from native_exec import ProcessPoolExecutor
from process_fixtures import WAIT, native_ppool  # noqa: F401  (fixture)

pytestmark = pytest.mark.timeout(180)

MiB = 1 << 20
KEEP = 64 * MiB
_kept = []


def resident() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGESIZE")


def keep_buffer(_=None):
    """Hold KEEP more bytes, every page touched; return (pid, RSS after)."""
    buf = bytearray(KEEP)
    buf[::4096] = b"x" * (KEEP // 4096)  # touch every page, with no temporary copy
    _kept.append(buf)
    return os.getpid(), resident()


def fresh_worker_rss(native_ppool) -> int:
    pool = native_ppool(1)
    return pool.submit(resident).result(WAIT)


def test_a_worker_over_the_limit_is_replaced_before_its_next_call(native_ppool):
    limit = fresh_worker_rss(native_ppool) + KEEP + KEEP // 2
    pool = native_ppool(1, max_memory_per_child=limit)
    runs = [pool.submit(keep_buffer).result(WAIT) for _ in range(6)]
    pids = [pid for pid, _ in runs]
    # each worker served two calls: one under the limit, one over it
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4] == pids[5]
    assert len(set(pids)) == 3
    assert all(rss > limit for _, rss in runs[1::2])


def test_with_max_tasks_per_child_whichever_comes_first(native_ppool):
    limit = fresh_worker_rss(native_ppool) + KEEP + KEEP // 2
    pool = native_ppool(1, max_memory_per_child=limit, max_tasks_per_child=1)
    pids = [pool.submit(keep_buffer).result(WAIT)[0] for _ in range(3)]
    assert len(set(pids)) == 3


def test_workers_under_the_limit_stay(native_ppool):
    pool = native_ppool(1, max_memory_per_child=1 << 40)
    assert len({pool.submit(os.getpid).result(WAIT) for _ in range(100)}) == 1


@pytest.mark.parametrize("bad, error", [
    (0, ValueError), (-1, ValueError), (1 << 63, ValueError),
    (1.5, TypeError), ("1", TypeError), (True, TypeError),
])
def test_bad_max_memory_per_child_is_refused(bad, error):
    with pytest.raises(error, match="max_memory_per_child"):
        ProcessPoolExecutor(1, max_memory_per_child=bad)
