/*
 * The OTLP protobuf span encoder of spanline._accel (see accel.h).
 *
 * Optional.  spanline.export.otlp_wire uses it when it was built (the wheel's build
 * hook, hatch_build.py, compiles it when a C compiler is available) and falls back
 * to its pure-Python encoder otherwise.  Both write the same ExportTraceServiceRequest:
 * tests/test_otlp_wire.py decodes the output of each and compares it with the
 * opentelemetry-proto reference.
 *
 * Its scope is deliberately small: the fields every span has (ids, name, kind,
 * times, attributes of plain types, spanline.id and spanline.type, status) and the
 * trace-level fields of a generated trace without an actor.  Everything rarer is
 * delegated to Python callables:
 *   - trace_fn(span)    -> (trace id field, trace-level attributes), once per trace,
 *                          for external trace ids and traces with an actor;
 *   - any_fn(value)     -> AnyValue bytes for values that are not str/bool/int/float;
 *   - extras_fn(span)   -> bytes for records, meta, the chain and events;
 *   - fallback_fn(span) -> the whole span body, when this fast path gives up (a lone
 *                          surrogate in a name, an unexpected type, ...).
 * A span that the fallback cannot encode either is appended to `skipped` and left
 * out, so one bad span never costs the batch.
 *
 * Slots are read through their member descriptors' offsets (the way CPython reads
 * them itself), so an unset slot is a NULL pointer rather than an AttributeError.
 */
#include "accel.h"

enum { T_ID, T_EXTERNAL, T_ACTOR, T_COUNT };
static const char *TRACE_SLOTS[T_COUNT] = {"_id", "external", "actor"};

typedef struct {
    SpanLayout span;
    PyTypeObject *trace_type;
    Py_ssize_t trace_offsets[T_COUNT];
    PyObject *type_attributes; /* tuple of bytes, by type code */
    PyObject *prefixes;        /* tuple of bytes (b"sp_", b"op_", b"hd_"), by type code */
    PyObject *id_field_prefix; /* bytes: the spanline.id KeyValue up to the id's text */
    PyObject *any_fn;
    PyObject *sid_name;   /* "sid": the span id attribute of a parent that is no Span */
} State;

static State state;

/* ------------------------------------------------------------------ buffers */

