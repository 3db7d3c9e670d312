"""Blocking and CPU-bound helpers that the practice problems import.

``simulate_io_operation_sync`` stands for a blocking call (``requests.get``,
a file read, a database driver); ``simulate_io_operation`` is its non-blocking
twin; ``count_primes`` is tutorial section 4.1's CPU-heavy function.
"""

import asyncio
import time


def simulate_io_operation_sync(delay: float = 1.0) -> str:
    """Block the calling thread for ``delay`` seconds, as blocking I/O does."""
    time.sleep(delay)
    return f"io done after {delay}s"


async def simulate_io_operation(delay: float = 1.0) -> str:
    """Wait ``delay`` seconds without blocking the event loop."""
    await asyncio.sleep(delay)
    return f"io done after {delay}s"


def count_primes(n: int) -> int:
    """Count primes up to n (CPU-heavy)."""
    count = 0
    for num in range(2, n + 1):
        if all(num % i != 0 for i in range(2, int(num ** 0.5) + 1)):
            count += 1
    return count
