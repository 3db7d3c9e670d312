"""Uses functions and classes defined in __main__, before the pool exists.

Usage: main_functions.py stdlib|native [--late]

Prints one JSON line with what the workers computed.  With --late (native
only), also submits functions and a class defined in __main__ after the
pool was created, and a function rebound there: the zygote is a fork taken
at creation, so its workers do not have them, and they must travel by value
(cloudpickle), while those known before still go by reference.
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
                return x + 100
            globals()["late"] = late
            late.__qualname__ = "late"
            out["late"] = pool.submit(late, 1).result(timeout=60)

            class LatePoint:  # noqa: E306
                def __init__(self, x):
                    self.x = x

                def norm(self):
                    return abs(self.x)
            globals()["LatePoint"] = LatePoint
            LatePoint.__qualname__ = "LatePoint"
            out["late_class_arg"] = pool.submit(square, LatePoint(-6).norm()).result(timeout=60)
            out["late_method"] = pool.submit(LatePoint(-7).norm).result(timeout=60)
            out["late_instance_arg"] = pool.submit(getattr, LatePoint(8), "x").result(timeout=60)
            out["late_map"] = list(pool.map(late, range(3)))
            old_square = globals()["square"]

            def negated_square(x):  # noqa: E306 - rebinds the module-level square
                return -x * x
            negated_square.__name__ = negated_square.__qualname__ = "square"
            globals()["square"] = negated_square
            out["rebound"] = pool.submit(negated_square, 3).result(timeout=60)
            globals()["square"] = old_square
            out["after_late"] = pool.submit(old_square, 5).result(timeout=60)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
