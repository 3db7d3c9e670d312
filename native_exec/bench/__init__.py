"""The native_exec benchmark: ``python -m native_exec.bench``.

Every scenario runs a *workload* (how calls are issued: gather, one after
another, ...) against several *contenders* (how a call is made: stdlib,
native_exec, peers such as anyio), each on an event loop of its own that
lives for the whole scenario, so pools stay warm across repeats.  The
contenders' runs are interleaved (stdlib, native, peers, stdlib, native, ...)
and the median of the repeats is reported; ratio = stdlib / native.

Layout, one concern a file:

  __main__.py          command line
  registry.py          finds the scenario modules (``*_scenarios.py``)
  model.py             Scenario, Contender, Skipped and the results
  runner.py            event loops, interleaved repeats, timing
  workloads.py         how a scenario issues its calls (gather, sequential)
  thread_scenarios.py  thread-pool scenarios
  process_scenarios.py process-pool scenarios (and their workloads)
  process_pools.py     process pools as contenders: one handle, warmed up
  process_work.py      the functions the worker processes run
  peers.py             optional third-party peers (uvloop, anyio; loky and
                       multiprocessing.Pool for the process scenarios)
  machine.py           CPU model, cores, Python build, package versions
  progress.py          the progress line on stderr
  report.py            table, JSON and plot

A new group of scenarios is one more ``*_scenarios.py`` module defining
``ORDER`` and ``build(scale)``; nothing else needs to change.
"""
