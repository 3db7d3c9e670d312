"""The benchmark command runs end to end and reports sane numbers.

These tests run ``python -m native_exec.bench`` at a tiny scale; they check
the shape of what it reports and that every number is positive.  They
assert nothing about speed: that is what the benchmark itself is for.
"""

import importlib.util
import inspect
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from native_exec.bench import peers, process_scenarios, process_work, registry, report
from native_exec.bench.__main__ import main
from native_exec.bench.model import Measurement, Result, Scenario, Skipped
from native_exec.bench.runner import run_scenario
from sanitizers import ASAN

TINY = "0.01"
#: Seconds.  A tiny quick run takes about 20 on an idle machine.  Under ASan
#: it takes about 230: the stdlib and its peers each spend some 10 s moving
#: the 64 MiB argument through a pipe, because every os.read() there
#: allocates (and ASan poisons) a buffer of the whole remaining size.
TIMEOUT = 900 if ASAN else 240

REQUIRED = {
    "thread/gather_noop",
    "thread/sequential_noop",
    "thread/gather_noop@uvloop",
    "thread/sequential_noop@uvloop",
    "thread/gather_sleep_1ms_32w",
    "thread/read_small_files",
    "thread/os_stat",
    "thread/fanout_sleep_10ms_8w",
    "thread/fanout_sleep_10ms_32w",
    "thread/fanout_sleep_10ms_128w",
    "thread/run_in_executor_default",
}
PROCESS = {
    "process/small_tasks",
    "process/serial_roundtrip",
    "process/arg_64mib",
    "process/count_primes_2w",
    "process/count_primes_1w",
    "process/map_chunksize_1",
    "process/map_chunksize_100",
    "process/payload_1mib_in",
    "process/payload_1mib_out",
    "process/payload_64mib_in",
    "process/payload_64mib_out",
    "process/to_process_gather",
}
REQUIRED |= PROCESS
# The process scenarios that loky and multiprocessing.Pool also run.
PROCESS_WITH_PEERS = {
    "process/small_tasks", "process/serial_roundtrip", "process/arg_64mib",
    "process/count_primes_2w", "process/count_primes_1w", "process/map_chunksize_1",
    "process/map_chunksize_100",
}
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_bench(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "native_exec.bench", *args],
        capture_output=True, text=True, timeout=TIMEOUT,
        env=dict(os.environ, **(env or {})))


def positive(x):
    return isinstance(x, (int, float)) and x > 0


def check_measurement(side, repeats):
    assert side["error"] is None
    assert len(side["times_s"]) == repeats
    assert all(positive(t) for t in side["times_s"])
    assert positive(side["median_s"]) and positive(side["per_task_s"])


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "bench.json"
    proc = run_bench("--quick", "--scale", TINY, "--json", str(path))
    return proc, path


def test_quick_run_succeeds(quick_run):
    proc, path = quick_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert path.exists()


def test_quick_run_reports_every_scenario(quick_run):
    proc, path = quick_run
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["format"] == report.FORMAT
    assert doc["settings"]["repeats"] == 3 and doc["settings"]["quick"] is True
    assert doc["settings"]["scale"] == float(TINY)
    env = doc["environment"]
    assert env["python"]["version"] == "%d.%d.%d" % sys.version_info[:3]
    assert env["machine"]["cpu_model"] and env["machine"]["logical_cpus"] >= 1

    names = [s["name"] for s in doc["scenarios"]]
    assert REQUIRED <= set(names)
    assert len(names) == len(set(names))
    for sc in doc["scenarios"]:
        assert positive(sc["tasks"])
        if sc["skipped"] is not None:
            # Only rows that need a peer (uvloop) may be skipped, for that reason.
            assert "@" in sc["name"] and sc["skipped"] == peers.NOT_INSTALLED, sc
            continue
        warmups = 1 if sc["max_warmup"] is None else min(1, sc["max_warmup"])
        for role in ("stdlib", "native"):
            check_measurement(sc["sides"][role], repeats=3)
            assert len(sc["sides"][role]["warmup_s"]) == warmups
        assert positive(sc["ratio"])
        assert len(sc["paired_ratios"]) == 3
        assert sc["target_met"] is None  # targets do not apply at a tiny scale
        for name, peer in sc["peers"].items():
            if peer["status"] == "skipped":
                assert peer["reason"] == peers.NOT_INSTALLED
            else:
                assert peer["status"] == "ok", (name, peer)
                check_measurement(peer, repeats=3)
                assert positive(peer["ratio_vs_stdlib"])


