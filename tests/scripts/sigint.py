"""Ctrl-C while the main thread waits for a worker.

    python sigint.py IMPL MODE

MODE to_thread: asyncio.run(main()) awaits to_thread(time.sleep, 1) (with a
print around the sleep); shutdown: the main thread is in
pool.shutdown(wait=True); result: it is in future.result().  Prints
"started" once the call runs in its worker and "waiting" just before the
main thread waits (the test then sends SIGINT), and "finished" when the
sleep ends.
"""

import asyncio
import os
import sys
import time

from impls import select

to_thread, ThreadPoolExecutor = select(sys.argv[1])
mode = sys.argv[2]


def say(text):
    os.write(1, (text + "\n").encode())  # whole lines, from any thread


def sleep_in_worker():
    say("started")
    time.sleep(1)
    say("finished")


if mode == "to_thread":
    async def main():
        fut = asyncio.ensure_future(to_thread(sleep_in_worker))
        await asyncio.sleep(0)
        say("waiting")
        await fut
        say("main returned")

    asyncio.run(main())
    say("after asyncio.run")

elif mode in ("shutdown", "result"):
    pool = ThreadPoolExecutor(1)
    fut = pool.submit(sleep_in_worker)
    say("waiting")
    if mode == "shutdown":
        pool.shutdown(wait=True)
    else:
        fut.result()
    say("main returned")

else:
    raise SystemExit(f"unknown mode {mode!r}")
