/* native_exec._native: module state, initialisation, to_thread, and the
 * hooks that keep pools sane across interpreter exit and fork(). */
#include "native_exec.h"


ne_state *
ne_state_of_type(PyTypeObject *tp)
{
    return (ne_state *)PyType_GetModuleState(tp);
}

/* shutdown(wait=True, *, cancel_futures=False), as both pool types take it. */
int
ne_parse_shutdown(PyObject *args, PyObject *kwargs, int *wait, int *cancel_futures)
{
    static char *kwlist[] = {"wait", "cancel_futures", NULL};
    *wait = 1;
    *cancel_futures = 0;
    return PyArg_ParseTupleAndKeywords(args, kwargs, "|p$p:shutdown", kwlist,
                                       wait, cancel_futures) ? 0 : -1;
}

static inline ne_state *
state_of(PyObject *module)
{
    return (ne_state *)PyModule_GetState(module);
}

/* GIL: a list holding a strong reference to every live pool (thread pools
 * first, then process pools), so that hooks
 * can release the GIL or run Python code while walking it. */
static PyObject *
snapshot_pools(ne_state *st)
{
    PyObject *list = ne_tpool_snapshot();
    if (list == NULL) {
        return NULL;
    }
    for (ne_ppool *p = st->ppools; p != NULL; p = p->next) {
        if (PyList_Append(list, (PyObject *)p) < 0) {
            Py_DECREF(list);
            return NULL;
        }
    }
    return list;
}

PyDoc_STRVAR(to_thread_doc,
"to_thread(func, /, *args, **kwargs)\n--\n\n"
"Run func(*args, **kwargs) on the running loop's default executor and\n"
"return an awaitable for its result, as asyncio.to_thread does.\n\n"
"A loop with no default executor gets a native one; one whose default\n"
"executor is not native hands the call to asyncio.to_thread.  The\n"
"awaitable is a NativeFuture: like a coroutine, the call starts when it\n"
"is awaited or given to asyncio, and the contextvars context is copied\n"
"then; gather() takes it without a Task per call.");

/* The pool in *slot, made by factory on first use (a default pool);
 * borrowed, or NULL with an exception. */
static PyObject *
default_of(PyObject **slot, PyObject *factory, PyTypeObject *type)
{
    if (*slot == NULL) {
        PyObject *pool = PyObject_CallNoArgs(factory);
        if (pool == NULL) {
            return NULL;
        }
        if (!PyObject_TypeCheck(pool, type)) {
            Py_DECREF(pool);
            PyErr_Format(PyExc_TypeError, "default pool factory must return a %s",
                         type->tp_name);
            return NULL;
        }
        if (*slot == NULL) {
            *slot = pool;
        }
        else {
            Py_DECREF(pool);  /* another thread made one while we ran Python */
        }
    }
    return *slot;
}

/* The native pool of loop's default executor (a new reference), or
 * Py_None when that executor is not native.  The common case, a native
 * default executor already installed, costs two attribute reads; the rest
 * (installing one, uvloop, a foreign executor) is _thread.loop_default_pool. */
static PyObject *
loop_pool(ne_state *st, PyObject *loop)
{
    if (st->loop_default_pool == NULL) {
        PyObject *mod = PyImport_ImportModule("native_exec._thread");
        if (mod == NULL) {
            return NULL;
        }
        st->loop_default_pool = PyObject_GetAttrString(mod, "loop_default_pool");
        st->NativeThreadPoolExecutor = PyObject_GetAttrString(mod, "ThreadPoolExecutor");
        Py_DECREF(mod);
        if (st->loop_default_pool == NULL || st->NativeThreadPoolExecutor == NULL) {
            Py_CLEAR(st->loop_default_pool);
            Py_CLEAR(st->NativeThreadPoolExecutor);
            return NULL;
        }
    }
    PyObject *executor;
    if (PyObject_GetOptionalAttr(loop, st->s_default_executor, &executor) < 0) {
        return NULL;
    }
    if (executor != NULL && PyObject_TypeCheck(executor,
                                               (PyTypeObject *)st->NativeThreadPoolExecutor)) {
        PyObject *pool = PyObject_GetAttr(executor, st->s_pool);
        Py_DECREF(executor);
        if (pool == NULL || PyObject_TypeCheck(pool, st->ThreadPoolType)) {
            return pool;
        }
        Py_DECREF(pool);
        PyErr_SetString(PyExc_TypeError, "the loop's default executor has no native pool");
        return NULL;
    }
    if (executor != NULL) {
        Py_DECREF(executor);
        return PyObject_CallOneArg(st->loop_default_pool, loop);
    }
    /* A loop that hides its default executor (uvloop): the pool installed
     * in the last such loop is remembered, or every call would go through
     * Python to find it. */
    PyObject *last = NULL;
    if (st->hidden_loop != NULL && PyWeakref_GetRef(st->hidden_loop, &last) < 0) {
        return NULL;
    }
    Py_XDECREF(last);
    if (last == loop) {
        return Py_NewRef(st->hidden_pool);
    }
    PyObject *pool = PyObject_CallOneArg(st->loop_default_pool, loop);
    if (pool != NULL && PyObject_TypeCheck(pool, st->ThreadPoolType)) {
        PyObject *ref = PyWeakref_NewRef(loop, NULL);
        if (ref == NULL) {
            Py_DECREF(pool);
            return NULL;
        }
        Py_XSETREF(st->hidden_loop, ref);
        Py_XSETREF(st->hidden_pool, Py_NewRef(pool));
    }
    return pool;
}

