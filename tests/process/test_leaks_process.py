"""Leaks in native_exec's process pool, seen from the parent: repeated
submits (20,000 small tasks; 200 x 1 MiB arguments; large results) keep its
RSS, gc-tracked objects and open file descriptors flat after a warm-up, and
release the arguments they pickled; creating and shutting down 50 pools
leaves no file descriptors, threads, child processes, address space or
/dev/shm segments behind.

Each workload runs in a subprocess (tests/process_scripts/leak_process.py)
so that nothing else in the test run moves the numbers."""

from __future__ import annotations

import json

import pytest

from process_fixtures import run_script
from sanitizers import ASAN, without_quarantine

pytestmark = pytest.mark.timeout(300)

MiB = 1 << 20

#: Leaking one future (with its condition and lock) per task adds about
#: 2 KB a task: 40 MB over 20,000 tasks.  ASan's allocator moves by a few
#: MB from one phase to the next, hence twice the room there.
MAX_RSS_GROWTH = (16 if ASAN else 8) * MiB
#: Leaking one 1 MiB payload per call adds 200 MiB over 200 calls.
MAX_RSS_GROWTH_LARGE = (64 if ASAN else 32) * MiB
#: One object leaked per task would add thousands.
MAX_NEW_OBJECTS = 300


def measure(workload):
    proc = run_script("leak_process.py", workload, timeout=280, env=without_quarantine())
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def check_flat(report, max_rss):
    base, after = report["base"], report["after"]
    growth = after["rss"] - base["rss"]
    assert growth <= max_rss, \
        f"RSS grew {growth / MiB:.1f} MiB (samples {[s // MiB for s in report['samples']]} MiB)"
    assert after["objects"] - base["objects"] <= MAX_NEW_OBJECTS, \
        f"{after['objects'] - base['objects']} more gc-tracked objects"
    assert after["fds"] <= base["fds"], f"open fds {base['fds']} -> {after['fds']}"


def test_20000_small_tasks_keep_the_parent_flat():
    check_flat(measure("small"), MAX_RSS_GROWTH)


def test_10000_tasks_one_by_one_keep_the_parent_flat():
    check_flat(measure("one_by_one"), MAX_RSS_GROWTH)


@pytest.mark.parametrize("workload", ["args_1m", "args_8m"])
def test_large_arguments_are_released(workload):
    report = measure(workload)
    assert report["checks"]["arguments_still_referenced"] == 0, \
        "the pool kept references to arguments of finished tasks"
    check_flat(report, MAX_RSS_GROWTH_LARGE)


def test_large_arguments_in_flight_together_are_released():
    check_flat(measure("args_in_flight"), MAX_RSS_GROWTH_LARGE)


def test_large_results_are_released():
    check_flat(measure("results_1m"), MAX_RSS_GROWTH_LARGE)


@pytest.mark.parametrize("workload", ["pools_used", "pools_unused", "pools_dropped",
                                      "pools_large"])
def test_many_pools_leave_nothing_behind(workload):
    report = measure(workload)
    base, after = report["base"], report["after"]
    assert after["fds"] <= base["fds"], f"open fds {base['fds']} -> {after['fds']}"
    assert after["threads"] <= base["threads"], f"threads {base['threads']} -> {after['threads']}"
    extra = set(after["children"]) - set(base["children"])
    assert not extra, f"child processes left: {sorted(extra)}"
    assert set(after["shm"]) - set(base["shm"]) == set()
    # each pool reserves over a GiB of address space: 50 kept would show
    assert after["vms"] - base["vms"] < 1 << 30, \
        f"{(after['vms'] - base['vms']) / MiB:.0f} MiB of address space kept"
    assert after["rss"] - base["rss"] <= MAX_RSS_GROWTH_LARGE
    assert after["objects"] - base["objects"] <= MAX_NEW_OBJECTS
