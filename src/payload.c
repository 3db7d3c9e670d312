/* Payloads: Python objects pickled (protocol 5) into shared memory.
 *
 * Encoding, at a 64-byte aligned address:
 *
 *   ne_payload_head | uint64 length[nours + nforeign]
 *   | in-band pickle | buffer 0 | buffer 1 | ...      (each 64-byte aligned)
 *
 * Out-of-band buffers come from two places.  "Ours" are large bytes,
 * bytearray and C-contiguous memoryview objects found near the top of the
 * payload: native_exec._serialize.wrap_large swaps them for OutOfBand
 * markers, because pickle never offers exact bytes/bytearray to a
 * buffer_callback.  "Foreign" ones are the PickleBuffers pickle hands to
 * the buffer_callback (numpy arrays and the like).  Either way the buffer
 * is copied once, straight from the object into shared memory, and once
 * out of it into the object the reader rebuilds. */
#include "native_exec.h"

#include <string.h>

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

/* Whether wrap_large would find anything within `depth` container levels;
 * the common case (no large buffer) costs a few type checks. */
static int
has_big_buffer(PyObject *o, int depth)
{
    if (is_big_buffer(o)) {
        return 1;
    }
    if (depth == 0) {
        return 0;
    }
    if (PyTuple_CheckExact(o) || PyList_CheckExact(o)) {
        Py_ssize_t n = PySequence_Fast_GET_SIZE(o);
        PyObject **items = PySequence_Fast_ITEMS(o);
        for (Py_ssize_t i = 0; i < n; i++) {
            if (has_big_buffer(items[i], depth - 1)) {
                return 1;
            }
        }
    }
    else if (PyDict_CheckExact(o)) {
        Py_ssize_t pos = 0;
        PyObject *key, *value;
        while (PyDict_Next(o, &pos, &key, &value)) {
            if (has_big_buffer(value, depth - 1)) {
                return 1;
            }
        }
    }
    return 0;
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

/* Pickle obj into b (which must be zeroed).  depth: how many container
 * levels to search for large buffers.  -1 with an exception on failure. */
int
ne_blob_dump(ne_state *st, PyObject *obj, int depth, ne_blob *b)
{
    PyObject *target = Py_NewRef(obj), *append = NULL;
    if (has_big_buffer(obj, depth)) {
        b->ours = PyList_New(0);
        if (b->ours == NULL) {
            goto error;
        }
        Py_SETREF(target, PyObject_CallFunction(st->wrap_large, "OOi", obj, b->ours, depth));
        if (target == NULL) {
            goto error;
        }
    }
    b->foreign = PyList_New(0);
    if (b->foreign == NULL || (append = PyObject_GetAttrString(b->foreign, "append")) == NULL) {
        goto error;
    }
    PyObject *stack[4] = {NULL, target, st->protocol, append};
    b->inband = PyObject_Vectorcall(st->pickle_dumps, stack + 1,
                                    2 | PY_VECTORCALL_ARGUMENTS_OFFSET, st->kw_buffer_callback);
    Py_CLEAR(append);
    Py_CLEAR(target);
    if (b->inband == NULL) {
        goto error;
    }
    Py_ssize_t nours = b->ours ? PyList_GET_SIZE(b->ours) : 0;
    Py_ssize_t nforeign = PyList_GET_SIZE(b->foreign);
    if (nforeign == 0) {
        Py_CLEAR(b->foreign);
    }
    b->size = ne_align(sizeof(ne_payload_head) + 8 * (uint64_t)(nours + nforeign))
              + ne_align((uint64_t)PyBytes_GET_SIZE(b->inband));
    if (nours + nforeign == 0) {
        return 0;
    }
    b->views = PyMem_Calloc((size_t)(nours + nforeign), sizeof(Py_buffer));
    if (b->views == NULL) {
        PyErr_NoMemory();
        goto error;
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
                goto error;
            }
        }
        int rc = PyObject_GetBuffer(src, &b->views[i], PyBUF_C_CONTIGUOUS);
        Py_DECREF(src);
        if (rc < 0) {
            goto error;
        }
        b->nviews++;
        b->size += ne_align((uint64_t)b->views[i].len);
    }
    return 0;

error:
    Py_XDECREF(append);
    Py_XDECREF(target);
    ne_blob_clear(b);
    return -1;
}

