"""Output: the table, the JSON document and the ratio plot."""

from __future__ import annotations

import json
import math
from typing import Any, Dict, List, Optional, Sequence, Union

from . import machine
from .model import NATIVE, STDLIB, Measurement, Result, Skipped

FORMAT = "native_exec-bench/1"


# ---------------------------------------------------------------- numbers

def fmt_time(seconds: Optional[float]) -> str:
    """3 significant digits in ns, µs, ms or s."""
    if seconds is None or math.isnan(seconds):
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            break
    else:
        unit, scale = "ns", 1e-9
    value = seconds / scale
    digits = 0 if value >= 100 else 1 if value >= 10 else 2
    return "%.*f %s" % (digits, value, unit)


def fmt_ratio(ratio: Optional[float]) -> str:
    if ratio is None:
        return "-"
    return "%.*f×" % (1 if ratio >= 10 else 2, ratio)


def _peer_cell(name: str, status: Union[Measurement, Skipped], ratio: Optional[float]) -> str:
    if isinstance(status, Skipped):
        return "%s %s" % (name, status)
    if status.error is not None:
        return "%s error" % name
    return "%s %s (%s)" % (name, fmt_time(status.per_task), fmt_ratio(ratio))


def targets_apply(settings: Dict[str, Any]) -> bool:
    """Targets are promises at the scenarios' full size, not at a test's tiny one."""
    return settings["scale"] == 1.0


def _target_cell(result: Result, settings: Dict[str, Any]) -> str:
    target = result.scenario.target
    if target is None:
        return ""
    met = result.target_met
    if not targets_apply(settings):
        verdict = "n/a at this scale"
    else:
        verdict = "?" if met is None else "ok" if met else "MISSED"
    noise = result.scenario.target_noise
    within = " within %g%%" % round(noise * 100, 1) if noise else ""
    return "≥%s%s %s" % (fmt_ratio(target), within, verdict)


# ------------------------------------------------------------------ table

def render_table(results: Sequence[Result], info: Dict[str, Any],
                 settings: Dict[str, Any]) -> str:
    lines: List[str] = []
    commit = info.get("native_exec_commit")
    lines.append("native_exec %s benchmark%s" % (
        info["packages"].get("native_exec") or "?",
        " (commit %s)" % commit if commit else ""))
    lines.extend(machine.summary(info))
    load = settings.get("load_average") or {}
    if load.get("before"):
        after = load.get("after")
        lines.append("Load average (1 min) before / after: %.2f / %s; other work on the "
                     "machine makes thread wake-ups, so latencies, noisier." % (
                         load["before"][0], "%.2f" % after[0] if after else "?"))
    lines.append("Median of %d repeats after %d warm-up%s, contenders interleaved in each "
                 "round; scale %g%s." % (settings["repeats"], settings["warmup"],
                                       "" if settings["warmup"] == 1 else "s",
                                       settings["scale"], ", quick" if settings["quick"] else ""))
    lines.append("Times are per task (median run time / tasks). "
                 "ratio = stdlib / native: above 1× native_exec is faster;")
    lines.append("range = lowest and highest stdlib/native of single rounds.")
    lines.append("")

    header = ["scenario", "tasks", "stdlib/task", "native/task",
              "ratio (stdlib/native)", "range", "target", "peers: time/task (stdlib/peer)"]
    rows: List[List[str]] = []
    for r in results:
        name = r.scenario.name
        if r.skipped is not None:
            rows.append([name, str(r.scenario.tasks), "", "", "", "", "", "", str(r.skipped)])
            continue
        std, nat = r.sides.get(STDLIB), r.sides.get(NATIVE)
        paired = r.paired_ratios()
        spread = "%s–%s" % (fmt_ratio(min(paired)), fmt_ratio(max(paired))) if paired else ""
        peers = "; ".join(_peer_cell(n, s, r.ratio_of(n)) for n, s in r.peer_status().items())
        rows.append([
            name, str(r.scenario.tasks),
            "error" if std and std.error else fmt_time(std.per_task if std else None),
            "error" if nat and nat.error else fmt_time(nat.per_task if nat else None),
            fmt_ratio(r.ratio), spread, _target_cell(r, settings), peers,
        ])
    widths = [max(len(row[i]) for row in rows + [header]) for i in range(len(header))]
    right = {1, 2, 3, 4, 5}

    def fmt(row: List[str]) -> str:
        cells = [c.rjust(w) if i in right else c.ljust(w)
                 for i, (c, w) in enumerate(zip(row, widths))]
        if len(row) > len(header):  # a skipped row: the reason after the tasks
            cells = cells[:2] + [row[-1]]
        return "  ".join(cells).rstrip()

    lines.append(fmt(header))
    lines.append("  ".join("-" * w for w in widths).rstrip())
    lines.extend(fmt(row) for row in rows)
    lines.append("")

    lines.append("What each row compares:")
    for r in results:
        sc = r.scenario
        lines.append("  %s: %s." % (sc.name, sc.description))
        if sc.stdlib is not None and sc.native is not None:
            loop = "" if sc.stdlib.loop == "asyncio" else " (on %s)" % sc.stdlib.loop
            lines.append("      stdlib: %s%s; native: %s" % (sc.stdlib.label, loop,
                                                            sc.native.label))
        for name, peer in sc.peers.items():
            if not isinstance(peer, Skipped):
                lines.append("      %s: %s" % (name, peer.label))

    errors = [(r.scenario.name, role, msg) for r in results for role, msg in r.errors.items()]
    if errors:
        lines.append("")
        lines.append("Errors:")
        lines.extend("  %s [%s]: %s" % e for e in errors)
    return "\n".join(lines)


