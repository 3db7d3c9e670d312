# Tutorial section 1, unchanged: there is no executor here yet, so there is
# nothing to swap for native_exec.  This program shows the problem; the fix,
# `await native_exec.to_thread(blocking_io)`, is in s2_1_to_thread_basic.py.
import asyncio
import time


def blocking_io() -> str:
    """Simulates a blocking I/O call (e.g., requests.get, file read)."""
    time.sleep(2.0)  # blocks the entire event loop!
    return "blocking result"


async def async_task(name: str) -> None:
    print(f"[{name}] started")
    await asyncio.sleep(1.0)
    print(f"[{name}] finished")


async def main() -> None:
    start = time.perf_counter()

    # BAD: blocking_io() freezes the event loop
    # async_task won't run concurrently!
    result = blocking_io()
    await async_task("A")

    elapsed = time.perf_counter() - start
    print(f"Total: {elapsed:.2f}s (should be ~2s but is ~3s because of blocking)")


if __name__ == "__main__":
    asyncio.run(main())
