/* spanline._accel: the module object and the helpers otlp.c and rows.c share. */
#include "accel.h"

int buf_reserve(Buf *b, Py_ssize_t extra) {
    if (b->len + extra <= b->cap) {
        return 0;
    }
    Py_ssize_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra) {
        cap *= 2;
    }
    char *data = PyMem_Realloc(b->data, (size_t)cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

int append_bytes(Buf *b, PyObject *bytes) {
    if (!PyBytes_Check(bytes)) {
        PyErr_SetString(PyExc_TypeError, "expected bytes");
        return -1;
    }
    Py_ssize_t n = PyBytes_GET_SIZE(bytes);
    if (buf_reserve(b, n) < 0) {
        return -1;
    }
    put_raw(b, PyBytes_AS_STRING(bytes), n);
    return 0;
}

int slot_offset(PyObject *type, const char *name, Py_ssize_t *out) {
    PyObject *descr = PyObject_GetAttrString(type, name);
    if (descr == NULL) {
        return -1;
    }
    if (!Py_IS_TYPE(descr, &PyMemberDescr_Type) ||
        ((PyMemberDescrObject *)descr)->d_member->type != Py_T_OBJECT_EX) {
        Py_DECREF(descr);
        PyErr_Format(PyExc_TypeError, "%s is not an object slot", name);
        return -1;
    }
    *out = ((PyMemberDescrObject *)descr)->d_member->offset;
    Py_DECREF(descr);
    return 0;
}

static const char *SPAN_SLOTS[S_COUNT] = {
    "_sid", "_parent", "_trace", "name", "kind", "_start", "_end", "_attributes",
    "_type", "_status", "_status_message", "_records", "_meta", "_events",
};

int span_layout_init(SpanLayout *layout, PyObject *span_type) {
    if (!PyType_Check(span_type)) {
        PyErr_SetString(PyExc_TypeError, "expected the Span class");
        return -1;
    }
    for (int i = 0; i < S_COUNT; i++) {
        if (slot_offset(span_type, SPAN_SLOTS[i], &layout->offsets[i]) < 0) {
            return -1;
        }
    }
    layout->type = (PyTypeObject *)Py_NewRef(span_type);
    return 0;
}

int clear_if_exception(void) {
    if (PyErr_Occurred() && !PyErr_ExceptionMatches(PyExc_Exception)) {
        return 0;
    }
    PyErr_Clear();
    return 1;
}

int intern_string(PyObject **slot, const char *text) {
    *slot = PyUnicode_InternFromString(text);
    return *slot == NULL ? -1 : 0;
}

int read_u64(PyObject *value, uint64_t *out) {
    if (value == NULL || !PyLong_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "expected an int");
        return -1;
    }
    /* PyLong_AsUnsignedLongLong goes through a byte array for any value above 2**30
       (every timestamp and id); the mask read is a loop over the digits, and the
       range is checked first, as that function would. */
    int sign = _PyLong_Sign(value);
    if (sign < 0 || (sign > 0 && _PyLong_NumBits(value) > 64)) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_OverflowError, sign < 0
                                                     ? "can't convert negative int to unsigned"
                                                     : "int too big to convert");
        }
        return -1;
    }
    *out = (uint64_t)PyLong_AsUnsignedLongLongMask(value);
    return 0;
}

/* ----------------------------------------------------------- lazy trace ids */

static struct {
    PyTypeObject *type;
    Py_ssize_t id_at, start_at;
    PyObject *context;    /* spanline.core.context: _LAZY is read on every draw, since
                             a forked child replaces it */
    PyObject *lock_name;  /* "_LAZY" */
    PyObject *acquire, *release; /* method names, interned */
    PyObject *ids;        /* spanline.core.ids: new_random64 is read on every draw */
    PyObject *draw_name;  /* "new_random64" */
} lazy;

