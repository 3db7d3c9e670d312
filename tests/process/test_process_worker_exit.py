"""How a worker process leaves, on both pools: as the stdlib's fork workers
do on the running Python, multiprocessing's finalizers run in it (so a
``multiprocessing.Queue`` a task wrote to is flushed, and its lock
released), atexit handlers the worker registered run where the stdlib runs
them (3.13+), and nothing the parent registered runs in a worker."""

from __future__ import annotations

import collections
import json
import logging
import logging.handlers
import os
import queue
import sys
import threading

import pytest

from process_fixtures import CTX, WAIT, make_ppool, proc_impl, run_script  # noqa: F401

pytestmark = pytest.mark.timeout(240)

#: What the stdlib's fork workers run as they leave on this Python (3.13+
#: clears the inherited atexit handlers at fork and runs the worker's own;
#: before, a worker leaves with os._exit() and runs none).
WORKER_ATEXIT = sys.version_info >= (3, 13)

LOG_ITEMS = 2000
LOGGER = "native_exec_tests.worker"


def install_queue_handler(log_queue):
    # the logging cookbook's recipe: the pool's initializer sends the
    # worker's records to the parent through a multiprocessing.Queue (on a
    # logger of its own, as CPython's test_init does: pytest's handlers on
    # the root logger are the parent's)
    logger = logging.getLogger(LOGGER)
    logger.handlers[:] = [logging.handlers.QueueHandler(log_queue)]
    logger.setLevel(logging.INFO)
    logger.propagate = False


def log_items(i):
    logging.getLogger(LOGGER).info("item %d", i)
    return i


class Reader:
    """Reads records from the queue as the workers write them, as the
    recipe's QueueListener does (a full pipe would otherwise hold a
    worker's exit back), but never blocks the test for long."""

    def __init__(self, log_queue):
        self.queue = log_queue
        self.counter = collections.Counter()
        self.changed = threading.Condition()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stopping.is_set():
            try:
                record = self.queue.get(timeout=0.05)
            except queue.Empty:
                continue
            with self.changed:
                self.counter[record.getMessage()] += 1
                self.changed.notify_all()

    def wait_for(self, n):
        with self.changed:
            self.changed.wait_for(lambda: sum(self.counter.values()) >= n, timeout=WAIT)

    def stop(self):
        self.stopping.set()
        self.thread.join(WAIT)


@pytest.mark.parametrize("max_tasks_per_child", [None, 3])
def test_the_logging_cookbook_queue_handler_loses_nothing(make_ppool, proc_impl,
                                                          max_tasks_per_child):
    if proc_impl.name == "stdlib" and max_tasks_per_child:
        pytest.skip("the stdlib refuses max_tasks_per_child with fork, whose "
                    "workers' exit is the reference")
    log_queue = CTX.Queue()
    kwargs = {}
    if max_tasks_per_child:
        kwargs["max_tasks_per_child"] = max_tasks_per_child
    reader = Reader(log_queue)
    try:
        pool = make_ppool(2, initializer=install_queue_handler, initargs=(log_queue,),
                          **kwargs)
        results = list(pool.map(log_items, range(LOG_ITEMS), chunksize=50))
        assert results == list(range(LOG_ITEMS))
        pool.shutdown(wait=True)
        # every record a task logged arrives, even those of the last task
        # of a worker that left right after it (max_tasks_per_child, shutdown)
        reader.wait_for(LOG_ITEMS)
    finally:
        reader.stop()
    got = reader.counter
    missing = LOG_ITEMS - sum(got.values())
    assert missing == 0, f"{missing} of {LOG_ITEMS} records lost"
    assert set(got.values()) == {1}
    # and no worker left the queue's lock taken: the parent can still put
    log_queue.put("after")
    assert log_queue.get(timeout=WAIT) == "after"


def read_log(path):
    lines = collections.defaultdict(list)
    if os.path.exists(path):
        for line in open(path):
            what, pid = line.split()
            lines[what].append(int(pid))
    return lines


@pytest.mark.parametrize("tasks_per_child", [None, 2])
def test_exit_hooks_run_where_the_stdlibs_run(tmp_path, proc_impl, tasks_per_child):
    if proc_impl.name == "stdlib" and tasks_per_child is not None:
        pytest.skip("the stdlib refuses max_tasks_per_child with fork")
    log = str(tmp_path / "hooks.log")
    extra = () if tasks_per_child is None else (str(tasks_per_child),)
    proc = run_script("worker_exit_hooks.py", proc_impl.name, log, *extra)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout.splitlines()[0])
    parent, workers = info["parent"], set(info["workers"])
    hooks = read_log(log)
    # the parent's atexit handlers and finalizers run once, in the parent
    assert hooks["parent-atexit"] == [parent]
    assert hooks["parent-finalizer"] == [parent]
    # threading's exit hooks are inherited, and each process runs them as
    # it leaves (threading._shutdown()), the stdlib's fork workers included
    inherited = hooks["parent-threading-atexit"]
    assert parent in inherited and workers <= set(inherited), hooks
    assert len(inherited) == len(set(inherited)), hooks
    # every worker runs its own finalizers and threading exit hooks as it
    # leaves, once; its atexit handlers where the stdlib runs them (a
    # worker that ran no task leaves the same way)
    for what in ("worker-finalizer", "worker-threading-atexit") + (
            ("worker-atexit",) if WORKER_ATEXIT else ()):
        ran = hooks[what]
        assert workers <= set(ran) and len(ran) == len(set(ran)), (what, hooks)
        assert parent not in ran and set(ran) == set(inherited) - {parent}, (what, hooks)
    if not WORKER_ATEXIT:
        assert hooks["worker-atexit"] == [], hooks


def test_workers_of_a_pool_made_on_a_native_thread_leave_cleanly(tmp_path):
    # forked from a thread threading did not start, which it then takes
    # for the main thread (threading._shutdown() asserted on 3.10)
    log = str(tmp_path / "hooks.log")
    proc = run_script("pool_on_a_native_thread.py", log)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    workers = set(json.loads(proc.stdout.splitlines()[0])["workers"])
    finalized = read_log(log)["worker-finalizer"]
    assert workers <= set(finalized) and len(finalized) == len(set(finalized))
