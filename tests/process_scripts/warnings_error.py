"""Creates and uses native_exec process pools in a multi-threaded process.

Run with ``python -W error::DeprecationWarning``: on 3.12+ the stdlib warns
(here: raises) when os.fork() is called in a multi-threaded process; the
native pool forks its zygote and workers without that warning.  Prints "ok".
"""

import asyncio
import threading

import native_exec


def square(x):
    return x * x


async def from_asyncio(pool):
    out = await asyncio.gather(*(pool.run(square, i) for i in range(20)))
    out2 = await asyncio.gather(*(native_exec.to_process(square, i) for i in range(20)))
    return out, out2


def main():
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()            # the process is multi-threaded from here on
    try:
        with native_exec.ProcessPoolExecutor(2) as first:
            assert first.submit(square, 3).result(timeout=60) == 9
            # `first` has its collector thread now; a second pool forks
            # its zygote from a process with three threads
            with native_exec.ProcessPoolExecutor(2) as second:
                assert list(second.map(square, range(10))) == [i * i for i in range(10)]
                out, out2 = asyncio.run(from_asyncio(second))
                assert out == out2 == [i * i for i in range(20)]
            assert list(first.map(square, range(10), chunksize=4)) == [i * i for i in range(10)]
    finally:
        stop.set()
        thread.join()
    print("ok")


if __name__ == "__main__":
    main()
