"""native_exec: Python's executors, reimplemented natively.

``await native_exec.to_thread(fn)`` does what ``asyncio.to_thread(fn)`` does,
on a pool of pthreads that wait with the GIL released and keep one thread
state each; ``ThreadPoolExecutor`` is a drop-in for the stdlib class.
"""

from ._native import to_thread
from ._future import NativeFuture
from ._thread import ThreadPoolExecutor

__all__ = ["NativeFuture", "ThreadPoolExecutor", "to_thread"]
__version__ = "0.1.0"
