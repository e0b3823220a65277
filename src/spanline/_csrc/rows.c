/*
 * The store's row converter of spanline._accel (see accel.h): finished spans into
 * the 23 values of a spanline.store.row.SpanRow.
 *
 * spanline.store.convert uses it when it was built and keeps the pure-Python
 * converter otherwise; tests/test_store_convert.py compares the two row by row.  The
 * C code renders what every span has -- ids in both forms, the parent's, names,
 * times, the trace's ids and actor, the frames chain of operations (memoized per
 * node, as the Python converter does), and attributes, records and meta when they
 * are flat mappings of plain values (the JSON text exactly as
 * spanline.store.row.json_text writes it) -- and hands the rest back to Python
 * callables:
 *   - trace_fn(trace)   -> (tr_ id, hex id, actor type, actor id, actor JSON, actor
 *                          frame JSON), once per trace, when the C code cannot
 *                          render them (an actor with values of other types, say);
 *   - json_fn(value)    -> JSON text of attributes, records, meta and frames that
 *                          are not flat mappings of plain values;
 *   - events_fn(span)   -> the events JSON;
 *   - fallback_fn(span) -> the whole row, or None to skip the span (it reports why),
 *                          when this fast path gives up.
 */
#include "accel.h"

static SpanLayout layout;
static PyTypeObject *trace_type;
static Py_ssize_t trace_id_at, trace_text_at, trace_external_at, trace_actor_at;
static PyObject *types, *kinds, *statuses; /* tuples of str, by code */
static PyObject *prefixes;                 /* tuple of 3-byte bytes, by type code */
static PyObject *sid_name, *id_name;       /* "sid" and "id", of parents that are no Span */
static PyObject *parent_name, *frame_name; /* "_parent" and "frame", of other nodes */

#define SLOT(obj, which) slot_at((obj), layout.offsets[which])
#define ROW_WIDTH 23

enum {
    R_TRACE_HEX, R_SPAN_HEX, R_PARENT_HEX, R_TRACE_ID, R_SPAN_ID, R_PARENT_ID, R_NAME,
    R_TYPE, R_KIND, R_STATUS, R_STATUS_MESSAGE, R_START, R_END, R_DURATION, R_SERVICE,
    R_ACTOR_TYPE, R_ACTOR_ID, R_ACTOR, R_FRAMES, R_ATTRIBUTES, R_RECORDS, R_META, R_EVENTS
};

/* ----------------------------------------------------------------- text values */

static PyObject *ascii_text(const char *data, Py_ssize_t len) {
    PyObject *text = PyUnicode_New(len, 127);
    if (text != NULL) {
        memcpy(PyUnicode_DATA(text), data, (size_t)len);
    }
    return text;
}

static PyObject *hex64(uint64_t value) {
    static const char digits[] = "0123456789abcdef";
    char out[16];
    for (int i = 15; i >= 0; i--) {
        out[i] = digits[value & 0xF];
        value >>= 4;
    }
    return ascii_text(out, 16);
}

static PyObject *span_id_text(uint64_t start, uint64_t sid, long type_code) {
    char data[23];
    Buf b = {data, 0, sizeof(data)};
    put_span_id(&b, PyBytes_AS_STRING(PyTuple_GET_ITEM(prefixes, type_code)), start, sid);
    return ascii_text(data, b.len);
}

/* ------------------------------------------------------------------------ JSON */

/* A JSON string, escaped as Python's json module does with ensure_ascii=False. */
static int put_json_string(Buf *b, PyObject *text, int *non_ascii) {
    Py_ssize_t len;
    const char *data = PyUnicode_AsUTF8AndSize(text, &len);
    if (data == NULL) {
        return -1;
    }
    if (buf_reserve(b, 2 + 6 * len) < 0) {
        return -1;
    }
    static const char hex[] = "0123456789abcdef";
    put_byte(b, '"');
    for (Py_ssize_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)data[i];
        if (c >= 0x80) {
            *non_ascii = 1;
            put_byte(b, c);
            continue;
        }
        switch (c) {
        case '"': put_raw(b, "\\\"", 2); break;
        case '\\': put_raw(b, "\\\\", 2); break;
        case '\n': put_raw(b, "\\n", 2); break;
        case '\r': put_raw(b, "\\r", 2); break;
        case '\t': put_raw(b, "\\t", 2); break;
        case '\b': put_raw(b, "\\b", 2); break;
        case '\f': put_raw(b, "\\f", 2); break;
        default:
            if (c < 0x20) {
                put_raw(b, "\\u00", 4);
                put_byte(b, (unsigned char)hex[c >> 4]);
                put_byte(b, (unsigned char)hex[c & 0xF]);
            } else {
                put_byte(b, c);
            }
        }
    }
    put_byte(b, '"');
    return 0;
}

