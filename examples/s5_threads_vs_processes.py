# Tutorial section 5's table, row by row, on native_exec:
# stdlib/s5_threads_vs_processes.py with asyncio.to_thread replaced by
# native_exec.to_thread and the ProcessPoolExecutor import swapped (lines
# marked below).  The native pool is a drop-in, so loop.run_in_executor takes
# it unchanged.  Its workers are forked on demand from a single-threaded
# zygote, itself forked when the pool is created (so after count_primes is
# defined), not from this process and the threads to_thread has started in it.
import asyncio
import time

import native_exec  # native_exec
from native_exec import ProcessPoolExecutor  # native_exec


def blocking_io(delay: float) -> str:
    """Blocking I/O (HTTP, file, DB): waits without holding the GIL."""
    time.sleep(delay)
    return f"io done after {delay}s"


async def async_io(delay: float) -> str:
    """Already async (httpx, aiohttp): never blocks the event loop."""
    await asyncio.sleep(delay)
    return f"io done after {delay}s"


def count_primes(n: int) -> int:
    """CPU-bound (math, parsing, compression): holds the GIL while it runs."""
    count = 0
    for num in range(2, n + 1):
        if all(num % i != 0 for i in range(2, int(num ** 0.5) + 1)):
            count += 1
    return count


async def main() -> None:
    loop = asyncio.get_running_loop()
    delays = [1.0, 1.0, 1.0, 1.0]
    numbers = [50_000, 60_000, 70_000, 80_000]

    # Blocking I/O: to_thread, since I/O releases the GIL
    start = time.perf_counter()
    await asyncio.gather(*(native_exec.to_thread(blocking_io, d) for d in delays))  # native_exec
    print(f"Blocking I/O in threads:    {time.perf_counter() - start:.2f}s (4 x 1s at once = ~1s)")

    # CPU-bound: one after another, then in threads, then in processes
    start = time.perf_counter()
    counts = [count_primes(n) for n in numbers]
    print(f"CPU-bound, sequential:      {time.perf_counter() - start:.2f}s")

    start = time.perf_counter()
    await asyncio.gather(*(native_exec.to_thread(count_primes, n) for n in numbers))  # native_exec
    print(f"CPU-bound in threads:       {time.perf_counter() - start:.2f}s (the GIL: no faster)")

    with ProcessPoolExecutor() as pool:
        start = time.perf_counter()
        counts = await asyncio.gather(*(loop.run_in_executor(pool, count_primes, n) for n in numbers))
        print(f"CPU-bound in processes:     {time.perf_counter() - start:.2f}s (true parallelism)")

        # Already async: neither, just await
        start = time.perf_counter()
        await asyncio.gather(*(async_io(d) for d in delays))
        print(f"Already async, just await:  {time.perf_counter() - start:.2f}s (4 x 1s at once = ~1s)")

        # Mixed I/O + CPU: threads for I/O, processes for CPU
        start = time.perf_counter()
        await asyncio.gather(
            *(native_exec.to_thread(blocking_io, d) for d in delays),  # native_exec
            *(loop.run_in_executor(pool, count_primes, n) for n in numbers),
        )
        print(f"Mixed, threads + processes: {time.perf_counter() - start:.2f}s (~1s: the CPU work hides behind the I/O)")

    print(f"Primes up to {numbers[0]:,}..{numbers[-1]:,}: {counts}")


if __name__ == "__main__":
    asyncio.run(main())