PyObject *trace_id_of(PyObject *trace) {
    if (lazy.type == NULL || !Py_IS_TYPE(trace, lazy.type)) {
        PyErr_SetString(PyExc_TypeError, "not a configured Trace");
        return NULL;
    }
    PyObject *id = slot_at(trace, lazy.id_at);
    if (id != NULL && PyLong_CheckExact(id) && PyObject_IsTrue(id) == 1) {
        return Py_NewRef(id);
    }
    /* as Trace.id: the first reader draws, under the lock, so all readers agree */
    PyObject *lock = PyObject_GetAttr(lazy.context, lazy.lock_name);
    PyObject *held = lock == NULL ? NULL : PyObject_CallMethodNoArgs(lock, lazy.acquire);
    if (held == NULL) {
        Py_XDECREF(lock);
        return NULL;
    }
    Py_DECREF(held);
    PyObject *result = NULL;
    id = slot_at(trace, lazy.id_at);
    if (id != NULL && PyLong_CheckExact(id) && PyObject_IsTrue(id) == 1) {
        result = Py_NewRef(id);
    } else {
        uint64_t start = 0;
        PyObject *draw = PyObject_GetAttr(lazy.ids, lazy.draw_name);
        PyObject *random = draw == NULL ? NULL : PyObject_CallNoArgs(draw);
        Py_XDECREF(draw);
        if (random != NULL && read_u64(slot_at(trace, lazy.start_at), &start) == 0) {
            uint64_t low;
            if (read_u64(random, &low) == 0) {
                /* (start millisecond << 80) | (random or 1): ids.new_trace_int */
                PyObject *high = PyLong_FromUnsignedLongLong(start / 1000000ULL);
                PyObject *shift = PyLong_FromLong(80);
                PyObject *top = high && shift ? PyNumber_Lshift(high, shift) : NULL;
                PyObject *bottom = PyLong_FromUnsignedLongLong(low ? low : 1);
                result = top && bottom ? PyNumber_Or(top, bottom) : NULL;
                Py_XDECREF(high);
                Py_XDECREF(shift);
                Py_XDECREF(top);
                Py_XDECREF(bottom);
            }
        }
        Py_XDECREF(random);
        if (result != NULL) { /* what the slot's setter does: replace, release the old */
            PyObject **slot = (PyObject **)((char *)trace + lazy.id_at);
            PyObject *old = *slot;
            *slot = Py_NewRef(result);
            Py_XDECREF(old);
        }
    }
    PyObject *error_type, *error_value, *error_tb;
    PyErr_Fetch(&error_type, &error_value, &error_tb); /* release even on failure */
    PyObject *released = PyObject_CallMethodNoArgs(lock, lazy.release);
    Py_DECREF(lock);
    Py_XDECREF(released);
    if (released == NULL) {
        Py_XDECREF(error_type);
        Py_XDECREF(error_value);
        Py_XDECREF(error_tb);
        Py_XDECREF(result);
        return NULL;
    }
    PyErr_Restore(error_type, error_value, error_tb);
    return result;
}

int trace_id_split(PyObject *trace, uint64_t *high, uint64_t *low) {
    PyObject *id = trace_id_of(trace);
    if (id == NULL) {
        return -1;
    }
    /* both halves from one read of the digits (no `id >> 64` object); a negative
       id, or one of more than 128 bits, is an OverflowError */
    unsigned char bytes[16];
    int rc = -1;
    if (!PyLong_Check(id)) {
        PyErr_SetString(PyExc_TypeError, "expected an int");
    } else {
#if PY_VERSION_HEX >= 0x030D0000
        rc = _PyLong_AsByteArray((PyLongObject *)id, bytes, 16, 0, 0, 1);
#else
        rc = _PyLong_AsByteArray((PyLongObject *)id, bytes, 16, 0, 0);
#endif
    }
    Py_DECREF(id);
    if (rc < 0) {
        return -1;
    }
    uint64_t h = 0, l = 0;
    for (int i = 0; i < 8; i++) {
        h = (h << 8) | bytes[i];
        l = (l << 8) | bytes[8 + i];
    }
    *high = h;
    *low = l;
    return 0;
}

