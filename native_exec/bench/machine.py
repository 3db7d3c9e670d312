"""What the numbers were measured on: CPU, cores, Python, package versions."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from typing import Any, Dict, List, Optional

from . import peers

CPUINFO = "/proc/cpuinfo"


def _cpuinfo_blocks(path: str = CPUINFO) -> List[Dict[str, str]]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return []
    blocks = []
    for chunk in text.split("\n\n"):
        block = {}
        for line in chunk.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                block[key.strip().lower()] = value.strip()
        if block:
            blocks.append(block)
    return blocks


def cpu_model(blocks: Optional[List[Dict[str, str]]] = None) -> str:
    blocks = _cpuinfo_blocks() if blocks is None else blocks
    for key in ("model name", "hardware", "cpu model", "processor", "cpu"):
        for block in blocks:
            value = block.get(key, "")
            if value and not value.isdigit():  # x86's "processor" is an index
                return value
    return platform.processor() or platform.machine() or "unknown CPU"


def physical_cores(blocks: Optional[List[Dict[str, str]]] = None) -> Optional[int]:
    """Distinct (package, core) pairs; None when /proc/cpuinfo does not say."""
    blocks = _cpuinfo_blocks() if blocks is None else blocks
    pairs = {(b.get("physical id"), b.get("core id")) for b in blocks if "core id" in b}
    return len(pairs) or None


def usable_cpus() -> Optional[int]:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def load_average() -> Optional[List[float]]:
    """1, 5 and 15 minute load averages, where the OS has them."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def gil_enabled() -> bool:
    check = getattr(sys, "_is_gil_enabled", None)
    return True if check is None else bool(check())


def git_commit() -> Optional[str]:
    """The commit of the native_exec checkout this runs from, if it is one."""
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        out = subprocess.run(["git", "-C", here, "rev-parse", "--short=12", "HEAD"],
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


def describe() -> Dict[str, Any]:
    blocks = _cpuinfo_blocks()
    return {
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "build": sys.version.replace("\n", " "),
            "gil_enabled": gil_enabled(),
            "executable": sys.executable,
        },
        "machine": {
            "cpu_model": cpu_model(blocks),
            "physical_cores": physical_cores(blocks),
            "logical_cpus": os.cpu_count(),
            "usable_cpus": usable_cpus(),
            "system": platform.system(),
            "release": platform.release(),
            "arch": platform.machine(),
        },
        "packages": {name: peers.version(name) for name in peers.DISTRIBUTIONS},
        "native_exec_commit": git_commit(),
    }


def summary(info: Dict[str, Any]) -> List[str]:
    """Two header lines: the Python, then the machine."""
    py, m = info["python"], info["machine"]
    gil = "" if py["gil_enabled"] else ", free-threaded"
    cores = m["physical_cores"]
    cpus = "%s logical CPUs" % m["logical_cpus"]
    if m["usable_cpus"] is not None and m["usable_cpus"] != m["logical_cpus"]:
        cpus += " (%s usable)" % m["usable_cpus"]
    if cores:
        cpus = "%d cores, %s" % (cores, cpus)
    return [
        "Python %s (%s%s), %s %s %s" % (py["version"], py["implementation"], gil,
                                         m["system"], m["release"], m["arch"]),
        "Machine: %s, %s" % (m["cpu_model"], cpus),
    ]