# ------------------------------------------------------------------- JSON

def _measurement(m: Measurement) -> Dict[str, Any]:
    return {
        "label": m.label,
        "loop": m.loop,
        "tasks": m.tasks,
        "times_s": m.times,
        "warmup_s": m.warmup,
        "median_s": m.median,
        "per_task_s": m.per_task,
        "error": m.error,
    }


def to_json(results: Sequence[Result], info: Dict[str, Any],
            settings: Dict[str, Any]) -> Dict[str, Any]:
    scenarios = []
    for r in results:
        sc = r.scenario
        paired = r.paired_ratios()
        peers: Dict[str, Any] = {}
        for name, status in r.peer_status().items():
            if isinstance(status, Skipped):
                peers[name] = {"status": "skipped", "reason": status.reason}
            else:
                peers[name] = dict(_measurement(status),
                                   status="error" if status.error else "ok",
                                   ratio_vs_stdlib=r.ratio_of(name),
                                   paired_ratios=r.paired_ratios(name))
        scenarios.append({
            "name": sc.name,
            "group": sc.group,
            "description": sc.description,
            "tasks": sc.tasks,
            "params": sc.params,
            "skipped": sc.skipped.reason if sc.skipped else None,
            "sides": {role: _measurement(r.sides[role])
                      for role in (STDLIB, NATIVE) if role in r.sides},
            "ratio": r.ratio,
            "paired_ratios": paired,
            "target": sc.target,
            "target_noise": sc.target_noise,
            "max_warmup": sc.max_warmup,
            "target_met": r.target_met if targets_apply(settings) else None,
            "peers": peers,
        })
    return {
        "format": FORMAT,
        "ratio": "stdlib median time / native median time; > 1 means native_exec is faster",
        "settings": settings,
        "environment": info,
        "scenarios": scenarios,
    }


def write_json(doc: Dict[str, Any], path: str) -> None:
    text = json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    if path == "-":
        import sys

        sys.stdout.write(text)
        return
    _make_parent(path)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def _make_parent(path: str) -> None:
    """Create the directory a report file goes in (``docs/`` on a fresh clone)."""
    import os

    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)


# ------------------------------------------------------------------- plot

def plot(results: Sequence[Result], path: str, info: Dict[str, Any]) -> None:
    """Horizontal bars of stdlib/native per scenario, log scale, a line at 1×."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    rows = [r for r in results if r.ratio is not None]
    if not rows:
        raise ValueError("no scenario has a ratio to plot")
    names = [r.scenario.name for r in rows]
    ratios = [r.ratio for r in rows]
    ys = list(range(len(rows)))[::-1]  # first scenario on top

    fig, ax = plt.subplots(figsize=(10, 1.6 + 0.42 * len(rows)))
    colors = ["#2a9d55" if q >= 1 else "#c0392b" for q in ratios]  # type: ignore[operator]
    ax.barh(ys, [q - 1 for q in ratios], left=1, color=colors, height=0.6)  # type: ignore[operator]
    ax.axvline(1, color="black", linewidth=1)
    ax.set_xscale("log")

    peer_names = sorted({n for r in rows for n in r.peer_status()
                         if r.ratio_of(n) is not None})
    markers = "osD^v"
    everything = list(ratios)
    for i, peer in enumerate(peer_names):
        pts = [(y, r.ratio_of(peer)) for y, r in zip(ys, rows) if r.ratio_of(peer)]
        if pts:
            everything.extend(q for _, q in pts)
            ax.scatter([q for _, q in pts], [y for y, _ in pts], marker=markers[i % 5],
                       facecolors="none", edgecolors="#333333", zorder=3,
                       label="%s (stdlib/%s)" % (peer, peer))
    targets = [(y, r.scenario.target) for y, r in zip(ys, rows) if r.scenario.target]
    if targets:
        everything.extend(t for _, t in targets)
        ax.scatter([t for _, t in targets], [y for y, _ in targets], marker="|", s=300,
                   color="#1f4e9c", zorder=4, label="target")
    for y, q in zip(ys, ratios):
        ax.annotate(fmt_ratio(q), (q, y), xytext=(4 if q >= 1 else -4, 0),  # type: ignore[operator]
                    textcoords="offset points", va="center",
                    ha="left" if q >= 1 else "right", fontsize=8)  # type: ignore[operator]

    lo, hi = min(everything + [1.0]), max(everything + [1.0])  # type: ignore[type-var]
    ax.set_xlim(lo / 1.8, hi * 1.8)
    ticks = [t for t in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500)
             if lo / 1.8 <= t <= hi * 1.8]
    ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(ticks))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: "%g×" % x))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_yticks(ys)
    ax.set_yticklabels(names, fontsize=8)
    ax.set_xlabel("stdlib time / native_exec time (log scale; > 1× = native_exec faster)")
    head = machine.summary(info)
    ax.set_title("native_exec vs stdlib\n%s\n%s" % tuple(head), fontsize=9)
    if peer_names or targets:
        # Below the axes, so that it never hides a bar or its label.
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.6 / len(rows) - 0.04),
                  ncol=4, frameon=False)
    ax.grid(axis="x", which="both", alpha=0.25)
    fig.tight_layout()
    _make_parent(path)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
