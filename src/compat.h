/* Shims for C-API functions newer than the oldest supported Python (3.10),
 * in the manner of pythoncapi-compat: the rest of the code calls the new
 * name and this header supplies it where the interpreter does not. */
#ifndef NATIVE_EXEC_COMPAT_H
#define NATIVE_EXEC_COMPAT_H

#include <Python.h>

#if PY_VERSION_HEX < 0x030C0000
/* The current exception as one normalized object with its traceback
 * attached, or NULL; clears the error indicator (3.12 API). */
static inline PyObject *
PyErr_GetRaisedException(void)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (type == NULL) {
        return NULL;
    }
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL) {
        PyException_SetTraceback(value, tb);
    }
    Py_DECREF(type);
    Py_XDECREF(tb);
    return value;
}

static inline void
PyErr_SetRaisedException(PyObject *exc)
{
    /* Steals the reference, and NULL clears the error, as the 3.12
     * function does. */
    if (exc == NULL) {
        PyErr_Restore(NULL, NULL, NULL);
        return;
    }
    PyObject *type = Py_NewRef((PyObject *)Py_TYPE(exc));
    PyObject *tb = PyException_GetTraceback(exc);
    PyErr_Restore(type, exc, tb);
}
#endif

#if PY_VERSION_HEX < 0x030D0000
/* 3.13 API: a new reference to dict[key] in *result; 1 found, 0 absent, -1 error. */
static inline int
PyDict_GetItemRef(PyObject *dict, PyObject *key, PyObject **result)
{
    PyObject *item = PyDict_GetItemWithError(dict, key);
    if (item != NULL) {
        *result = Py_NewRef(item);
        return 1;
    }
    *result = NULL;
    return PyErr_Occurred() ? -1 : 0;
}
#endif

#if PY_VERSION_HEX < 0x030D0000
/* 3.13 API: obj.name in *result (a new reference); 1 found, 0 absent (no
 * AttributeError raised, so absence is cheap), -1 error. */
static inline int
PyObject_GetOptionalAttr(PyObject *obj, PyObject *name, PyObject **result)
{
    return _PyObject_LookupAttr(obj, name, result);
}
#endif

#if PY_VERSION_HEX < 0x030D0000
/* 3.13 API: the referent of weakref ref in *pobj (a new reference, or NULL
 * once it is dead); 1 alive, 0 dead, -1 error. */
static inline int
PyWeakref_GetRef(PyObject *ref, PyObject **pobj)
{
    PyObject *obj = PyWeakref_GetObject(ref);
    if (obj == NULL) {
        *pobj = NULL;
        return -1;
    }
    *pobj = obj == Py_None ? NULL : Py_NewRef(obj);
    return *pobj != NULL;
}
#endif

#endif /* NATIVE_EXEC_COMPAT_H */