static PyObject *
to_thread(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    ne_state *st = state_of(module);
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError,
                        "to_thread() missing 1 required positional argument: 'func'");
        return NULL;
    }
    PyObject *loop = PyObject_CallNoArgs(st->get_running_loop);
    if (loop == NULL) {
        return ne_deferred_run(st, NULL, st->to_thread, args, nargs, kwnames);
    }
    PyObject *r = NULL;
    PyObject *pool = loop_pool(st, loop);
    if (pool == Py_None) {
        r = PyObject_Vectorcall(st->asyncio_to_thread, args, (size_t)nargs, kwnames);
    }
    else if (pool != NULL) {
        r = ne_tpool_run((ne_tpool *)pool, loop, NULL, "to_thread", args, nargs, kwnames);
    }
    Py_XDECREF(pool);
    Py_DECREF(loop);
    return r;
}

PyDoc_STRVAR(to_process_doc,
"to_process(func, /, *args, **kwargs)\n--\n\n"
"Run func(*args, **kwargs) in a worker process of native_exec's default\n"
"process pool and return an awaitable for its result.\n\n"
"func and the arguments are pickled; func must be importable by the workers\n"
"(defined at module level, in __main__ before the pool was first used).");

static PyObject *
to_process(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    ne_state *st = state_of(module);
    PyObject *pool = default_of((PyObject **)&st->default_ppool, st->default_ppool_factory,
                                st->ProcessPoolType);
    return pool == NULL ? NULL : ne_ppool_run((ne_ppool *)pool, "to_process", args, nargs,
                                              kwnames);
}

PyDoc_STRVAR(shutdown_all_doc,
"_shutdown_all($module, /)\n--\n\n"
"At interpreter exit: refuse new work and wait for every pool's workers to\n"
"finish what was submitted, as concurrent.futures does for its threads.");

static PyObject *
shutdown_all(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    ne_state *st = state_of(module);
    st->exiting = 1;
    PyObject *pools = snapshot_pools(st);
    if (pools == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(pools); i++) {
        PyObject *pool = PyList_GET_ITEM(pools, i);
        int rc = PyObject_TypeCheck(pool, st->ProcessPoolType)
                     ? ne_ppool_shutdown((ne_ppool *)pool, 1, 0)
                     : ne_tpool_shutdown((ne_tpool *)pool, 1, 0);
        if (rc < 0) {
            Py_DECREF(pools);
            return NULL;
        }
    }
    Py_DECREF(pools);
    ne_thread_join_orphans(NE_JOIN_WAIT);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(after_fork_child_doc,
"_after_fork_child($module, /)\n--\n\n"
"os.register_at_fork(after_in_child=...) hook: complete what the parent's\n"
"workers and queues held (pthread_atfork handlers did the rest).");

static PyObject *
after_fork_child(PyObject *module, PyObject *Py_UNUSED(ignored))
{
    ne_state *st = state_of(module);
    int quiet = ne_fork_is_ours();
    PyObject *pools = snapshot_pools(st);
    if (pools == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(pools); i++) {
        PyObject *pool = PyList_GET_ITEM(pools, i);
        if (PyObject_TypeCheck(pool, st->ProcessPoolType)) {
            ne_ppool_after_fork_child((ne_ppool *)pool, quiet);
        }
        else {
            ne_tpool_after_fork_child((ne_tpool *)pool, quiet);
        }
    }
    Py_DECREF(pools);
    /* The child gets a default process pool of its own on first use.  In
     * our own forks the parent's is set aside, not released: the zygote
     * still runs on its memory. */
    if (quiet) {
        st->default_ppool = NULL;
    }
    else {
        Py_CLEAR(st->default_ppool);
    }
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"to_thread", (PyCFunction)(void (*)(void))to_thread,
     METH_FASTCALL | METH_KEYWORDS, to_thread_doc},
    {"to_process", (PyCFunction)(void (*)(void))to_process,
     METH_FASTCALL | METH_KEYWORDS, to_process_doc},
    {"_take_buffer", (PyCFunction)(void (*)(void))ne_take_buffer, METH_FASTCALL,
     "_take_buffer(index, mutable, /)\n--\n\nRebuild out-of-band buffer index of the payload being unpickled."},
    {"_shutdown_all", shutdown_all, METH_NOARGS, shutdown_all_doc},
    {"_after_fork_child", after_fork_child, METH_NOARGS, after_fork_child_doc},
    {NULL, NULL, 0, NULL},
};