def test_quick_run_covers_process_scenarios(quick_run):
    """Every process scenario ran native_exec and the stdlib; peers where they run."""
    _, path = quick_run
    doc = json.loads(path.read_text(encoding="utf-8"))
    by_name = {s["name"]: s for s in doc["scenarios"]}
    for name in PROCESS:
        sc = by_name[name]
        assert sc["skipped"] is None, sc
        assert "ProcessPoolExecutor" in sc["sides"]["stdlib"]["label"]
        assert sc["sides"]["native"]["label"].startswith("native_exec.ProcessPoolExecutor")
        assert positive(sc["sides"]["stdlib"]["median_s"])
        assert positive(sc["sides"]["native"]["median_s"])
        expected = {"loky", "multiprocessing.Pool"} if name in PROCESS_WITH_PEERS else set()
        assert set(sc["peers"]) == expected, name
        assert sc["peers"].get("multiprocessing.Pool", {"status": "ok"})["status"] == "ok"
        if peers.installed("loky") and "loky" in expected:
            assert sc["peers"]["loky"]["status"] == "ok", sc["peers"]["loky"]
    assert by_name["process/count_primes_1w"]["params"]["workers"] == 1
    assert by_name["process/arg_64mib"]["params"]["arg_bytes"] == 64 << 20
    assert by_name["process/small_tasks"]["target"] == 10.0


def test_quick_run_prints_table_and_progress(quick_run):
    proc, _ = quick_run
    out = proc.stdout
    assert "Python %d.%d" % sys.version_info[:2] in out
    assert "Machine: " in out
    assert "ratio = stdlib / native" in out
    for name in REQUIRED:
        assert name in out
    assert "thread/gather_noop  repeat 3/3" in proc.stderr
    assert "process/small_tasks  repeat 3/3" in proc.stderr


def test_only_selects_scenarios(tmp_path):
    path = tmp_path / "only.json"
    proc = run_bench("--only", "os_stat", "--only", "*/fanout_*_8w", "--scale", TINY,
                     "--repeats", "1", "--warmup", "0", "--json", str(path),
                     "--no-progress")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert [s["name"] for s in doc["scenarios"]] == ["thread/os_stat",
                                                      "thread/fanout_sleep_10ms_8w"]
    assert proc.stderr == ""


