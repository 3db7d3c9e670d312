"""Measures what one workload of native_exec's process pool leaves behind in
this (parent) process, so that nothing else in a test run moves the numbers.

Usage: leak_process.py WORKLOAD

Prints one JSON object: {"base": sample, "after": sample, "samples": [...],
"checks": {...}} where a sample holds rss, vms, fds, threads, objects
(gc-tracked), children (pids) and shm (native_exec /dev/shm entries).
"""

import concurrent.futures
import gc
import glob
import json
import os
import sys
import time
import zlib

import psutil

import native_exec

MiB = 1 << 20
ME = psutil.Process()
#: This process and every worker seen: only their /dev/shm entries count
#: (other test runs on the machine may have their own).
OURS = {os.getpid()}


def note_pids(pool):
    stats = pool._stats()
    OURS.update(stats["worker_pids"])


def square(x):
    return x * x


def crc(data):
    return len(data), zlib.crc32(data)


def worker_pid():
    return os.getpid()


def zeros(n):
    return bytes(n)


def sample():
    gc.collect()
    mem = ME.memory_info()
    return {"rss": mem.rss, "vms": mem.vms, "fds": len(os.listdir("/proc/self/fd")),
            "threads": ME.num_threads(), "objects": len(gc.get_objects()),
            "children": sorted(c.pid for c in ME.children(recursive=True)),
            "shm": sorted(e for e in glob.glob("/dev/shm/native_exec-*")
                          if int(e.split("-")[-2]) in OURS)}


def settle(base, timeout=30.0):
    """Give exiting threads and processes a moment: sample until the counts
    are back to base or the time is up."""
    deadline = time.monotonic() + timeout
    while True:
        now = sample()
        if (now["fds"] <= base["fds"] and now["threads"] <= base["threads"]
                and set(now["children"]) <= set(base["children"])) \
                or time.monotonic() > deadline:
            return now
        time.sleep(0.01)


def batch(pool, fn, args):
    futs = [pool.submit(fn, a) for a in args]
    done, not_done = concurrent.futures.wait(futs, timeout=120)
    assert not not_done, "%d futures never completed" % len(not_done)
    return [f.result(timeout=0) for f in futs]


# ------------------------------------------------------- workloads

def small_tasks(pool, rounds):
    for _ in range(rounds):
        assert batch(pool, square, range(1000)) == [i * i for i in range(1000)]


def one_by_one(pool, n):
    for i in range(n):
        assert pool.submit(square, i).result(timeout=60) == i * i


def fresh_arguments(size, checks):
    def run(pool, n):
        kept = 0
        for _ in range(n):
            data = os.urandom(size)          # a fresh object each time
            before = sys.getrefcount(data)
            fut = pool.submit(crc, data)
            assert fut.result(timeout=60) == crc(data)
            del fut
            kept += sys.getrefcount(data) != before
        checks["arguments_still_referenced"] = checks.get("arguments_still_referenced", 0) + kept
    return run


def arguments_in_flight(pool, rounds):
    for _ in range(rounds):
        data = [os.urandom(MiB) for _ in range(20)]
        assert batch(pool, crc, data) == [crc(b) for b in data]


def large_results(pool, n):
    for _ in range(n):
        out = pool.submit(zeros, MiB).result(timeout=60)
        assert len(out) == MiB


WORKLOADS = {
    # name: (max_workers, run, warm-up count, measured count)
    "small": (2, small_tasks, 4, 20),                 # 20,000 tasks
    "one_by_one": (1, one_by_one, 2000, 10000),
    "args_1m": (2, None, 20, 200),                    # 200 x 1 MiB arguments
    "args_8m": (2, None, 10, 40),                     # streamed arguments
    "args_in_flight": (2, arguments_in_flight, 1, 10),  # 10 x 20 x 1 MiB
    "results_1m": (2, large_results, 10, 200),
}


def pool_workload(name, checks):
    workers, run, warmup, count = WORKLOADS[name]
    if name == "args_1m":
        run = fresh_arguments(MiB, checks)
    elif name == "args_8m":
        run = fresh_arguments(8 * MiB, checks)
    with native_exec.ProcessPoolExecutor(workers) as pool:
        run(pool, warmup)
        note_pids(pool)
        base = sample()
        samples = []
        for _ in range(4):
            run(pool, count // 4)
            note_pids(pool)
            samples.append(sample()["rss"])
        after = sample()
    return base, after, samples


def pools_workload(name):
    def used(i):
        with native_exec.ProcessPoolExecutor(2) as pool:
            futs = [pool.submit(square, j) for j in range(10)]
            assert [f.result(timeout=60) for f in futs] == [j * j for j in range(10)]
        assert pool._stats()["zygote_pid"] == 0

    def unused(i):
        native_exec.ProcessPoolExecutor(4).shutdown(wait=True)

    def dropped(i):
        pool = native_exec.ProcessPoolExecutor(2)
        assert pool.submit(square, i).result(timeout=60) == i * i
        del pool

    data = os.urandom(8 * MiB)

    def large(i):
        with native_exec.ProcessPoolExecutor(1) as pool:
            OURS.add(pool.submit(worker_pid).result(timeout=60))
            assert pool.submit(crc, data).result(timeout=60) == crc(data)
            assert len(pool.submit(zeros, 8 * MiB).result(timeout=60)) == 8 * MiB

    make, count = {"pools_used": (used, 50), "pools_unused": (unused, 50),
                   "pools_dropped": (dropped, 20), "pools_large": (large, 50)}[name]
    before = sample()
    make(-1)  # what is made once per process exists from here on
    # A dropped pool's collector thread leaves, unmapping the pool's region
    # first, some time after make() returns: the base waits for it, or the
    # last pool's region could be missed at the end.
    base = settle(before)
    samples = []
    for i in range(count):
        make(i)
        if i % 10 == 9:
            samples.append(sample()["rss"])
    return base, settle(base), samples


def main():
    name = sys.argv[1]
    checks = {}
    if name.startswith("pools_"):
        base, after, samples = pools_workload(name)
    else:
        base, after, samples = pool_workload(name, checks)
    print(json.dumps({"base": base, "after": after, "samples": samples, "checks": checks}))


if __name__ == "__main__":
    main()
