/* Payloads: Python objects pickled (protocol 5) into shared memory.
 *
 * Encoding, at a 64-byte aligned address:
 *
 *   ne_payload_head | uint64 length[nours + nforeign]
 *   | in-band pickle | buffer 0 | buffer 1 | ...      (each 64-byte aligned)
 *
 * Out-of-band buffers come from two places.  "Ours" are large bytes,
 * bytearray and C-contiguous memoryview objects: when one is found near
 * the top of the payload, native_exec._serialize.dumps pickles it with a
 * persistent_id that names each by its index, because pickle never offers
 * exact bytes/bytearray to a buffer_callback.  "Foreign" ones are the
 * PickleBuffers pickle hands to the buffer_callback (numpy arrays and the
 * like).  Either way the buffer is copied once, straight from the object
 * into shared memory, and once out of it into the object the reader
 * rebuilds.
 *
 * A large payload can be read while it is still being written: the writer
 * publishes the header and pickle stream first, then copies the buffers in
 * chunks, advancing a `ready` counter the reader waits on.  The two copies
 * then overlap instead of adding up.
 *
 * By value: a payload pickle refuses (a lambda, a closure, a local class)
 * is pickled again by native_exec._serialize.dumps_by_value, with
 * cloudpickle and the same out-of-band buffers; so is one holding, near
 * its top, a __main__ function or class the workers never saw (defined
 * after the pool forked its zygote), which pickle would send by a name
 * they cannot resolve.  Readers need not know: pickle.loads reads what
 * cloudpickle writes. */
#include "native_exec.h"

#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAYLOAD_MAGIC 0x4c50454eu  /* "NEPL" */
#define OOB_MIN (64 * 1024)        /* smaller buffers stay in the pickle */
#define GIL_FREE_COPY (1 << 20)    /* copies this large release the GIL */

typedef struct {
    uint32_t magic;
    uint32_t nours;
    uint32_t nforeign;
    uint32_t pad;
    uint64_t inband;
} ne_payload_head;

static int
is_big_buffer(PyObject *o)
{
    if (PyBytes_CheckExact(o)) {
        return PyBytes_GET_SIZE(o) >= OOB_MIN;
    }
    if (PyByteArray_CheckExact(o)) {
        return PyByteArray_GET_SIZE(o) >= OOB_MIN;
    }
    if (PyMemoryView_Check(o)) {
        Py_buffer *view = PyMemoryView_GET_BUFFER(o);
        return view->len >= OOB_MIN && PyBuffer_IsContiguous(view, 'C');
    }
    return 0;
}

#define SCAN_BIG 1        /* a large buffer: _serialize.dumps */
#define SCAN_LATE_MAIN 2  /* a __main__ object the workers lack: by value */

static int
is_main_name(PyObject *name)
{
    return name != NULL && PyUnicode_Check(name)
           && PyUnicode_CompareWithASCIIString(name, "__main__") == 0;
}

/* SCAN_LATE_MAIN if o is a function or class of __main__ (or an instance
 * of one, or a method of either) that _serialize.known_in_workers says the
 * workers do not have; 0 for anything else, after a few type checks. */
static int
late_main(ne_state *st, PyObject *o)
{
    if (PyMethod_Check(o)) {
        int r = late_main(st, PyMethod_GET_FUNCTION(o));
        return r != 0 ? r : late_main(st, PyMethod_GET_SELF(o));
    }
    if (PyFunction_Check(o)) {
        if (!is_main_name(PyFunction_GET_MODULE(o))) {
            return 0;
        }
    }
    else {
        PyTypeObject *t = PyType_Check(o) ? (PyTypeObject *)o : Py_TYPE(o);
        if (!PyType_HasFeature(t, Py_TPFLAGS_HEAPTYPE) || t->tp_dict == NULL) {
            return 0;
        }
        PyObject *module = PyDict_GetItemWithError(t->tp_dict, st->s_module);
        if (module == NULL) {
            return PyErr_Occurred() ? -1 : 0;
        }
        if (!is_main_name(module)) {
            return 0;
        }
    }
    PyObject *known = PyObject_CallOneArg(st->known_in_workers, o);
    if (known == NULL) {
        return -1;
    }
    int r = PyObject_IsTrue(known);
    Py_DECREF(known);
    return r < 0 ? -1 : r ? 0 : SCAN_LATE_MAIN;
}

