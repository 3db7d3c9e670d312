"""CPython's own executor tests (the thread classes and the fork-flavour
process classes), run against native_exec by
tests/cpython/run_executor_tests.py, where the running Python's test package
is installed (pyenv's 3.13; Debian's libpython3.X-testsuite, which CI
installs for 3.14 and 3.15).  The runner fails on any failure it does not
list, with its reason, as expected."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

RUNNER = Path(__file__).resolve().parent / "cpython" / "run_executor_tests.py"
MODULES = ["test_thread_pool", "test_process_pool", "test_wait", "test_as_completed",
           "test_shutdown", "test_deadlock", "test_init"]

pytestmark = pytest.mark.timeout(900)


def _have_cpython_tests() -> bool:
    try:
        return importlib.util.find_spec("test.test_concurrent_futures.test_process_pool") is not None
    except ImportError:
        return False


@pytest.mark.skipif(not _have_cpython_tests(),
                    reason="CPython's test package is not installed for this Python")
def test_cpython_executor_tests(tmp_path):
    env = dict(os.environ)
    env.pop("PYTHONWARNINGS", None)
    proc = subprocess.run([sys.executable, str(RUNNER), *MODULES], capture_output=True,
                          text=True, cwd=str(tmp_path), env=env, timeout=840)
    assert proc.returncode == 0, proc.stdout[-20000:] + proc.stderr[-5000:]
    if sys.version_info >= (3, 14):
        # the 3.14 API this project promises, by CPython's own tests
        for name in ("test_force_shutdown_workers_dead_workers",
                     "test_force_shutdown_workers_not_started_yet",
                     "test_terminate_workers", "test_kill_workers", "test_map_buffersize"):
            assert "%s (" % name in proc.stdout and "FAIL: " + name not in proc.stdout
