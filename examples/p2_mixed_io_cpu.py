# Practice problem 2 on native_exec: stdlib/p2_mixed_io_cpu.py with the
# ProcessPoolExecutor import swapped (line marked below); run_in_executor takes
# the native pool unchanged (`pool.run(count_primes, n)` would do as well).
# count_primes is defined before the pool is created, whose zygote forks the
# workers, so they have it.
import asyncio
import time
from native_exec import ProcessPoolExecutor  # native_exec


def count_primes(n: int) -> int:
    count = 0
    for num in range(2, n + 1):
        if all(num % i != 0 for i in range(2, int(num ** 0.5) + 1)):
            count += 1
    return count


async def simulate_io(delay: float) -> str:
    await asyncio.sleep(delay)
    return f"io done after {delay}s"


async def main() -> None:
    loop = asyncio.get_running_loop()
    start = time.perf_counter()

    # Run both I/O and CPU tasks concurrently:
    # asyncio.gather with create_task for I/O
    # and run_in_executor for CPU
    delays = [1.0, 2.0]
    numbers = [50_000, 60_000, 70_000, 80_000]
    with ProcessPoolExecutor() as pool:
        io_tasks = [asyncio.create_task(simulate_io(d)) for d in delays]
        cpu_futures = [loop.run_in_executor(pool, count_primes, n) for n in numbers]
        results = await asyncio.gather(*io_tasks, *cpu_futures)

    for r in results[:len(delays)]:
        print(f"  {r}")
    for n, r in zip(numbers, results[len(delays):]):
        print(f"  Primes up to {n:,}: {r}")

    print(f"Total: {time.perf_counter() - start:.2f}s")


if __name__ == "__main__":
    asyncio.run(main())
