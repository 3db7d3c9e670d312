"""``Executor.map`` as Python 3.14 defines it, for both pools on every Python.

The pools subclass the stdlib classes, whose ``map`` took ``buffersize`` only
from 3.14: inherited, the same call would be a TypeError on 3.10-3.13 and
would follow whatever each later release changes.  This is 3.14's
``Executor.map`` and ``ProcessPoolExecutor.map``, kept line for line so that
the stdlib 3.14 stays the reference for what correct means on 3.10 too, quirks
included (see ``_results``).  A chunk is built and run by the stdlib's own
``_process_chunk`` and ``_chain_from_iterable_of_lists`` (in
``concurrent.futures.process`` on every supported Python), so it pickles as
the stdlib's does.
"""

from __future__ import annotations

import collections
import sys
import time
import weakref
from concurrent.futures import Future
from concurrent.futures.process import _chain_from_iterable_of_lists, _process_chunk
from functools import partial
from itertools import islice
from operator import index
from typing import (Any, Callable, Deque, Iterable, Iterator, List, Optional, Tuple,
                    TypeVar, Union)

from . import _serialize

_T = TypeVar("_T")

try:
    from itertools import batched as _batched  # 3.12+
except ImportError:
    def _batched(iterable: Iterable[_T], n: int) -> Iterator[Tuple[_T, ...]]:
        # Checks n when called, as itertools.batched does, so that a bad
        # chunksize fails map() itself rather than its first next().
        n = index(n)
        if n > sys.maxsize:
            raise OverflowError("Python int too large to convert to C ssize_t")
        if n < 1:
            raise ValueError("n must be at least one")
        return _batches(iter(iterable), n)

    def _batches(it: Iterator[_T], n: int) -> Iterator[Tuple[_T, ...]]:
        while batch := tuple(islice(it, n)):
            yield batch


def map_calls(executor: Any, fn: Callable[..., _T], iterables: Tuple[Iterable[Any], ...],
              timeout: Optional[float], buffersize: Optional[int]) -> Iterator[_T]:
    """``Executor.map`` of 3.14 for ``executor``.

    Everything that can be refused is refused here, before anything is
    submitted, rather than at the first ``next()``: the checks come first,
    and the calls (all of them, or the first ``buffersize``) are submitted
    before the iterator is returned.  The deadline is taken now too, so
    ``timeout`` counts from the call, for the calls submitted later as well.
    """
    if buffersize is not None and not isinstance(buffersize, int):
        raise TypeError("buffersize must be an integer or None")
    if buffersize is not None and buffersize < 1:
        raise ValueError("buffersize must be None or > 0")

    end_time = None
    if timeout is not None:
        end_time = timeout + time.monotonic()

    zipped_iterables = zip(*iterables)
    fs: Union[Deque[Future], List[Future]]
    if buffersize:
        fs = collections.deque(
            executor.submit(fn, *args) for args in islice(zipped_iterables, buffersize))
    else:
        fs = [executor.submit(fn, *args) for args in zipped_iterables]

    # A weak reference, so that a pool its owner drops can be collected
    # although a result iterator is still alive (see _results).
    return _results(fs, zipped_iterables, fn, weakref.ref(executor),
                    buffersize, timeout, end_time)


def map_chunks(executor: Any, fn: Callable[..., _T], iterables: Tuple[Iterable[Any], ...],
               timeout: Optional[float], chunksize: int,
               buffersize: Optional[int]) -> Iterator[_T]:
    """``ProcessPoolExecutor.map`` of 3.14: one task per ``chunksize`` calls.

    The checks run in 3.14's order: ``chunksize`` first, then the iterables
    (``zip``), then the chunk size's type (``batched``), then ``buffersize``
    and ``timeout`` (``map_calls``).
    """
    if chunksize < 1:
        raise ValueError("chunksize must be >= 1.")

    # fn inside a partial is deeper than the C serializer looks for a
    # __main__ function the workers lack: decide once, for every chunk
    results = map_calls(executor, partial(_process_chunk, _serialize.sendable(fn)),
                        (_batched(zip(*iterables), chunksize),),
                        timeout, buffersize)
    return _chain_from_iterable_of_lists(results)


def _result_or_cancel(fut: "Future[_T]", timeout: Optional[float] = None) -> _T:
    # The stdlib's own (concurrent.futures._base): cancel also on a timeout
    # or an interruption, and drop the future so that its exception's
    # traceback does not keep it in a reference cycle.
    try:
        try:
            return fut.result(timeout)
        finally:
            fut.cancel()
    finally:
        del fut


def _results(fs: Union[Deque[Future], List[Future]], zipped_iterables: Iterator[Tuple[Any, ...]],
             fn: Callable[..., _T], executor_weakref: "weakref.ref[Any]",
             buffersize: Optional[int], timeout: Optional[float],
             end_time: Optional[float]) -> Iterator[_T]:
    """The results in input order, submitting one call per result yielded.

    As in 3.14, and on purpose:

    - the pool is asked for before each refill: once it has been collected
      nothing more is submitted, and what was submitted is still yielded;
    - it stays bound to ``executor`` while the iterator is suspended, so
      after the first refill the iterator keeps the pool alive until it
      ends, and a pool dropped mid-iteration still delivers every result;
    - a pool shut down but alive is asked to submit all the same, and its
      RuntimeError ends the iteration (the futures still buffered are
      cancelled, as on any exception or an early close; CPython's
      gh-146392 discusses changing this).
    """
    try:
        # reverse to keep finishing order
        fs.reverse()
        while fs:
            if (
                buffersize
                and (executor := executor_weakref())
                and (args := next(zipped_iterables, None))
            ):
                fs.appendleft(executor.submit(fn, *args))  # type: ignore[union-attr]
            # Careful not to keep a reference to the popped future
            if timeout is None:
                yield _result_or_cancel(fs.pop())
            else:
                yield _result_or_cancel(fs.pop(), end_time - time.monotonic())  # type: ignore[operator]
    finally:
        for future in fs:
            future.cancel()