/* A new reference to module.name. */
static PyObject *
import_attr(const char *module, const char *name)
{
    PyObject *mod = PyImport_ImportModule(module);
    if (mod == NULL) {
        return NULL;
    }
    PyObject *attr = PyObject_GetAttrString(mod, name);
    Py_DECREF(mod);
    return attr;
}

static int
intern_into(PyObject **slot, const char *s)
{
    *slot = PyUnicode_InternFromString(s);
    return *slot == NULL ? -1 : 0;
}

static int
module_exec(PyObject *module)
{
    ne_state *st = state_of(module);
    if (ne_tpool_install_fork_handlers() < 0) {
        return -1;
    }
    st->ThreadPoolType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &ne_tpool_spec, NULL);
    if (st->ThreadPoolType == NULL
        || PyModule_AddObjectRef(module, "ThreadPool", (PyObject *)st->ThreadPoolType) < 0) {
        return -1;
    }
    st->BridgeType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &ne_bridge_spec, NULL);
    if (st->BridgeType == NULL) {
        return -1;
    }
    st->ProcessPoolType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &ne_ppool_spec, NULL);
    if (st->ProcessPoolType == NULL
        || PyModule_AddObjectRef(module, "ProcessPool", (PyObject *)st->ProcessPoolType) < 0) {
        return -1;
    }
    /* before native_exec._future and _process_future, which import it */
    st->NativeFutureType = ne_future_type_new(module);
    if (st->NativeFutureType == NULL
        || PyModule_AddObjectRef(module, "NativeFuture", (PyObject *)st->NativeFutureType) < 0) {
        return -1;
    }
    if ((st->get_running_loop = import_attr("asyncio", "get_running_loop")) == NULL
        || (st->asyncio_to_thread = import_attr("asyncio", "to_thread")) == NULL
        || (st->ConcurrentFuture = import_attr("concurrent.futures", "Future")) == NULL
        || (st->BrokenThreadPool = import_attr("concurrent.futures.thread", "BrokenThreadPool")) == NULL
        || (st->NativeFuture = import_attr("native_exec._future", "NativeFuture")) == NULL
        || (st->deferred_run = import_attr("native_exec._future", "deferred_run")) == NULL
        || (st->enter_worker = import_attr("native_exec._thread_worker", "enter_worker")) == NULL
        || (st->leave_worker = import_attr("native_exec._thread_worker", "leave_worker")) == NULL
        || (st->settle_inherited = import_attr("native_exec._thread_worker", "settle_inherited")) == NULL
        || (st->BrokenProcessPool = import_attr("concurrent.futures.process", "BrokenProcessPool")) == NULL
        || (st->pickle_dumps = import_attr("pickle", "dumps")) == NULL
        || (st->pickle_loads = import_attr("pickle", "loads")) == NULL
        || (st->oob_dumps = import_attr("native_exec._serialize", "dumps")) == NULL
        || (st->oob_loads = import_attr("native_exec._serialize", "loads")) == NULL
        || (st->by_value_dumps = import_attr("native_exec._serialize", "dumps_by_value")) == NULL
        || (st->known_in_workers = import_attr("native_exec._serialize", "known_in_workers")) == NULL
        || (st->process_worker = PyImport_ImportModule("native_exec._process_worker")) == NULL
        || (st->ProcessFuture = import_attr("native_exec._process_future", "ProcessFuture")) == NULL
        || (st->ProcessNativeFuture = import_attr("native_exec._process_future", "ProcessNativeFuture")) == NULL
        || (st->outcome_unpickle_failed = import_attr("native_exec._process_future", "outcome_unpickle_failed")) == NULL
        || (st->default_ppool_factory = import_attr("native_exec._process_future", "default_process_pool")) == NULL
        || (st->WorkerDied = import_attr("native_exec._errors", "WorkerDied")) == NULL
        || (st->TaskTimeout = import_attr("native_exec._errors", "TaskTimeout")) == NULL) {
        return -1;
    }
    if (intern_into(&st->s_set_result, "set_result") < 0
        || intern_into(&st->s_set_exception, "set_exception") < 0
        || intern_into(&st->s_done, "done") < 0
        || intern_into(&st->s_cancel, "cancel") < 0
        || intern_into(&st->s_set_running_or_notify_cancel, "set_running_or_notify_cancel") < 0
        || intern_into(&st->s_call_soon_threadsafe, "call_soon_threadsafe") < 0
        || intern_into(&st->s_is_closed, "is_closed") < 0
        || intern_into(&st->s_ne_pool, "_ne_pool") < 0
        || intern_into(&st->s_ne_ticket, "_ne_ticket") < 0
        || intern_into(&st->s_default_executor, "_default_executor") < 0
        || intern_into(&st->s_pool, "_pool") < 0
        || intern_into(&st->s_module, "__module__") < 0) {
        return -1;
    }
    st->to_thread = PyObject_GetAttrString(module, "to_thread");
    if (st->to_thread == NULL) {
        return -1;
    }
    st->kw_loop = Py_BuildValue("(s)", "loop");
    st->kw_buffer_callback = Py_BuildValue("(s)", "buffer_callback");
    st->kw_buffers = Py_BuildValue("(s)", "buffers");
    st->protocol = PyLong_FromLong(5);
    if (st->kw_loop == NULL || st->kw_buffer_callback == NULL || st->kw_buffers == NULL
        || st->protocol == NULL) {
        return -1;
    }
    return 0;
}

