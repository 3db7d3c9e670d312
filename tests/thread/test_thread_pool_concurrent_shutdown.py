"""shutdown(wait=True) called by several threads at once: each returns once
the workers are gone, and the pool stays usable to every thread afterwards
(submit refuses, stats answer) rather than deadlocking.  Runs in a
subprocess, since a deadlock there holds the GIL and nothing in this process
could report it."""

from __future__ import annotations

import pytest

from conftest import run_script


@pytest.mark.parametrize("impl", ["stdlib", "native"])
def test_concurrent_shutdowns_then_calls_that_take_the_pool_lock(impl):
    proc = run_script("concurrent_shutdown.py", impl, "200", timeout=45)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "ok\n", "")