/* One plain JSON value; 1 when the value is not plain (Python must write it). */
static int put_json_plain(Buf *b, PyObject *value, int *non_ascii) {
    if (PyUnicode_CheckExact(value)) {
        return put_json_string(b, value, non_ascii);
    }
    if (value == Py_None || value == Py_True || value == Py_False) {
        const char *word = value == Py_None ? "null" : value == Py_True ? "true" : "false";
        Py_ssize_t n = (Py_ssize_t)strlen(word);
        if (buf_reserve(b, n) < 0) {
            return -1;
        }
        put_raw(b, word, n);
        return 0;
    }
    if (PyLong_CheckExact(value)) {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (v == -1 && PyErr_Occurred()) {
            return -1;
        }
        if (overflow) {
            return 1;
        }
        if (buf_reserve(b, 24) < 0) {
            return -1;
        }
        b->len += snprintf(b->data + b->len, 24, "%lld", v);
        return 0;
    }
    if (PyFloat_CheckExact(value)) {
        double x = PyFloat_AS_DOUBLE(value);
        if (!isfinite(x)) {
            return 1;
        }
        char *text = PyOS_double_to_string(x, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
        if (text == NULL) {
            return -1;
        }
        Py_ssize_t n = (Py_ssize_t)strlen(text);
        int rc = buf_reserve(b, n);
        if (rc == 0) {
            put_raw(b, text, n);
        }
        PyMem_Free(text);
        return rc;
    }
    return 1;
}

/* `"key":value`, after a comma when `comma`; 1 when the value is not plain. */
static int put_json_member(Buf *b, PyObject *key, PyObject *value, int comma, int *non_ascii) {
    if (buf_reserve(b, 1) < 0) {
        return -1;
    }
    if (comma) {
        put_byte(b, ',');
    }
    if (put_json_string(b, key, non_ascii) < 0 || buf_reserve(b, 1) < 0) {
        return -1;
    }
    put_byte(b, ':');
    return put_json_plain(b, value, non_ascii);
}

/* JSON text of a flat dict of plain values (str keys), NULL without an error when
   it is not one, Py_None when it is empty. */
static PyObject *flat_json(Buf *b, PyObject *mapping) {
    if (!PyDict_CheckExact(mapping)) {
        return NULL;
    }
    if (PyDict_GET_SIZE(mapping) == 0) {
        return Py_NewRef(Py_None);
    }
    b->len = 0;
    int non_ascii = 0;
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    if (buf_reserve(b, 1) < 0) {
        return NULL;
    }
    put_byte(b, '{');
    while (PyDict_Next(mapping, &pos, &key, &value)) {
        if (!PyUnicode_CheckExact(key)) {
            return NULL;
        }
        if (put_json_member(b, key, value, b->len > 1, &non_ascii) != 0) {
            return NULL; /* not plain, or an error: Python decides */
        }
    }
    if (buf_reserve(b, 1) < 0) {
        return NULL;
    }
    put_byte(b, '}');
    if (non_ascii) {
        return PyUnicode_DecodeUTF8(b->data, b->len, "strict");
    }
    return ascii_text(b->data, b->len);
}

/* The JSON column for a mapping: C for the flat case, else json_fn. */
static PyObject *json_column(Buf *scratch, PyObject *value, PyObject *json_fn) {
    if (value == NULL || value == Py_None) {
        return Py_NewRef(Py_None);
    }
    PyObject *text = flat_json(scratch, value);
    if (text != NULL) {
        return text;
    }
    PyErr_Clear();
    int truth = PyObject_IsTrue(value);
    if (truth < 0) {
        return NULL;
    }
    if (!truth) {
        return Py_NewRef(Py_None);
    }
    return PyObject_CallOneArg(json_fn, value);
}

/* ---------------------------------------------------------------------- traces */

typedef struct {
    PyObject *service, *trace_fn, *json_fn, *events_fn;
    PyTypeObject *row_type; /* NULL: plain tuples */
    PyObject *cache;        /* trace -> info tuple */
    PyObject *memo;         /* node -> frames chain text */
    Buf scratch;
} Job;

static PyObject *buf_text(Buf *b, int non_ascii) {
    return non_ascii ? PyUnicode_DecodeUTF8(b->data, b->len, "strict")
                     : ascii_text(b->data, b->len);
}

/* The actor frame's JSON: {"type":"actor","actor_type":TYPE, other keys...}. */
static PyObject *actor_frame_json(Buf *b, PyObject *actor, PyObject *actor_type) {
    b->len = 0;
    int non_ascii = 0;
    if (buf_reserve(b, 32) < 0) {
        return NULL;
    }
    put_raw(b, "{\"type\":\"actor\",\"actor_type\":", 29);
    if (put_json_plain(b, actor_type, &non_ascii) != 0) {
        return NULL;
    }
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(actor, &pos, &key, &value)) {
        if (!PyUnicode_CheckExact(key)) {
            return NULL;
        }
        if (PyUnicode_CompareWithASCIIString(key, "type") == 0 ||
            PyUnicode_CompareWithASCIIString(key, "actor_type") == 0) {
            continue;
        }
        if (put_json_member(b, key, value, 1, &non_ascii) != 0) {
            return NULL;
        }
    }
    if (buf_reserve(b, 1) < 0) {
        return NULL;
    }
    put_byte(b, '}');
    return buf_text(b, non_ascii);
}

