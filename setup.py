"""Builds the C extension native_exec._native; metadata lives in pyproject.toml.

Environment switches:
  NATIVE_EXEC_WERROR=1    turn warnings into errors (CI sets it)
  NATIVE_EXEC_DEBUG=1     -O0 -g, asserts on
  NATIVE_EXEC_SANITIZE=1  debug + AddressSanitizer; run the tests with
                          LD_PRELOAD=$(gcc -print-file-name=libasan.so)
                          PYTHONMALLOC=malloc ASAN_OPTIONS=detect_leaks=0
  NATIVE_EXEC_TSAN=1      debug + ThreadSanitizer (not with the above); run
                          the tests with .ci/tsan, which preloads libtsan.so
  NATIVE_EXEC_UBSAN=1     debug + UndefinedBehaviorSanitizer, every finding
                          fatal; run the tests with .ci/ubsan
"""

import os
from glob import glob

from setuptools import Extension, setup


def _flag(name):
    return os.environ.get(name, "") not in ("", "0")


# -Wvla: no stack array is sized at run time (by max_workers, say), where a
# large value would overflow a thread's stack instead of raising.
compile_args = ["-std=c11", "-Wall", "-Wextra", "-Wvla", "-Wno-missing-field-initializers"]
link_args = ["-pthread"]
if _flag("NATIVE_EXEC_WERROR"):
    compile_args.append("-Werror")
if _flag("NATIVE_EXEC_SANITIZE") and _flag("NATIVE_EXEC_TSAN"):
    raise SystemExit("NATIVE_EXEC_SANITIZE and NATIVE_EXEC_TSAN cannot be combined")
if any(_flag(name) for name in ("NATIVE_EXEC_DEBUG", "NATIVE_EXEC_SANITIZE",
                                 "NATIVE_EXEC_TSAN", "NATIVE_EXEC_UBSAN")):
    compile_args += ["-O0", "-g3", "-UNDEBUG"]
if _flag("NATIVE_EXEC_SANITIZE"):
    compile_args += ["-fsanitize=address", "-fno-omit-frame-pointer"]
    link_args += ["-fsanitize=address"]
if _flag("NATIVE_EXEC_TSAN"):
    compile_args += ["-fsanitize=thread", "-fno-omit-frame-pointer"]
    link_args += ["-fsanitize=thread"]
if _flag("NATIVE_EXEC_UBSAN"):
    # A finding that only printed would let the suite pass: each one aborts
    # the process that made it, which fails the test that caused it.
    ubsan = ["-fsanitize=undefined", "-fno-sanitize-recover=undefined"]
    compile_args += ubsan + ["-fno-omit-frame-pointer"]
    link_args += ubsan

setup(
    ext_modules=[
        Extension(
            "native_exec._native",
            sources=sorted(glob("src/*.c")),
            depends=sorted(glob("src/*.h")),
            include_dirs=["src"],
            extra_compile_args=compile_args,
            extra_link_args=link_args,
        )
    ],
)
