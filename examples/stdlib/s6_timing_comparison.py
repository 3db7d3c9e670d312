import asyncio
import time


def sync_call(i: int) -> str:
    time.sleep(1.0)
    return f"call-{i}"


async def async_call(i: int) -> str:
    await asyncio.sleep(1.0)
    return f"call-{i}"


async def main() -> None:
    N = 5

    # Sequential (blocking)
    start = time.perf_counter()
    for i in range(N):
        sync_call(i)
    print(f"Sequential:  {time.perf_counter() - start:.2f}s")

    # Threaded (concurrent blocking)
    start = time.perf_counter()
    await asyncio.gather(*(asyncio.to_thread(sync_call, i) for i in range(N)))
    print(f"Threaded:    {time.perf_counter() - start:.2f}s")

    # Pure async (concurrent non-blocking)
    start = time.perf_counter()
    await asyncio.gather(*(async_call(i) for i in range(N)))
    print(f"Pure async:  {time.perf_counter() - start:.2f}s")


if __name__ == "__main__":
    asyncio.run(main())
