"""native_exec: Python's executors, reimplemented natively.

``await native_exec.to_thread(fn)`` does what ``asyncio.to_thread(fn)`` does,
on a pool of pthreads that wait with the GIL released and keep one thread
state each; ``ThreadPoolExecutor`` is a drop-in for the stdlib class.
``await native_exec.to_process(fn)`` and ``ProcessPoolExecutor`` run calls in
worker processes forked from a single-threaded zygote, exchanging tasks and
results through shared memory.
"""

from ._native import to_process, to_thread
from ._future import NativeFuture
from ._process import ProcessPoolExecutor
from ._errors import TaskTimeout, UnpicklingFailed, WorkerDied
from ._stats import PoolStats
from ._thread import ThreadPoolExecutor

__all__ = [
    "NativeFuture",
    "PoolStats",
    "ProcessPoolExecutor",
    "TaskTimeout",
    "ThreadPoolExecutor",
    "UnpicklingFailed",
    "WorkerDied",
    "to_process",
    "to_thread",
]
__version__ = "0.1.0"
