"""Uses a native pool (and the default pool of to_process) and exits
without shutting either down: prints the pids, one JSON line, first.
The interpreter must exit promptly and take every process with it."""

import asyncio
import json
import os
import sys

import native_exec


def square(x):
    return x * x


async def use_default():
    return await native_exec.to_process(square, 5)


def main():
    pool = native_exec.ProcessPoolExecutor(2)
    assert pool.submit(square, 4).result(timeout=60) == 16
    assert asyncio.run(use_default()) == 25
    never_used = native_exec.ProcessPoolExecutor(1)
    stats = pool._stats()
    print(json.dumps({"zygotes": [stats["zygote_pid"], never_used._stats()["zygote_pid"]],
                      "workers": stats["worker_pids"]}), flush=True)
    if "--pending" in sys.argv:
        # work still queued at exit finishes first, as with the stdlib
        futs = [pool.submit(square, i) for i in range(100)]
        print(json.dumps({"queued": len(futs)}), flush=True)


if __name__ == "__main__":
    main()
