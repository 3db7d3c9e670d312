"""A function defined in ``__main__`` after the native pool was made: its
workers were forked before it existed, so the call fails with
UnpicklingFailed, and the pool goes on."""

from __future__ import annotations

import json

import pytest

from process_fixtures import run_script  # noqa: F401  (fixtures)

pytestmark = pytest.mark.timeout(180)


def test_function_defined_in_main_after_the_pool():
    proc = run_script("main_functions.py", "native", "--late")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["late"][:2] == ["UnpicklingFailed", "AttributeError"] and "late" in out["late"][2]
    assert out["after_late"] == 25 and out["submit"] == 49
