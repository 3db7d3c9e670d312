"""How a worker process leaves: which atexit handlers and multiprocessing
finalizers run, and where.  Run as ``worker_exit_hooks.py IMPL LOG`` with
IMPL "stdlib" (a fork-context pool, or spawn where max_tasks_per_child is
asked) or "native"; every hook appends "<what> <pid>" to LOG.  Prints one
JSON line: this process's pid and the pids that ran the tasks."""

import atexit
import concurrent.futures
import json
import multiprocessing
import multiprocessing.util
import os
import sys
import threading

import native_exec

LOG = sys.argv[2]


def note(what):
    with open(LOG, "a") as f:
        f.write("%s %d\n" % (what, os.getpid()))


def noted_finalizer(what):
    note(what)


def init():
    atexit.register(note, "worker-atexit")
    # an object a worker keeps, finalized at its exit as the stdlib's
    # workers finalize theirs (multiprocessing.util._exit_function)
    init.keep = type("Kept", (), {})()
    multiprocessing.util.Finalize(init.keep, noted_finalizer, ("worker-finalizer",),
                                  exitpriority=1)
    # threading's exit hook runs in the worker as in any process leaving
    threading._register_atexit(note, "worker-threading-atexit")


def task(i):
    return os.getpid()


def main():
    impl, tasks_per_child = sys.argv[1], sys.argv[3:]
    kwargs = {"max_workers": 2, "initializer": init}
    if tasks_per_child:
        kwargs["max_tasks_per_child"] = int(tasks_per_child[0])
    # parent hooks, registered before any worker exists: none of them may
    # run in a worker (the stdlib's never do)
    atexit.register(note, "parent-atexit")
    keep = type("Kept", (), {})()
    multiprocessing.util.Finalize(keep, noted_finalizer, ("parent-finalizer",),
                                  exitpriority=1)
    threading._register_atexit(note, "parent-threading-atexit")
    if impl == "stdlib":
        method = "spawn" if tasks_per_child else "fork"
        pool = concurrent.futures.ProcessPoolExecutor(
            mp_context=multiprocessing.get_context(method), **kwargs)
    else:
        pool = native_exec.ProcessPoolExecutor(**kwargs)
    with pool:
        pids = sorted(set(pool.map(task, range(8))))
    print(json.dumps({"parent": os.getpid(), "workers": pids}), flush=True)
    main.keep = keep


if __name__ == "__main__":
    main()
