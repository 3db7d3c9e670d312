"""The examples in examples/ against the tutorial programs they rewrite.

Every example ``examples/NAME.py`` (on native_exec) has its original in
``examples/stdlib/NAME.py`` (on asyncio / concurrent.futures).  Each program
is run twice, as subprocesses:

* as a script, exactly as a reader would, to check that both versions succeed
  and print the same lines once timings and thread names are normalised;
* under a small harness that wraps the example's blocking functions before it
  calls ``main()``, to check the structure each tutorial section claims: which
  thread or process ran each call, how many ran at once, what happened in
  what order.

The stdlib original is the reference: both versions get the same checks.  The
examples sleep for seconds, so all the subprocesses are started together,
once, and the tests only wait for them; the whole file takes little more
than the longest example (~7 s): about 10 s on an idle two-core machine, where
the CPU-bound examples' counting (a few tenths of a second each) competes
with everything else started at once.
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
    "s4_1_count_primes",
    "s4_2_process_pool",
    "s5_threads_vs_processes",
    "s6_timing_comparison",
    "p1_sequential_vs_threaded",
    "p2_mixed_io_cpu",
]
FLAVOURS = ["native", "stdlib"]
TIMEOUT = 60  # seconds for any one program; each sleeps for 7 s at most

# count_primes(n) for the numbers of sections 4 and 5 and practice problem 2.
PRIMES = {50_000: 5133, 60_000: 6057, 70_000: 6935, 80_000: 7837}
PRIME_LINES = [f"  Primes up to {n:,}: {count}" for n, count in PRIMES.items()]
# The size of a ProcessPoolExecutor() (both: the CPUs this process may use).
PROCESS_WORKERS = getattr(os, "process_cpu_count", os.cpu_count)() or 1

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
    "s4_1_count_primes": [
        *PRIME_LINES,
        "Total: <T>s",
    ],
    "s4_2_process_pool": [
        *PRIME_LINES,
        "Total: <T>s",
    ],
    "s5_threads_vs_processes": [
        "Blocking I/O in threads:    <T>s (4 x 1s at once = ~1s)",
        "CPU-bound, sequential:      <T>s",
        "CPU-bound in threads:       <T>s (the GIL: no faster)",
        "CPU-bound in processes:     <T>s (true parallelism)",
        "Already async, just await:  <T>s (4 x 1s at once = ~1s)",
        "Mixed, threads + processes: <T>s (~1s: the CPU work hides behind the I/O)",
        "Primes up to 50,000..80,000: [5133, 6057, 6935, 7837]",
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
    "p2_mixed_io_cpu": [
        "  io done after 1.0s",
        "  io done after 2.0s",
        *PRIME_LINES,
        "Total: <T>s",
    ],
}
ORDER_FREE = {
    "s2_1_to_thread_basic": slice(0, 2),
    "s3_custom_thread_pool": slice(0, 6),
}
# Section 4.2 pairs its numbers, in order, with the counts in the order their
# calls finish (zip over as_completed): when a bigger count finishes first,
# 50,000 is printed beside 60,000's count, in both versions.  In the lines
# COMPLETION_PAIRED marks, the counts are compared in order of size; the
# harness checks which count each number's call returned.
COMPLETION_PAIRED = {
    "s4_2_process_pool": slice(0, 4),
}

# The harness: load the example as a module (so its main() does not run on
# import), wrap the functions named in argv[2:], run main() with its output
# discarded, and print what the wrappers saw as JSON.  Wrappers that run in a
# worker process append their events to a file the harness reads at the end;
# every event is timestamped with the system-wide monotonic clock, and the
# events of all processes are put in one order by it.
HARNESS = r"""
import asyncio, contextlib, functools, importlib.util, inspect, io, itertools, json
import multiprocessing, os, sys, tempfile, threading, time

path, targets = sys.argv[1], sys.argv[2:]
spec = importlib.util.spec_from_file_location("example_under_test", path)
mod = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = mod  # a process pool is sent the wrappers by name
spec.loader.exec_module(mod)

# The stdlib's process pool must fork its workers from this process, where
# the wrappers are (the default on Linux before 3.14, forkserver after it);
# the native pool forks them from its zygote, a fork of this process.
multiprocessing.set_start_method("fork", force=True)

PARENT = os.getpid()
fd, LOG = tempfile.mkstemp(prefix="harness_", dir=os.getcwd())  # the test's tmp dir
os.close(fd)
lock = threading.Lock()
here = []                  # this process's events, in the order they happened
numbers = itertools.count()

