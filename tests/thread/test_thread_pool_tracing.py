"""Tracers and profilers set with threading.settrace / setprofile (coverage.py
and profilers use them) reach the pool's workers started afterwards, as they
reach every threading.Thread: run against the stdlib pool and native_exec."""

from __future__ import annotations

import threading

from conftest import WAIT


def traced_task():
    return threading.get_ident()


def test_settrace_and_setprofile_reach_new_workers(make_pool):
    traced, profiled = set(), set()

    def tracer(frame, event, arg):
        if event == "call":
            traced.add((frame.f_code.co_name, threading.get_ident()))
        return None

    def profiler(frame, event, arg):
        if event == "call":
            profiled.add((frame.f_code.co_name, threading.get_ident()))

    threading.settrace(tracer)
    threading.setprofile(profiler)
    try:
        pool = make_pool(2)
        ident = pool.submit(traced_task).result(timeout=WAIT)
    finally:
        threading.settrace(None)
        threading.setprofile(None)
    assert ident != threading.get_ident()
    assert ("traced_task", ident) in traced
    assert ("traced_task", ident) in profiled
