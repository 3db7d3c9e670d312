"""fork() from a process whose native pools have live workers.

    python fork_child.py MODE

The child checks what it inherited and that to_thread and pools work in it,
then exits (normally, through the interpreter's exit, unless said
otherwise); its exit status says whether every check held.  The parent
waits for it with a deadline, kills it if it hangs, and checks that its own
pools were not disturbed.  Prints "ok" and exits 0 when all is well.
"""

import asyncio
import os
import signal
import sys
import threading
import time
import traceback
from concurrent.futures.thread import BrokenThreadPool

import impls  # noqa: F401  (its warning filters)
import native_exec

mode = sys.argv[1]
DEADLINE = 20.0


def fail(message):
    # os._exit: a process whose pools are wedged could not exit normally.
    print(f"FAIL: {message}", file=sys.stderr, flush=True)
    os._exit(1)


def reap(pid, deadline=DEADLINE):
    """The child's exit status.  A child that hangs gets SIGABRT (its
    faulthandler, inherited, prints its stacks), then SIGKILL, and fails."""
    end = time.monotonic() + deadline
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > end:
            os.kill(pid, signal.SIGABRT)
            time.sleep(2)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
            fail(f"child {pid} hung after fork ({mode})")
        time.sleep(0.005)


def in_child(check, exit_with=sys.exit):
    """Run check() in a forked child; return its exit code to the parent."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            check()
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            exit_with(code)
    return reap(pid)


def child_uses_pools(pool):
    assert pool.submit(pow, 2, 5).result(timeout=DEADLINE) == 32
    assert asyncio.run(native_exec.to_thread(pow, 3, 3)) == 27
    fresh = native_exec.ThreadPoolExecutor(2)
    assert list(fresh.map(abs, [-1, -2, -3], timeout=DEADLINE)) == [1, 2, 3]

    async def many():
        return await asyncio.gather(*(pool.run(abs, -i) for i in range(100)))

    assert asyncio.run(many()) == list(range(100))
    fresh.shutdown()


if mode == "idle":
    # Workers alive and idle in the parent, in a pool and the default pool.
    pool = native_exec.ThreadPoolExecutor(3)
    barrier = threading.Barrier(3)
    for f in [pool.submit(barrier.wait) for _ in range(3)]:
        f.result()
    asyncio.run(native_exec.to_thread(int))
    assert pool._stats()["threads"] == 3
    code = in_child(lambda: child_uses_pools(pool))
    if code != 0:
        fail(f"child exited with {code}")
    assert pool.submit(abs, -7).result(timeout=DEADLINE) == 7
    assert pool._stats()["threads"] == 3

elif mode == "busy":
    # A call running and one queued at the time of the fork.
    pool = native_exec.ThreadPoolExecutor(1)
    release = threading.Event()
    started = threading.Event()

    def blocker():
        started.set()
        release.wait(DEADLINE)
        return "parent's"

    running = pool.submit(blocker)
    started.wait(DEADLINE)
    queued = pool.submit(abs, -1)

    def check():
        # The thread running it does not exist here; the queued call is the
        # parent's to run.
        try:
            running.result(timeout=DEADLINE)
        except BrokenThreadPool:
            pass
        else:
            raise AssertionError("running call did not fail in the child")
        assert queued.cancelled(), queued
        child_uses_pools(pool)

    code = in_child(check)
    release.set()
    if code != 0:
        fail(f"child exited with {code}")
    assert running.result(timeout=DEADLINE) == "parent's"
    assert queued.result(timeout=DEADLINE) == 1

elif mode == "asyncio":
    # Fork inside a running loop while a to_thread call is in flight.
    release = threading.Event()
    started = threading.Event()

    def blocker():
        started.set()
        release.wait(DEADLINE)
        return "parent's"

    async def main():
        fut = asyncio.ensure_future(native_exec.to_thread(blocker))
        while not started.is_set():
            await asyncio.sleep(0.001)

        def check():
            # The thread running the call does not exist here: the future,
            # of the loop this thread runs, failed at once.
            assert fut.done(), fut
            assert isinstance(fut.exception(), BrokenThreadPool), fut.exception()

            async def in_child_loop():
                return await asyncio.gather(*(native_exec.to_thread(abs, -i)
                                              for i in range(50)))

            # This thread is inside the parent's loop; to_thread is used
            # afresh from a new loop in a thread of the child.
            results = []
            t = threading.Thread(target=lambda: results.append(asyncio.run(in_child_loop())))
            t.start()
            t.join(DEADLINE)
            assert results == [list(range(50))], results

        code = in_child(check, exit_with=os._exit)
        release.set()
        if code != 0:
            fail(f"child exited with {code}")
        assert await fut == "parent's"

    asyncio.run(main())

elif mode == "stress":
    # Fork again and again while workers keep taking short calls: the fork
    # must find the pool in a consistent state every time.  A tiny switch
    # interval makes threads trade the GIL at every opportunity.
    sys.setswitchinterval(1e-6)
    pool = native_exec.ThreadPoolExecutor(2)
    stop = threading.Event()

    def feeder():
        while not stop.is_set():
            for f in [pool.submit(sum, range(2000)) for _ in range(20)]:
                try:
                    f.result(timeout=DEADLINE)
                except BrokenThreadPool:
                    pass

    feeders = [threading.Thread(target=feeder) for _ in range(2)]
    for t in feeders:
        t.start()
    try:
        for i in range(int(sys.argv[2]) if len(sys.argv) > 2 else 200):
            code = in_child(lambda: None, exit_with=os._exit)
            if code != 0:
                fail(f"child {i} exited with {code}")
    finally:
        stop.set()
    for t in feeders:
        t.join(DEADLINE)
    assert pool.submit(abs, -3).result(timeout=DEADLINE) == 3

else:
    fail(f"unknown mode {mode!r}")

print("ok", flush=True)
