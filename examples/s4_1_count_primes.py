# Tutorial section 4.1, unchanged: count_primes (in blocking_code.py, as the
# tutorial suggests) timed one call after another on the event loop's thread.
# There is no executor here, so there is nothing to swap for native_exec: this
# is the baseline that s4_2_process_pool.py runs in a process pool.
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # examples/, for blocking_code
from blocking_code import count_primes


async def main() -> None:
    numbers = [50_000, 60_000, 70_000, 80_000]

    start = time.perf_counter()

    # No pool yet: each call runs on the event loop's thread, one after
    # another, and nothing else runs until it returns
    for n in numbers:
        result = count_primes(n)
        print(f"  Primes up to {n:,}: {result}")

    elapsed = time.perf_counter() - start
    print(f"Total: {elapsed:.2f}s")


if __name__ == "__main__":
    asyncio.run(main())