const char trace_configure_doc[] =
    "trace_configure(trace_type, context_module, ids_module) -> None\n\n"
    "The Trace class (its _id and _start slots are read by offset), the module whose\n"
    "_LAZY lock Trace.id draws lazy ids under, and spanline.core.ids (new_random64).";

PyObject *trace_configure(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *type, *context, *ids;
    if (!PyArg_ParseTuple(args, "O!OO:trace_configure", &PyType_Type, &type, &context, &ids)) {
        return NULL;
    }
    Py_ssize_t id_at, start_at;
    if (slot_offset(type, "_id", &id_at) < 0 || slot_offset(type, "_start", &start_at) < 0) {
        return NULL;
    }
    PyObject *name = PyUnicode_InternFromString("new_random64");
    PyObject *lock_name = PyUnicode_InternFromString("_LAZY");
    PyObject *acquire = PyUnicode_InternFromString("acquire");
    PyObject *release = PyUnicode_InternFromString("release");
    if (name == NULL || lock_name == NULL || acquire == NULL || release == NULL) {
        Py_XDECREF(name);
        Py_XDECREF(lock_name);
        Py_XDECREF(acquire);
        Py_XDECREF(release);
        return NULL;
    }
    /* previous values stay alive on purpose: another thread may be using them */
    lazy.type = (PyTypeObject *)Py_NewRef(type);
    lazy.id_at = id_at;
    lazy.start_at = start_at;
    lazy.context = Py_NewRef(context);
    lazy.lock_name = lock_name;
    lazy.acquire = acquire;
    lazy.release = release;
    lazy.ids = Py_NewRef(ids);
    lazy.draw_name = name;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"trace_configure", trace_configure, METH_VARARGS, trace_configure_doc},
    {"otlp_configure", otlp_configure, METH_VARARGS, otlp_configure_doc},
    {"encode_spans", otlp_encode_spans, METH_VARARGS, otlp_encode_spans_doc},
    {"rows_configure", rows_configure, METH_VARARGS, rows_configure_doc},
    {"rows_from_spans", rows_from_spans, METH_VARARGS, rows_from_spans_doc},
    {"asgi_request", asgi_request, METH_O, asgi_request_doc},
    {"asgi_configure", asgi_configure, METH_VARARGS, asgi_configure_doc},
    {"span_configure", span_configure, METH_VARARGS, span_configure_doc},
    {"random64", random64, METH_NOARGS, random64_doc},
    {"seed_random", seed_random, METH_O, seed_random_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "spanline._accel",
    .m_doc = "spanline's optional compiled helpers: the OTLP span encoder "
             "(spanline.export.otlp_wire), the store's row converter "
             "(spanline.store.convert), the ASGI scope reader and request span "
             "(spanline.integrations.asgi), Span.__enter__/__exit__ "
             "(spanline.core.span) and the batch queue's producer side "
             "(spanline.export.span_queue) and the default random source of ids "
             "(spanline.core.ids).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__accel(void) {
    if (PyType_Ready(&SpanLifecycleType) < 0 || PyType_Ready(&SpanQueueType) < 0 ||
        PyType_Ready(&AsgiRequestType) < 0) {
        return NULL;
    }
    PyObject *created = PyModule_Create(&module);
    if (created == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(created, "SpanLifecycle", (PyObject *)&SpanLifecycleType) < 0 ||
        PyModule_AddObjectRef(created, "SpanQueue", (PyObject *)&SpanQueueType) < 0 ||
        PyModule_AddObjectRef(created, "AsgiRequest", (PyObject *)&AsgiRequestType) < 0) {
        Py_DECREF(created);
        return NULL;
    }
    /* the function object ids.new_random64 is by default (kept for the process) */
    accel_random_fn = PyObject_GetAttrString(created, "random64");
    if (accel_random_fn == NULL) {
        Py_DECREF(created);
        return NULL;
    }
    return created;
}
