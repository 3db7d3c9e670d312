"""Large buffers sent beside the pickle, not inside it.

``pickle`` never hands exact ``bytes`` or ``bytearray`` objects to a
``buffer_callback``, so a 64 MiB argument would be copied into the pickle
stream and then again into shared memory.  When the C serializer finds such
a buffer near the top of a payload, it pickles with :func:`dumps`, whose
``persistent_id`` names every large buffer, at any depth, by its index in
``ours``; their bytes are copied once, straight into shared memory, and
:func:`loads` rebuilds them from there.  Everything else, including which
references are shared and which objects form cycles, is left to pickle.
"""

from __future__ import annotations

import io
import pickle
from typing import Any, Callable, Dict, List, Optional, Tuple

OOB_MIN = 64 * 1024   # keep in step with payload.c

_BYTES, _BYTEARRAY, _MEMORYVIEW = 0, 1, 2


class _Pickler(pickle.Pickler):
    def __init__(self, file: Any, ours: List[Any], buffer_callback: Callable[[Any], Any]) -> None:
        super().__init__(file, 5, buffer_callback=buffer_callback)
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


def loads(data: Any, buffers: Optional[List[Any]]) -> Any:
    """Unpickle what :func:`dumps` wrote; its buffers come out of shared
    memory, one copy each, as the payload being loaded has them."""
    return _Unpickler(io.BytesIO(data), buffers).load()
