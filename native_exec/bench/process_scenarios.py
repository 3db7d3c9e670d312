"""Process-pool scenarios: ``native_exec.ProcessPoolExecutor`` vs the stdlib's.

The stdlib side is ``concurrent.futures.ProcessPoolExecutor(workers,
mp_context=multiprocessing.get_context("fork"))``; peers, where installed,
are loky's reusable executor and ``multiprocessing.Pool`` (fork).  Every pool
has 2 workers unless the name says otherwise, is made once per scenario,
warmed up (each worker runs a task before any timing, see
:func:`.process_pools.warm_up`) and shut down at the end.

The functions the workers run are in :mod:`.process_work`.  Sizes are the
full-run sizes; ``build(scale)`` multiplies the task counts (never the
payload sizes or the worker counts) so that tests can run tiny.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Union

from . import peers
from .model import Contender, Scenario, Skipped
from .process_pools import PoolHandle, open_native, open_stdlib
from .process_work import blob, count_primes, identity, length, pattern_bytes

ORDER = 20  # after the thread scenarios

WORKERS = 2
MiB = 1 << 20
SMALL_TASKS = 5_000
SERIAL_ROUNDTRIPS = 500
ARG_64MIB_CALLS = 1
PRIMES = (50_000, 60_000, 70_000, 80_000)  # the tutorial's numbers
MAP_ITEMS = 2_000
MAP_CHUNKSIZES = (1, 100)
PAYLOADS = ((1 * MiB, 50), (64 * MiB, 2))  # (size, calls in flight per run)
GATHER_TASKS = 2_000
CPU_BOUND_NOISE = 0.05  # "no slower" for CPU-bound rows: within 5 %


# ---------------------------------------------------------- workloads
#
# A workload is ``async workload(handle)``; the blocking ones (submit then
# result(), map) block the contender's event loop thread, which has nothing
# else to do, exactly as a script calling them would.

async def submit_all(handle: PoolHandle, fn: Callable[..., Any],
                     args: Callable[[], Iterable[Sequence[Any]]],
                     check: Callable[[List[Any]], bool]) -> None:
    """Submit every call first, then collect every result in order."""
    pending = [handle.submit(fn, *a) for a in args()]
    results = [p.result() for p in pending]
    if not check(results):
        raise AssertionError("wrong results from %s" % fn.__name__)


async def one_at_a_time(handle: PoolHandle, fn: Callable[..., Any],
                        args: Callable[[], Iterable[Sequence[Any]]],
                        check: Callable[[Any], bool]) -> None:
    """``submit(...).result()``, each call finished before the next is made."""
    for a in args():
        if not check(handle.submit(fn, *a).result()):
            raise AssertionError("wrong result from %s" % fn.__name__)


async def mapped(handle: PoolHandle, n: int, chunksize: int) -> None:
    """``list(pool.map(identity, range(n), chunksize=chunksize))``."""
    results = list(handle.map(identity, range(n), chunksize))
    if len(results) != n or (n and results[-1] != n - 1):
        raise AssertionError("wrong results from map")


async def tutorial_count_primes(handle: PoolHandle, numbers: Sequence[int]) -> None:
    """Tutorial section 4.2: ``loop.run_in_executor`` per number, ``as_completed``."""
    futures = [handle(count_primes, n) for n in numbers]
    for coro in asyncio.as_completed(futures):
        if await coro <= 0:
            raise AssertionError("count_primes found no primes")


async def gathered(handle: PoolHandle, n: int) -> None:
    """``await asyncio.gather(*(call(identity, i) for i in range(n)))``."""
    results = await asyncio.gather(*(handle(identity, i) for i in range(n)))
    if len(results) != n or (n and results[-1] != n - 1):
        raise AssertionError("wrong results from gather")


# ----------------------------------------------------------- fixtures

class Payload:
    """A ``size``-byte argument, made when the scenario starts, freed at its end."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.data: Optional[bytes] = None

    def __enter__(self) -> "Payload":
        self.data = pattern_bytes(self.size)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.data = None

    def args(self, calls: int) -> List[Sequence[Any]]:
        assert self.data is not None, "the scenario's fixture is not entered"
        return [(self.data,)] * calls


# ------------------------------------------------------------ helpers

def scaled(n: int, scale: float, minimum: int = 1) -> int:
    return max(minimum, int(round(n * scale)))


def calls(n: int) -> str:
    return "%d call%s" % (n, "" if n == 1 else "s")


