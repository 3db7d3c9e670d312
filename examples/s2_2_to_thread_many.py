# Tutorial section 2.2 on native_exec: stdlib/s2_2_to_thread_many.py with
# asyncio.to_thread replaced by native_exec.to_thread (lines marked below).
import asyncio
import time

import native_exec  # native_exec


def sync_api_call(endpoint: str, delay: float) -> dict:
    """Simulates a blocking HTTP call."""
    time.sleep(delay)
    return {"endpoint": endpoint, "delay": delay, "status": "ok"}


async def main() -> None:
    start = time.perf_counter()

    # All 3 blocking calls run in separate threads concurrently
    results = await asyncio.gather(
        native_exec.to_thread(sync_api_call, "/users", 1.0),  # native_exec
        native_exec.to_thread(sync_api_call, "/posts", 1.5),  # native_exec
        native_exec.to_thread(sync_api_call, "/comments", 2.0),  # native_exec
    )

    elapsed = time.perf_counter() - start
    for r in results:
        print(f"  {r}")
    print(f"Total: {elapsed:.2f}s (should be ~2s, not 4.5s)")


if __name__ == "__main__":
    asyncio.run(main())
