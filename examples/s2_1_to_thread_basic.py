# Tutorial section 2.1 on native_exec: stdlib/s2_1_to_thread_basic.py with
# asyncio.to_thread replaced by native_exec.to_thread (lines marked below).
import asyncio
import time
import threading

import native_exec  # native_exec


def blocking_io(delay: float) -> str:
    thread = threading.current_thread().name
    print(f"  [blocking_io] sleeping {delay}s in thread {thread}")
    time.sleep(delay)
    return f"result after {delay}s"


async def async_task(name: str) -> None:
    print(f"  [async] {name} started")
    await asyncio.sleep(1.0)
    print(f"  [async] {name} finished")


async def main() -> None:
    start = time.perf_counter()

    # Run blocking I/O in a thread AND async task concurrently
    results = await asyncio.gather(
        native_exec.to_thread(blocking_io, 2.0),  # native_exec
        async_task("A"),
    )

    elapsed = time.perf_counter() - start
    print(f"Total: {elapsed:.2f}s (should be ~2s, not 3s)")
    print(f"Blocking result: {results[0]}")


if __name__ == "__main__":
    asyncio.run(main())
