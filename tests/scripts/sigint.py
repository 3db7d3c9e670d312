"""Ctrl-C while asyncio.run(main()) awaits to_thread(time.sleep, 1).

    python sigint.py IMPL

Prints "started" once the call runs in its worker (the test then sends
SIGINT), and "finished" when the sleep ends.
"""

import asyncio
import sys
import time

from impls import select

to_thread, _ = select(sys.argv[1])


def sleep_in_worker():
    print("started", flush=True)
    time.sleep(1)
    print("finished", flush=True)


async def main():
    await to_thread(sleep_in_worker)
    print("main returned", flush=True)


asyncio.run(main())
print("after asyncio.run", flush=True)
