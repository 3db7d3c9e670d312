"""Creates a native pool of one worker, keeps it busy, queues 256 MiB
arguments until one no longer fits the shared argument area and goes to a
named /dev/shm segment, prints the parent's and zygote's pids and that
segment's path as one JSON line, then waits to be killed.

Usage: parent_killed_mid_payload.py MARKER_DIR
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


def size(data):
    return len(data)


def main():
    marker_dir = sys.argv[1]
    pool = native_exec.ProcessPoolExecutor(1)
    busy = pool.submit(long_task, marker_dir)
    deadline = time.monotonic() + 60
    while not glob.glob(os.path.join(marker_dir, "started-*")):
        if time.monotonic() > deadline:
            sys.exit("the task never started")
        time.sleep(0.005)
    data = bytes(256 << 20)
    ours = "/dev/shm/native_exec-%d-*" % os.getpid()
    queued = []
    while not glob.glob(ours):
        if len(queued) == 6:
            sys.exit("six queued 256 MiB arguments and none in a named segment")
        queued.append(pool.submit(size, data))
    print(json.dumps({"parent": os.getpid(), "zygote": pool._stats()["zygote_pid"],
                      "segments": glob.glob(ours)}), flush=True)
    time.sleep(300)
    print(busy, queued)


if __name__ == "__main__":
    main()
