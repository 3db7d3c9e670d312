"""Large buffers sent beside the pickle, not inside it.

``pickle`` never hands exact ``bytes`` or ``bytearray`` objects to a
``buffer_callback``, so a 64 MiB argument would be copied into the pickle
stream and then again into shared memory.  The C serializer asks
:func:`wrap_large` to swap such buffers (found within a few container levels
of the payload) for :class:`OutOfBand` markers; their bytes are copied once,
straight into shared memory, and the reader rebuilds them from there.
"""

from __future__ import annotations

from typing import Any, Callable, List, Tuple

OOB_MIN = 64 * 1024   # keep in step with payload.c

def _is_large(obj: Any) -> bool:
    kind = type(obj)
    if kind is bytes or kind is bytearray:
        return len(obj) >= OOB_MIN
    if kind is memoryview:
        return obj.nbytes >= OOB_MIN and obj.c_contiguous
    return False


class OutOfBand:
    """Pickles as a reference to buffer ``index`` of the payload."""

    __slots__ = ("obj", "index")

    def __init__(self, obj: Any, index: int) -> None:
        self.obj = obj
        self.index = index

    def __reduce__(self) -> Tuple[Callable[..., Any], Tuple[Any, ...]]:
        obj = self.obj
        if type(obj) is memoryview:
            return _take_memoryview, (self.index, obj.format, obj.shape, obj.readonly)
        return _take, (self.index, type(obj) is bytearray)


def _take(index: int, mutable: bool) -> Any:
    # Copies buffer `index` of the payload being unpickled out of shared
    # memory, waiting for the parts a streaming writer has not copied in yet.
    from ._native import _take_buffer

    return _take_buffer(index, mutable)


def _take_memoryview(index: int, fmt: str, shape: Tuple[int, ...], readonly: bool) -> memoryview:
    data = memoryview(_take(index, not readonly))
    try:
        return data.cast(fmt, shape)
    except (TypeError, ValueError):
        return data


def wrap_large(obj: Any, ours: List[Any], depth: int) -> Any:
    """A copy of obj with large buffers replaced by markers appended to ours.

    Only exact tuples, lists and dicts are looked into, ``depth`` levels down;
    anything deeper still pickles correctly, in-band.
    """
    if _is_large(obj):
        ours.append(obj)
        return OutOfBand(obj, len(ours) - 1)
    if depth == 0:
        return obj
    kind = type(obj)
    if kind is tuple:
        return tuple([wrap_large(item, ours, depth - 1) for item in obj])
    if kind is list:
        return [wrap_large(item, ours, depth - 1) for item in obj]
    if kind is dict:
        return {key: wrap_large(value, ours, depth - 1) for key, value in obj.items()}
    return obj