static inline int varint_size(uint64_t v) {
    int n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static inline void put_varint(Buf *b, uint64_t v) {
    while (v >= 0x80) {
        b->data[b->len++] = (char)((v & 0x7F) | 0x80);
        v >>= 7;
    }
    b->data[b->len++] = (char)v;
}

static inline void put_fixed64(Buf *b, uint64_t v) {
    for (int i = 0; i < 8; i++) {
        b->data[b->len++] = (char)(v & 0xFF);
        v >>= 8;
    }
}

static inline void put_be64(Buf *b, uint64_t v) {
    for (int i = 7; i >= 0; i--) {
        b->data[b->len++] = (char)((v >> (8 * i)) & 0xFF);
    }
}

/* A length-delimited field: tag, length, body. */
static int append_field(Buf *b, unsigned char tag, const char *body, Py_ssize_t len) {
    if (buf_reserve(b, 1 + 10 + len) < 0) {
        return -1;
    }
    put_byte(b, tag);
    put_varint(b, (uint64_t)len);
    put_raw(b, body, len);
    return 0;
}

/* --------------------------------------------------------------- slot access */

#define SPAN_SLOT(obj, which) slot_at((obj), state.span.offsets[which])
#define TRACE_SLOT(obj, which) slot_at((obj), state.trace_offsets[which])

/* ---------------------------------------------------------------- attributes */

enum { V_STR, V_BOOL, V_INT, V_DOUBLE, V_OTHER };

/* One KeyValue field (tag `tag`) for key/value; 0 on success, -1 on error. With
   `plain_only`, a value that needs any_fn (Python code) is not written: 1. */
static int put_key_value(Buf *b, unsigned char tag, PyObject *key, PyObject *value,
                         int plain_only) {
    if (!PyUnicode_CheckExact(key)) {
        PyErr_SetString(PyExc_TypeError, "attribute key is not a str");
        return -1;
    }
    Py_ssize_t klen, vlen = 0, any_len;
    const char *kdata = PyUnicode_AsUTF8AndSize(key, &klen);
    const char *vdata = NULL;
    if (kdata == NULL) {
        return -1;
    }
    int kind;
    int64_t ival = 0;
    double dval = 0.0;
    if (PyUnicode_CheckExact(value)) {
        vdata = PyUnicode_AsUTF8AndSize(value, &vlen);
        if (vdata == NULL) {
            return -1;
        }
        kind = V_STR;
        any_len = 1 + varint_size((uint64_t)vlen) + vlen;
    } else if (PyBool_Check(value)) {
        kind = V_BOOL;
        any_len = 2;
    } else if (PyLong_CheckExact(value)) {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (v == -1 && PyErr_Occurred()) {
            return -1;
        }
        kind = overflow ? V_OTHER : V_INT; /* beyond int64: Python writes it as text */
        ival = (int64_t)v;
        any_len = 1 + varint_size((uint64_t)ival);
    } else if (PyFloat_CheckExact(value)) {
        kind = V_DOUBLE;
        dval = PyFloat_AS_DOUBLE(value);
        any_len = 9;
    } else {
        kind = V_OTHER;
        any_len = 0;
    }
    if (kind == V_OTHER && plain_only) {
        return 1;
    }
    PyObject *other = NULL; /* AnyValue bytes from any_fn */
    PyObject *held_key = NULL; /* keeps kdata valid while any_fn runs Python code */
    if (kind == V_OTHER) {
        held_key = Py_NewRef(key);
        Py_INCREF(value);
        other = PyObject_CallOneArg(state.any_fn, value);
        Py_DECREF(value);
        if (other == NULL || !PyBytes_Check(other)) {
            if (other != NULL) {
                PyErr_SetString(PyExc_TypeError, "any_fn must return bytes");
            }
            Py_XDECREF(other);
            Py_DECREF(held_key);
            return -1;
        }
        any_len = PyBytes_GET_SIZE(other);
    }
    Py_ssize_t key_field = 1 + varint_size((uint64_t)klen) + klen;
    Py_ssize_t kv_len = key_field + 1 + varint_size((uint64_t)any_len) + any_len;
    int rc = -1;
    if (buf_reserve(b, 1 + 10 + kv_len) < 0) {
        goto done;
    }
    put_byte(b, tag);
    put_varint(b, (uint64_t)kv_len);
    put_byte(b, 0x0a);
    put_varint(b, (uint64_t)klen);
    put_raw(b, kdata, klen);
    put_byte(b, 0x12);
    put_varint(b, (uint64_t)any_len);
    switch (kind) {
    case V_STR:
        put_byte(b, 0x0a);
        put_varint(b, (uint64_t)vlen);
        put_raw(b, vdata, vlen);
        break;
    case V_BOOL:
        put_byte(b, 0x10);
        put_byte(b, value == Py_True ? 1 : 0);
        break;
    case V_INT:
        put_byte(b, 0x18);
        put_varint(b, (uint64_t)ival); /* negatives: two's complement, 10 bytes */
        break;
    case V_DOUBLE:
        put_byte(b, 0x21);
        if (PyFloat_Pack8(dval, b->data + b->len, 1) < 0) {
            goto done;
        }
        b->len += 8;
        break;
    default:
        put_raw(b, PyBytes_AS_STRING(other), any_len);
    }
    rc = 0;
done:
    Py_XDECREF(other);
    Py_XDECREF(held_key);
    return rc;
}

static int put_attributes(Buf *b, PyObject *attributes) {
    if (attributes == NULL || attributes == Py_None) {
        return 0;
    }
    if (!PyDict_CheckExact(attributes)) {
        PyErr_SetString(PyExc_TypeError, "attributes are not a dict");
        return -1;
    }
    /* Plain values only (the common case): no Python code runs while the dict is
       read, so no other thread can change it meanwhile -- read it in place, in one
       pass; a value that is not plain undoes what was written. */
    Py_ssize_t pos = 0, mark = b->len;
    PyObject *key, *value;
    while (PyDict_Next(attributes, &pos, &key, &value)) {
        int rc = put_key_value(b, 0x4a, key, value, 1);
        if (rc < 0) {
            return -1;
        }
        if (rc > 0) {
            b->len = mark;
            goto snapshot;
        }
    }
    return 0;
snapshot:;
    /* Otherwise a snapshot (as the Python encoder's list(items)): any_fn runs Python
       code, which may change or replace the dict, or let another thread do so. */
    PyObject *items = PyDict_Items(attributes);
    if (items == NULL) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(items); i++) {
        PyObject *pair = PyList_GET_ITEM(items, i);
        if (put_key_value(b, 0x4a, PyTuple_GET_ITEM(pair, 0), PyTuple_GET_ITEM(pair, 1), 0) <
            0) {
            Py_DECREF(items);
            return -1;
        }
    }
    Py_DECREF(items);
    return 0;
}

