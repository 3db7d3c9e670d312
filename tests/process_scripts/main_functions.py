"""Uses functions and classes defined in __main__, before the pool exists.

Usage: main_functions.py stdlib|native [--late]

Prints one JSON line with what the workers computed.  With --late (native
only), also submits a function defined after the pool was created: the
zygote is a fork taken at creation, so it must fail that future cleanly (an
UnpicklingFailed caused by AttributeError) and leave the pool usable.
"""

import concurrent.futures
import json
import multiprocessing
import os
import sys

import native_exec


class MainError(Exception):
    pass


class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __repr__(self):
        return "Point(%d, %d)" % (self.x, self.y)


def square(x):
    return x * x


def square_plus_one(x):
    return x * x + 1, os.getpid()


def make_point(x, y):
    return Point(x, y)


def fail():
    raise MainError("from main")


def main():
    which = sys.argv[1]
    if which == "native":
        pool = native_exec.ProcessPoolExecutor(2)
    else:
        pool = concurrent.futures.ProcessPoolExecutor(
            2, mp_context=multiprocessing.get_context("fork"))
    out = {"parent": os.getpid()}
    with pool:
        out["submit"] = pool.submit(square, 7).result(timeout=60)
        mapped = list(pool.map(square_plus_one, range(20), chunksize=3))
        out["map"] = [v for v, _ in mapped]
        out["pids"] = sorted({pid for _, pid in mapped})
        out["class"] = repr(pool.submit(make_point, 3, 4).result(timeout=60))
        exc = pool.submit(fail).exception(timeout=60)
        out["error"] = [type(exc).__name__, list(exc.args)]
        if "--late" in sys.argv:
            def late(x):  # noqa: E306 - defined after the pool on purpose
                return x
            globals()["late"] = late
            late.__qualname__ = "late"
            exc = pool.submit(late, 1).exception(timeout=60)
            # the worker cannot unpickle the call: UnpicklingFailed, with
            # pickle's AttributeError as its cause
            out["late"] = [type(exc).__name__, type(exc.__cause__).__name__,
                           str(exc.__cause__)]
            out["after_late"] = pool.submit(square, 5).result(timeout=60)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
