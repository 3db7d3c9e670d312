"""A program that exits without shutting its pools down.

    python exit_without_shutdown.py IMPL MODE

Every line it prints comes from work submitted before the end of the
program: the test checks all of them are there and the exit is clean.
"""

import asyncio
import atexit
import sys
import threading
import time

from impls import select

impl, mode = sys.argv[1], sys.argv[2]
to_thread, ThreadPoolExecutor = select(impl)


_print_lock = threading.Lock()


def say(text):
    with _print_lock:  # whole lines, whichever thread prints
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


def slow(text, delay=0.2):
    # The delay lets the main thread reach the end of the program first.
    time.sleep(delay)
    say(text)


if mode == "submit":
    pool = ThreadPoolExecutor(2)
    for i in range(6):
        pool.submit(slow, f"pool task {i}", 0.05)
    say("main done")

elif mode == "dropped":
    # The executor itself is gone before the end; its work is not.
    pool = ThreadPoolExecutor(1)
    for i in range(3):
        pool.submit(slow, f"dropped-pool task {i}", 0.05)
    del pool
    say("main done")

elif mode == "running":
    # Still running when the main thread ends, and it submits more then.
    pool = ThreadPoolExecutor(2)

    def chain():
        slow("first", 0.3)
        try:
            pool.submit(say, "second")
        except RuntimeError as exc:
            say(f"second refused: {type(exc).__name__}")

    pool.submit(chain)
    say("main done")

elif mode == "to_thread":
    started = threading.Event()

    def unawaited():
        started.set()
        slow("unawaited call done", 0.3)

    async def main():
        say(f"awaited {await to_thread(pow, 2, 10)}")
        asyncio.ensure_future(to_thread(unawaited))
        while not started.is_set():
            await asyncio.sleep(0.001)
        say("main done")

    asyncio.run(main())

elif mode == "sys_exit":
    pool = ThreadPoolExecutor(1)
    pool.submit(slow, "work before sys.exit", 0.1)
    say("main done")
    sys.exit(0)

elif mode == "atexit_submit":
    # atexit handlers run after the pools' exit hook: new work is refused.
    def late():
        try:
            ThreadPoolExecutor(1).submit(say, "late work ran")
        except RuntimeError as exc:
            say(f"refused: {exc}")

    atexit.register(late)
    pool = ThreadPoolExecutor(1)
    pool.submit(slow, "early work", 0.05)
    say("main done")

else:
    raise SystemExit(f"unknown mode {mode!r}")
