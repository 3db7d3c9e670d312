"""Large buffers sent beside the pickle, not inside it.

``pickle`` never hands exact ``bytes`` or ``bytearray`` objects to a
``buffer_callback``, so a 64 MiB argument would be copied into the pickle
stream and then again into shared memory.  When the C serializer finds such
a buffer near the top of a payload, it pickles with :func:`dumps`, whose
``persistent_id`` names every large buffer, at any depth, by its index in
``ours``; their bytes are copied once, straight into shared memory, and
:func:`loads` rebuilds them from there.  Everything else, including which
references are shared and which objects form cycles, is left to pickle.

By value, as loky does: what pickle cannot send by reference (a lambda, a
closure, a local class, or an object holding one) is pickled again with
``cloudpickle``, imported then, with the same out-of-band buffers
(:func:`dumps_by_value`); pickle's own error stands when cloudpickle fails
too.  A function or class of ``__main__`` that the workers cannot know,
because it was defined (or rebound) after a pool forked its zygote, pickles
by reference without error but would not unpickle there: the C serializer
asks :func:`known_in_workers` about every ``__main__`` function, class and
instance of one it finds near the top of a payload, and sends the payload
by value when one is unknown.  What cloudpickle writes is read by
``pickle.loads`` wherever cloudpickle can be imported, so the reader never
needs to know which pickler wrote.
"""

from __future__ import annotations

import io
import pickle
import sys
from types import FunctionType, MethodType
from typing import Any, Callable, Dict, List, Optional, Tuple

OOB_MIN = 64 * 1024   # keep in step with payload.c

_BYTES, _BYTEARRAY, _MEMORYVIEW = 0, 1, 2


class _OursMixin:
    """Our buffers out of band, for pickle's Pickler or cloudpickle's."""

    def __init__(self, file: Any, ours: List[Any], buffer_callback: Callable[[Any], Any]) -> None:
        super().__init__(file, 5, buffer_callback=buffer_callback)  # type: ignore[call-arg]
        self.ours = ours
        self.ids: Dict[int, Tuple[Any, ...]] = {}

    def persistent_id(self, item: Any) -> Optional[Tuple[Any, ...]]:
        kind = type(item)
        if kind is bytes or kind is bytearray:
            if len(item) < OOB_MIN:
                return None
        elif kind is not memoryview or item.nbytes < OOB_MIN or not item.c_contiguous:
            return None
        # the same object always gets the same id, and the reader hands
        # back one object per id: a buffer shared in the payload stays shared
        pid = self.ids.get(id(item))
        if pid is None:
            self.ours.append(item)
            index = len(self.ours) - 1
            if kind is memoryview:
                pid = (index, _MEMORYVIEW, item.format, item.shape, item.readonly)
            else:
                pid = (index, _BYTEARRAY if kind is bytearray else _BYTES)
            self.ids[id(item)] = pid
        return pid


class _Pickler(_OursMixin, pickle.Pickler):
    pass


_ByValuePickler: Any = None


def _by_value_pickler() -> Any:
    """cloudpickle's Pickler with our persistent_id, made on first use so
    that cloudpickle is imported only when something needs it."""
    global _ByValuePickler
    if _ByValuePickler is None:
        import cloudpickle

        class ByValuePickler(_OursMixin, cloudpickle.Pickler):  # type: ignore[misc]
            pass

        _ByValuePickler = ByValuePickler
    return _ByValuePickler


#: pickle's errors for what it cannot send by reference: PicklingError for
#: a lambda (and, from 3.14, a local object), AttributeError for a local
#: object before 3.14, TypeError for an object with no reduction at all
#: (which cloudpickle cannot pickle either, but a container of one may hold
#: a lambda too).
_RETRYABLE = (pickle.PicklingError, AttributeError, TypeError)


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: Any, buffers: Optional[List[Any]]) -> None:
        super().__init__(file, buffers=buffers)
        self.taken: Dict[int, Any] = {}

    def persistent_load(self, pid: Tuple[Any, ...]) -> Any:
        from ._native import _take_buffer

        index = pid[0]
        obj = self.taken.get(index)
        if obj is None:
            if pid[1] == _MEMORYVIEW:
                _, _, fmt, shape, readonly = pid
                obj = memoryview(_take_buffer(index, not readonly))
                try:
                    obj = obj.cast(fmt, shape)
                except (TypeError, ValueError):
                    pass
            else:
                obj = _take_buffer(index, pid[1] == _BYTEARRAY)
            self.taken[index] = obj
        return obj


