# Tutorial section 6 on native_exec: stdlib/s6_timing_comparison.py with
# asyncio.to_thread replaced by native_exec.to_thread (lines marked below).
import asyncio
import time

import native_exec  # native_exec


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
    await asyncio.gather(*(native_exec.to_thread(sync_call, i) for i in range(N)))  # native_exec
    print(f"Threaded:    {time.perf_counter() - start:.2f}s")

    # Pure async (concurrent non-blocking)
    start = time.perf_counter()
    await asyncio.gather(*(async_call(i) for i in range(N)))
    print(f"Pure async:  {time.perf_counter() - start:.2f}s")


if __name__ == "__main__":
    asyncio.run(main())