/* --------------------------------------------------------------------- traces */

/* What the spans of one trace share, as encoded bytes: the W3C trace id field and
   the trace's attributes (spanline.trace_id, the actor). `field`/`attr` point into
   the buffers here (a generated trace with no actor: the common case, written in C
   without a Python object) or into `held`, the (bytes, bytes) pair that trace_fn
   built. `trace` is the trace they were made for: consecutive spans of one trace
   reuse them. */
typedef struct {
    PyObject *trace;
    PyObject *held;
    const char *field;
    Py_ssize_t field_len;
    const char *attr;
    Py_ssize_t attr_len;
    char field_buf[18];
    char attr_buf[64];
} Shared;

static void shared_clear(Shared *sh) {
    Py_CLEAR(sh->trace);
    Py_CLEAR(sh->held);
}

/* Write the shared parts of a generated trace with no actor into sh's buffers (1),
   or say that Python must build them (0, no error); -1 with a BaseException that is
   not an Exception (a KeyboardInterrupt while the lazy id was drawn). */
static int simple_trace_shared(PyObject *trace, Shared *sh) {
    if (!Py_IS_TYPE(trace, state.trace_type)) {
        return 0;
    }
    PyObject *external = TRACE_SLOT(trace, T_EXTERNAL);
    PyObject *actor = TRACE_SLOT(trace, T_ACTOR);
    PyObject *id = TRACE_SLOT(trace, T_ID);
    if ((external != NULL && external != Py_None) || (actor != NULL && actor != Py_None) ||
        id == NULL || !PyLong_CheckExact(id)) {
        return 0;
    }
    uint64_t high, low; /* drawing a lazy id as the Trace.id property would */
    if (trace_id_split(trace, &high, &low) < 0) {
        return clear_if_exception() ? 0 : -1;
    }
    uint64_t ms = high >> 16;
    if ((high & 0xFFFF) != 0 || ms == 0 || ms >= MAX_MS || low == 0) {
        return 0; /* not of the tr_ shape: Python renders the hex form */
    }
    Buf field = {sh->field_buf, 0, sizeof(sh->field_buf)};
    put_byte(&field, 0x0a);
    put_byte(&field, 0x10);
    put_be64(&field, high);
    put_be64(&field, low);
    /* KeyValue{"spanline.trace_id": "tr_" + 8 + 12 base58 digits}, as a Span field */
    static const char key[] = "spanline.trace_id";
    const Py_ssize_t klen = (Py_ssize_t)sizeof(key) - 1, any_len = 2 + 23;
    Buf attr = {sh->attr_buf, 0, sizeof(sh->attr_buf)};
    put_byte(&attr, 0x4a);
    put_varint(&attr, (uint64_t)(2 + klen + 2 + any_len));
    put_byte(&attr, 0x0a);
    put_varint(&attr, (uint64_t)klen);
    put_raw(&attr, key, klen);
    put_byte(&attr, 0x12);
    put_varint(&attr, (uint64_t)any_len);
    put_byte(&attr, 0x0a);
    put_varint(&attr, 23);
    put_raw(&attr, "tr_", 3);
    put_b58(&attr, ms, 8);
    put_b58(&attr, low, 12);
    sh->field = sh->field_buf;
    sh->field_len = field.len;
    sh->attr = sh->attr_buf;
    sh->attr_len = attr.len;
    return 1;
}

/* Point sh at the shared parts of the span's trace (0), or -1 with an exception:
   kept from the previous span of the same trace, written in C, or built by trace_fn
   (cached per call in `cache`, as such traces' spans need not be adjacent). */
