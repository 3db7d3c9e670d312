"""Which sanitizer this test run preloads, and what tests adjust for it.

CI runs the suite again with the extension built for AddressSanitizer and
libasan preloaded (.ci/run, .ci/sid-pythons), and the thread side's tests
with ThreadSanitizer (.ci/tsan).  Their allocators and interceptors change
what memory and time look like, never what the code must do: tests use
these flags to widen an allowance, not to skip a check.
"""

from __future__ import annotations

import os
from typing import Dict, Optional

_PRELOAD = os.environ.get("LD_PRELOAD", "")
ASAN = "libasan" in _PRELOAD
TSAN = "libtsan" in _PRELOAD


def without_quarantine() -> Optional[Dict[str, str]]:
    """Environment for a child that measures its RSS.

    Under ASan freed memory sits in a quarantine that grows the RSS; without
    it, reuse is immediate and RSS measures leaks again.
    """
    if not ASAN:
        return None
    options = os.environ.get("ASAN_OPTIONS", "")
    return {"ASAN_OPTIONS": ":".join(filter(None, [options, "quarantine_size_mb=0"]))}