def size_name(size: int) -> str:
    return "%dmib" % (size // MiB) if size % MiB == 0 else "%db" % size


def stdlib(workers: int = WORKERS, sizes: Iterable[int] = ()) -> Contender:
    return Contender("concurrent.futures.ProcessPoolExecutor(%d, mp_context=fork)" % workers,
                     open_stdlib(workers, tuple(sizes)))


def native(workers: int = WORKERS, sizes: Iterable[int] = (),
           use_run: bool = False) -> Contender:
    how = ", awaited by pool.run" if use_run else ""
    return Contender("native_exec.ProcessPoolExecutor(%d)%s" % (workers, how),
                     open_native(workers, tuple(sizes), use_run=use_run))


def process_peers(workers: int = WORKERS,
                  sizes: Iterable[int] = ()) -> Dict[str, Union[Contender, Skipped]]:
    """loky and multiprocessing.Pool, or why each cannot run."""
    return {name: make(workers, sizes=tuple(sizes))
            for name, make in peers.PROCESS_POOL_PEERS.items()}


def primes_numbers(scale: float) -> List[int]:
    """The tutorial's four numbers; above scale 1 the list repeats, below it they shrink.

    Scale 1 is exactly the tutorial (four calls); a tiny test scale keeps the
    four calls but makes each cheap.
    """
    if scale >= 1:
        return list(PRIMES) * max(1, int(round(scale)))
    return [max(100, int(round(n * scale))) for n in PRIMES]


# ---------------------------------------------------------- scenarios

def build(scale: float = 1.0) -> List[Scenario]:
    out: List[Scenario] = []

    # Throughput of tiny tasks: the pool's own overhead per task.
    n = scaled(SMALL_TASKS, scale)
    out.append(Scenario(
        "process/small_tasks",
        "%s of f(i) -> i, all submitted, then every result() collected" % calls(n), n,
        partial(submit_all, fn=identity, args=lambda n=n: [(i,) for i in range(n)],
                check=lambda r, n=n: len(r) == n and r[-1] == n - 1),
        stdlib(), native(), peers=process_peers(), target=10.0,
        params={"calls": n, "workers": WORKERS}))

    # Latency: one task in flight at a time.
    n = scaled(SERIAL_ROUNDTRIPS, scale)
    out.append(Scenario(
        "process/serial_roundtrip",
        "%s of f(i) -> i, each submit(...).result() before the next" % calls(n), n,
        partial(one_at_a_time, fn=identity, args=lambda n=n: [(i,) for i in range(n)],
                check=lambda r: r >= 0),
        stdlib(), native(), peers=process_peers(), target=3.0,
        params={"calls": n, "workers": WORKERS}))

    # A large argument, one round trip at a time.
    n, arg = scaled(ARG_64MIB_CALLS, scale), Payload(64 * MiB)
    out.append(Scenario(
        "process/arg_64mib",
        "%s of len(data), data a 64 MiB bytes argument, one at a time" % calls(n), n,
        partial(one_at_a_time, fn=length, args=lambda n=n, p=arg: p.args(n),
                check=lambda r: r == 64 * MiB),
        stdlib(), native(), peers=process_peers(), target=10.0, fixture=arg,
        params={"calls": n, "workers": WORKERS, "arg_bytes": 64 * MiB}))

    # The tutorial's CPU-bound calls: the pool must cost nothing here.
    numbers = primes_numbers(scale)
    for w in (2, 1):
        out.append(Scenario(
            "process/count_primes_%dw" % w,
            "count_primes(n) for n in %s via loop.run_in_executor + as_completed, "
            "%d worker%s (tutorial 4.2); no warm-up round, the workers have run a task"
            % (", ".join(map(str, numbers)) if len(numbers) <= 4
               else "%d numbers" % len(numbers), w, "s" if w > 1 else ""),
            len(numbers), partial(tutorial_count_primes, numbers=numbers),
            stdlib(w), native(w), peers=process_peers(w), target=1.0,
            target_noise=CPU_BOUND_NOISE, max_warmup=0,
            params={"numbers": numbers, "workers": w}))

    # Executor.map, the stdlib's own code on both: one chunk per task.
    n = scaled(MAP_ITEMS, scale)
    for chunksize in MAP_CHUNKSIZES:
        out.append(Scenario(
            "process/map_chunksize_%d" % chunksize,
            "list(pool.map(f, range(%d), chunksize=%d)), f(i) -> i" % (n, chunksize), n,
            partial(mapped, n=n, chunksize=chunksize),
            stdlib(), native(), peers=process_peers(), target=None,
            params={"items": n, "chunksize": chunksize, "workers": WORKERS}))

    # Bulk data: a large argument in, a large result out, both workers busy.
    for size, count in PAYLOADS:
        n = scaled(count, scale)
        arg = Payload(size)
        out.append(Scenario(
            "process/payload_%s_in" % size_name(size),
            "%s of len(data), data a %d MiB bytes argument, all submitted "
            "then collected" % (calls(n), size // MiB), n,
            partial(submit_all, fn=length, args=lambda n=n, p=arg: p.args(n),
                    check=lambda r, s=size: all(x == s for x in r)),
            stdlib(), native(), fixture=arg,
            params={"calls": n, "arg_bytes": size, "workers": WORKERS}))
        out.append(Scenario(
            "process/payload_%s_out" % size_name(size),
            "%s returning a %d MiB bytes result (made once per worker), all "
            "submitted then collected" % (calls(n), size // MiB), n,
            partial(submit_all, fn=blob, args=lambda n=n, s=size: [(s,)] * n,
                    check=lambda r, s=size: all(len(x) == s for x in r)),
            stdlib(sizes=(size,)), native(sizes=(size,)),
            params={"calls": n, "result_bytes": size, "workers": WORKERS}))

    # The asyncio bridge: pool.run vs loop.run_in_executor, gathered.
    n = scaled(GATHER_TASKS, scale)
    out.append(Scenario(
        "process/to_process_gather",
        "%s of f(i) -> i through asyncio.gather: native pool.run(f, i), stdlib "
        "loop.run_in_executor(pool, f, i)" % calls(n), n,
        partial(gathered, n=n), stdlib(), native(use_run=True),
        params={"calls": n, "workers": WORKERS}))
    return out
