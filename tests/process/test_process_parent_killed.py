"""A killed parent takes native_exec's zygote and workers with it, and leaves
no /dev/shm segment even with a payload in a named segment."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

import psutil
import pytest

from process_fixtures import SCRIPTS, gone, shm_entries, wait_until  # noqa: F401  (fixtures)

pytestmark = pytest.mark.timeout(180)


def run_until_killed(script: str, marker_dir) -> tuple:
    """Start a script that prints one JSON line about its pool, then sleeps;
    return the process and that line, parsed."""
    env = dict(os.environ, PYTHONFAULTHANDLER="1")
    env.pop("PYTHONWARNINGS", None)
    proc = subprocess.Popen([sys.executable, str(SCRIPTS / script), str(marker_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(120)
    if not (line and line[0].strip()):
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"{script} printed nothing: {err}")
    return proc, json.loads(line[0])


def kill_leftovers(proc, pids) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    for pid in pids:
        try:
            if psutil.Process(pid).cmdline()[:1] == [sys.executable]:
                os.kill(pid, signal.SIGKILL)
        except (psutil.Error, ProcessLookupError):
            pass


def test_parent_killed_takes_zygote_and_workers(tmp_path):
    marker_dir = tmp_path / "markers"
    marker_dir.mkdir()
    proc, info = run_until_killed("parent_killed.py", marker_dir)
    pids = [info["zygote"]] + info["workers"]
    try:
        assert len(info["workers"]) == 2 and all(pids)
        for pid in pids:
            assert psutil.Process(pid).ppid() in (info["parent"], info["zygote"])
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        for pid in pids:
            wait_until(lambda: gone(pid), f"process {pid} to exit after its owner was killed",
                       timeout=5)
    finally:
        kill_leftovers(proc, pids)


@pytest.mark.timeout(300)
def test_parent_killed_with_a_payload_in_a_named_segment_leaves_none(tmp_path):
    # An argument too big for the shared area waits for the busy worker in
    # a /dev/shm segment; killed, the parent cannot unlink it: the zygote,
    # which outlives it just long enough to reap the workers, does.
    marker_dir = tmp_path / "markers"
    marker_dir.mkdir()
    proc, info = run_until_killed("parent_killed_mid_payload.py", marker_dir)
    try:
        assert info["segments"] and all(os.path.exists(e) for e in info["segments"])
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        wait_until(lambda: gone(info["zygote"]), "the zygote to exit", timeout=5)
        assert shm_entries([info["parent"]]) == set()
    finally:
        kill_leftovers(proc, [info["zygote"]])
        for e in shm_entries([info["parent"]]):
            os.unlink(e)
