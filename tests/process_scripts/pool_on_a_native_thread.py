"""A process pool made on a native_exec thread-pool worker: its workers are
forked from a thread threading did not start, and still leave cleanly,
running their finalizers.  Usage: pool_on_a_native_thread.py LOG; prints
one JSON line with the pids that ran the tasks."""

import json
import multiprocessing.util
import os
import sys

import native_exec

LOG = sys.argv[1]


def note(what):
    with open(LOG, "a") as f:
        f.write("%s %d\n" % (what, os.getpid()))


def init():
    init.keep = type("Kept", (), {})()
    multiprocessing.util.Finalize(init.keep, note, ("worker-finalizer",), exitpriority=1)


def task(i):
    return os.getpid()


def use_a_pool():
    with native_exec.ProcessPoolExecutor(2, initializer=init) as pool:
        return sorted(set(pool.map(task, range(8))))


if __name__ == "__main__":
    with native_exec.ThreadPoolExecutor(1) as threads:
        pids = threads.submit(use_a_pool).result(timeout=60)
    print(json.dumps({"workers": pids}), flush=True)