def test_scale_from_environment(tmp_path):
    path = tmp_path / "env.json"
    proc = run_bench("--only", "thread/gather_noop", "--repeats", "1", "--warmup", "0",
                     "--json", str(path), "--no-progress",
                     env={"NATIVE_EXEC_BENCH_SCALE": "0.002"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["settings"]["scale"] == 0.002
    assert doc["scenarios"][0]["tasks"] == 20


def test_no_match_is_a_usage_error():
    proc = run_bench("--only", "no-such-scenario", "--no-progress")
    assert proc.returncode == 2
    assert "no scenario matches" in proc.stderr


def test_list():
    proc = run_bench("--list")
    assert proc.returncode == 0
    for name in REQUIRED:
        assert name in proc.stdout


def test_plot(tmp_path):
    pytest.importorskip("matplotlib")
    if ASAN:
        pytest.skip("matplotlib's C++ extension aborts under a preloaded AddressSanitizer")
    png = tmp_path / "docs" / "ratio.png"  # a directory that does not exist yet
    proc = run_bench("--only", "gather_noop,process/map_chunksize_100", "--scale", TINY,
                     "--repeats", "1", "--warmup", "0", "--plot", str(png), "--no-progress")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_peers_are_skipped_not_errors(tmp_path, monkeypatch, capsys):
    """With no peer installed, peer rows and columns say so and the run succeeds."""
    monkeypatch.setattr(peers, "installed", lambda module: False)
    scenarios = {s.name: s for s in registry.build_all(0.002)}
    assert scenarios["thread/gather_noop@uvloop"].skipped == Skipped(peers.NOT_INSTALLED)
    assert scenarios["thread/gather_noop"].peers["anyio"] == Skipped(peers.NOT_INSTALLED)
    assert scenarios["process/small_tasks"].peers["loky"] == Skipped(peers.NOT_INSTALLED)
    # multiprocessing.Pool is the stdlib's: never missing.
    assert not isinstance(scenarios["process/small_tasks"].peers["multiprocessing.Pool"],
                          Skipped)
    assert run_scenario(scenarios["thread/gather_noop@uvloop"], repeats=1).sides == {}

    path = tmp_path / "missing.json"
    status = main(["--only", "gather_noop", "--scale", "0.002", "--repeats", "1",
                   "--warmup", "0", "--json", str(path), "--no-progress"])
    assert status == 0
    out = capsys.readouterr().out
    assert "skipped: not installed" in out
    doc = json.loads(path.read_text(encoding="utf-8"))
    by_name = {s["name"]: s for s in doc["scenarios"]}
    assert by_name["thread/gather_noop@uvloop"]["skipped"] == peers.NOT_INSTALLED
    assert by_name["thread/gather_noop"]["peers"]["anyio"] == {
        "status": "skipped", "reason": peers.NOT_INSTALLED}
    check_measurement(by_name["thread/gather_noop"]["sides"]["native"], repeats=1)


def test_process_work_pickles_by_reference():
    """Worker functions are module-level, so every pool can send them by name."""
    for fn in (process_work.identity, process_work.length, process_work.blob,
               process_work.warm, process_work.count_primes):
        assert pickle.loads(pickle.dumps(fn)) is fn
        assert fn.__module__ == "native_exec.bench.process_work"


def test_count_primes_is_the_tutorials():
    """The bench's count_primes is examples/blocking_code.py's, character for character."""
    spec = importlib.util.spec_from_file_location("_tutorial_blocking_code",
                                                  EXAMPLES / "blocking_code.py")
    tutorial = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tutorial)
    assert inspect.getsource(process_work.count_primes) == \
        inspect.getsource(tutorial.count_primes)
    assert process_work.count_primes(50_000) == tutorial.count_primes(50_000) == 5133


def test_process_sizes_at_full_scale():
    """Scale 1 runs the sizes the targets are promised for."""
    scenarios = {s.name: s for s in process_scenarios.build(1.0)}
    assert scenarios["process/small_tasks"].tasks == 5_000
    assert scenarios["process/count_primes_2w"].params == {
        "numbers": [50_000, 60_000, 70_000, 80_000], "workers": 2}
    assert scenarios["process/count_primes_1w"].params["workers"] == 1
    assert scenarios["process/payload_64mib_out"].params["result_bytes"] == 64 << 20
    assert {n: s.target for n, s in scenarios.items() if s.target} == {
        "process/small_tasks": 10.0, "process/serial_roundtrip": 3.0,
        "process/arg_64mib": 10.0, "process/count_primes_2w": 1.0,
        "process/count_primes_1w": 1.0}


def test_target_noise():
    """A target with noise allowed is met a little below it, and says so."""
    sc = Scenario("g/x", "x", 1, None, None, None, target=1.0, target_noise=0.05)
    result = Result(sc, {"stdlib": Measurement("s", "asyncio", 1, times=[0.96]),
                         "native": Measurement("n", "asyncio", 1, times=[1.0])})
    assert result.target_met is True
    result.sides["stdlib"].times = [0.94]
    assert result.target_met is False
    assert "within 5%" in report._target_cell(result, {"scale": 1.0})


@pytest.mark.parametrize("pattern,name,expected", [
    ("gather", "thread/gather_noop", True),
    ("thread/*_32w", "thread/gather_sleep_1ms_32w", True),
    ("thread/*_32w", "thread/fanout_sleep_10ms_128w", False),
    ("process", "thread/os_stat", False),
    ("process/payload_*_in", "process/payload_64mib_in", True),
    ("process/payload_*_in", "process/payload_64mib_out", False),
])
def test_matches(pattern, name, expected):
    assert registry.matches(name, pattern) is expected


@pytest.mark.parametrize("seconds,text", [
    (2.5e-6, "2.50 µs"), (3.21e-5, "32.1 µs"), (0.000123, "123 µs"), (0.0105, "10.5 ms"),
    (1.5, "1.50 s"), (5e-8, "50.0 ns"), (None, "-"),
])
def test_fmt_time(seconds, text):
    assert report.fmt_time(seconds) == text