/* actor.get(k1) or actor.get(k2) or ... (the last value when none is truthy);
   NULL with an exception if a truth test fails. */
static PyObject *first_truthy(PyObject *actor, const char **keys, int n) {
    PyObject *value = NULL;
    for (int i = 0; i < n; i++) {
        Py_XDECREF(value);
        value = PyDict_GetItemString(actor, keys[i]); /* borrowed: take it */
        Py_XINCREF(value);
        int truth = value == NULL ? 0 : PyObject_IsTrue(value);
        if (truth < 0) {
            Py_DECREF(value);
            return NULL;
        }
        if (truth) {
            return value;
        }
    }
    return value != NULL ? value : Py_NewRef(Py_None);
}

/* (tr_ id, hex id, actor type, actor id, actor JSON, actor frame JSON) of a
   spanline Trace, or NULL without an error when Python must build it. */
static PyObject *trace_info_c(Job *job, PyObject *trace) {
    if (!Py_IS_TYPE(trace, trace_type)) {
        return NULL;
    }
    uint64_t high, low;
    if (trace_id_split(trace, &high, &low) < 0) {
        (void)clear_if_exception(); /* an Exception: Python decides; others propagate */
        return NULL;
    }
    /* read after trace_id_parts, which may run Python code (the lazy id) */
    PyObject *external = slot_at(trace, trace_external_at);
    PyObject *actor = slot_at(trace, trace_actor_at);
    PyObject *text = slot_at(trace, trace_text_at);
    if (actor != NULL && actor != Py_None && !PyDict_CheckExact(actor)) {
        return NULL;
    }
    Py_XINCREF(actor); /* flat_json and first_truthy may run __bool__/__eq__ */
    PyObject *v[6] = {NULL};
    static const char digits[] = "0123456789abcdef";
    char hex[32];
    for (int i = 0; i < 16; i++) {
        hex[15 - i] = digits[(high >> (4 * i)) & 0xF];
        hex[31 - i] = digits[(low >> (4 * i)) & 0xF];
    }
    v[1] = ascii_text(hex, 32);
    if (external != NULL && external != Py_None) {
        v[0] = Py_NewRef(external);
    } else if (text != NULL) {
        v[0] = Py_NewRef(text);
    } else {
        uint64_t ms = high >> 16;
        if ((high & 0xFFFF) == 0 && ms > 0 && ms < MAX_MS && low != 0) {
            char data[23];
            Buf b = {data, 0, sizeof(data)};
            put_raw(&b, "tr_", 3);
            put_b58(&b, ms, 8);
            put_b58(&b, low, 12);
            v[0] = ascii_text(data, b.len);
        } else {
            v[0] = ascii_text(hex, 32);
        }
    }
    int has_actor = actor != NULL && actor != Py_None && PyDict_GET_SIZE(actor) > 0;
    if (!has_actor) {
        for (int i = 2; i < 6; i++) {
            v[i] = Py_NewRef(Py_None);
        }
    } else {
        static const char *id_keys[] = {"id", "name", "source"};
        PyObject *actor_type = PyDict_GetItemString(actor, "type"); /* borrowed */
        if (actor_type != NULL && PyUnicode_CheckExact(actor_type)) {
            Py_INCREF(actor_type);
            v[2] = Py_NewRef(actor_type);
            v[3] = first_truthy(actor, id_keys, 3);
            v[4] = v[3] == NULL ? NULL : flat_json(&job->scratch, actor);
            if (v[4] != NULL) {
                v[5] = actor_frame_json(&job->scratch, actor, actor_type);
            }
            Py_DECREF(actor_type);
        }
    }
    Py_XDECREF(actor);
    PyObject *info = NULL;
    int complete = 1;
    for (int i = 0; i < 6; i++) {
        complete &= v[i] != NULL;
    }
    if (complete) {
        info = PyTuple_New(6);
    }
    if (info == NULL) {
        for (int i = 0; i < 6; i++) {
            Py_XDECREF(v[i]);
        }
        PyErr_Clear();
        return NULL;
    }
    for (int i = 0; i < 6; i++) {
        PyTuple_SET_ITEM(info, i, v[i]);
    }
    return info;
}

