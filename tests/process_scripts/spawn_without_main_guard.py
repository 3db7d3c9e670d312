"""A pool with a spawn context made at module level, no __main__ guard."""
import multiprocessing

import native_exec


def square(x):
    return x * x


print("made", flush=True)
with native_exec.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
    print(pool.submit(square, 7).result(timeout=60), flush=True)
print("done", flush=True)