/* What is within `depth` container levels of o: a large buffer, so that
 * the payload is worth pickling with _serialize.dumps (slower per object),
 * or a __main__ object the workers lack.  The common case (neither) costs
 * a few type checks an object.  -1 with an exception on failure. */
static int
scan(ne_state *st, PyObject *o, int depth)
{
    int flags = is_big_buffer(o) ? SCAN_BIG : late_main(st, o);
    if (flags < 0 || depth == 0) {
        return flags;
    }
    if (PyTuple_CheckExact(o) || PyList_CheckExact(o)) {
        Py_ssize_t n = PySequence_Fast_GET_SIZE(o);
        for (Py_ssize_t i = 0; i < n && flags != (SCAN_BIG | SCAN_LATE_MAIN); i++) {
            /* a list may change while known_in_workers runs */
            if (i >= PySequence_Fast_GET_SIZE(o)) {
                break;
            }
            PyObject *item = Py_NewRef(PySequence_Fast_ITEMS(o)[i]);
            int r = scan(st, item, depth - 1);
            Py_DECREF(item);
            if (r < 0) {
                return -1;
            }
            flags |= r;
        }
    }
    else if (PyDict_CheckExact(o)) {
        Py_ssize_t pos = 0;
        PyObject *key, *value;
        while (flags != (SCAN_BIG | SCAN_LATE_MAIN) && PyDict_Next(o, &pos, &key, &value)) {
            Py_INCREF(value);
            int r = scan(st, value, depth - 1);
            Py_DECREF(value);
            if (r < 0) {
                return -1;
            }
            flags |= r;
        }
    }
    return flags;
}

void
ne_blob_clear(ne_blob *b)
{
    for (Py_ssize_t i = 0; i < b->nviews; i++) {
        PyBuffer_Release(&b->views[i]);
    }
    PyMem_Free(b->views);
    b->views = NULL;
    b->nviews = 0;
    Py_CLEAR(b->inband);
    Py_CLEAR(b->ours);
    Py_CLEAR(b->foreign);
}

/* Pickle obj into b->inband (and b->ours, b->foreign: the buffers sent
 * beside it), by the cheapest way that works: pickle.dumps; _serialize.dumps
 * for a payload with large buffers near its top; by value when pickle
 * refuses it or it holds a __main__ object the workers lack.  -1 with an
 * exception: pickle's own when by value cannot help either. */
static int
pickle_into(ne_state *st, PyObject *obj, int depth, ne_blob *b, PyObject *append)
{
    int found = scan(st, obj, depth);
    if (found < 0) {
        return -1;
    }
    if ((found & (SCAN_BIG | SCAN_LATE_MAIN)) && (b->ours = PyList_New(0)) == NULL) {
        return -1;
    }
    if (found & SCAN_LATE_MAIN) {
        b->inband = PyObject_CallFunctionObjArgs(st->by_value_dumps, obj, b->ours, append, NULL);
        return b->inband == NULL ? -1 : 0;
    }
    if (found & SCAN_BIG) {
        b->inband = PyObject_CallFunctionObjArgs(st->oob_dumps, obj, b->ours, append, NULL);
    }
    else {
        PyObject *stack[4] = {NULL, obj, st->protocol, append};
        b->inband = PyObject_Vectorcall(st->pickle_dumps, stack + 1,
                                        2 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                        st->kw_buffer_callback);
    }
    if (b->inband == NULL) {
        /* pickle could not send it by reference: by value, with the
         * buffers it had collected dropped; dumps_by_value raises
         * pickle's error again where cloudpickle cannot help */
        PyObject *exc = PyErr_GetRaisedException();
        if (PyList_SetSlice(b->foreign, 0, PY_SSIZE_T_MAX, NULL) == 0
            && (b->ours != NULL || (b->ours = PyList_New(0)) != NULL)
            && PyList_SetSlice(b->ours, 0, PY_SSIZE_T_MAX, NULL) == 0) {
            b->inband = PyObject_CallFunctionObjArgs(st->by_value_dumps, obj, b->ours,
                                                     append, exc, NULL);
        }
        Py_XDECREF(exc);
    }
    return b->inband == NULL ? -1 : 0;
}

