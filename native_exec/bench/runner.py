"""Running a scenario: one event loop per contender, interleaved repeats.

Each contender gets its own event loop for the whole scenario, and its
``open()`` is entered there once, so pools (and a loop's default executor)
are made once and reused warm by every repeat.  Each round runs the workload
once per contender in a fixed order (stdlib, native, peers...), warm-up
rounds first (no more than the scenario's ``max_warmup``); only the timed
rounds count towards the median.  The clock is
read inside the loop, around the workload alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
import traceback
from typing import Any, Awaitable, Callable, Dict, Optional

from . import peers
from .model import Contender, Measurement, Result, Scenario
from .progress import Progress
from .workloads import Call


class LoopHost:
    """An event loop that lives across many ``run`` calls, closed like asyncio.run."""

    def __init__(self, kind: str) -> None:
        self.loop = peers.new_event_loop(kind)

    def run(self, aw: Awaitable[Any]) -> Any:
        return self.loop.run_until_complete(aw)

    def close(self) -> None:
        loop = self.loop
        try:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()


async def _timed(workload: Callable[[Call], Awaitable[None]], call: Call) -> float:
    start = time.perf_counter()
    await workload(call)
    return time.perf_counter() - start


class _Side:
    """A contender opened on its loop for the length of one scenario."""

    def __init__(self, contender: Contender) -> None:
        self.call: Optional[Call] = None
        self.host: Optional[LoopHost] = LoopHost(contender.loop)
        self.cm = contender.open()
        try:
            self.call = self.host.run(self.cm.__aenter__())
        except BaseException:
            self.close()
            raise

    def measure(self, workload: Callable[[Call], Awaitable[None]]) -> float:
        assert self.host is not None and self.call is not None
        gc.collect()
        return self.host.run(_timed(workload, self.call))

    def close(self) -> None:
        try:
            if self.call is not None and self.host is not None:
                self.call = None
                self.host.run(self.cm.__aexit__(None, None, None))  # type: ignore[union-attr]
        finally:
            if self.host is not None:
                host, self.host = self.host, None
                host.close()


def describe(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


def run_scenario(scenario: Scenario, repeats: int, warmup: int = 1,
                 progress: Optional[Progress] = None) -> Result:
    """Measure every contender of ``scenario``, ``warmup`` + ``repeats`` times each."""
    result = Result(scenario)
    if scenario.skipped is not None:
        return result
    progress = progress or Progress(enabled=False)
    if scenario.max_warmup is not None:
        warmup = min(warmup, scenario.max_warmup)
    sides: Dict[str, _Side] = {}
    fixture = scenario.fixture if scenario.fixture is not None else contextlib.nullcontext()
    with fixture:
        try:
            for role, contender in scenario.contenders().items():
                m = result.sides[role] = Measurement(contender.label, contender.loop,
                                                     scenario.tasks)
                try:
                    sides[role] = _Side(contender)
                except Exception as exc:
                    m.error = "setup failed: " + describe(exc)
            for rnd in range(warmup + repeats):
                first = True
                for role, side in sides.items():
                    m = result.sides[role]
                    if m.error is not None:
                        continue
                    progress.step(rnd, warmup, repeats, role, first)
                    first = False
                    try:
                        elapsed = side.measure(scenario.workload)
                    except Exception as exc:
                        m.error = describe(exc)
                        continue
                    (m.warmup if rnd < warmup else m.times).append(elapsed)
        finally:
            for role, side in reversed(list(sides.items())):
                try:
                    side.close()
                except Exception as exc:
                    m = result.sides[role]
                    if m.error is None:
                        m.error = "shutdown failed: " + describe(exc)
    return result