/* ---------------------------------------------------------------------- frames */

static PyObject *node_parent(PyObject *node) {
    if (PyObject_TypeCheck(node, layout.type)) {
        PyObject *parent = SLOT(node, S_PARENT);
        return Py_NewRef(parent != NULL ? parent : Py_None);
    }
    PyObject *parent = PyObject_GetAttr(node, parent_name);
    if (parent == NULL && PyErr_ExceptionMatches(PyExc_AttributeError)) {
        PyErr_Clear();
        return Py_NewRef(Py_None);
    }
    return parent;
}

/* The frame JSON of one node, Py_None when it has none. */
static PyObject *node_frame(Job *job, PyObject *node) {
    if (Py_IS_TYPE(node, layout.type)) {
        PyObject *type_obj = SLOT(node, S_TYPE), *name = SLOT(node, S_NAME);
        uint64_t sid, start;
        long type_code = type_obj != NULL && PyLong_Check(type_obj) ? PyLong_AsLong(type_obj)
                                                                      : -1;
        if (type_code == 0) {
            return Py_NewRef(Py_None);
        }
        if (type_code < 0 || type_code >= PyTuple_GET_SIZE(types) || name == NULL ||
            !PyUnicode_CheckExact(name) || read_u64(SLOT(node, S_SID), &sid) < 0 ||
            read_u64(SLOT(node, S_START), &start) < 0) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_TypeError, "operation without a name or ids");
            }
            return NULL;
        }
        Buf *b = &job->scratch;
        int non_ascii = 0;
        b->len = 0;
        if (buf_reserve(b, 64) < 0) {
            return NULL;
        }
        put_raw(b, "{\"type\":", 8);
        if (put_json_string(b, PyTuple_GET_ITEM(types, type_code), &non_ascii) < 0 ||
            buf_reserve(b, 40) < 0) {
            return NULL;
        }
        put_raw(b, ",\"id\":\"", 7);
        put_span_id(b, PyBytes_AS_STRING(PyTuple_GET_ITEM(prefixes, type_code)), start, sid);
        put_raw(b, "\",\"name\":", 9);
        if (put_json_string(b, name, &non_ascii) < 0 || buf_reserve(b, 1) < 0) {
            return NULL;
        }
        put_byte(b, '}');
        return buf_text(b, non_ascii);
    }
    PyObject *frame = PyObject_CallMethodNoArgs(node, frame_name);
    if (frame == NULL || frame == Py_None) {
        return frame;
    }
    int truth = PyObject_IsTrue(frame);
    PyObject *text = truth < 0 ? NULL : truth ? json_column(&job->scratch, frame, job->json_fn)
                                              : Py_NewRef(Py_None);
    Py_DECREF(frame);
    if (text == Py_None) { /* a frame JSON cannot hold: written as {} */
        Py_DECREF(text);
        text = PyUnicode_FromString("{}");
    }
    return text;
}

/* The frames chain from the trace's boundary down to `node`: comma-separated JSON
   objects, memoized per node so siblings share their parents' part. */
