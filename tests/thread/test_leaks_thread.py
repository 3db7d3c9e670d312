"""100,000 to_thread calls (in gather batches) and 100,000 submit calls
leave the number of gc-tracked objects and the RSS where they were after a
warm-up.  Run in a subprocess (tests/scripts/leak_thread.py), so that
nothing else in the process moves the numbers; the stdlib runs the same
program as a control that the tolerances are fair."""

from __future__ import annotations

import json

import pytest

from conftest import run_script
from sanitizers import ASAN, TSAN, without_quarantine


N = 100_000
#: A leak of one object per call would add N objects.
MAX_NEW_OBJECTS = 200
#: A leak of 40 bytes a call adds 4 MB.  The sanitizers' allocators take
#: longer to settle, then move by a few MB either way from one phase to the
#: next (under TSan the stdlib's control run grew 5.5 MB at a 10,000-call
#: warm-up): there, the warm-up is at half size and 80 bytes a call are
#: allowed.
MAX_RSS_GROWTH = (8 if ASAN or TSAN else 4) * 1024 * 1024
WARMUP = N // 2 if ASAN or TSAN else 10_000


@pytest.mark.timeout(180)
def test_memory_stays_flat(impl):
    proc = run_script("leak_thread.py", impl.name, str(N), str(WARMUP),
                      timeout=150, env=without_quarantine())
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    base = report["after_warmup"]
    for phase in ("after_to_thread", "after_submit"):
        now = report[phase]
        assert now["objects"] - base["objects"] <= MAX_NEW_OBJECTS, (phase, report)
        assert now["rss"] - base["rss"] <= MAX_RSS_GROWTH, (phase, report)
