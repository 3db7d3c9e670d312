import asyncio
import time


def sync_api_call(endpoint: str, delay: float) -> dict:
    """Simulates a blocking HTTP call."""
    time.sleep(delay)
    return {"endpoint": endpoint, "delay": delay, "status": "ok"}


async def main() -> None:
    start = time.perf_counter()

    # All 3 blocking calls run in separate threads concurrently
    results = await asyncio.gather(
        asyncio.to_thread(sync_api_call, "/users", 1.0),
        asyncio.to_thread(sync_api_call, "/posts", 1.5),
        asyncio.to_thread(sync_api_call, "/comments", 2.0),
    )

    elapsed = time.perf_counter() - start
    for r in results:
        print(f"  {r}")
    print(f"Total: {elapsed:.2f}s (should be ~2s, not 4.5s)")


if __name__ == "__main__":
    asyncio.run(main())