def dumps(obj: Any, ours: List[Any], buffer_callback: Callable[[Any], Any]) -> bytes:
    """Pickle obj (protocol 5), large buffers appended to ours instead."""
    out = io.BytesIO()
    _Pickler(out, ours, buffer_callback).dump(obj)
    return out.getvalue()


def dumps_by_value(obj: Any, ours: List[Any], buffer_callback: Callable[[Any], Any],
                   error: Optional[BaseException] = None) -> bytes:
    """Pickle obj as :func:`dumps` does, with cloudpickle: functions and
    classes pickle cannot find by name (and those of ``__main__``) go by
    value.  error: pickle's, when plain pickle was tried first; it is what
    is raised if it is not one cloudpickle may avoid, or if cloudpickle
    fails too."""
    if error is not None and not isinstance(error, _RETRYABLE):
        raise error
    try:
        out = io.BytesIO()
        _by_value_pickler()(out, ours, buffer_callback).dump(obj)
        return out.getvalue()
    except Exception:
        if error is None:
            raise
    raise error


#: Functions and classes of ``__main__``, by name, as bound when every
#: process pool so far forked its zygote (so in every worker); None before
#: the first pool.  Inherited by forked children, workers included.
_main_known: Optional[Dict[str, Any]] = None


def note_pool_forking() -> None:
    """Called just before a process pool forks its zygote: only what
    ``__main__`` holds now, and held when every earlier pool was made,
    stays known (something bound in between is sent by value, which is
    slower but right for every pool)."""
    global _main_known
    main = sys.modules.get("__main__")
    now = {name: obj for name, obj in getattr(main, "__dict__", {}).items()
           if isinstance(obj, (FunctionType, type))
           and getattr(obj, "__module__", None) == "__main__"}
    if _main_known is None:
        _main_known = now
    else:
        _main_known = {name: obj for name, obj in _main_known.items() if now.get(name) is obj}


def known_in_workers(obj: Any) -> bool:
    """Whether a ``__main__`` function or class (an instance: its class),
    pickled by reference, unpickles in the workers: its qualified name
    leads, from ``__main__`` as it was when the pools were made, to this
    very object."""
    if _main_known is None:
        return True
    if not isinstance(obj, (FunctionType, type)):
        obj = type(obj)
    head, _, rest = getattr(obj, "__qualname__", "").partition(".")
    found = _main_known.get(head)
    if rest:
        for part in rest.split("."):
            found = getattr(found, part, None)
    return found is obj


def late_in_workers(obj: Any) -> bool:
    """What the C serializer checks of each object near the top of a
    payload, for a callable that Python code wraps: a ``__main__``
    function, class, instance of one or method of either that the workers
    do not have."""
    if isinstance(obj, MethodType):
        return late_in_workers(obj.__func__) or late_in_workers(obj.__self__)
    target = obj if isinstance(obj, (FunctionType, type)) else type(obj)
    return getattr(target, "__module__", None) == "__main__" and not known_in_workers(target)


class _ByValue:
    """fn, pickled by value once (for the many chunks of one ``map()``):
    it unpickles as fn itself."""

    __slots__ = ("fn", "data")

    def __init__(self, fn: Any) -> None:
        import cloudpickle

        self.fn = fn
        self.data = cloudpickle.dumps(fn, 5)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __reduce__(self) -> Any:
        return pickle.loads, (self.data,)


def sendable(fn: Any) -> Any:
    """fn, or fn pickled by value once if the workers do not have it (if
    cloudpickle cannot, fn: each call then fails as it would have)."""
    if not late_in_workers(fn):
        return fn
    try:
        return _ByValue(fn)
    except Exception:
        return fn


def loads(data: Any, buffers: Optional[List[Any]]) -> Any:
    """Unpickle what :func:`dumps` wrote; its buffers come out of shared
    memory, one copy each, as the payload being loaded has them."""
    return _Unpickler(io.BytesIO(data), buffers).load()
