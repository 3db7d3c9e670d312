# Tutorial section 4.2 on native_exec: stdlib/s4_2_process_pool.py with the
# ProcessPoolExecutor import swapped (line marked below).  The native pool is a
# drop-in, so loop.run_in_executor takes it unchanged; on this pool,
# `pool.run(count_primes, n)` is the faster asyncio path and returns an
# awaitable that asyncio.as_completed accepts in place of run_in_executor's,
# and `native_exec.to_process(count_primes, n)` needs no pool of one's own.
# Creating the pool forks the zygote that its workers are forked from, so
# count_primes must be defined before the pool is created, as it is here.
import asyncio
import time
from native_exec import ProcessPoolExecutor  # native_exec


def count_primes(n: int) -> int:
    count = 0
    for num in range(2, n + 1):
        if all(num % i != 0 for i in range(2, int(num ** 0.5) + 1)):
            count += 1
    return count


async def main() -> None:
    loop = asyncio.get_running_loop()
    numbers = [50_000, 60_000, 70_000, 80_000]

    start = time.perf_counter()

    with ProcessPoolExecutor() as pool:
        futures = [loop.run_in_executor(pool, count_primes, n) for n in numbers]

        for n, coro in zip(numbers, asyncio.as_completed(futures)):
            result = await coro
            print(f"  Primes up to {n:,}: {result}")

    elapsed = time.perf_counter() - start
    print(f"Total: {elapsed:.2f}s")


if __name__ == "__main__":
    asyncio.run(main())
