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

int read_u64(PyObject *value, uint64_t *out) {
    if (value == NULL || !PyLong_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "expected an int");
        return -1;
    }
    unsigned long long v = PyLong_AsUnsignedLongLong(value);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) {
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}

static PyMethodDef methods[] = {
    {"otlp_configure", otlp_configure, METH_VARARGS, otlp_configure_doc},
    {"encode_spans", otlp_encode_spans, METH_VARARGS, otlp_encode_spans_doc},
    {"rows_configure", rows_configure, METH_VARARGS, rows_configure_doc},
    {"rows_from_spans", rows_from_spans, METH_VARARGS, rows_from_spans_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "spanline._accel",
    .m_doc = "spanline's optional compiled helpers: the OTLP span encoder "
             "(spanline.export.otlp_wire) and the store's row converter "
             "(spanline.store.convert).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__accel(void) { return PyModule_Create(&module); }