/* Copy the encoded blob to dst (b->size bytes, 64-byte aligned).  Large
 * copies release the GIL: the buffers are held, so their memory stays. */
void
ne_blob_write(const ne_blob *b, char *dst)
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
    uint64_t total = 0;
    for (Py_ssize_t i = 0; i < b->nviews; i++) {
        lengths[i] = (uint64_t)b->views[i].len;
        total += (uint64_t)b->views[i].len;
    }
    char *p = dst + ne_align(sizeof(head) + 8 * (uint64_t)b->nviews);
    memcpy(p, PyBytes_AS_STRING(b->inband), head.inband);
    p += ne_align(head.inband);
    if (b->nviews == 0) {
        return;
    }
    PyThreadState *ts = total >= GIL_FREE_COPY ? PyEval_SaveThread() : NULL;
    for (Py_ssize_t i = 0; i < b->nviews; i++) {
        memcpy(p, b->views[i].buf, (size_t)b->views[i].len);
        p += ne_align((uint64_t)b->views[i].len);
    }
    if (ts != NULL) {
        PyEval_RestoreThread(ts);
    }
}

/* Unpickle a payload of len bytes at src.  Returns a new reference. */
PyObject *
ne_blob_load(ne_state *st, const char *src, uint64_t len)
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
    uint64_t at = ne_align(sizeof(head) + 8 * n);
    uint64_t inband_at = at;
    if (head.inband > len || at > len - head.inband) {
        goto corrupt;
    }
    at += ne_align(head.inband);

    PyObject *result = NULL, *ours = NULL, *foreign = NULL, *saved = NULL, *inband = NULL;
    if (head.nours > 0 && (ours = PyList_New(head.nours)) == NULL) {
        return NULL;
    }
    if (head.nforeign > 0 && (foreign = PyList_New(head.nforeign)) == NULL) {
        goto done;
    }
    for (uint64_t i = 0; i < n; i++) {
        if (lengths[i] > len || at > len - lengths[i]) {
            PyErr_SetString(PyExc_ValueError, "native_exec: corrupt payload in shared memory");
            goto done;
        }
        PyObject *item;
        if (i < head.nours) {
            /* read in place: the OutOfBand rebuilder copies it out */
            item = PyMemoryView_FromMemory((char *)src + at, (Py_ssize_t)lengths[i], PyBUF_READ);
        }
        else {
            /* handed to foreign reconstructors, which may keep it: owned */
            item = PyByteArray_FromStringAndSize(src + at, (Py_ssize_t)lengths[i]);
        }
        if (item == NULL) {
            goto done;
        }
        if (i < head.nours) {
            PyList_SET_ITEM(ours, (Py_ssize_t)i, item);
        }
        else {
            PyList_SET_ITEM(foreign, (Py_ssize_t)(i - head.nours), item);
        }
        at += ne_align(lengths[i]);
    }
    inband = PyMemoryView_FromMemory((char *)src + inband_at, (Py_ssize_t)head.inband, PyBUF_READ);
    if (inband == NULL) {
        goto done;
    }
    if (ours != NULL) {
        /* the rebuilders find this payload's buffers here; a nested load
         * (a reconstructor that itself loads) restores the outer ones */
        saved = PyObject_GetAttr(st->serialize, st->s_incoming);
        if (saved == NULL || PyObject_SetAttr(st->serialize, st->s_incoming, ours) < 0) {
            goto done;
        }
    }
    if (foreign != NULL) {
        PyObject *stack[3] = {NULL, inband, foreign};
        result = PyObject_Vectorcall(st->pickle_loads, stack + 1,
                                     1 | PY_VECTORCALL_ARGUMENTS_OFFSET, st->kw_buffers);
    }
    else {
        result = PyObject_CallOneArg(st->pickle_loads, inband);
    }
    if (saved != NULL) {
        PyObject *exc = PyErr_GetRaisedException();
        if (PyObject_SetAttr(st->serialize, st->s_incoming, saved) < 0) {
            PyErr_WriteUnraisable(st->serialize);
        }
        if (exc != NULL) {
            PyErr_SetRaisedException(exc);
        }
    }
done:
    Py_XDECREF(saved);
    Py_XDECREF(inband);
    Py_XDECREF(ours);
    Py_XDECREF(foreign);
    return result;

corrupt:
    PyErr_SetString(PyExc_ValueError, "native_exec: corrupt payload in shared memory");
    return NULL;
}
