import asyncio
import time
from concurrent.futures import ProcessPoolExecutor


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
