"""Memory across many to_thread and submit calls.

    python leak_thread.py IMPL [N [WARMUP]]

Warms up with WARMUP calls of each kind (twice), then makes N to_thread calls (awaited in gather batches) and N
submit calls (waited for in batches), and prints as JSON the count of
gc-tracked objects and the RSS after the warm-up and after each phase.
"""

import asyncio
import gc
import json
import sys

import psutil

from impls import select

impl = sys.argv[1]
N = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
WARMUP = int(sys.argv[3]) if len(sys.argv) > 3 else 10_000
BATCH = 1000
to_thread, ThreadPoolExecutor = select(impl)
process = psutil.Process()


def work(i, key=None):
    return i


async def to_thread_phase(n):
    for start in range(0, n, BATCH):
        results = await asyncio.gather(*(to_thread(work, i, key=i)
                                         for i in range(start, start + BATCH)))
        assert results[-1] == start + BATCH - 1


def submit_phase(pool, n):
    for start in range(0, n, BATCH):
        futs = [pool.submit(work, i, key=i) for i in range(start, start + BATCH)]
        assert [f.result() for f in futs][-1] == start + BATCH - 1
        del futs


def measure():
    for _ in range(3):
        gc.collect()
    return {"objects": len(gc.get_objects()), "rss": process.memory_info().rss}


pool = ThreadPoolExecutor(4)
# One loop for the whole run; the stdlib's to_thread uses its default
# executor, which lives as long as the loop, as native_exec's pool does.
loop = asyncio.new_event_loop()


def to_thread_in_loop(n):
    loop.run_until_complete(to_thread_phase(n))


# Warm-up: every code path at full size, so caches and free lists settle.
for _ in range(2):
    to_thread_in_loop(WARMUP)
    submit_phase(pool, WARMUP)

out = {"impl": impl, "n": N, "after_warmup": measure()}
to_thread_in_loop(N)
out["after_to_thread"] = measure()
submit_phase(pool, N)
out["after_submit"] = measure()
pool.shutdown()
loop.run_until_complete(loop.shutdown_default_executor())
loop.close()
print(json.dumps(out))
