"""Process pools as contenders: one handle type for every pool.

A process contender's ``open()`` yields a :class:`PoolHandle`.  Like a thread
contender's ``call``, the handle is called as ``handle(fn, *args)`` and gives
an awaitable (for ``concurrent.futures`` executors, ``loop.run_in_executor``,
as the tutorial does); it also has the blocking ways of using a pool:
``submit(fn, *args).result()`` and ``map(fn, iterable, chunksize)``.

Every pool is warmed up when opened (:func:`warm_up`): each worker process
runs a task first, so the cost of starting a worker is never timed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, Iterator, Optional, Set

from . import process_work

WARM_SECONDS = 0.05  # a warm-up task holds its worker this long
WARM_ATTEMPTS = 10   # rounds of warm-up tasks until every worker has run one


class Pending:
    """A submitted call: ``result()`` blocks until it is done."""

    def result(self) -> Any:  # pragma: no cover - interface
        raise NotImplementedError


class PoolHandle:
    """A process pool of ``workers`` processes, as the workloads use it."""

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def __call__(self, fn: Callable[..., Any], *args: Any) -> Awaitable[Any]:
        raise NotImplementedError

    def submit(self, fn: Callable[..., Any], *args: Any) -> Pending:
        raise NotImplementedError

    def map(self, fn: Callable[[Any], Any], iterable: Iterable[Any],
            chunksize: int = 1) -> Iterator[Any]:
        raise NotImplementedError


class ExecutorHandle(PoolHandle):
    """A ``concurrent.futures.Executor``: the stdlib's, native_exec's, loky's.

    ``call`` replaces how ``handle(fn, *args)`` is awaited (native_exec's
    ``pool.run``, say); by default it is ``loop.run_in_executor(executor, ...)``.
    """

    def __init__(self, executor: concurrent.futures.Executor, workers: int,
                 call: Optional[Callable[..., Awaitable[Any]]] = None) -> None:
        super().__init__(workers)
        self.executor = executor
        self._call = call

    def __call__(self, fn: Callable[..., Any], *args: Any) -> Awaitable[Any]:
        if self._call is not None:
            return self._call(fn, *args)
        return asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Pending:
        return self.executor.submit(fn, *args)  # a Future has result()

    def map(self, fn: Callable[[Any], Any], iterable: Iterable[Any],
            chunksize: int = 1) -> Iterator[Any]:
        return self.executor.map(fn, iterable, chunksize=chunksize)


class _AsyncResult(Pending):
    def __init__(self, res: Any) -> None:
        self._res = res

    def result(self) -> Any:
        return self._res.get()


class MultiprocessingPoolHandle(PoolHandle):
    """``multiprocessing.Pool``: ``apply_async`` and ``map``."""

    def __init__(self, pool: Any, workers: int) -> None:
        super().__init__(workers)
        self.pool = pool

    def __call__(self, fn: Callable[..., Any], *args: Any) -> Awaitable[Any]:
        running = asyncio.get_running_loop()
        fut = running.create_future()

        def done(result: Any) -> None:
            running.call_soon_threadsafe(_settle, fut, result, None)

        def failed(exc: BaseException) -> None:
            running.call_soon_threadsafe(_settle, fut, None, exc)

        self.pool.apply_async(fn, args, callback=done, error_callback=failed)
        return fut

    def submit(self, fn: Callable[..., Any], *args: Any) -> Pending:
        return _AsyncResult(self.pool.apply_async(fn, args))

    def map(self, fn: Callable[[Any], Any], iterable: Iterable[Any],
            chunksize: int = 1) -> Iterator[Any]:
        return iter(self.pool.map(fn, iterable, chunksize))


def _settle(fut: "asyncio.Future[Any]", result: Any, exc: Optional[BaseException]) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(result)


def warm_up(handle: PoolHandle, sizes: Iterable[int] = ()) -> None:
    """Have every worker run a task (and make the result blobs of ``sizes``).

    ``workers`` tasks at a time, each holding its worker for WARM_SECONDS, so
    they spread over the workers; repeated until every worker has answered.
    """
    sizes = tuple(sizes)
    seen: Set[int] = set()
    for _ in range(WARM_ATTEMPTS):
        pending = [handle.submit(process_work.warm, WARM_SECONDS, sizes)
                   for _ in range(handle.workers)]
        seen.update(p.result() for p in pending)
        if len(seen) >= handle.workers:
            return
    raise RuntimeError("warm-up reached %d of %d workers" % (len(seen), handle.workers))


# ------------------------------------------------------------ contenders
#
# Each returns the async context manager factory of a Contender's ``open``;
# the Contender itself (label and all) is made where the scenario is built.

def fork_context() -> Any:
    return multiprocessing.get_context("fork")


def open_stdlib(workers: int, sizes: Iterable[int] = ()) -> Callable[[], Any]:
    """``concurrent.futures.ProcessPoolExecutor(workers, mp_context=fork)``."""

    @asynccontextmanager
    async def open_() -> AsyncIterator[PoolHandle]:
        pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=fork_context())
        try:
            handle = ExecutorHandle(pool, workers)
            warm_up(handle, sizes)
            yield handle
        finally:
            pool.shutdown(wait=True)

    return open_


def open_native(workers: int, sizes: Iterable[int] = (),
                use_run: bool = False) -> Callable[[], Any]:
    """``native_exec.ProcessPoolExecutor(workers)``; ``use_run``: awaited by ``pool.run``."""

    @asynccontextmanager
    async def open_() -> AsyncIterator[PoolHandle]:
        import native_exec

        pool = native_exec.ProcessPoolExecutor(workers)
        try:
            handle = ExecutorHandle(pool, workers, call=pool.run if use_run else None)
            warm_up(handle, sizes)
            yield handle
        finally:
            pool.shutdown(wait=True)

    return open_


def open_loky(workers: int, sizes: Iterable[int] = ()) -> Callable[[], Any]:
    """``loky.get_reusable_executor(max_workers=workers)`` (loky's own start method)."""

    @asynccontextmanager
    async def open_() -> AsyncIterator[PoolHandle]:
        import loky

        executor = loky.get_reusable_executor(max_workers=workers)
        try:
            handle = ExecutorHandle(executor, workers)
            warm_up(handle, sizes)
            yield handle
        finally:
            executor.shutdown(wait=True)

    return open_


def open_multiprocessing(workers: int, sizes: Iterable[int] = (),
                         start_method: str = "fork") -> Callable[[], Any]:
    """``multiprocessing.get_context(start_method).Pool(workers)``."""

    @asynccontextmanager
    async def open_() -> AsyncIterator[PoolHandle]:
        pool = multiprocessing.get_context(start_method).Pool(workers)
        try:
            handle = MultiprocessingPoolHandle(pool, workers)
            warm_up(handle, sizes)
            yield handle
        finally:
            pool.close()
            pool.join()

    return open_
