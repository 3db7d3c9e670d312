"""What pickle cannot send by reference travels by value (cloudpickle), as
loky does: lambdas, closures and local classes, in the call and in what
comes back; what neither can pickle fails its future with pickle's own
error and the pool goes on.  (Functions bound in ``__main__`` after the
pool was made: test_process_main_module_late.py.)"""

from __future__ import annotations

import asyncio
import pickle
import subprocess
import sys
import threading

import pytest

import native_exec
from process_fixtures import WAIT, identity, native_ppool, square  # noqa: F401  (fixtures)

pytestmark = pytest.mark.timeout(120)


def make_adder(n):
    def add(x):
        return x + n
    return add


def local_class():
    class Local:
        def __init__(self, value):
            self.value = value

        def doubled(self):
            return self.value * 2
    return Local


def return_lambda(k):
    return lambda x: x * k


def return_local_instance(value):
    return local_class()(value)


def call_it(fn, *args):
    return fn(*args)


def local_error_class():
    class LocalError(Exception):
        pass
    return LocalError


def raise_local(message):
    raise local_error_class()(message)


def test_lambda(native_ppool):
    pool = native_ppool(2)
    assert pool.submit(lambda: 1).result(timeout=WAIT) == 1
    assert pool.submit(lambda x, *, y: x + y, 2, y=3).result(timeout=WAIT) == 5


def test_closure(native_ppool):
    pool = native_ppool(2)
    assert pool.submit(make_adder(10), 5).result(timeout=WAIT) == 15
    # a closure as an argument, and nested in one
    assert pool.submit(call_it, make_adder(1), 1).result(timeout=WAIT) == 2
    assert pool.submit(identity, {"f": [make_adder(2)]}).result(timeout=WAIT)["f"][0](1) == 3


def test_local_class_instance_as_argument_and_result(native_ppool):
    pool = native_ppool(2)
    Local = local_class()
    assert pool.submit(Local.doubled, Local(21)).result(timeout=WAIT) == 42
    back = pool.submit(identity, Local(4)).result(timeout=WAIT)
    assert back.value == 4 and back.doubled() == 8
    made = pool.submit(return_local_instance, 5).result(timeout=WAIT)
    assert type(made).__name__ == "Local" and made.doubled() == 10


def test_lambda_returned_from_worker(native_ppool):
    pool = native_ppool(1)
    fn = pool.submit(return_lambda, 3).result(timeout=WAIT)
    assert fn(4) == 12


def test_local_exception_from_worker(native_ppool):
    pool = native_ppool(1)
    exc = pool.submit(raise_local, "boom").exception(timeout=WAIT)
    assert type(exc).__name__ == "LocalError" and exc.args == ("boom",)


def test_large_buffer_beside_a_lambda(native_ppool):
    # the by-value pickler keeps the out-of-band buffers
    pool = native_ppool(1)
    data = bytes(range(256)) * 4096   # 1 MiB
    assert pool.submit(lambda b: (len(b), b[-1]), data).result(timeout=WAIT) == (len(data), 255)
    back = pool.submit(lambda b: (lambda: b), bytearray(data)).result(timeout=WAIT)()
    assert type(back) is bytearray and back == data


def test_map_with_lambda(native_ppool):
    pool = native_ppool(2)
    assert list(pool.map(lambda x: x * x, range(20))) == [i * i for i in range(20)]
    assert list(pool.map(lambda x: -x, range(10), chunksize=3)) == [-i for i in range(10)]
    assert list(pool.map(make_adder(1), range(5), buffersize=2)) == [1, 2, 3, 4, 5]


def test_run_and_to_process_with_lambda(native_ppool):
    pool = native_ppool(2)

    async def main():
        a = await pool.run(lambda x: x + 1, 1)
        b = await native_exec.to_process(lambda: "default pool")
        c = await asyncio.gather(*(pool.run(make_adder(i), i) for i in range(5)))
        return a, b, c

    assert asyncio.run(main()) == (2, "default pool", [0, 2, 4, 6, 8])


def pickle_error(obj):
    try:
        pickle.dumps(obj, 5)
    except Exception as e:
        return e
    raise AssertionError("%r pickled" % (obj,))


@pytest.mark.parametrize("what", ["lock", "generator", "lambda-and-lock"])
def test_what_neither_can_pickle_gives_pickles_error(native_ppool, what):
    pool = native_ppool(2)
    obj = {"lock": threading.Lock(), "generator": (i for i in range(3)),
           "lambda-and-lock": [lambda: 1, threading.Lock()]}[what]
    expected = pickle_error((identity, (obj,), None))
    exc = pool.submit(identity, obj).exception(timeout=WAIT)
    assert type(exc) is type(expected), repr(exc)
    assert str(exc) == str(expected)
    assert pool.submit(square, 7).result(timeout=WAIT) == 49
    assert pool.submit(lambda: 8).result(timeout=WAIT) == 8


def test_result_neither_can_pickle(native_ppool):
    pool = native_ppool(1)
    exc = pool.submit(lambda: threading.Lock()).exception(timeout=WAIT)
    assert type(exc) is type(pickle_error(threading.Lock())), repr(exc)
    assert pool.submit(lambda: 9).result(timeout=WAIT) == 9


def test_fast_path_does_not_import_cloudpickle():
    code = (
        "import sys, native_exec\n"
        "with native_exec.ProcessPoolExecutor(1) as pool:\n"
        "    assert pool.submit(abs, -1).result() == 1\n"
        "    assert list(pool.map(abs, [-1, -2])) == [1, 2]\n"
        "    assert pool.submit(abs, -1).exception() is None\n"
        "print('cloudpickle' in sys.modules)\n"
        "with native_exec.ProcessPoolExecutor(1) as pool:\n"
        "    assert pool.submit(lambda: 3).result() == 3\n"
        "print('cloudpickle' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "True"]
