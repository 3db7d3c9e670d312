"""native_exec's workers start on demand, as the stdlib's do with start
methods other than fork: calls made one after another need one worker."""

from __future__ import annotations

import pytest

from process_fixtures import WAIT, getpid, native_ppool  # noqa: F401  (fixtures)

pytestmark = pytest.mark.timeout(180)


def test_one_task_at_a_time_needs_one_worker(native_ppool):
    # Workers start on demand, as the stdlib's do with other start methods:
    # calls made one after another find the worker that served the last one
    # idle (whether asleep or still awake), and never start a second.
    pool = native_ppool(4)
    pids = {pool.submit(getpid).result(timeout=WAIT) for _ in range(300)}
    assert len(pids) == 1
    assert len(pool._stats()["worker_pids"]) == 1
