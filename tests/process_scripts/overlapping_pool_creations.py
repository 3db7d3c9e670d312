"""Two threads create process pools at once, the first one's fork hooks
still running (they run Python, so the GIL can pass) when the second one
is done.  Each pool's zygote must know its fork for one of native_exec's
own; a zygote that took it for a user's os.fork() dropped its region, and
its workers crashed on the first argument that is not inline."""

import os
import threading
import time

from native_exec import _native

slow = threading.local()
second_done = threading.Event()


def before_fork():
    if getattr(slow, "on", False):
        second_done.wait(10)   # the GIL is released while this thread waits


os.register_at_fork(before=before_fork)
pools = {}


def make_first():
    slow.on = True
    pools["first"] = _native.ProcessPool(1)


def make_second():
    time.sleep(0.05)
    pools["second"] = _native.ProcessPool(1)
    second_done.set()


threads = [threading.Thread(target=make_first), threading.Thread(target=make_second)]
for t in threads:
    t.start()
for t in threads:
    t.join()
big = b"x" * 100_000
for name in ("first", "second"):
    print(name, pools[name].submit(len, big).result(timeout=30), flush=True)
for pool in pools.values():
    pool.shutdown()
