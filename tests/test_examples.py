"""The examples in examples/ against the tutorial programs they rewrite.

Every example ``examples/NAME.py`` (on native_exec) has its original in
``examples/stdlib/NAME.py`` (on asyncio / concurrent.futures).  Each program
is run twice, as subprocesses:

* as a script, exactly as a reader would, to check that both versions succeed
  and print the same lines once timings and thread names are normalised;
* under a small harness that wraps the example's blocking function before it
  calls ``main()``, to check the structure each tutorial section claims: which
  thread ran each call, how many ran at once, what happened in what order.

The stdlib original is the reference: both versions get the same checks.  The
examples sleep for seconds, so all the subprocesses are started together,
once, and the tests only wait for them; the whole file takes about as long as
the longest example (~7 s).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NAMES = [
    "s1_blocking_problem",
    "s2_1_to_thread_basic",
    "s2_2_to_thread_many",
    "s3_custom_thread_pool",
    "s6_timing_comparison",
    "p1_sequential_vs_threaded",
]
FLAVOURS = ["native", "stdlib"]
TIMEOUT = 60  # seconds for any one program; each sleeps for 7 s at most

# What each program prints, normalised by normalise(); in lines that
# ORDER_FREE marks, the order is up to the scheduler (gather'd calls printing
# as they start, as_completed yielding calls that finished at the same time).
EXPECTED = {
    "s1_blocking_problem": [
        "[A] started",
        "[A] finished",
        "Total: <T>s (should be ~2s but is ~3s because of blocking)",
    ],
    "s2_1_to_thread_basic": [
        "  [async] A started",
        "  [blocking_io] sleeping 2.0s in thread <thread>",
        "  [async] A finished",
        "Total: <T>s (should be ~2s, not 3s)",
        "Blocking result: result after 2.0s",
    ],
    "s2_2_to_thread_many": [
        "  {'endpoint': '/users', 'delay': 1.0, 'status': 'ok'}",
        "  {'endpoint': '/posts', 'delay': 1.5, 'status': 'ok'}",
        "  {'endpoint': '/comments', 'delay': 2.0, 'status': 'ok'}",
        "Total: <T>s (should be ~2s, not 4.5s)",
    ],
    "s3_custom_thread_pool": [
        *(f"  downloaded http://example.com/file{i}" for i in range(6)),
        "Total: <T>s (6 downloads, 3 at a time = ~2s)",
    ],
    "s6_timing_comparison": [
        "Sequential:  <T>s",
        "Threaded:    <T>s",
        "Pure async:  <T>s",
    ],
    "p1_sequential_vs_threaded": [
        "Sequential: <T>s",
        "Threaded: <T>s",
    ],
}
ORDER_FREE = {
    "s2_1_to_thread_basic": slice(0, 2),
    "s3_custom_thread_pool": slice(0, 6),
}

# The harness: load the example as a module (so its main() does not run on
# import), wrap the functions named in argv[2:], run main() with its output
# discarded, and print what the wrappers saw as JSON.
HARNESS = r"""
import asyncio, contextlib, functools, importlib.util, inspect, io, json, sys, threading

path, targets = sys.argv[1], sys.argv[2:]
spec = importlib.util.spec_from_file_location("example_under_test", path)
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)

lock = threading.Lock()
events = []      # "name:start" / "name:end", in the order they happened
calls = []       # one dict per call of a blocking target
state = {"running": 0}

def enter(name, record=False):
    with lock:
        state["running"] += 1
        events.append(name + ":start")
        if record:
            # running_at_start: how many calls of the targets were running
            # when this one started, itself included.
            thread = threading.current_thread()
            calls.append({"name": name, "thread": thread.name,
                          "main_thread": thread is threading.main_thread(),
                          "running_at_start": state["running"]})

def leave(name):
    with lock:
        state["running"] -= 1
        events.append(name + ":end")

def wrap(name, fn):
    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def wrapper(*args, **kwargs):
            enter(name)
            try:
                return await fn(*args, **kwargs)
            finally:
                leave(name)
        return wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        enter(name, record=True)
        try:
            return fn(*args, **kwargs)
        finally:
            leave(name)
    return wrapper

for name in targets:
    setattr(mod, name, wrap(name, getattr(mod, name)))

with contextlib.redirect_stdout(io.StringIO()):
    asyncio.run(mod.main())
