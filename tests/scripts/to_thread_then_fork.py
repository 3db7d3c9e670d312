"""asyncio.run() with to_thread calls, then fork: no thread may be left.

Prints "finished" if a call started but never awaited to the end finished
before asyncio.run() returned, then the thread count, then "forked" if a
fork with multi-threaded-fork DeprecationWarnings as errors succeeded."""

import asyncio
import os
import sys
import threading
import time
import warnings

import impls

to_thread, _ = impls.select(sys.argv[1])
done = []


def slow():
    time.sleep(0.2)
    done.append(1)


async def main():
    await asyncio.gather(*(to_thread(abs, -i) for i in range(8)))
    asyncio.ensure_future(to_thread(slow))   # started, never awaited
    await asyncio.sleep(0.01)


asyncio.run(main())
print("finished" if done else "unfinished")
print("threads=%d" % threading.active_count())
warnings.filterwarnings("error", category=DeprecationWarning)
pid = os.fork()
if pid == 0:
    os._exit(0)
os.waitpid(pid, 0)
print("forked")