static PyObject *chain_text(Job *job, PyObject *node) {
    PyObject *pending = PyList_New(0);
    if (pending == NULL) {
        return NULL;
    }
    PyObject *link = Py_NewRef(node), *text = NULL;
    while (link != Py_None) {
        text = PyDict_GetItemWithError(job->memo, link); /* borrowed */
        if (text != NULL || PyErr_Occurred() || PyList_Append(pending, link) < 0) {
            break;
        }
        PyObject *up = node_parent(link);
        Py_SETREF(link, up);
        if (link == NULL) {
            break;
        }
    }
    Py_XDECREF(link);
    if (PyErr_Occurred()) {
        Py_DECREF(pending);
        return NULL;
    }
    text = text != NULL ? Py_NewRef(text) : PyUnicode_FromString("");
    for (Py_ssize_t i = PyList_GET_SIZE(pending) - 1; text != NULL && i >= 0; i--) {
        PyObject *item = PyList_GET_ITEM(pending, i);
        PyObject *frame = node_frame(job, item);
        if (frame == NULL) {
            Py_CLEAR(text);
            break;
        }
        if (frame != Py_None) {
            PyObject *joined = PyUnicode_GET_LENGTH(text) == 0
                                   ? Py_NewRef(frame)
                                   : PyUnicode_FromFormat("%U,%U", text, frame);
            Py_SETREF(text, joined);
        }
        Py_DECREF(frame);
        if (text == NULL || PyDict_SetItem(job->memo, item, text) < 0) {
            Py_CLEAR(text);
        }
    }
    Py_DECREF(pending);
    return text;
}

/* The frames JSON of an operation or handler: the actor frame first. */
static PyObject *frames_json(Job *job, PyObject *span, PyObject *info) {
    PyObject *chain = chain_text(job, span);
    if (chain == NULL) {
        return NULL;
    }
    PyObject *actor_frame = PyTuple_GET_ITEM(info, 5);
    PyObject *out = actor_frame != Py_None ? PyUnicode_FromFormat("[%U,%U]", actor_frame, chain)
                                           : PyUnicode_FromFormat("[%U]", chain);
    Py_DECREF(chain);
    return out;
}

/* ------------------------------------------------------------------------ rows */

static PyObject *trace_info(Job *job, PyObject *span) {
    PyObject *cache = job->cache, *trace_fn = job->trace_fn;
    PyObject *trace = SLOT(span, S_TRACE);
    if (trace == NULL) {
        PyErr_SetString(PyExc_AttributeError, "span has no trace");
        return NULL;
    }
    PyObject *info = PyDict_GetItemWithError(cache, trace);
    if (info != NULL) {
        return Py_NewRef(info);
    }
    if (PyErr_Occurred()) {
        return NULL;
    }
    Py_INCREF(trace);
    info = trace_info_c(job, trace);
    if (info == NULL && !PyErr_Occurred()) {
        info = PyObject_CallOneArg(trace_fn, trace);
    }
    if (info != NULL && (!PyTuple_CheckExact(info) || PyTuple_GET_SIZE(info) != 6)) {
        Py_CLEAR(info);
        PyErr_SetString(PyExc_TypeError, "trace_fn must return a 6-tuple");
    }
    if (info != NULL && PyDict_SetItem(cache, trace, info) < 0) {
        Py_CLEAR(info);
    }
    Py_DECREF(trace);
    return info;
}