/* A buffer view of each out-of-band buffer, ours first; b->size counts
 * them.  -1 with an exception. */
static int
take_views(ne_blob *b, Py_ssize_t nours, Py_ssize_t nforeign)
{
    b->views = PyMem_Calloc((size_t)(nours + nforeign), sizeof(Py_buffer));
    if (b->views == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < nours + nforeign; i++) {
        PyObject *src;
        if (i < nours) {
            src = Py_NewRef(PyList_GET_ITEM(b->ours, i));
        }
        else {
            /* PickleBuffer.raw(): the bytes, C-contiguous, whatever the layout */
            src = PyObject_CallMethod(PyList_GET_ITEM(b->foreign, i - nours), "raw", NULL);
            if (src == NULL) {
                return -1;
            }
        }
        int rc = PyObject_GetBuffer(src, &b->views[i], PyBUF_C_CONTIGUOUS);
        Py_DECREF(src);
        if (rc < 0) {
            return -1;
        }
        b->nviews++;
        b->size += ne_align((uint64_t)b->views[i].len);
    }
    return 0;
}

/* Pickle obj into b (which must be zeroed).  depth: how many container
 * levels to search for large buffers.  -1 with an exception on failure. */
int
ne_blob_dump(ne_state *st, PyObject *obj, int depth, ne_blob *b)
{
    PyObject *append = NULL;
    b->foreign = PyList_New(0);
    if (b->foreign == NULL || (append = PyObject_GetAttrString(b->foreign, "append")) == NULL) {
        goto error;
    }
    int rc = pickle_into(st, obj, depth, b, append);
    Py_CLEAR(append);
    if (rc < 0) {
        goto error;
    }
    Py_ssize_t nours = b->ours ? PyList_GET_SIZE(b->ours) : 0;
    Py_ssize_t nforeign = PyList_GET_SIZE(b->foreign);
    if (nforeign == 0) {
        Py_CLEAR(b->foreign);
    }
    b->size = ne_align(sizeof(ne_payload_head) + 8 * (uint64_t)(nours + nforeign))
              + ne_align((uint64_t)PyBytes_GET_SIZE(b->inband));
    if (nours + nforeign > 0 && take_views(b, nours, nforeign) < 0) {
        goto error;
    }
    return 0;

error:
    Py_XDECREF(append);
    ne_blob_clear(b);
    return -1;
}

uint64_t
ne_blob_prefix_size(const ne_blob *b)
{
    return ne_align(sizeof(ne_payload_head) + 8 * (uint64_t)b->nviews)
           + ne_align((uint64_t)PyBytes_GET_SIZE(b->inband));
}

/* Write the header and the pickle stream: all a reader needs to start. */
void
ne_blob_write_prefix(const ne_blob *b, char *dst)
{
    Py_ssize_t nours = b->ours ? PyList_GET_SIZE(b->ours) : 0;
    ne_payload_head head = {
        .magic = PAYLOAD_MAGIC,
        .nours = (uint32_t)nours,
        .nforeign = (uint32_t)(b->nviews - nours),
        .inband = (uint64_t)PyBytes_GET_SIZE(b->inband),
    };
    memcpy(dst, &head, sizeof(head));
    uint64_t *lengths = (uint64_t *)(dst + sizeof(head));
    for (Py_ssize_t i = 0; i < b->nviews; i++) {
        lengths[i] = (uint64_t)b->views[i].len;
    }
    memcpy(dst + ne_align(sizeof(head) + 8 * (uint64_t)b->nviews),
           PyBytes_AS_STRING(b->inband), head.inband);
}

/* Copy the out-of-band buffers after the prefix, STREAM_CHUNK at a time,
 * publishing in *ready how many bytes of the payload a reader may use.
 * Touches no Python object: callable without the GIL. */
