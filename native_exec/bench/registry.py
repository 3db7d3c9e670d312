"""Finds the scenario groups and picks scenarios by name.

A scenario group is any module of this package named ``*_scenarios`` that
defines ``build(scale: float) -> list[Scenario]`` and, optionally, ``ORDER``
(its place in the report, lowest first).  Adding ``process_scenarios.py``
therefore adds its scenarios to the benchmark with no other change.
"""

from __future__ import annotations

import fnmatch
import importlib
import pkgutil
from types import ModuleType
from typing import Iterable, List, Optional, Sequence

from .model import Scenario

SUFFIX = "_scenarios"


def scenario_modules() -> List[ModuleType]:
    package = importlib.import_module(__package__)
    mods = [importlib.import_module("%s.%s" % (__package__, info.name))
            for info in pkgutil.iter_modules(package.__path__)
            if info.name.endswith(SUFFIX)]
    mods.sort(key=lambda m: (getattr(m, "ORDER", 100), m.__name__))
    return mods


def build_all(scale: float = 1.0) -> List[Scenario]:
    out: List[Scenario] = []
    for mod in scenario_modules():
        out.extend(mod.build(scale))
    names = [s.name for s in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise RuntimeError("scenario names used twice: " + ", ".join(dupes))
    return out


def matches(name: str, pattern: str) -> bool:
    """A substring of the name, or an fnmatch pattern for the whole name."""
    return pattern in name or fnmatch.fnmatchcase(name, pattern)


def split_patterns(values: Optional[Iterable[str]]) -> List[str]:
    """``--only a,b --only c`` -> ``["a", "b", "c"]``."""
    out: List[str] = []
    for value in values or ():
        out.extend(p.strip() for p in value.split(",") if p.strip())
    return out


def select(scenarios: Sequence[Scenario], patterns: Sequence[str]) -> List[Scenario]:
    if not patterns:
        return list(scenarios)
    return [s for s in scenarios if any(matches(s.name, p) for p in patterns)]