/* (parent hex id, parent id) of a span's parent, as new references. */
static int parent_ids(PyObject *parent, PyObject **hex, PyObject **ident) {
    *hex = NULL;
    *ident = NULL;
    if (parent != NULL && Py_IS_TYPE(parent, layout.type)) {
        uint64_t sid, start;
        PyObject *type_obj = SLOT(parent, S_TYPE);
        if (read_u64(SLOT(parent, S_SID), &sid) < 0 ||
            read_u64(SLOT(parent, S_START), &start) < 0 || type_obj == NULL ||
            !PyLong_Check(type_obj)) {
            PyErr_Clear();
            PyErr_SetString(PyExc_TypeError, "parent span without ids");
            return -1;
        }
        long type_code = PyLong_AsLong(type_obj);
        if (type_code < 0 || type_code >= PyTuple_GET_SIZE(prefixes)) {
            PyErr_Clear();
            PyErr_SetString(PyExc_ValueError, "parent span type out of range");
            return -1;
        }
        *hex = hex64(sid);
        *ident = span_id_text(start, sid, type_code);
        if (*hex == NULL || *ident == NULL) {
            Py_CLEAR(*hex);
            Py_CLEAR(*ident);
            return -1;
        }
        return 0;
    }
    if (parent == NULL || parent == Py_None) {
        *hex = Py_NewRef(Py_None);
        *ident = Py_NewRef(Py_None);
        return 0;
    }
    /* the trace's root node, a remote frame or an unrecorded operation's frame */
    uint64_t sid = 0;
    PyObject *value = PyObject_GetAttr(parent, sid_name);
    if (value == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
            return -1;
        }
        PyErr_Clear();
    } else {
        int rc = read_u64(value, &sid);
        Py_DECREF(value);
        if (rc < 0) {
            return -1;
        }
    }
    *hex = sid ? hex64(sid) : Py_NewRef(Py_None);
    if (*hex == NULL) {
        return -1;
    }
    *ident = PyObject_GetAttr(parent, id_name);
    if (*ident == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
            Py_CLEAR(*hex);
            return -1;
        }
        PyErr_Clear();
        *ident = Py_NewRef(Py_None);
    }
    return 0;
}

static PyObject *code_name(PyObject *names, PyObject *code_obj) {
    long code = code_obj == NULL ? 0 : PyLong_AsLong(code_obj);
    if (code == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (code < 0 || code >= PyTuple_GET_SIZE(names)) {
        PyErr_SetString(PyExc_ValueError, "code out of range");
        return NULL;
    }
    return Py_NewRef(PyTuple_GET_ITEM(names, code));
}

static int truthy(PyObject *value) {
    if (value == NULL || value == Py_None) {
        return 0;
    }
    return PyObject_IsTrue(value);
}

/* One row (a new reference), or NULL with an exception. */
static PyObject *make_row(Job *job, PyObject *span) {
    PyObject *v[ROW_WIDTH] = {NULL};
    PyObject *row = NULL, *info = NULL;
    uint64_t sid, start, end;
    PyObject *type_obj = SLOT(span, S_TYPE);
    PyObject *name = SLOT(span, S_NAME);
    PyObject *start_obj = SLOT(span, S_START), *end_obj = SLOT(span, S_END);
    if (read_u64(SLOT(span, S_SID), &sid) < 0 || read_u64(start_obj, &start) < 0 ||
        read_u64(end_obj, &end) < 0 || name == NULL || type_obj == NULL ||
        !PyLong_Check(type_obj) || end < start) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, "span fields of unexpected types");
        }
        return NULL;
    }
    long type_code = PyLong_AsLong(type_obj);
    if (type_code < 0 || type_code >= PyTuple_GET_SIZE(prefixes)) {
        PyErr_Clear();
        PyErr_SetString(PyExc_ValueError, "span type out of range");
        return NULL;
    }
    /* the values the ids and duration are computed from, kept as they were read */
    v[R_START] = Py_NewRef(start_obj);
    v[R_END] = Py_NewRef(end_obj);
    info = trace_info(job, span);
    if (info == NULL) {
        goto fail;
    }
    v[R_TRACE_HEX] = Py_NewRef(PyTuple_GET_ITEM(info, 1));
    v[R_TRACE_ID] = Py_NewRef(PyTuple_GET_ITEM(info, 0));
    v[R_ACTOR_TYPE] = Py_NewRef(PyTuple_GET_ITEM(info, 2));
    v[R_ACTOR_ID] = Py_NewRef(PyTuple_GET_ITEM(info, 3));
    v[R_ACTOR] = Py_NewRef(PyTuple_GET_ITEM(info, 4));
    v[R_SPAN_HEX] = hex64(sid);
    v[R_SPAN_ID] = span_id_text(start, sid, type_code);
    if (v[R_SPAN_HEX] == NULL || v[R_SPAN_ID] == NULL ||
        parent_ids(SLOT(span, S_PARENT), &v[R_PARENT_HEX], &v[R_PARENT_ID]) < 0) {
        goto fail;
    }
    /* read again: parent_ids may have run Python code */
    name = SLOT(span, S_NAME);
    if (name == NULL) {
        PyErr_SetString(PyExc_AttributeError, "span changed while converted");
        goto fail;
    }
    v[R_NAME] = Py_NewRef(name);
    v[R_TYPE] = Py_NewRef(PyTuple_GET_ITEM(types, type_code));
    v[R_KIND] = code_name(kinds, SLOT(span, S_KIND));
    PyObject *status_obj = SLOT(span, S_STATUS);
    v[R_STATUS] = code_name(statuses, status_obj);
    if (v[R_KIND] == NULL || v[R_STATUS] == NULL) {
        goto fail;
    }
    PyObject *message = status_obj != NULL && PyObject_IsTrue(status_obj) == 1
                            ? SLOT(span, S_STATUS_MESSAGE)
                            : NULL;
    v[R_STATUS_MESSAGE] = Py_NewRef(message != NULL ? message : Py_None);
    v[R_DURATION] = PyLong_FromUnsignedLongLong((unsigned long long)(end - start));
    v[R_SERVICE] = Py_NewRef(job->service);
    if (v[R_DURATION] == NULL) {
        goto fail;
    }
    v[R_FRAMES] = type_code ? frames_json(job, span, info) : Py_NewRef(Py_None);
    if (v[R_FRAMES] == NULL) {
        goto fail;
    }
    v[R_ATTRIBUTES] = json_column(&job->scratch, SLOT(span, S_ATTRIBUTES), job->json_fn);
    if (v[R_ATTRIBUTES] == NULL) {
        goto fail;
    }
    v[R_RECORDS] = json_column(&job->scratch, SLOT(span, S_RECORDS), job->json_fn);
    if (v[R_RECORDS] == NULL) {
        goto fail;
    }
    v[R_META] = json_column(&job->scratch, SLOT(span, S_META), job->json_fn);
    if (v[R_META] == NULL) {
        goto fail;
    }
    int has_events = truthy(SLOT(span, S_EVENTS));
    if (has_events < 0) {
        goto fail;
    }
    v[R_EVENTS] = has_events ? PyObject_CallOneArg(job->events_fn, span) : Py_NewRef(Py_None);
    if (v[R_EVENTS] == NULL) {
        goto fail;
    }
    row = PyTuple_New(ROW_WIDTH);
    if (row == NULL) {
        goto fail;
    }
    for (int i = 0; i < ROW_WIDTH; i++) {
        PyTuple_SET_ITEM(row, i, v[i]); /* steals */
        v[i] = NULL;
    }
    if (job->row_type != NULL) { /* tuple.__new__(row_type, row): a proper subclass instance */
        PyObject *args = PyTuple_Pack(1, row);
        Py_SETREF(row, args == NULL ? NULL : PyTuple_Type.tp_new(job->row_type, args, NULL));
        Py_XDECREF(args);
        if (row == NULL) {
            goto fail;
        }
    }
    Py_DECREF(info);
    return row;
