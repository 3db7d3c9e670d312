"""What a scenario is, and what measuring it gives.

A :class:`Scenario` runs one *workload* against contenders: ``stdlib``,
``native`` and optional ``peers``.  A :class:`Contender` says how a call is
made: ``open()`` is an async context manager, entered once on the
contender's own event loop, yielding ``call(fn, *args) -> awaitable``.  Pools
are made on entry and shut down on exit, so they stay warm across repeats.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import (Any, AsyncContextManager, Awaitable, Callable, ContextManager, Dict,
                    List, Mapping, Optional, Union)

from .workloads import Call

STDLIB = "stdlib"
NATIVE = "native"


@dataclass(frozen=True)
class Skipped:
    """A peer or scenario that could not run here, and why."""

    reason: str

    def __str__(self) -> str:
        return "skipped: " + self.reason


@dataclass(frozen=True)
class Contender:
    label: str                                   # e.g. "asyncio.to_thread"
    open: Callable[[], AsyncContextManager[Call]]
    loop: str = "asyncio"                        # event loop kind, see peers.LOOPS


@dataclass
class Scenario:
    name: str                                    # "group/what", matched by --only
    description: str
    tasks: int                                   # calls per run, for time per task
    workload: Callable[[Call], Awaitable[None]]
    stdlib: Optional[Contender]
    native: Optional[Contender]
    peers: Mapping[str, Union[Contender, Skipped]] = field(default_factory=dict)
    target: Optional[float] = None               # the ratio native_exec promises
    target_noise: float = 0.0                    # met at >= target * (1 - target_noise)
    skipped: Optional[Skipped] = None            # the whole row cannot run here
    fixture: Optional[ContextManager[Any]] = None  # entered once around the scenario
    params: Dict[str, Any] = field(default_factory=dict)  # sizes etc., for the JSON
    max_warmup: Optional[int] = None             # at most this many warm-up rounds

    @property
    def group(self) -> str:
        return self.name.split("/", 1)[0]

    def contenders(self) -> Dict[str, Contender]:
        """The contenders that can run, stdlib first, native second."""
        out: Dict[str, Contender] = {}
        if self.stdlib is not None:
            out[STDLIB] = self.stdlib
        if self.native is not None:
            out[NATIVE] = self.native
        for name, peer in self.peers.items():
            if isinstance(peer, Contender):
                out[name] = peer
        return out


@dataclass
class Measurement:
    """One contender's times in one scenario, in seconds per run."""

    label: str
    loop: str
    tasks: int
    times: List[float] = field(default_factory=list)
    warmup: List[float] = field(default_factory=list)
    error: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.times)

    @property
    def median(self) -> Optional[float]:
        return statistics.median(self.times) if self.times else None

    @property
    def per_task(self) -> Optional[float]:
        m = self.median
        return None if m is None else m / self.tasks


@dataclass
class Result:
    scenario: Scenario
    sides: Dict[str, Measurement] = field(default_factory=dict)

    @property
    def skipped(self) -> Optional[Skipped]:
        return self.scenario.skipped

    def ratio_of(self, role: str) -> Optional[float]:
        """stdlib median / ``role`` median: above 1, ``role`` is faster."""
        base, other = self.sides.get(STDLIB), self.sides.get(role)
        if base is None or other is None or not (base.ok and other.ok):
            return None
        if not other.median:
            return None
        return base.median / other.median  # type: ignore[operator]

    @property
    def ratio(self) -> Optional[float]:
        return self.ratio_of(NATIVE)

    def paired_ratios(self, role: str = NATIVE) -> List[float]:
        """stdlib/role of each interleaved repeat, for the spread of the ratio."""
        base, other = self.sides.get(STDLIB), self.sides.get(role)
        if base is None or other is None:
            return []
        return [b / o for b, o in zip(base.times, other.times) if o > 0]

    @property
    def target_met(self) -> Optional[bool]:
        target, ratio = self.scenario.target, self.ratio
        if target is None or ratio is None:
            return None
        return ratio >= target * (1.0 - self.scenario.target_noise)

    def peer_status(self) -> Dict[str, Union[Measurement, Skipped]]:
        out: Dict[str, Union[Measurement, Skipped]] = {}
        for name, peer in self.scenario.peers.items():
            out[name] = peer if isinstance(peer, Skipped) else self.sides[name]
        return out

    @property
    def errors(self) -> Dict[str, str]:
        return {role: m.error for role, m in self.sides.items() if m.error}
