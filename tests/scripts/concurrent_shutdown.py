"""Several threads shut one pool down with wait=True at once, then call
what takes the pool's lock again (submit; for native_exec also _stats()).

    python concurrent_shutdown.py IMPL ROUNDS

Prints "ok" after ROUNDS rounds of four threads; a deadlock is the caller's
timeout (native_exec hung so within 100 rounds when a shutdown waiting for
another's joins took the GIL back while holding the pool mutex).
"""

import sys
import threading

from impls import select

impl, rounds = sys.argv[1], int(sys.argv[2])
_, ThreadPoolExecutor = select(impl)
THREADS = 4

for _ in range(rounds):
    pool = ThreadPoolExecutor(THREADS)
    # every worker started, so that each shutdown has threads to join
    barrier = threading.Barrier(THREADS)
    for f in [pool.submit(barrier.wait) for _ in range(THREADS)]:
        f.result()
    start = threading.Barrier(THREADS)
    errors = []

    def shut():
        start.wait()
        pool.shutdown(wait=True)
        try:
            pool.submit(int)
        except RuntimeError:
            pass
        else:
            errors.append("submit after shutdown was accepted")
        if impl == "native" and pool._stats()["threads"] != 0:
            errors.append(f"threads left: {pool._stats()}")

    threads = [threading.Thread(target=shut) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(errors)
print("ok")