static int
module_traverse(PyObject *module, visitproc visit, void *arg)
{
    ne_state *st = state_of(module);
    Py_VISIT(st->NativeFutureType);
    Py_VISIT(st->asyncio_to_thread);
    Py_VISIT(st->loop_default_pool);
    Py_VISIT(st->NativeThreadPoolExecutor);
    Py_VISIT(st->hidden_loop);
    Py_VISIT(st->hidden_pool);
    Py_VISIT(st->s_default_executor);
    Py_VISIT(st->s_pool);
    Py_VISIT(st->s_module);
    Py_VISIT((PyObject *)st->default_ppool);
    Py_VISIT(st->ThreadPoolType);
    Py_VISIT(st->BridgeType);
    Py_VISIT(st->ProcessPoolType);
    Py_VISIT(st->get_running_loop);
    Py_VISIT(st->NativeFuture);
    Py_VISIT(st->deferred_run);
    Py_VISIT(st->to_thread);
    Py_VISIT(st->ConcurrentFuture);
    Py_VISIT(st->BrokenThreadPool);
    Py_VISIT(st->ProcessFuture);
    Py_VISIT(st->ProcessNativeFuture);
    Py_VISIT(st->BrokenProcessPool);
    Py_VISIT(st->WorkerDied);
    Py_VISIT(st->TaskTimeout);
    Py_VISIT(st->process_worker);
    Py_VISIT(st->outcome_unpickle_failed);
    Py_VISIT(st->oob_dumps);
    Py_VISIT(st->oob_loads);
    Py_VISIT(st->by_value_dumps);
    Py_VISIT(st->known_in_workers);
    Py_VISIT(st->pickle_dumps);
    Py_VISIT(st->pickle_loads);
    Py_VISIT(st->protocol);
    Py_VISIT(st->kw_buffer_callback);
    Py_VISIT(st->kw_buffers);
    Py_VISIT(st->s_ne_pool);
    Py_VISIT(st->s_ne_ticket);
    Py_VISIT(st->enter_worker);
    Py_VISIT(st->leave_worker);
    Py_VISIT(st->settle_inherited);
    Py_VISIT(st->default_ppool_factory);
    Py_VISIT(st->s_set_result);
    Py_VISIT(st->s_set_exception);
    Py_VISIT(st->s_done);
    Py_VISIT(st->s_cancel);
    Py_VISIT(st->s_set_running_or_notify_cancel);
    Py_VISIT(st->s_call_soon_threadsafe);
    Py_VISIT(st->s_is_closed);
    Py_VISIT(st->kw_loop);
    return 0;
}