fail:
    for (int i = 0; i < ROW_WIDTH; i++) {
        Py_XDECREF(v[i]);
    }
    Py_XDECREF(info);
    return NULL;
}

const char rows_from_spans_doc[] =
    "rows_from_spans(spans, service, trace_fn, json_fn, events_fn, fallback_fn, "
    "row_type) -> list\n\n"
    "One row per finished span (unfinished ones are skipped), as row_type instances\n"
    "(a tuple subclass) or plain tuples when row_type is None.";

PyObject *rows_from_spans(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *spans, *fallback_fn, *row_type;
    Job job = {0};
    if (!PyArg_ParseTuple(args, "OOOOOOO:rows_from_spans", &spans, &job.service,
                          &job.trace_fn, &job.json_fn, &job.events_fn, &fallback_fn,
                          &row_type)) {
        return NULL;
    }
    if (layout.type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "rows_configure() was not called");
        return NULL;
    }
    if (row_type != Py_None) {
        if (!PyType_Check(row_type) ||
            !PyType_IsSubtype((PyTypeObject *)row_type, &PyTuple_Type)) {
            PyErr_SetString(PyExc_TypeError, "row_type must be a tuple subclass or None");
            return NULL;
        }
        job.row_type = (PyTypeObject *)row_type;
    }
    PyObject *seq = PySequence_Tuple(spans); /* a copy: callbacks run Python code */
    if (seq == NULL) {
        return NULL;
    }
    PyObject *out = PyList_New(0);
    job.cache = PyDict_New();
    job.memo = PyDict_New();
    if (out == NULL || job.cache == NULL || job.memo == NULL) {
        goto fail;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *span = PyTuple_GET_ITEM(seq, i);
        PyObject *row = NULL;
        if (PyObject_TypeCheck(span, layout.type)) {
            PyObject *end = SLOT(span, S_END);
            int finished = truthy(end);
            if (finished == 0) {
                continue; /* not ended: not stored */
            }
            if (finished > 0) {
                row = make_row(&job, span);
            }
        }
        if (row == NULL) {
            if (!clear_if_exception()) {
                goto fail; /* KeyboardInterrupt, SystemExit...: not ours to swallow */
            }
            row = PyObject_CallOneArg(fallback_fn, span);
            if (row == NULL) {
                if (!clear_if_exception()) { /* the fallback reports its own failures */
                    goto fail;
                }
                continue;
            }
            if (row == Py_None) {
                Py_DECREF(row);
                continue;
            }
        }
        int rc = PyList_Append(out, row);
        Py_DECREF(row);
        if (rc < 0) {
            goto fail;
        }
    }
    PyMem_Free(job.scratch.data);
    Py_DECREF(job.cache);
    Py_DECREF(job.memo);
    Py_DECREF(seq);
    return out;
