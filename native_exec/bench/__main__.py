"""``python -m native_exec.bench``: native_exec against the stdlib, same run.

Exit status: 0; 1 if a stdlib, native or peer contender failed (or, with
``--check``, a scenario missed its target); 2 for a usage error.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from typing import Any, Dict, Optional, Sequence

from . import machine, registry, report
from .progress import Progress
from .runner import run_scenario

SCALE_ENV = "NATIVE_EXEC_BENCH_SCALE"
FULL_REPEATS = 11
QUICK_REPEATS = 3


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def _count(minimum: int):  # type: ignore[no-untyped-def]
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError("must be >= %d" % minimum)
        return value
    return parse


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m native_exec.bench",
        description="Benchmark native_exec against the stdlib executors (and peers such "
                    "as uvloop and anyio where installed), interleaved in the same run. "
                    "ratio = stdlib time / native time: above 1x native_exec is faster.")
    p.add_argument("--quick", action="store_true",
                   help="%d repeats instead of %d (well under a minute)"
                        % (QUICK_REPEATS, FULL_REPEATS))
    p.add_argument("--repeats", type=_count(1), metavar="N",
                   help="timed runs per contender (default %d, --quick %d); "
                        "the median is reported" % (FULL_REPEATS, QUICK_REPEATS))
    p.add_argument("--warmup", type=_count(0), default=1, metavar="N",
                   help="untimed runs per contender first (default 1)")
    p.add_argument("--scale", type=_positive_float, metavar="FLOAT",
                   help="multiply every scenario's task count (default $%s or 1.0; "
                        "tests use e.g. 0.01)" % SCALE_ENV)
    p.add_argument("--only", action="append", metavar="PATTERN",
                   help="run scenarios whose name contains PATTERN or matches it as an "
                        "fnmatch pattern; repeat or comma-separate for several")
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    p.add_argument("--json", metavar="FILE",
                   help="write every number (each repeat too) as JSON ('-' = stdout)")
    p.add_argument("--plot", metavar="FILE.png",
                   help="draw the ratio per scenario (needs matplotlib)")
    p.add_argument("--check", action="store_true",
                   help="exit 1 if a scenario misses native_exec's target ratio "
                        "(targets apply at scale 1 only)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress line on stderr")
    args = p.parse_args(argv)
    if args.scale is None:
        env = os.environ.get(SCALE_ENV)
        try:
            args.scale = _positive_float(env) if env else 1.0
        except (ValueError, argparse.ArgumentTypeError):
            p.error("$%s must be a number > 0, not %r" % (SCALE_ENV, env))
    if args.repeats is None:
        args.repeats = QUICK_REPEATS if args.quick else FULL_REPEATS
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    patterns = registry.split_patterns(args.only)
    everything = registry.build_all(args.scale)
    scenarios = registry.select(everything, patterns)
    if args.list:
        for sc in everything:
            mark = "*" if sc in scenarios else " "
            print("%s %-34s %s%s" % (mark, sc.name, sc.description,
                                     " [%s]" % sc.skipped if sc.skipped else ""))
        return 0
    if not scenarios:
        print("no scenario matches %s; --list shows them" % ", ".join(patterns),
              file=sys.stderr)
        return 2

    info = machine.describe()
    settings: Dict[str, Any] = {
        "repeats": args.repeats, "warmup": args.warmup, "scale": args.scale,
        "quick": args.quick, "only": patterns, "argv": list(sys.argv[1:] if argv is None
                                                              else argv),
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    settings["load_average"] = {"before": machine.load_average(), "after": None}
    progress = Progress(enabled=not args.no_progress)
    results = []
    start = time.monotonic()
    try:
        for i, sc in enumerate(scenarios, 1):
            progress.scenario(i, len(scenarios), sc.name)
            if sc.skipped is not None:
                progress.note(str(sc.skipped))
            results.append(run_scenario(sc, args.repeats, args.warmup, progress))
    finally:
        progress.finish()
    settings["duration_s"] = round(time.monotonic() - start, 3)
    settings["load_average"]["after"] = machine.load_average()

    print(report.render_table(results, info, settings))
    print("\nTotal time %.1f s." % settings["duration_s"])
    status = 0
    if any(r.errors for r in results):
        status = 1
    if (args.check and report.targets_apply(settings)
            and any(r.target_met is False for r in results)):
        status = 1
    if args.json:
        report.write_json(report.to_json(results, info, settings), args.json)
    if args.plot:
        try:
            report.plot(results, args.plot, info)
        except ImportError:
            print("--plot needs matplotlib, which is not installed", file=sys.stderr)
            status = status or 1
    return status


if __name__ == "__main__":
    sys.exit(main())