static int trace_shared(PyObject *cache, PyObject *span, PyObject *trace_fn, Shared *sh) {
    PyObject *trace = SPAN_SLOT(span, S_TRACE);
    if (trace == NULL) {
        PyErr_SetString(PyExc_AttributeError, "span has no trace");
        return -1;
    }
    if (trace == sh->trace) {
        return 0;
    }
    shared_clear(sh);
    Py_INCREF(trace); /* trace_id_split and trace_fn may run Python code */
    int simple = simple_trace_shared(trace, sh);
    if (simple > 0) {
        sh->trace = trace;
        return 0;
    }
    if (simple < 0) {
        Py_DECREF(trace);
        return -1;
    }
    PyObject *shared = PyDict_GetItemWithError(cache, trace); /* borrowed */
    if (shared != NULL) {
        Py_INCREF(shared);
    } else if (!PyErr_Occurred()) {
        shared = PyObject_CallOneArg(trace_fn, span);
        if (shared != NULL &&
            (!PyTuple_CheckExact(shared) || PyTuple_GET_SIZE(shared) != 2 ||
             !PyBytes_Check(PyTuple_GET_ITEM(shared, 0)) ||
             !PyBytes_Check(PyTuple_GET_ITEM(shared, 1)))) {
            Py_CLEAR(shared);
            PyErr_SetString(PyExc_TypeError, "trace_fn must return (bytes, bytes)");
        }
        if (shared != NULL && PyDict_SetItem(cache, trace, shared) < 0) {
            Py_CLEAR(shared);
        }
    }
    if (shared == NULL) {
        Py_DECREF(trace);
        return -1;
    }
    sh->trace = trace;
    sh->held = shared;
    sh->field = PyBytes_AS_STRING(PyTuple_GET_ITEM(shared, 0));
    sh->field_len = PyBytes_GET_SIZE(PyTuple_GET_ITEM(shared, 0));
    sh->attr = PyBytes_AS_STRING(PyTuple_GET_ITEM(shared, 1));
    sh->attr_len = PyBytes_GET_SIZE(PyTuple_GET_ITEM(shared, 1));
    return 0;
}

/* --------------------------------------------------------------------- spans */

static int parent_sid(PyObject *up, uint64_t *out) {
    *out = 0;
    if (up == NULL || up == Py_None) {
        return 0;
    }
    if (Py_IS_TYPE(up, state.span.type)) {
        return read_u64(SPAN_SLOT(up, S_SID), out);
    }
    PyObject *sid = PyObject_GetAttr(up, state.sid_name);
    if (sid == NULL) {
        if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
            PyErr_Clear(); /* the trace's root node: no parent span */
            return 0;
        }
        return -1;
    }
    int rc = read_u64(sid, out);
    Py_DECREF(sid);
    return rc;
}

static int truthy_slot(PyObject *span, int which) {
    PyObject *v = SPAN_SLOT(span, which);
    if (v == NULL || v == Py_None) {
        return 0;
    }
    int truth = PyObject_IsTrue(v);
    if (truth < 0) { /* let extras_fn meet the problem and report it */
        PyErr_Clear();
        return 1;
    }
    return truth;
}

static int put_status(Buf *b, PyObject *span) {
    PyObject *status_obj = SPAN_SLOT(span, S_STATUS);
    long status = 0;
    if (status_obj != NULL) {
        status = PyLong_AsLong(status_obj);
        if (status == -1 && PyErr_Occurred()) {
            return -1;
        }
    }
    if (status == 0) {
        if (buf_reserve(b, 2) < 0) {
            return -1;
        }
        put_byte(b, 0x7a);
        put_byte(b, 0x00);
        return 0;
    }
    if (status < 0 || status > 2) {
        PyErr_SetString(PyExc_ValueError, "status out of range");
        return -1;
    }
    PyObject *message = SPAN_SLOT(span, S_STATUS_MESSAGE);
    const char *msg = NULL;
    Py_ssize_t msg_len = 0;
    if (message != NULL && message != Py_None) {
        if (!PyUnicode_CheckExact(message)) {
            PyErr_SetString(PyExc_TypeError, "status message is not a str");
            return -1;
        }
        msg = PyUnicode_AsUTF8AndSize(message, &msg_len);
        if (msg == NULL) {
            return -1;
        }
    }
    Py_ssize_t body = (msg_len ? 1 + varint_size((uint64_t)msg_len) + msg_len : 0) + 2;
    if (buf_reserve(b, 2 + 10 + body) < 0) {
        return -1;
    }
    put_byte(b, 0x7a);
    put_varint(b, (uint64_t)body);
    if (msg_len) {
        put_byte(b, 0x12);
        put_varint(b, (uint64_t)msg_len);
        put_raw(b, msg, msg_len);
    }
    put_byte(b, 0x18);
    put_byte(b, (unsigned char)status);
    return 0;
}