print(json.dumps({"events": events, "calls": calls}))
"""

# The functions each example's structure is read from.
TARGETS = {
    "s1_blocking_problem": ["blocking_io", "async_task"],
    "s2_1_to_thread_basic": ["blocking_io", "async_task"],
    "s2_2_to_thread_many": ["sync_api_call"],
    "s3_custom_thread_pool": ["blocking_download"],
    "s6_timing_comparison": ["sync_call"],
    "p1_sequential_vs_threaded": ["simulate_io_operation_sync"],
}

# The thread that to_thread runs a call in: the stdlib default executor names
# its threads asyncio_N, native_exec's default pool native_exec_N.
TO_THREAD_NAME = {"stdlib": r"asyncio_\d+", "native": r"native_exec_\d+"}


def script(name: str, flavour: str) -> Path:
    return EXAMPLES / name if flavour == "native" else EXAMPLES / "stdlib" / name


def child_env() -> Dict[str, str]:
    env = dict(os.environ)
    # With unbuffered stdout, print() makes two write(2) calls (the text, then
    # the newline) and releases the GIL in each, so two threads printing at
    # the same moment can splice their lines (s2_1 prints from the loop and
    # from a worker at once).  A pipe is block-buffered otherwise, as for any
    # program whose output is captured.
    env.pop("PYTHONUNBUFFERED", None)
    # Run with the examples' own directory only, not this checkout's root:
    # native_exec must come from the installed package.
    env.pop("PYTHONPATH", None)
    return env


class Run:
    def __init__(self, argv: List[str], cwd: Path) -> None:
        self.argv = argv
        self.proc = subprocess.Popen(argv, cwd=cwd, env=child_env(),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self._result: Tuple[int, str, str] | None = None

    def result(self) -> Tuple[int, str, str]:
        if self._result is None:
            try:
                out, err = self.proc.communicate(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                out, err = self.proc.communicate()
                pytest.fail(f"{self.argv} did not finish in {TIMEOUT}s:\n{out}\n{err}")
            self._result = (self.proc.returncode, out, err)
        return self._result

    def stdout(self) -> str:
        code, out, err = self.result()
        assert code == 0, f"{self.argv} exited with {code}:\n{out}\n{err}"
        assert err == "", f"{self.argv} wrote to stderr:\n{err}"
        return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every program, as a script and under the harness, all started at once.

    The scripts run from an empty directory: the practice problem has to find
    blocking_code.py from wherever it is started.
    """
    cwd = tmp_path_factory.mktemp("cwd")
    started = {}
    for name in NAMES:
        for flavour in FLAVOURS:
            path = str(script(name + ".py", flavour))
            started["script", name, flavour] = Run([sys.executable, path], cwd)
            started["harness", name, flavour] = Run(
                [sys.executable, "-c", HARNESS, path, *TARGETS[name]], cwd)
    yield started
    for run in started.values():
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait()


def normalise(line: str) -> str:
    line = re.sub(r"\b\d+\.\d\ds\b", "<T>s", line)  # timings: 2.01s
    return re.sub(r"in thread \S+", "in thread <thread>", line)


def canonical(name: str, lines: List[str]) -> List[str]:
    lines = [normalise(line) for line in lines]
    free = ORDER_FREE.get(name)
    if free is not None:
        lines[free] = sorted(lines[free])
    return lines


def timings(out: str) -> Dict[str, float]:
    """{"Total": 2.01} from "Total: 2.01s (...)"; likewise Sequential etc."""
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r"^(\w[\w ]*):\s+(\d+\.\d\d)s", out, re.M)}


def structure(runs, name: str, flavour: str) -> dict:
    out = runs["harness", name, flavour].stdout()
    return json.loads(out)


def max_running(calls: List[dict]) -> int:
    return max(call["running_at_start"] for call in calls)


# -- what the scripts print --------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_native_prints_what_the_original_prints(runs, name):
    native = runs["script", name, "native"].stdout().splitlines()
    stdlib = runs["script", name, "stdlib"].stdout().splitlines()
    assert canonical(name, native) == canonical(name, stdlib)


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("name", NAMES)
def test_prints_the_tutorial_lines(runs, name, flavour):
    out = runs["script", name, flavour].stdout().splitlines()
    assert canonical(name, out) == canonical(name, list(EXPECTED[name]))


def test_s1_native_is_the_original_unchanged():
    """Section 1 has no executor: only a header comment is added."""
    native = (EXAMPLES / "s1_blocking_problem.py").read_text().splitlines()
    stdlib = (EXAMPLES / "stdlib" / "s1_blocking_problem.py").read_text().splitlines()
    assert [line for line in native if not line.startswith("#")] == stdlib


@pytest.mark.parametrize("name", [n for n in NAMES if n != "s1_blocking_problem"])
def test_native_differs_from_original_only_in_executor_lines(name):
    """A reader diffing the pair sees only the native_exec lines change."""
    native = (EXAMPLES / f"{name}.py").read_text().splitlines()
    stdlib = (EXAMPLES / "stdlib" / f"{name}.py").read_text().splitlines()
    # Drop the native file's header comment and the lines marked as changed.
    body = [line for line in native
            if not line.startswith("#") and not line.endswith("# native_exec")]
    # Comments that name the call in use follow it.
    body = [line.replace("native_exec.to_thread", "asyncio.to_thread") for line in body]
    if name == "p1_sequential_vs_threaded":
        # The one path line that differs: examples/ is the script's own
        # directory there, its parent here.
        body = [line.replace("parent))", "parent.parent))") for line in body]
    assert [line for line in body if line not in stdlib] == []
    removed = [line for line in stdlib if line not in body]
    assert removed, "the native version should change the executor lines"
    for line in removed:
        assert ("asyncio.to_thread" in line or "ThreadPoolExecutor" in line), line


