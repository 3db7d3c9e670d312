"""Creates a native pool, starts two long tasks, prints the zygote's and
the workers' pids as one JSON line, then waits to be killed.

Usage: parent_killed.py MARKER_DIR
"""

import glob
import json
import os
import sys
import time

import native_exec


def long_task(marker_dir):
    with open(os.path.join(marker_dir, "started-%d" % os.getpid()), "w"):
        pass
    time.sleep(300)
    return os.getpid()


def main():
    marker_dir = sys.argv[1]
    pool = native_exec.ProcessPoolExecutor(2)
    futs = [pool.submit(long_task, marker_dir) for _ in range(2)]
    deadline = time.monotonic() + 60
    while len(glob.glob(os.path.join(marker_dir, "started-*"))) < 2:
        if time.monotonic() > deadline:
            sys.exit("the tasks never started")
        time.sleep(0.005)
    stats = pool._stats()
    print(json.dumps({"parent": os.getpid(), "zygote": stats["zygote_pid"],
                      "workers": stats["worker_pids"]}), flush=True)
    time.sleep(300)
    print(futs)


if __name__ == "__main__":
    main()
