"""Functions defined in the ``__main__`` script run on a process pool, the
stdlib's and native_exec's."""

from __future__ import annotations

import json

import pytest

from process_fixtures import proc_impl, run_script  # noqa: F401  (fixtures)

pytestmark = pytest.mark.timeout(120)


def test_functions_defined_in_main_script(proc_impl):
    proc = run_script("main_functions.py", proc_impl.name, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["submit"] == 49
    assert out["map"] == [i * i + 1 for i in range(20)]
    assert out["class"] == "Point(3, 4)"
    assert out["error"] == ["MainError", ["from main"]]
    assert out["parent"] not in out["pids"]
