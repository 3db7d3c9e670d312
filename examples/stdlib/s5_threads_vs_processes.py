import asyncio
import time
from concurrent.futures import ProcessPoolExecutor


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
    await asyncio.gather(*(asyncio.to_thread(blocking_io, d) for d in delays))
    print(f"Blocking I/O in threads:    {time.perf_counter() - start:.2f}s (4 x 1s at once = ~1s)")

    # CPU-bound: one after another, then in threads, then in processes
    start = time.perf_counter()
    counts = [count_primes(n) for n in numbers]
    print(f"CPU-bound, sequential:      {time.perf_counter() - start:.2f}s")

    start = time.perf_counter()
    await asyncio.gather(*(asyncio.to_thread(count_primes, n) for n in numbers))
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
            *(asyncio.to_thread(blocking_io, d) for d in delays),
            *(loop.run_in_executor(pool, count_primes, n) for n in numbers),
        )
        print(f"Mixed, threads + processes: {time.perf_counter() - start:.2f}s (~1s: the CPU work hides behind the I/O)")

    print(f"Primes up to {numbers[0]:,}..{numbers[-1]:,}: {counts}")


if __name__ == "__main__":
    asyncio.run(main())
