"""A thread creates a process pool while the interpreter exits: the main
thread has returned and threading's exit hooks shut every pool down while
the pool's zygote is being forked (its stdout flush, made slow here, lets
the main thread run).  The new pool must come out shut down, refusing
work with a RuntimeError, and the interpreter must exit cleanly.

Prints one JSON line: what submit raised, and the zygote's pid."""

import json
import sys
import threading
import time

import native_exec

flushing = threading.Event()


class SlowFlush:
    def __init__(self, stream):
        self.stream = stream

    def write(self, text):
        return self.stream.write(text)

    def flush(self):
        if threading.current_thread().name == "maker":
            flushing.set()
            time.sleep(0.5)   # the main thread exits meanwhile
        self.stream.flush()


def make():
    pool = native_exec.ProcessPoolExecutor(1)
    try:
        pool.submit(abs, -1).result(timeout=30)
        outcome = "ran"
    except RuntimeError as exc:
        outcome = f"RuntimeError: {exc}"
    sys.stdout = sys.__stdout__
    print(json.dumps({"submit": outcome, "zygote": pool._stats()["zygote_pid"]}), flush=True)


def main():
    native_exec.ProcessPoolExecutor(1).shutdown()   # registers the exit hook
    sys.stdout = SlowFlush(sys.stdout)
    threading.Thread(target=make, name="maker").start()
    assert flushing.wait(30)
    # returning: threading's exit hooks run, then the maker thread is joined


if __name__ == "__main__":
    main()
