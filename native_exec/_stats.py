"""``PoolStats``: the snapshot both pools' ``stats()`` return."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class PoolStats:
    """What a pool has done so far, and what it is doing now.

    Counts since the pool was created: ``submitted`` calls; of those that
    ended, ``completed`` (returned), ``failed`` (raised, could not be
    pickled, or lost with their worker: ``timeouts`` of them by the
    process pool's ``task_timeout``) and ``cancelled``.  Now: ``queued``
    (accepted, no worker has taken them yet) and ``running``.  Workers:
    ``workers_alive`` now, ``workers_started`` in all, ``worker_deaths``
    (process workers that died by themselves), ``recycled`` (process
    workers replaced at ``max_tasks_per_child`` or ``max_memory_per_child``).

    ``queue_wait_*`` (from submit to a worker taking the call) and
    ``run_time_*`` (from then to its outcome) are the median and 99th
    percentile, in seconds, over the last 1,024 calls that returned or
    raised; None before the first.  Cheap to take: a progress bar may
    call ``stats()`` many times a second.
    """

    submitted: int
    queued: int
    running: int
    completed: int
    failed: int
    cancelled: int
    workers_alive: int
    workers_started: int
    worker_deaths: int
    timeouts: int
    recycled: int
    queue_wait_p50: Optional[float]
    queue_wait_p99: Optional[float]
    run_time_p50: Optional[float]
    run_time_p99: Optional[float]

    @property
    def done(self) -> int:
        """Calls that have ended, however they did."""
        return self.completed + self.failed + self.cancelled
