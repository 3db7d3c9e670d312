"""The two implementations the subprocess scripts run on, by name."""

import asyncio
import concurrent.futures
import warnings

# 3.12+ warns about fork() in a process with threads; the fork scripts do
# that on purpose.
warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*fork")


def select(name):
    """(to_thread, ThreadPoolExecutor) of "stdlib" or "native"."""
    if name == "native":
        import native_exec

        return native_exec.to_thread, native_exec.ThreadPoolExecutor
    if name == "stdlib":
        return asyncio.to_thread, concurrent.futures.ThreadPoolExecutor
    raise SystemExit(f"unknown implementation {name!r}")
