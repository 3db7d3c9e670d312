"""Life cycle of the thread side, each in a subprocess: a program that exits
without shutting down (stdlib and native must agree), fork() with live
workers (native only: the stdlib's pool hangs in such a child), and Ctrl-C
while the main thread waits in asyncio.run, shutdown(wait=True) or result()
(stdlib and native must end the same way)."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from conftest import SCRIPTS, TESTS, run_script

IMPLS = ["stdlib", "native"]

EXIT_EXPECTED = {
    "submit": {"main done"} | {f"pool task {i}" for i in range(6)},
    "dropped": {"main done"} | {f"dropped-pool task {i}" for i in range(3)},
    "running": {"main done", "first", "second refused: RuntimeError"},
    "to_thread": {"awaited 1024", "main done", "unawaited call done"},
    "sys_exit": {"main done", "work before sys.exit"},
    "atexit_submit": {"main done", "early work",
                      "refused: cannot schedule new futures after interpreter shutdown"},
}


@pytest.mark.parametrize("mode", sorted(EXIT_EXPECTED))
def test_exit_without_shutdown_finishes_submitted_work(mode):
    results = {impl: run_script("exit_without_shutdown.py", impl, mode, timeout=30)
               for impl in IMPLS}
    for impl, proc in results.items():
        context = f"{impl} {mode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        assert proc.returncode == 0, context
        assert proc.stderr == "", context  # no crash, no warning, no traceback
        lines = proc.stdout.splitlines()
        assert len(lines) == len(set(lines)), context
        assert set(lines) == EXIT_EXPECTED[mode], context
    # The stdlib defines the behaviour: the same lines, in the same order
    # where the order is not up to the scheduler.
    std, nat = (results[i].stdout.splitlines() for i in IMPLS)
    assert std[0] == nat[0]


@pytest.mark.parametrize("mode", ["idle", "busy", "asyncio"])
def test_fork_child_can_use_to_thread_and_pools(mode):
    proc = run_script("fork_child.py", mode, timeout=60)
    assert (proc.returncode, proc.stdout) == (0, "ok\n"), proc.stderr


@pytest.mark.timeout(90)
def test_fork_while_workers_are_busy_does_not_deadlock():
    # 200 forks while two workers take short calls without pause.  Takes a
    # second or two when all is well; a deadlock in fork() is the timeout.
    proc = run_script("fork_child.py", "stress", "200", timeout=45)
    assert (proc.returncode, proc.stdout) == (0, "ok\n"), proc.stderr


def interrupt(impl, mode):
    """Run sigint.py, send SIGINT once the call runs and the main thread
    waits; return its exit status, output lines (sorted: "started" and
    "waiting" come in either order) and stderr."""
    proc = subprocess.Popen([sys.executable, str(SCRIPTS / "sigint.py"), impl, mode],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=str(TESTS))
    try:
        first = [proc.stdout.readline(), proc.stdout.readline()]
        assert sorted(first) == ["started\n", "waiting\n"], first
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    return proc.returncode, sorted("".join(first + [out]).splitlines()), err


@pytest.mark.parametrize("mode", ["to_thread", "shutdown", "result"])
def test_ctrl_c_ends_the_program_as_the_stdlib_does(mode):
    std_rc, std_out, std_err = interrupt("stdlib", mode)
    nat_rc, nat_out, nat_err = interrupt("native", mode)
    # The stdlib: KeyboardInterrupt ends the wait and the program, which
    # dies of SIGINT.
    assert std_rc == -signal.SIGINT, std_err
    assert std_err.rstrip().splitlines()[-1] == "KeyboardInterrupt", std_err
    assert "Traceback" in std_err
    # native_exec must do the same.
    assert nat_rc == std_rc, nat_err
    assert nat_err.rstrip().splitlines()[-1] == "KeyboardInterrupt", nat_err
    assert "Traceback" in nat_err
    # The call already running in a worker runs to its end before the
    # process exits.  (Up to 3.12 the stdlib loses it when Ctrl-C interrupts
    # shutdown()'s Thread.join: the thread then counts as stopped and exit
    # does not wait for it.  native_exec's exit hook waits for it.)
    assert nat_out == ["finished", "started", "waiting"]
    assert set(std_out) <= set(nat_out)
    if not (mode == "shutdown" and sys.version_info < (3, 13)):
        assert std_out == nat_out