def note(event):
    event["pid"] = os.getpid()
    if event["pid"] == PARENT:
        with lock:
            event["t"] = time.monotonic_ns()
            here.append(event)
    else:  # a worker process: one append, one line
        event["t"] = time.monotonic_ns()
        out = os.open(LOG, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(out, (json.dumps(event) + "\n").encode())
        finally:
            os.close(out)

def wrap(name, fn):
    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def wrapper(*args, **kwargs):
            note({"name": name, "kind": "start"})
            try:
                return await fn(*args, **kwargs)
            finally:
                note({"name": name, "kind": "end"})
        return wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        call = "%d-%d" % (os.getpid(), next(numbers))
        thread = threading.current_thread()
        note({"name": name, "kind": "start", "call": call, "thread": thread.name,
              "main_thread": thread is threading.main_thread(),
              "ppid": os.getppid(), "args": [repr(arg) for arg in args]})
        cpu, result = time.thread_time(), None
        try:
            result = fn(*args, **kwargs)
            return result
        finally:
            note({"name": name, "kind": "end", "call": call,
                  "cpu": time.thread_time() - cpu, "result": repr(result)})
    return wrapper

for name in targets:
    setattr(mod, name, wrap(name, getattr(mod, name)))

try:
    with contextlib.redirect_stdout(io.StringIO()):
        asyncio.run(mod.main())
    with open(LOG) as f:
        workers = [json.loads(line) for line in f]
finally:
    os.unlink(LOG)

events = []    # "name:start" / "name:end", in the order they happened
calls = []     # one dict per call of a blocking target, in the order they started
by_call = {}
running = 0
for event in sorted(here + workers, key=lambda event: event["t"]):
    name, kind = event["name"], event["kind"]
    events.append(name + ":" + kind)
    if kind == "start":
        running += 1
        if "call" in event:
            call = {key: event[key] for key in ("thread", "main_thread", "pid", "ppid", "args")}
            # in_parent: the call ran in the example's own process.
            # running_at_start: how many calls of the targets were running
            # when this one started, itself included.
            call.update(name=name, in_parent=event["pid"] == PARENT,
                        running_at_start=running, start=event["t"] / 1e9)
            calls.append(by_call.setdefault(event["call"], call))
    else:
        running -= 1
        if "call" in event:
            by_call[event["call"]].update(end=event["t"] / 1e9, cpu=event["cpu"],
                                          result=event["result"])
print(json.dumps({"events": events, "calls": calls, "parent_pid": PARENT}))
"""

# The functions each example's structure is read from.
TARGETS = {
    "s1_blocking_problem": ["blocking_io", "async_task"],
    "s2_1_to_thread_basic": ["blocking_io", "async_task"],
    "s2_2_to_thread_many": ["sync_api_call"],
    "s3_custom_thread_pool": ["blocking_download"],
    "s4_1_count_primes": ["count_primes"],
    "s4_2_process_pool": ["count_primes"],
    "s5_threads_vs_processes": ["blocking_io", "count_primes", "async_io"],
    "s6_timing_comparison": ["sync_call"],
    "p1_sequential_vs_threaded": ["simulate_io_operation_sync"],
    "p2_mixed_io_cpu": ["count_primes", "simulate_io"],
}

# The thread that to_thread runs a call in: both run on the loop's default
# executor, whose threads are named asyncio_N.
TO_THREAD_NAME = {"stdlib": r"asyncio_\d+", "native": r"asyncio_\d+"}


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
    paired = COMPLETION_PAIRED.get(name)
    if paired is not None:
        # "  Primes up to 50,000: 6057" -> the labels in order, the counts sorted
        split = [line.rpartition(": ") for line in lines[paired]]
        counts = sorted((count for _, _, count in split), key=int)
        lines[paired] = [label + sep + count
                         for (label, sep, _), count in zip(split, counts)]
    return lines


def timings(out: str) -> Dict[str, float]:
    """{"Total": 2.01} from "Total: 2.01s (...)"; likewise Sequential etc."""
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r"^(\S[^:\n]*):[ \t]+(\d+\.\d\d)s", out, re.M)}


def structure(runs, name: str, flavour: str) -> dict:
    out = runs["harness", name, flavour].stdout()
    return json.loads(out)


def max_running(calls: List[dict]) -> int:
    return max(call["running_at_start"] for call in calls)


def most_at_once(calls: List[dict]) -> int:
    """How many of these calls (and only these) ran at once, at most."""
    return max(sum(1 for other in calls if other["start"] <= call["start"] < other["end"])
               for call in calls)


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


# Sections without an executor: the native version is the original.
UNCHANGED = ["s1_blocking_problem", "s4_1_count_primes"]
# The examples on a process pool.
PROCESS_POOL = ["s4_2_process_pool", "s5_threads_vs_processes", "p2_mixed_io_cpu"]


def native_body(name: str) -> List[str]:
    """The native version's lines, less its header comment, as the original's
    would read: examples/ is the script's own directory there, the parent of
    the original's (for blocking_code)."""
    native = (EXAMPLES / f"{name}.py").read_text().splitlines()
    return [line.replace("parent))", "parent.parent))")
            for line in native if not line.startswith("#")]


@pytest.mark.parametrize("name", UNCHANGED)
def test_native_is_the_original_unchanged(name):
    """Sections 1 and 4.1 have no executor: only a header comment is added."""
    stdlib = (EXAMPLES / "stdlib" / f"{name}.py").read_text().splitlines()
    assert native_body(name) == stdlib


@pytest.mark.parametrize("name", [n for n in NAMES if n not in UNCHANGED])
def test_native_differs_from_original_only_in_executor_lines(name):
    """A reader diffing the pair sees only the native_exec lines change."""
    stdlib = (EXAMPLES / "stdlib" / f"{name}.py").read_text().splitlines()
    # Drop the lines marked as changed.
    body = [line for line in native_body(name) if not line.endswith("# native_exec")]
    # Comments that name the call in use follow it.
    body = [line.replace("native_exec.to_thread", "asyncio.to_thread") for line in body]
    assert [line for line in body if line not in stdlib] == []
    removed = [line for line in stdlib if line not in body]
    assert removed, "the native version should change the executor lines"
    for line in removed:
        assert ("asyncio.to_thread" in line or "ThreadPoolExecutor" in line
                or "ProcessPoolExecutor" in line), line


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
    # (the order of events above shows the overlap; time only bounds below)
    assert timings(out)["Total"] >= 1.9


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
    assert total >= 1.9  # the longest call; that they overlapped is max_running's to show


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_s3_pool_runs_three_at_a_time(runs, flavour):
    s = structure(runs, "s3_custom_thread_pool", flavour)
    calls = s["calls"]
    assert len(calls) == 6
    assert all(re.fullmatch(r"download_\d+", call["thread"]) for call in calls)
    assert len({call["thread"] for call in calls}) == 3
    assert max_running(calls) == 3  # max_workers=3: never more, and reached

    total = timings(runs["script", "s3_custom_thread_pool", flavour].stdout())["Total"]
    assert total >= 1.9  # at least two rounds of three 1 s downloads


def test_s3_native_example_uses_the_native_pool():
    source = (EXAMPLES / "s3_custom_thread_pool.py").read_text()
    assert "from native_exec import ThreadPoolExecutor" in source
    assert "concurrent.futures" not in source


@pytest.mark.parametrize("name", PROCESS_POOL)
def test_native_process_examples_use_the_native_pool(name):
    source = (EXAMPLES / f"{name}.py").read_text()
    assert "from native_exec import ProcessPoolExecutor  # native_exec" in source
    assert "concurrent.futures" not in source
    assert "multiprocessing" not in source


def counted(calls: List[dict]) -> Dict[int, int]:
    """{n: count_primes(n)} from the calls of count_primes."""
    assert all(call["name"] == "count_primes" for call in calls)
    assert all(len(call["args"]) == 1 for call in calls)
    return {int(call["args"][0]): int(call["result"]) for call in calls}


def check_process_pool_calls(s: dict, calls: List[dict], flavour: str) -> None:
    """The calls ran in a ProcessPoolExecutor()'s worker processes."""
    parent = s["parent_pid"]
    assert not any(call["in_parent"] for call in calls)
    assert all(call["pid"] != parent for call in calls)
    # One call at a time in each worker, and at most max_workers of them.
    assert len({call["pid"] for call in calls}) <= PROCESS_WORKERS
    assert most_at_once(calls) <= PROCESS_WORKERS
    ppids = {call["ppid"] for call in calls}
    if flavour == "stdlib":
        assert ppids == {parent}  # forked from the program (the harness forces fork)
    else:
        # forked from the pool's zygote, itself a fork of the program
        assert len(ppids) == 1 and parent not in ppids


def cpu_bound_with_the_gil(calls: List[dict]) -> bool:
    """Whether the calls' CPU time adds up to no more than the time they
    spanned: what the GIL makes of CPU-bound threads, one running at a time."""
    span = max(call["end"] for call in calls) - min(call["start"] for call in calls)
    return sum(call["cpu"] for call in calls) <= 1.1 * span + 0.02


def gil_enabled() -> bool:
    return getattr(sys, "_is_gil_enabled", lambda: True)()


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_s4_1_counts_one_after_another_on_the_loop(runs, flavour):
    s = structure(runs, "s4_1_count_primes", flavour)
    calls = s["calls"]
    assert [int(call["args"][0]) for call in calls] == list(PRIMES)
    assert counted(calls) == PRIMES
    assert all(call["in_parent"] and call["main_thread"] for call in calls)
    assert max_running(calls) == 1


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_s4_2_counts_in_worker_processes(runs, flavour):
    s = structure(runs, "s4_2_process_pool", flavour)
    calls = s["calls"]
    assert counted(calls) == PRIMES  # each number's call returned its own count
    check_process_pool_calls(s, calls, flavour)
    # All four were submitted at once: as many ran at once as there are workers.
    assert most_at_once(calls) == min(PROCESS_WORKERS, len(PRIMES))


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_s5_each_row_of_the_table(runs, flavour):
    s = structure(runs, "s5_threads_vs_processes", flavour)
    calls = s["calls"]
    assert len(calls) == 4 + 4 + 4 + 4 + 8
    io, sequential, threaded, processes, mixed = (
        calls[:4], calls[4:8], calls[8:12], calls[12:16], calls[16:])

    # Blocking I/O: in to_thread's threads, all four at once.
    assert all(call["name"] == "blocking_io" for call in io)
    assert all(call["in_parent"] and not call["main_thread"] for call in io)
    assert all(re.fullmatch(TO_THREAD_NAME[flavour], c["thread"]) for c in io)
    assert max_running(io) == 4

    # CPU-bound, sequential: on the event loop's thread, one at a time.
    assert counted(sequential) == PRIMES
    assert all(call["in_parent"] and call["main_thread"] for call in sequential)
    assert max_running(sequential) == 1

    # CPU-bound in threads: started at once, but computing one at a time.
    assert counted(threaded) == PRIMES
    assert all(call["in_parent"] and not call["main_thread"] for call in threaded)
    assert all(re.fullmatch(TO_THREAD_NAME[flavour], c["thread"]) for c in threaded)
    if gil_enabled():
        assert cpu_bound_with_the_gil(threaded)

    # CPU-bound in processes: in the pool's workers.
    assert counted(processes) == PRIMES
    check_process_pool_calls(s, processes, flavour)

    # Already async: four awaits at once, between the two pool phases.
    ev = s["events"]
    awaited = [i for i, e in enumerate(ev) if e.startswith("async_io:")]
    assert len(awaited) == 8
    assert [ev[i] for i in awaited] == ["async_io:start"] * 4 + ["async_io:end"] * 4
    assert awaited == list(range(awaited[0], awaited[0] + 8))  # nothing else ran

    # Mixed: blocking I/O in threads and CPU work in processes, at once.
    mixed_io = [call for call in mixed if call["name"] == "blocking_io"]
    mixed_cpu = [call for call in mixed if call["name"] == "count_primes"]
    assert len(mixed_io) == 4
    assert most_at_once(mixed_io) == 4
    assert all(re.fullmatch(TO_THREAD_NAME[flavour], c["thread"]) for c in mixed_io)
    assert counted(mixed_cpu) == PRIMES
    check_process_pool_calls(s, mixed_cpu, flavour)
    assert {call["pid"] for call in mixed_cpu} <= {call["pid"] for call in processes}
    # The CPU work started while the I/O was waiting.
    assert min(c["start"] for c in mixed_cpu) < min(c["end"] for c in mixed_io)

    # The waits take their 1 s at once, not 4 s; the CPU-bound timings depend
    # on how busy the machine is, and the structure above is what shows where
    # and how the counting ran.
    t = timings(runs["script", "s5_threads_vs_processes", flavour].stdout())
    assert t["Blocking I/O in threads"] >= 0.95
    assert t["Already async, just await"] >= 0.95
    assert t["Mixed, threads + processes"] >= 0.95


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
    assert t["Threaded"] >= 0.95 and t["Pure async"] >= 0.95


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
    assert t["Threaded"] >= 0.95


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_p2_io_waits_while_the_processes_count(runs, flavour):
    s = structure(runs, "p2_mixed_io_cpu", flavour)
    calls = s["calls"]
    assert counted(calls) == PRIMES
    check_process_pool_calls(s, calls, flavour)
    ev = s["events"]
    first_cpu_start = ev.index("count_primes:start")
    first_cpu_end = ev.index("count_primes:end")
    io_starts = [i for i, e in enumerate(ev) if e == "simulate_io:start"]
    io_ends = [i for i, e in enumerate(ev) if e == "simulate_io:end"]
    assert len(io_starts) == len(io_ends) == 2
    # The two waits ran at once; both had begun when the first count
    # finished, and the counting had begun before either wait was over.
    assert max(io_starts) < min(io_ends)
    assert max(io_starts) < first_cpu_end
    assert first_cpu_start < min(io_ends)

    # At least the longest wait.  No upper bound: how long the counting takes
    # depends on how busy the machine is; the order above is what shows that
    # it ran while the program waited.
    total = timings(runs["script", "p2_mixed_io_cpu", flavour].stdout())["Total"]
    assert total >= 1.95


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