fail:
    PyMem_Free(job.scratch.data);
    Py_XDECREF(job.cache);
    Py_XDECREF(job.memo);
    Py_XDECREF(out);
    Py_DECREF(seq);
    return NULL;
}

const char rows_configure_doc[] =
    "rows_configure(span_type, trace_type, types, kinds, statuses, prefixes) -> None\n\n"
    "Tell the converter the Span and Trace classes (their slots are read by offset), the stored\n"
    "names of span types, kinds and statuses, and the id prefix per type code.";

PyObject *rows_configure(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *span_type, *new_trace_type, *new_types, *new_kinds, *new_statuses, *new_prefixes;
    if (!PyArg_ParseTuple(args, "O!O!O!O!O!O!:rows_configure", &PyType_Type, &span_type,
                          &PyType_Type, &new_trace_type, &PyTuple_Type, &new_types, &PyTuple_Type, &new_kinds,
                          &PyTuple_Type, &new_statuses, &PyTuple_Type, &new_prefixes)) {
        return NULL;
    }
    if (PyTuple_GET_SIZE(new_types) != PyTuple_GET_SIZE(new_prefixes)) {
        PyErr_SetString(PyExc_ValueError, "one type name and one prefix per type code");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(new_prefixes); i++) {
        PyObject *prefix = PyTuple_GET_ITEM(new_prefixes, i);
        if (!PyBytes_Check(prefix) || PyBytes_GET_SIZE(prefix) != 3) {
            PyErr_SetString(PyExc_TypeError, "prefixes must be 3-byte bytes");
            return NULL;
        }
    }
    Py_ssize_t offsets[4];
    static const char *trace_slots[4] = {"_id", "_text", "external", "actor"};
    for (int i = 0; i < 4; i++) {
        if (slot_offset(new_trace_type, trace_slots[i], &offsets[i]) < 0) {
            return NULL;
        }
    }
    PyObject *new_sid = PyUnicode_InternFromString("sid");
    PyObject *new_id = PyUnicode_InternFromString("id");
    PyObject *new_parent = PyUnicode_InternFromString("_parent");
    PyObject *new_frame = PyUnicode_InternFromString("frame");
    SpanLayout new_layout;
    if (new_sid == NULL || new_id == NULL || new_parent == NULL || new_frame == NULL ||
        span_layout_init(&new_layout, span_type) < 0) {
        Py_XDECREF(new_sid);
        Py_XDECREF(new_id);
        Py_XDECREF(new_parent);
        Py_XDECREF(new_frame);
        return NULL;
    }
    /* previous values stay alive on purpose: another thread may be using them */
    trace_type = (PyTypeObject *)Py_NewRef(new_trace_type);
    trace_id_at = offsets[0];
    trace_text_at = offsets[1];
    trace_external_at = offsets[2];
    trace_actor_at = offsets[3];
    parent_name = new_parent;
    frame_name = new_frame;

    layout.type = new_layout.type;
    memcpy(layout.offsets, new_layout.offsets, sizeof(layout.offsets));
    types = Py_NewRef(new_types);
    kinds = Py_NewRef(new_kinds);
    statuses = Py_NewRef(new_statuses);
    prefixes = Py_NewRef(new_prefixes);
    sid_name = new_sid;
    id_name = new_id;
    Py_RETURN_NONE;
}
