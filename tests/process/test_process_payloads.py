"""Large and structured payloads through a process pool, against the stdlib's
and native_exec's: 64 MiB arguments and results intact, bytearrays, many
buffers nested in containers, PickleBuffer objects, shared references that
stay shared.  The stdlib cannot pickle a memoryview argument; native_exec
can, tested alone at the end."""

from __future__ import annotations

import hashlib
import pickle
import random

import pytest

from process_fixtures import (  # noqa: F401  (fixtures)
    WAIT, identity, make_ppool, proc_impl, native_ppool, square)

pytestmark = pytest.mark.timeout(120)


MiB = 1 << 20


def make_blob(n, seed):
    return random.Random(seed).randbytes(n)


def digest(data):
    return type(data).__name__, len(data), hashlib.sha256(data).hexdigest()


def digest_tree(tree):
    return {k: [digest(b) for b in v] for k, v in tree.items()}


def digest_deep(nested):
    while isinstance(nested, list):
        nested = nested[0]
    return digest(nested)


def reversed_copy(data):
    return data[::-1]


class BufferHolder:
    """Exposes its buffer to pickle protocol 5 as a PickleBuffer (what numpy
    arrays do); with older protocols, pickles a bytes copy."""

    def __init__(self, buf):
        self.buf = bytearray(buf)

    def __reduce_ex__(self, protocol):
        if protocol >= 5:
            return type(self), (pickle.PickleBuffer(self.buf),)
        return type(self), (bytes(self.buf),)


def holder_digest_and_reverse(holder):
    assert type(holder) is BufferHolder
    return hashlib.sha256(holder.buf).hexdigest(), BufferHolder(holder.buf[::-1])


def sha(data):
    return hashlib.sha256(data).hexdigest()


def digest_kwargs(*args, **kwargs):
    return [digest(a) for a in args[0]], {k: digest(v) for k, v in kwargs.items()}


def test_64mib_bytes_argument_arrives_intact(make_ppool):
    data = make_blob(64 * MiB, 1)
    pool = make_ppool(1)
    assert pool.submit(digest, data).result(timeout=WAIT) == digest(data)


def test_64mib_result_arrives_intact(make_ppool):
    expected = digest(make_blob(64 * MiB, 2))
    pool = make_ppool(1)
    out = pool.submit(make_blob, 64 * MiB, 2).result(timeout=WAIT)
    assert type(out) is bytes and digest(out) == expected


def test_64mib_round_trip(make_ppool):
    data = make_blob(64 * MiB, 3)
    pool = make_ppool(1)
    out = pool.submit(reversed_copy, data).result(timeout=WAIT)
    assert sha(out) == sha(data[::-1])


def test_bytearray_argument_and_result(make_ppool):
    data = bytearray(make_blob(8 * MiB + 3, 4))
    small = bytearray(b"tiny")
    pool = make_ppool(1)
    assert pool.submit(digest, data).result(timeout=WAIT) == digest(data)
    assert pool.submit(digest, small).result(timeout=WAIT) == digest(small)
    out = pool.submit(reversed_copy, data).result(timeout=WAIT)
    assert type(out) is bytearray and out == data[::-1]


def test_many_buffers_nested_in_containers(make_ppool):
    tree = {"a": [make_blob(MiB, 5), make_blob(100_000, 6)],
            "b": [bytearray(make_blob(3 * MiB, 7)), b"", b"x" * 70_000]}
    deep = [[[[[make_blob(2 * MiB, 8)]]]]]
    pool = make_ppool(1)
    assert pool.submit(digest_tree, tree).result(timeout=WAIT) == digest_tree(tree)
    assert pool.submit(digest_deep, deep).result(timeout=WAIT) == digest_deep(deep)
    out = pool.submit(identity, (tree, deep)).result(timeout=WAIT)
    assert out == (tree, deep)


def test_large_buffers_in_keyword_and_nested_arguments(make_ppool):
    a, b, c = make_blob(16 * MiB, 11), bytearray(make_blob(MiB, 12)), make_blob(200_000, 13)
    pool = make_ppool(1)
    out = pool.submit(digest_kwargs, [a, b], first=c, second=a).result(timeout=WAIT)
    assert out == ([digest(a), digest(b)], {"first": digest(c), "second": digest(a)})


@pytest.mark.parametrize("size", [10, 200 * 1024, 16 * MiB])
def test_pickle_buffer_object(make_ppool, size):
    holder = BufferHolder(make_blob(size, 9))
    pool = make_ppool(1)
    got, back = pool.submit(holder_digest_and_reverse, holder).result(timeout=WAIT)
    assert got == sha(holder.buf)
    assert type(back) is BufferHolder and back.buf == holder.buf[::-1]


def shared_in_arguments(a, b, nested, cyclic):
    """In a worker: which of the arguments' shared references survived."""
    a[:5] = b"HELLO"
    return {"same buffer": a is b, "write seen": bytes(b[:5]) == b"HELLO",
            "nested same": nested[0] is nested[1] is nested[2]["again"],
            "cycle kept": cyclic[1] is cyclic, "cycle buffer": len(cyclic[0])}


def shared_in_result(n):
    big = bytes(range(256)) * (n // 256)
    cyclic = [big]
    cyclic.append(cyclic)
    return big, [big, big], {"x": big, "l": cyclic}


@pytest.mark.parametrize("size", [1000, 256 * 1024])
def test_shared_references_in_arguments_and_results_stay_shared(make_ppool, size):
    # pickle keeps what is shared shared: small or large, in-band or not
    pool = make_ppool(1)
    buf = bytearray(size)
    lst = [bytes(size)]
    cyclic = [bytes(size)]
    cyclic.append(cyclic)
    seen = pool.submit(shared_in_arguments, buf, buf, [lst, lst, {"again": lst}],
                       cyclic).result(timeout=WAIT)
    assert seen == {"same buffer": True, "write seen": True, "nested same": True,
                    "cycle kept": True, "cycle buffer": size}
    big, pair, tree = pool.submit(shared_in_result, size).result(timeout=WAIT)
    assert pair[0] is pair[1] is big and tree["x"] is big
    assert tree["l"][1] is tree["l"] and tree["l"][0] is big


def test_native_memoryview_argument(native_ppool):
    # the stdlib cannot pickle memoryview objects at all
    data = make_blob(8 * MiB, 10)
    pool = native_ppool(1)
    mv = memoryview(data)
    assert pool.submit(digest, mv).result(timeout=WAIT) == ("memoryview",) + digest(data)[1:]
    ints = memoryview(bytearray(data)).cast("i")
    out = pool.submit(identity, ints).result(timeout=WAIT)
    assert isinstance(out, memoryview) and out.format == "i" and out.shape == ints.shape
    assert out.tobytes() == data
    out = pool.submit(identity, mv[:4 * MiB]).result(timeout=WAIT)
    assert bytes(out) == data[:4 * MiB]
    assert pool.submit(square, 3).result(timeout=WAIT) == 9