void
ne_blob_write_buffers(const ne_blob *b, char *dst, _Atomic uint64_t *ready)
{
    uint64_t at = ne_blob_prefix_size(b);
    for (Py_ssize_t i = 0; i < b->nviews; i++) {
        const char *src = b->views[i].buf;
        uint64_t n = (uint64_t)b->views[i].len;
        for (uint64_t done = 0; done < n;) {
            uint64_t chunk = n - done < NE_STREAM_CHUNK ? n - done : NE_STREAM_CHUNK;
            memcpy(dst + at + done, src + done, chunk);
            done += chunk;
            if (ready != NULL) {
                atomic_store_explicit(ready, at + done, memory_order_release);
            }
        }
        at += ne_align(n);
        if (ready != NULL) {
            atomic_store_explicit(ready, at, memory_order_release);
        }
    }
}

/* The whole blob, then *ready (if given) covering all of it.  With
 * release_gil, large copies release the GIL: the buffers are held, so
 * their memory stays. */
void
ne_blob_write(const ne_blob *b, char *dst, _Atomic uint64_t *ready, int release_gil)
{
    ne_blob_write_prefix(b, dst);
    if (b->nviews > 0) {
        PyThreadState *ts = release_gil && b->size >= GIL_FREE_COPY ? PyEval_SaveThread() : NULL;
        ne_blob_write_buffers(b, dst, NULL);
        if (ts != NULL) {
            PyEval_RestoreThread(ts);
        }
    }
    if (ready != NULL) {
        atomic_store_explicit(ready, b->size, memory_order_release);
    }
}

/* Copy n bytes at offset `at` of a payload being streamed in, as *ready
 * allows: the writer copies in on one core while this copies out on the
 * other. */
static void
copy_streamed(char *dst, const char *payload, uint64_t at, uint64_t n,
              const _Atomic uint64_t *ready)
{
    uint64_t done = 0;
    unsigned idle = 0;
    while (done < n) {
        uint64_t avail = ready == NULL ? UINT64_MAX
                                       : atomic_load_explicit(ready, memory_order_acquire);
        if (avail <= at + done) {
            /* the writer is a memcpy away; yield first, then nap */
            if (++idle < 1000) {
                sched_yield();
            }
            else {
                struct timespec nap = {0, 20 * 1000};
                nanosleep(&nap, NULL);
            }
            continue;
        }
        idle = 0;
        uint64_t take = avail - (at + done);
        if (take > n - done) {
            take = n - done;
        }
        memcpy(dst + done, payload + at + done, take);
        done += take;
    }
}

#define HUGE_PAGE (2u << 20)

/* Ask for transparent huge pages under a destination about to be filled.
 * A buffer this large is usually a fresh mmap of malloc's (always past
 * glibc's 32 MiB ceiling for its mmap threshold), so the copy into it
 * would otherwise fault once per 4 KiB page, which costs about as much as
 * the copy; a huge page faults once per 2 MiB.  Only the pages wholly
 * inside dst are advised, since the rest may hold others' memory; where
 * the kernel says no, or the memory is already there, nothing changes. */
static void
advise_huge(char *dst, uint64_t n)
{
    if (n < 2 * (uint64_t)HUGE_PAGE) {
        return;
    }
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t start = ((uintptr_t)dst + page - 1) & ~(page - 1);
    uintptr_t end = ((uintptr_t)dst + n) & ~(page - 1);
    (void)madvise((void *)start, end - start, MADV_HUGEPAGE);
}

/* The payload being loaded, for _take_buffer; nested loads stack. */
typedef struct ne_loading {
    const char *payload;
    const uint64_t *lengths;
    uint32_t nours;
    uint64_t first;                 /* offset of buffer 0 */
    const _Atomic uint64_t *ready;
    struct ne_loading *outer;
} ne_loading;

/* Per thread: pickle.loads runs Python code and _take_buffer copies with
 * the GIL released, so two threads may be loading at once. */
static _Thread_local ne_loading *loading;

/* _take_buffer(index, mutable): buffer `index` of the payload being loaded,
 * rebuilt as bytes (or bytearray), copied once out of shared memory. */
