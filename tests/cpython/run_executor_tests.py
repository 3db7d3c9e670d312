"""Run CPython's own executor tests against native_exec.

CPython's ``test.test_concurrent_futures`` builds one test class per
executor (and per start method) from each test mixin.  This runs the thread
classes (``ThreadPool*``) with ``executor_type`` replaced by
``native_exec.ThreadPoolExecutor`` and the fork classes (``ProcessPoolFork*``)
with ``native_exec.ProcessPoolExecutor``, in the modules named on the command
line, and exits non-zero if any test fails that is not listed in
``EXPECTED_TO_FAIL`` with its reason, or if one listed there passes (so the
list cannot go stale).

It needs CPython's test package (Debian: ``libpython3.X-testsuite``):
``python tests/cpython/run_executor_tests.py test_thread_pool test_wait``.
"""

from __future__ import annotations

import faulthandler
import importlib
import sys
import unittest

import native_exec

#: Tests that native_exec does not pass, and why.  The key is
#: "flavour:module.test_method", flavour "thread" or "process".  Tests that cannot terminate with
#: native_exec (they wait forever on something the pool does not have), or
#: that do not test executor_type at all, are in NOT_RUN instead.
PRIVATE = "reads the stdlib pool's private attributes (%s), which native_exec does not emulate"
DESIGN = "native_exec by design: %s (README, 'Where native_exec differs')"
EXPECTED_TO_FAIL = {
    "process:test_process_pool.test_broken_process_pool_traceback": PRIVATE % "_processes",
    "process:test_process_pool.test_killed_child": PRIVATE % "_processes",
    "process:test_process_pool.test_saturation": PRIVATE % "_processes",
    "process:test_process_pool.test_max_tasks_per_child":
        DESIGN % "max_tasks_per_child works with a fork context, the stdlib refuses it",
    "process:test_process_pool.test_python_finalization_error":
        "patches threading's private _start_joinable_thread to make the stdlib's "
        "manager thread fail to start; native_exec's collector is a native thread",
    "process:test_shutdown.test_processes_terminate": PRIVATE % "_processes",
    "process:test_deadlock.test_shutdown_deadlock_pickle": PRIVATE % "_executor_manager_thread",
}
NOT_RUN = {
    # With no _processes the test errors inside its `with` block, and the
    # block's shutdown(wait=True) then waits for a call blocked on an event
    # nobody sets.
    "process:test_process_pool.test_force_shutdown_workers": PRIVATE % "_processes",
    "process:test_process_pool.test_force_shutdown_workers_stops_pool": PRIVATE % "_processes",
    # Runs concurrent.futures.ProcessPoolExecutor, by name, in a child
    # interpreter: it tests the stdlib's pool whatever executor_type says
    # (and CPython skips it before 3.14 as hanging).
    "process:test_shutdown.test_hang_gh83386": "tests the stdlib's class, not executor_type",
    "thread:test_shutdown.test_hang_gh83386": "tests the stdlib's class, not executor_type",
    # They error reading _threads while their calls block on a semaphore
    # the test would release only afterwards: the interpreter's exit then
    # waits for those calls.
    "thread:test_thread_pool.test_saturation": PRIVATE % "_threads",
    "thread:test_thread_pool.test_idle_thread_reuse": PRIVATE % "_threads",
    "thread:test_shutdown.test_threads_terminate": PRIVATE % "_threads",
}


#: class name prefix -> (flavour, native executor)
FLAVOURS = {
    "ThreadPool": ("thread", native_exec.ThreadPoolExecutor),
    "ProcessPoolFork": ("process", native_exec.ProcessPoolExecutor),
}


def flavour_of(class_name: str):
    if class_name.startswith("ProcessPoolForkserver"):
        return None
    for prefix, found in FLAVOURS.items():
        if class_name.startswith(prefix):
            return found
    return None


def native_tests(module_name: str) -> unittest.TestSuite:
    module = importlib.import_module("test.test_concurrent_futures." + module_name)
    suite = unittest.TestSuite()
    loader = unittest.TestLoader()
    for name in sorted(dir(module)):
        cls = getattr(module, name)
        found = flavour_of(name)
        if isinstance(cls, type) and issubclass(cls, unittest.TestCase) and found:
            cls.executor_type = found[1]
            for test in loader.loadTestsFromTestCase(cls):
                if key(test) not in NOT_RUN:
                    suite.addTest(test)
    return suite


def key(test: unittest.TestCase) -> str:
    module = type(test).__module__.rsplit(".", 1)[-1]
    return "%s:%s.%s" % (flavour_of(type(test).__name__)[0], module, test._testMethodName)


def main(modules: list) -> int:
    # A hang prints every thread's stack and fails the run.
    faulthandler.dump_traceback_later(600, exit=True)
    suite = unittest.TestSuite()
    for name in modules:
        module = importlib.import_module("test.test_concurrent_futures." + name)
        if hasattr(module, "setUpModule"):
            module.setUpModule()
        suite.addTests(native_tests(name))
    ran = {key(test) for test in _flatten(suite)}   # the runner empties the suite
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    failed = {key(test) for test, _ in result.failures + result.errors}
    # a subTest failure names the subtest; map it back to its method
    failed = {k.split(" ")[0] for k in failed}
    unexpected = sorted(failed - set(EXPECTED_TO_FAIL))
    stale = sorted(k for k in EXPECTED_TO_FAIL if k in ran and k not in failed)
    print("\nran %d CPython tests against native_exec: %d failed as expected, "
          "%d unexpectedly, %d expected to fail passed"
          % (len(ran), len(failed & set(EXPECTED_TO_FAIL)), len(unexpected), len(stale)))
    for k in unexpected:
        print("UNEXPECTED FAILURE:", k)
    for k in stale:
        print("PASSED BUT LISTED AS EXPECTED TO FAIL:", k, "--", EXPECTED_TO_FAIL[k])
    return 1 if unexpected or stale else 0


def _flatten(suite: unittest.TestSuite):
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from _flatten(item)
        else:
            yield item


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
