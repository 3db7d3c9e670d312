"""A live progress line for a map over 10,000 items, drawn from pool.stats().

The stdlib executors say nothing about how far a map has got; mpire and
tqdm's process_map wrap them to count.  native_exec's pools keep the
counts themselves: ``stats()`` is a cheap snapshot (calls submitted,
queued, running, done; workers; recent queue-wait and run-time
percentiles), so a thread can redraw a progress line from it ten times a
second while the main thread consumes ``map``'s results.  With tqdm
installed the line is a tqdm bar; otherwise it is plain text.

    python examples/beyond_stdlib/progress.py [ITEMS]
"""

from __future__ import annotations

import sys
import threading

import native_exec


def work(n: int) -> int:
    """A little CPU-bound work per item."""
    total = 0
    for i in range(2_000 + n % 1_000):
        total += i * i
    return total


def describe(stats: native_exec.PoolStats, items: int) -> str:
    run = "-" if stats.run_time_p50 is None else "%.2f ms" % (stats.run_time_p50 * 1e3)
    return ("%d/%d done, %d running, %d queued, %d workers, median call %s"
            % (stats.done, items, stats.running, stats.queued, stats.workers_alive, run))


def draw_plain(pool: native_exec.ProcessPoolExecutor, items: int,
               finished: threading.Event) -> None:
    while not finished.wait(0.1):
        print("\r" + describe(pool.stats(), items), end="", file=sys.stderr, flush=True)
    print("\r" + describe(pool.stats(), items), file=sys.stderr, flush=True)


def draw_tqdm(tqdm, pool: native_exec.ProcessPoolExecutor, items: int,
              finished: threading.Event) -> None:
    with tqdm(total=items, unit="item") as bar:
        while True:
            done = finished.wait(0.1)
            stats = pool.stats()
            bar.update(stats.done - bar.n)
            bar.set_postfix(running=stats.running, workers=stats.workers_alive)
            if done:
                return


def main(items: int = 10_000) -> int:
    try:
        from tqdm import tqdm
    except ImportError:
        tqdm = None
    finished = threading.Event()
    with native_exec.ProcessPoolExecutor() as pool:
        if tqdm is not None:
            drawer = threading.Thread(target=draw_tqdm, args=(tqdm, pool, items, finished))
        else:
            drawer = threading.Thread(target=draw_plain, args=(pool, items, finished))
        drawer.start()
        try:
            total = sum(pool.map(work, range(items)))
        finally:
            finished.set()
            drawer.join()
        stats = pool.stats()
    print("sum of %d results: %d" % (stats.completed, total))
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000))
