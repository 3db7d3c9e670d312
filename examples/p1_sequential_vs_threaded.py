# Practice problem 1 on native_exec: stdlib/p1_sequential_vs_threaded.py with
# asyncio.to_thread replaced by native_exec.to_thread (lines marked below).
import asyncio
import sys
import time
from pathlib import Path

import native_exec  # native_exec

sys.path.insert(0, str(Path(__file__).resolve().parent))  # examples/, for blocking_code
from blocking_code import simulate_io_operation_sync


async def main() -> None:
    delays = [1.0, 1.0, 1.0, 1.0]

    # Sequential
    start = time.perf_counter()
    for d in delays:
        simulate_io_operation_sync(delay=d)
    print(f"Sequential: {time.perf_counter() - start:.2f}s")

    # Threaded
    start = time.perf_counter()
    # Run all calls via native_exec.to_thread concurrently
    await asyncio.gather(*(native_exec.to_thread(simulate_io_operation_sync, delay=d) for d in delays))  # native_exec
    print(f"Threaded: {time.perf_counter() - start:.2f}s")


if __name__ == "__main__":
    asyncio.run(main())
