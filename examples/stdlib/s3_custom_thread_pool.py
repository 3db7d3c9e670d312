import asyncio
import time
from concurrent.futures import ThreadPoolExecutor


def blocking_download(url: str) -> str:
    time.sleep(1.0)
    return f"downloaded {url}"


async def main() -> None:
    loop = asyncio.get_running_loop()
    start = time.perf_counter()

    # Custom pool with max 3 threads
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="download") as pool:
        urls = [f"http://example.com/file{i}" for i in range(6)]

        # Schedule all downloads
        futures = [loop.run_in_executor(pool, blocking_download, url) for url in urls]

        # Print results as they complete
        for coro in asyncio.as_completed(futures):
            result = await coro
            print(f"  {result}")

    elapsed = time.perf_counter() - start
    print(f"Total: {elapsed:.2f}s (6 downloads, 3 at a time = ~2s)")


if __name__ == "__main__":
    asyncio.run(main())