/* The body of one Span message (without its own tag and length). */
static int encode_span(Buf *b, PyObject *span, const Shared *sh, PyObject *extras_fn) {
    uint64_t sid, parent, start, end;
    if (read_u64(SPAN_SLOT(span, S_SID), &sid) < 0 ||
        read_u64(SPAN_SLOT(span, S_START), &start) < 0 ||
        read_u64(SPAN_SLOT(span, S_END), &end) < 0 ||
        parent_sid(SPAN_SLOT(span, S_PARENT), &parent) < 0) {
        return -1;
    }
    /* read after parent_sid, which may run Python code */
    PyObject *name = SPAN_SLOT(span, S_NAME);
    PyObject *type_obj = SPAN_SLOT(span, S_TYPE);
    PyObject *kind_obj = SPAN_SLOT(span, S_KIND);
    if (name == NULL || !PyUnicode_CheckExact(name) || type_obj == NULL ||
        !PyLong_Check(type_obj) || kind_obj == NULL || !PyLong_Check(kind_obj)) {
        PyErr_SetString(PyExc_TypeError, "span name, type or kind of the wrong type");
        return -1;
    }
    long type_code = PyLong_AsLong(type_obj);
    long kind = PyLong_AsLong(kind_obj);
    if (type_code < 0 || type_code >= PyTuple_GET_SIZE(state.prefixes) || kind < 0 ||
        kind > 16) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ValueError, "span type or kind out of range");
        }
        return -1;
    }
    Py_ssize_t name_len;
    const char *name_data = PyUnicode_AsUTF8AndSize(name, &name_len);
    if (name_data == NULL) {
        return -1;
    }
    if (buf_reserve(b, sh->field_len + 64 + name_len) < 0) {
        return -1;
    }
    put_raw(b, sh->field, sh->field_len);
    put_byte(b, 0x12);
    put_byte(b, 0x08);
    put_be64(b, sid);
    if (parent) {
        put_byte(b, 0x22);
        put_byte(b, 0x08);
        put_be64(b, parent);
    }
    put_byte(b, 0x2a);
    put_varint(b, (uint64_t)name_len);
    put_raw(b, name_data, name_len);
    put_byte(b, 0x30);
    put_varint(b, (uint64_t)(kind + 1));
    put_byte(b, 0x39);
    put_fixed64(b, start);
    put_byte(b, 0x41);
    put_fixed64(b, end);
    if (put_attributes(b, SPAN_SLOT(span, S_ATTRIBUTES)) < 0) {
        return -1;
    }
    /* spanline.id: prefix + 8 base58 digits of the start millisecond + 12 of the id */
    if (append_bytes(b, state.id_field_prefix) < 0 ||
        buf_reserve(b, 23) < 0) {
        return -1;
    }
    put_span_id(b, PyBytes_AS_STRING(PyTuple_GET_ITEM(state.prefixes, type_code)), start, sid);
    if (append_bytes(b, PyTuple_GET_ITEM(state.type_attributes, type_code)) < 0 ||
        buf_reserve(b, sh->attr_len) < 0) {
        return -1;
    }
    put_raw(b, sh->attr, sh->attr_len);
    if (type_code || truthy_slot(span, S_RECORDS) || truthy_slot(span, S_META) ||
        truthy_slot(span, S_EVENTS)) {
        PyObject *extra = PyObject_CallOneArg(extras_fn, span);
        if (extra == NULL) {
            return -1;
        }
        int rc = append_bytes(b, extra);
        Py_DECREF(extra);
        if (rc < 0) {
            return -1;
        }
    }
    return put_status(b, span);
}

const char otlp_encode_spans_doc[] =
"encode_spans(spans, trace_fn, extras_fn, fallback_fn, skipped) -> bytes\n\n"
"The ScopeSpans.spans fields (tag, length, Span) of every span, concatenated.\n"
"A span that neither this encoder nor fallback_fn can encode is appended to\n"
"skipped (a list, or None) and left out.";

