import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # examples/, for blocking_code
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
    # Run all calls via asyncio.to_thread concurrently
    await asyncio.gather(*(asyncio.to_thread(simulate_io_operation_sync, delay=d) for d in delays))
    print(f"Threaded: {time.perf_counter() - start:.2f}s")


if __name__ == "__main__":
    asyncio.run(main())