# -- the structure each section claims ----------------------------------------


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_s1_blocking_call_freezes_the_loop(runs, flavour):
    s = structure(runs, "s1_blocking_problem", flavour)
    (call,) = s["calls"]
    assert call["main_thread"]  # blocking_io ran on the event loop's thread
    # ... and async_task could not start until it had returned.
    assert s["events"] == ["blocking_io:start", "blocking_io:end",
                           "async_task:start", "async_task:end"]
    total = timings(runs["script", "s1_blocking_problem", flavour].stdout())["Total"]
    assert total >= 2.9  # 2 s blocked + 1 s awaited, one after the other


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_s2_1_to_thread_leaves_the_loop_free(runs, flavour):
    s = structure(runs, "s2_1_to_thread_basic", flavour)
    (call,) = s["calls"]
    assert not call["main_thread"]
    assert re.fullmatch(TO_THREAD_NAME[flavour], call["thread"]), call["thread"]
    ev = s["events"]
    # async_task ran while blocking_io was blocked in its thread.
    assert ev.index("async_task:start") < ev.index("blocking_io:end")
    assert ev.index("blocking_io:start") < ev.index("async_task:end")

    out = runs["script", "s2_1_to_thread_basic", flavour].stdout()
    thread = re.search(r"in thread (\S+)", out).group(1)
    assert re.fullmatch(TO_THREAD_NAME[flavour], thread), thread
    assert timings(out)["Total"] < 0.8 * 3.0  # not 2 s + 1 s


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_s2_2_three_calls_run_at_once(runs, flavour):
    s = structure(runs, "s2_2_to_thread_many", flavour)
    calls = s["calls"]
    assert len(calls) == 3
    assert not any(call["main_thread"] for call in calls)
    assert all(re.fullmatch(TO_THREAD_NAME[flavour], c["thread"]) for c in calls)
    assert len({call["thread"] for call in calls}) == 3
    assert max_running(calls) == 3

    total = timings(runs["script", "s2_2_to_thread_many", flavour].stdout())["Total"]
    assert 1.9 <= total < 0.75 * 4.5  # the longest call, not the sum


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_s3_pool_runs_three_at_a_time(runs, flavour):
    s = structure(runs, "s3_custom_thread_pool", flavour)
    calls = s["calls"]
    assert len(calls) == 6
    assert all(re.fullmatch(r"download_\d+", call["thread"]) for call in calls)
    assert len({call["thread"] for call in calls}) == 3
    assert max_running(calls) == 3  # max_workers=3: never more, and reached

    total = timings(runs["script", "s3_custom_thread_pool", flavour].stdout())["Total"]
    assert 1.9 <= total < 0.75 * 6.0  # two rounds of three 1 s downloads


def test_s3_native_example_uses_the_native_pool():
    source = (EXAMPLES / "s3_custom_thread_pool.py").read_text()
    assert "from native_exec import ThreadPoolExecutor" in source
    assert "concurrent.futures" not in source


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_s6_sequential_then_threaded(runs, flavour):
    s = structure(runs, "s6_timing_comparison", flavour)
    calls = s["calls"]
    assert len(calls) == 10
    sequential, threaded = calls[:5], calls[5:]
    assert all(call["main_thread"] for call in sequential)
    assert max_running(sequential) == 1
    assert not any(call["main_thread"] for call in threaded)
    assert all(re.fullmatch(TO_THREAD_NAME[flavour], c["thread"]) for c in threaded)
    assert max_running(threaded) == 5

    t = timings(runs["script", "s6_timing_comparison", flavour].stdout())
    assert t["Sequential"] >= 4.9
    assert t["Threaded"] < 0.5 * 5.0
    assert t["Pure async"] < 0.5 * 5.0


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_p1_sequential_then_threaded(runs, flavour):
    s = structure(runs, "p1_sequential_vs_threaded", flavour)
    calls = s["calls"]
    assert len(calls) == 8
    sequential, threaded = calls[:4], calls[4:]
    assert all(call["main_thread"] for call in sequential)
    assert max_running(sequential) == 1
    assert not any(call["main_thread"] for call in threaded)
    assert all(re.fullmatch(TO_THREAD_NAME[flavour], c["thread"]) for c in threaded)
    assert max_running(threaded) == 4

    t = timings(runs["script", "p1_sequential_vs_threaded", flavour].stdout())
    assert t["Sequential"] >= 3.9
    assert t["Threaded"] < 0.5 * 4.0


# -- blocking_code.py ---------------------------------------------------------


def test_blocking_code_helpers():
    code = ("import asyncio, sys; sys.path.insert(0, sys.argv[1]);"
            "from blocking_code import *;"
            "print(simulate_io_operation_sync(delay=0.01));"
            "print(asyncio.run(simulate_io_operation(delay=0.01)));"
            "print(count_primes(100), count_primes(10_000))")
    out = subprocess.run([sys.executable, "-c", code, str(EXAMPLES)], env=child_env(),
                         capture_output=True, text=True, timeout=TIMEOUT, check=True)
    assert out.stdout.splitlines() == ["io done after 0.01s", "io done after 0.01s",
                                       "25 1229"]