PyObject *otlp_encode_spans(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *spans, *trace_fn, *extras_fn, *fallback_fn, *skipped;
    if (!PyArg_ParseTuple(args, "OOOOO:encode_spans", &spans, &trace_fn, &extras_fn,
                          &fallback_fn, &skipped)) {
        return NULL;
    }
    if (state.span.type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "otlp_configure() was not called");
        return NULL;
    }
    if (skipped != Py_None && !PyList_Check(skipped)) {
        PyErr_SetString(PyExc_TypeError, "skipped must be a list or None");
        return NULL;
    }
    /* a tuple copy: the caller's list may change while Python callbacks run */
    PyObject *seq = PySequence_Tuple(spans);
    if (seq == NULL) {
        return NULL;
    }
    PyObject *cache = PyDict_New();
    Shared shared = {0};
    Buf out = {NULL, 0, 0};
    Buf body = {NULL, 0, 0};
    PyObject *result = NULL;
    if (cache == NULL) {
        goto done;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(seq);
    /* room for typical spans up front: growing by doubling copies the buffer */
    if (buf_reserve(&out, n < 65536 ? n * 512 : 65536 * 512) < 0) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *span = PyTuple_GET_ITEM(seq, i);
        body.len = 0;
        int rc = -1;
        if (PyObject_TypeCheck(span, state.span.type) &&
            trace_shared(cache, span, trace_fn, &shared) == 0) {
            rc = encode_span(&body, span, &shared, extras_fn);
        }
        if (rc == 0) {
            if (append_field(&out, 0x12, body.data, body.len) < 0) {
                goto done;
            }
            continue;
        }
        if (!clear_if_exception()) {
            goto done; /* KeyboardInterrupt, SystemExit...: not ours to swallow */
        }
        PyObject *slow = PyObject_CallOneArg(fallback_fn, span);
        if (slow != NULL && PyBytes_Check(slow)) {
            rc = append_field(&out, 0x12, PyBytes_AS_STRING(slow), PyBytes_GET_SIZE(slow));
            Py_DECREF(slow);
            if (rc < 0) {
                goto done;
            }
            continue;
        }
        Py_XDECREF(slow);
        if (!clear_if_exception()) {
            goto done;
        }
        if (skipped != Py_None && PyList_Append(skipped, span) < 0) {
            goto done;
        }
    }
    result = PyBytes_FromStringAndSize(out.data ? out.data : "", out.len);
done:
    PyMem_Free(out.data);
    PyMem_Free(body.data);
    shared_clear(&shared);
    Py_XDECREF(cache);
    Py_DECREF(seq);
    return result;
}

const char otlp_configure_doc[] =
"otlp_configure(span_type, trace_type, type_attributes, prefixes, id_field_prefix, any_fn)\n\n"
"Tell the encoder the Span and Trace classes (their slots are read by offset),\n"
"the encoded spanline.type attribute and the id prefix per type code, the\n"
"spanline.id KeyValue up to the id, and the Python AnyValue encoder.";

PyObject *otlp_configure(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *span_type, *trace_type, *type_attributes, *prefixes, *id_field_prefix, *any_fn;
    if (!PyArg_ParseTuple(args, "O!O!O!O!SO:otlp_configure", &PyType_Type, &span_type,
                          &PyType_Type, &trace_type, &PyTuple_Type, &type_attributes,
                          &PyTuple_Type, &prefixes, &id_field_prefix, &any_fn)) {
        return NULL;
    }
    if (PyTuple_GET_SIZE(type_attributes) != PyTuple_GET_SIZE(prefixes)) {
        PyErr_SetString(PyExc_ValueError, "one type attribute and one prefix per type code");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(prefixes); i++) {
        if (!PyBytes_Check(PyTuple_GET_ITEM(prefixes, i)) ||
            PyBytes_GET_SIZE(PyTuple_GET_ITEM(prefixes, i)) != 3 ||
            !PyBytes_Check(PyTuple_GET_ITEM(type_attributes, i))) {
            PyErr_SetString(PyExc_TypeError, "type attributes and 3-byte prefixes expected");
            return NULL;
        }
    }
    if (!PyCallable_Check(any_fn)) {
        PyErr_SetString(PyExc_TypeError, "any_fn must be callable");
        return NULL;
    }
    SpanLayout span;
    Py_ssize_t trace_offsets[T_COUNT];
    for (int i = 0; i < T_COUNT; i++) {
        if (slot_offset(trace_type, TRACE_SLOTS[i], &trace_offsets[i]) < 0) {
            return NULL;
        }
    }
    PyObject *sid_name = PyUnicode_InternFromString("sid");
    if (sid_name == NULL || span_layout_init(&span, span_type) < 0) {
        Py_XDECREF(sid_name);
        return NULL;
    }
    /* The previous values are kept alive on purpose (a reconfiguration is rare, and
       another thread may be encoding with them right now). */
    state.span.type = span.type;
    state.trace_type = (PyTypeObject *)Py_NewRef(trace_type);
    state.type_attributes = Py_NewRef(type_attributes);
    state.prefixes = Py_NewRef(prefixes);
    state.id_field_prefix = Py_NewRef(id_field_prefix);
    state.any_fn = Py_NewRef(any_fn);
    state.sid_name = sid_name;
    memcpy(state.span.offsets, span.offsets, sizeof(span.offsets));
    memcpy(state.trace_offsets, trace_offsets, sizeof(trace_offsets));
    Py_RETURN_NONE;
}