static int
module_clear(PyObject *module)
{
    ne_state *st = state_of(module);
    Py_CLEAR(st->NativeFutureType);
    Py_CLEAR(st->asyncio_to_thread);
    Py_CLEAR(st->loop_default_pool);
    Py_CLEAR(st->NativeThreadPoolExecutor);
    Py_CLEAR(st->hidden_loop);
    Py_CLEAR(st->hidden_pool);
    Py_CLEAR(st->s_default_executor);
    Py_CLEAR(st->s_pool);
    Py_CLEAR(st->s_module);
    Py_CLEAR(st->default_ppool);
    Py_CLEAR(st->ThreadPoolType);
    Py_CLEAR(st->BridgeType);
    Py_CLEAR(st->ProcessPoolType);
    Py_CLEAR(st->get_running_loop);
    Py_CLEAR(st->NativeFuture);
    Py_CLEAR(st->deferred_run);
    Py_CLEAR(st->to_thread);
    Py_CLEAR(st->ConcurrentFuture);
    Py_CLEAR(st->BrokenThreadPool);
    Py_CLEAR(st->ProcessFuture);
    Py_CLEAR(st->ProcessNativeFuture);
    Py_CLEAR(st->BrokenProcessPool);
    Py_CLEAR(st->WorkerDied);
    Py_CLEAR(st->TaskTimeout);
    Py_CLEAR(st->process_worker);
    Py_CLEAR(st->outcome_unpickle_failed);
    Py_CLEAR(st->oob_dumps);
    Py_CLEAR(st->oob_loads);
    Py_CLEAR(st->by_value_dumps);
    Py_CLEAR(st->known_in_workers);
    Py_CLEAR(st->pickle_dumps);
    Py_CLEAR(st->pickle_loads);
    Py_CLEAR(st->protocol);
    Py_CLEAR(st->kw_buffer_callback);
    Py_CLEAR(st->kw_buffers);
    Py_CLEAR(st->s_ne_pool);
    Py_CLEAR(st->s_ne_ticket);
    Py_CLEAR(st->enter_worker);
    Py_CLEAR(st->leave_worker);
    Py_CLEAR(st->settle_inherited);
    Py_CLEAR(st->default_ppool_factory);
    Py_CLEAR(st->s_set_result);
    Py_CLEAR(st->s_set_exception);
    Py_CLEAR(st->s_done);
    Py_CLEAR(st->s_cancel);
    Py_CLEAR(st->s_set_running_or_notify_cancel);
    Py_CLEAR(st->s_call_soon_threadsafe);
    Py_CLEAR(st->s_is_closed);
    Py_CLEAR(st->kw_loop);
    ne_bridge_clear_spares(st);
    return 0;
}

static void
module_free(void *module)
{
    module_clear((PyObject *)module);
}

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, module_exec},
#ifdef Py_mod_multiple_interpreters
    /* Workers attach through PyGILState, which knows one interpreter. */
    {Py_mod_multiple_interpreters, Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED},
#endif
#ifdef Py_mod_gil
    /* Pool queues have their own locks, but bridges and task hand-off rely
     * on the GIL; free-threaded builds keep it enabled for this module. */
    {Py_mod_gil, Py_MOD_GIL_USED},
#endif
    {0, NULL},
};

PyDoc_STRVAR(module_doc, "The C core of native_exec: native thread and process pools, and the asyncio bridge.");

static PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "native_exec._native",
    .m_doc = module_doc,
    .m_size = sizeof(ne_state),
    .m_methods = module_methods,
    .m_slots = module_slots,
    .m_traverse = module_traverse,
    .m_clear = module_clear,
    .m_free = module_free,
};

PyMODINIT_FUNC
PyInit__native(void)
{
    return PyModuleDef_Init(&native_module);
}
