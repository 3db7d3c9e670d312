/* Completing a future: the one place that sets a result, an exception or
 * cancellation on one, whichever pool computed it and on whichever thread.
 *
 * A concurrent.futures.Future takes its outcome at once, on the thread that
 * has it.  An asyncio future may only be touched on its loop's thread, so
 * its outcome goes through the loop's Bridge (bridge.c), which completes it
 * here in turn.  Everything runs with the GIL held. */
#include "native_exec.h"

/* asyncio.Future.set_exception refuses StopIteration (it would end the
 * awaiting coroutine silently); a coroutine raising it gets a RuntimeError
 * instead, and so does an awaiter here.  Returns a new reference. */
static PyObject *
awaitable_error(PyObject *error)
{
    if (!PyErr_GivenExceptionMatches(error, PyExc_StopIteration)) {
        return Py_NewRef(error);
    }
    PyObject *wrapped = PyObject_CallFunction(
        PyExc_RuntimeError, "s", "function run in a worker raised StopIteration");
    if (wrapped == NULL) {
        return NULL;
    }
    PyException_SetCause(wrapped, Py_NewRef(error));
    PyException_SetContext(wrapped, Py_NewRef(error));
    return wrapped;
}

/* Complete future (borrowed) now, on this thread.  on_loop: it is an
 * asyncio future and this is its loop's thread; one the awaiting side has
 * completed already (cancelled) is left as it is.  0, or -1 with an
 * exception set. */
int
ne_complete_now(ne_state *st, PyObject *future, int on_loop, ne_ending how,
                PyObject *value)
{
    if (on_loop) {
        int done = ne_call_bool(future, st->s_done);
        if (done != 0) {
            return done < 0 ? -1 : 0;
        }
    }
    PyObject *r;
    if (how == NE_CANCELLED) {
        r = ne_call_method0(future, st->s_cancel);
    }
    else if (how == NE_EXCEPTION && on_loop) {
        PyObject *error = awaitable_error(value);
        r = error == NULL ? NULL : ne_call_method1(future, st->s_set_exception, error);
        Py_XDECREF(error);
    }
    else {
        r = ne_call_method1(future,
                            how == NE_EXCEPTION ? st->s_set_exception : st->s_set_result,
                            value);
    }
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    return 0;
}

/* Complete future (borrowed) with value (borrowed; NULL when cancelled):
 * now for a concurrent.futures.Future (bridge NULL), else through the
 * bridge to its loop (bridge borrowed), with the loop's one wake-up a
 * batch.  Never raises: a future that refuses (only one completed behind
 * our back can) is reported as unraisable. */
void
ne_complete(ne_state *st, PyObject *future, ne_bridge *bridge, ne_ending how,
            PyObject *value)
{
    if (bridge != NULL) {
        ne_bridge_post(bridge, future, how, value);
    }
    else if (ne_complete_now(st, future, 0, how, value) < 0) {
        PyErr_WriteUnraisable(future);
    }
}

/* Fail future (borrowed) with the current exception, which it clears. */
void
ne_complete_with_error(ne_state *st, PyObject *future, ne_bridge *bridge)
{
    PyObject *exc = PyErr_GetRaisedException();
    ne_complete(st, future, bridge, NE_EXCEPTION, exc);
    Py_XDECREF(exc);
}

/* In a forked child: fail with error (borrowed), or cancel if error is
 * NULL, a future the parent was waiting for.  An asyncio one directly (its
 * loop belongs to this thread now); a concurrent one only if no thread that
 * vanished in the fork holds its lock (settle_inherited). */
void
ne_complete_inherited(ne_state *st, PyObject *future, ne_bridge *bridge, PyObject *error)
{
    if (bridge != NULL) {
        ne_ending how = error != NULL ? NE_EXCEPTION : NE_CANCELLED;
        if (ne_complete_now(st, future, 1, how, error) < 0) {
            PyErr_WriteUnraisable(future);
        }
        return;
    }
    PyObject *r = PyObject_CallFunctionObjArgs(st->settle_inherited, future,
                                               error != NULL ? error : Py_None, NULL);
    if (r == NULL) {
        PyErr_WriteUnraisable(future);
    }
    Py_XDECREF(r);
}
