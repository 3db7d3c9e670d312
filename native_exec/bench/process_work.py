"""Functions the process scenarios run in worker processes.

Every pool pickles a function by reference (module and name), so these are
module-level functions of an importable module: the fork-based pools find
them already imported, loky's fresh interpreters import this module.  Nothing
here imports native_exec or anything heavy.
"""

from __future__ import annotations

import os
import time
from typing import Dict, Tuple

_BLOBS: Dict[int, bytes] = {}


def identity(i: int) -> int:
    """The smallest task: one small argument, one small result."""
    return i


def length(data: bytes) -> int:
    """Takes a (large) argument, returns a small result."""
    return len(data)


def make_blob(size: int) -> bytes:
    """``size`` bytes that are not all zeros (zero pages would flatter copies).

    Made once per process and kept, so a task that returns one measures the
    trip back, not building it.
    """
    blob = _BLOBS.get(size)
    if blob is None:
        blob = _BLOBS[size] = pattern_bytes(size)
    return blob


def pattern_bytes(size: int) -> bytes:
    """``size`` bytes counting 0..255 over and over; not kept."""
    pattern = bytes(range(256))
    return pattern * (size // 256) + pattern[:size % 256]


def blob(size: int) -> bytes:
    """Takes a small argument, returns ``size`` bytes (made once per worker)."""
    return make_blob(size)


def warm(seconds: float, sizes: Tuple[int, ...] = ()) -> int:
    """Warm-up task: make the blobs of ``sizes``, hold the worker a while, say who ran.

    Sleeping keeps this worker busy, so the other warm-up tasks submitted with
    it go to the other workers.
    """
    for size in sizes:
        make_blob(size)
    time.sleep(seconds)
    return os.getpid()


# Tutorial section 4.1's function, character for character the one in
# examples/blocking_code.py (copied so that the benchmark does not depend on
# examples/; tests/test_bench.py checks that the two stay the same).
def count_primes(n: int) -> int:
    """Count primes up to n (CPU-heavy)."""
    count = 0
    for num in range(2, n + 1):
        if all(num % i != 0 for i in range(2, int(num ** 0.5) + 1)):
            count += 1
    return count
