"""The shape of native_exec's ``ProcessPoolExecutor._stats()``."""

from __future__ import annotations

import pytest

from process_fixtures import (  # noqa: F401  (fixtures)
    WAIT, children_of_me, native_ppool, square, wait_until)

pytestmark = pytest.mark.timeout(180)


def test_stats_shape(native_ppool):
    pool = native_ppool(3)
    stats = pool._stats()
    assert set(stats) == {"worker_pids", "in_flight", "pending", "max_workers",
                          "zygote_pid", "shutdown", "broken"}
    assert stats["max_workers"] == 3 and stats["worker_pids"] == []
    assert stats["zygote_pid"] in children_of_me()
    assert stats["shutdown"] is False and stats["broken"] is None
    assert pool.submit(square, 2).result(timeout=WAIT) == 4
    # (the zygote may mark its new worker alive just after the task is done)
    wait_until(lambda: 1 <= len(pool._stats()["worker_pids"]) <= 3, "a live worker")
    pool.shutdown()
    stats = pool._stats()
    assert stats["shutdown"] is True and stats["zygote_pid"] == 0 and stats["worker_pids"] == []
