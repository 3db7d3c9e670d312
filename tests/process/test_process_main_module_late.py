"""Functions and classes bound in ``__main__`` after the native pool was
made: its workers were forked before they existed, so they travel by value
(cloudpickle), and the pool goes on."""

from __future__ import annotations

import json

import pytest

from process_fixtures import run_script  # noqa: F401  (fixtures)

pytestmark = pytest.mark.timeout(180)


def test_function_defined_in_main_after_the_pool():
    proc = run_script("main_functions.py", "native", "--late")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["late"] == 101
    assert out["late_class_arg"] == 36
    assert out["late_method"] == 7
    assert out["late_instance_arg"] == 8
    assert out["late_map"] == [100, 101, 102]
    # the worker's own square() is the one from before: the call carried the new one
    assert out["rebound"] == -9
    assert out["after_late"] == 25 and out["submit"] == 49