PyObject *
ne_take_buffer(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || loading == NULL) {
        PyErr_SetString(PyExc_RuntimeError,
                        "_take_buffer() is only called while native_exec loads a payload");
        return NULL;
    }
    Py_ssize_t index = PyLong_AsSsize_t(args[0]);
    int mutable = PyObject_IsTrue(args[1]);
    if ((index == -1 && PyErr_Occurred()) || mutable < 0) {
        return NULL;
    }
    if (index < 0 || (uint64_t)index >= loading->nours) {
        PyErr_SetString(PyExc_ValueError, "native_exec: buffer index out of range");
        return NULL;
    }
    uint64_t at = loading->first;
    for (Py_ssize_t i = 0; i < index; i++) {
        at += ne_align(loading->lengths[i]);
    }
    uint64_t n = loading->lengths[index];
    PyObject *obj = mutable ? PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)n)
                            : PyBytes_FromStringAndSize(NULL, (Py_ssize_t)n);
    if (obj == NULL) {
        return NULL;
    }
    char *dst = mutable ? PyByteArray_AS_STRING(obj) : PyBytes_AS_STRING(obj);
    ne_loading *ctx = loading;
    Py_BEGIN_ALLOW_THREADS
    advise_huge(dst, n);
    copy_streamed(dst, ctx->payload, at, n, ctx->ready);
    Py_END_ALLOW_THREADS
    return obj;
}

/* Unpickle a payload of len bytes at src.  ready: how much of it the
 * writer has published, or NULL when it is all there.  New reference. */
PyObject *
ne_blob_load(ne_state *st, const char *src, uint64_t len, const _Atomic uint64_t *ready)
{
    ne_payload_head head;
    if (len < sizeof(head)) {
        goto corrupt;
    }
    memcpy(&head, src, sizeof(head));
    uint64_t n = (uint64_t)head.nours + head.nforeign;
    if (head.magic != PAYLOAD_MAGIC || n > len / 8) {
        goto corrupt;
    }
    const uint64_t *lengths = (const uint64_t *)(src + sizeof(head));
    uint64_t inband_at = ne_align(sizeof(head) + 8 * n);
    if (head.inband > len || inband_at > len - head.inband) {
        goto corrupt;
    }
    uint64_t first = inband_at + ne_align(head.inband), at = first;
    for (uint64_t i = 0; i < n; i++) {
        if (lengths[i] > len || at > len - lengths[i]) {
            goto corrupt;
        }
        at += ne_align(lengths[i]);
    }

    PyObject *result = NULL, *foreign = NULL, *inband = NULL;
    if (head.nforeign > 0) {
        /* handed to foreign reconstructors, which may keep them: owned copies */
        foreign = PyList_New(head.nforeign);
        if (foreign == NULL) {
            return NULL;
        }
        at = first;
        for (uint64_t i = 0; i < n; i++) {
            if (i >= head.nours) {
                PyObject *copy = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)lengths[i]);
                if (copy == NULL) {
                    goto done;
                }
                copy_streamed(PyByteArray_AS_STRING(copy), src, at, lengths[i], ready);
                PyList_SET_ITEM(foreign, (Py_ssize_t)(i - head.nours), copy);
            }
            at += ne_align(lengths[i]);
        }
    }
    inband = PyMemoryView_FromMemory((char *)src + inband_at, (Py_ssize_t)head.inband,
                                     PyBUF_READ);
    if (inband == NULL) {
        goto done;
    }
    ne_loading ctx = {src, lengths, head.nours, first, ready, loading};
    loading = &ctx;
    if (head.nours > 0) {
        result = PyObject_CallFunctionObjArgs(st->oob_loads, inband,
                                              foreign != NULL ? foreign : Py_None, NULL);
    }
    else if (foreign != NULL) {
        PyObject *stack[3] = {NULL, inband, foreign};
        result = PyObject_Vectorcall(st->pickle_loads, stack + 1,
                                     1 | PY_VECTORCALL_ARGUMENTS_OFFSET, st->kw_buffers);
    }
    else {
        result = PyObject_CallOneArg(st->pickle_loads, inband);
    }
    loading = ctx.outer;
done:
    Py_XDECREF(inband);
    Py_XDECREF(foreign);
    return result;

corrupt:
    PyErr_SetString(PyExc_ValueError, "native_exec: corrupt payload in shared memory");
    return NULL;
}
