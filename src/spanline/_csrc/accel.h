/*
 * spanline._accel: shared pieces of the optional compiled helpers (otlp.c, rows.c, asgi.c,
 * span.c).
 *
 * The module is an accelerator only: every function in it has a pure-Python
 * equivalent that spanline uses when the module was not built, and that the tests
 * compare it with.  See hatch_build.py for how it is built.
 */
#ifndef SPANLINE_ACCEL_H
#define SPANLINE_ACCEL_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#ifndef Py_T_OBJECT_EX
#define Py_T_OBJECT_EX T_OBJECT_EX
#endif

#define MAX_MS 128063081718016ULL /* 58 ** 8: the largest millisecond an id can hold */

/* A growable byte buffer; the put_* writers assume buf_reserve made room. */
typedef struct {
    char *data;
    Py_ssize_t len;
    Py_ssize_t cap;
} Buf;

int buf_reserve(Buf *b, Py_ssize_t extra);
int append_bytes(Buf *b, PyObject *bytes);
/* The offset of the object slot `name` of `type` (-1 and an exception if it is not one). */
int slot_offset(PyObject *type, const char *name, Py_ssize_t *out);
/* Clear the pending exception when it is an Exception (the C code then falls back
   to Python or skips the span); 0, leaving it set, for KeyboardInterrupt, SystemExit
   and other BaseExceptions, which must reach the caller. */
int clear_if_exception(void);
/* *slot = the interned str `text` (-1 and an exception on failure). */
int intern_string(PyObject **slot, const char *text);
/* A Python int as an unsigned 64-bit number (-1 and an exception otherwise). */
int read_u64(PyObject *value, uint64_t *out);

/* A borrowed reference to a slot's value, or NULL when the slot is unset. */
static inline PyObject *slot_at(PyObject *obj, Py_ssize_t offset) {
    return *(PyObject **)((char *)obj + offset);
}

static inline void put_byte(Buf *b, unsigned char c) { b->data[b->len++] = (char)c; }

static inline void put_raw(Buf *b, const char *src, Py_ssize_t n) {
    memcpy(b->data + b->len, src, (size_t)n);
    b->len += n;
}

/* `width` base58 digits of `value`, most significant first (ids sort as text). */
static inline void put_b58(Buf *b, uint64_t value, int width) {
    static const char digits[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    char *end = b->data + b->len + width;
    for (int i = 1; i <= width; i++) {
        end[-i] = digits[value % 58];
        value /= 58;
    }
    b->len += width;
}

/* A span id's text: 3-byte prefix, 8 base58 digits of the start millisecond, 12 of
   the 64-bit id (23 bytes; spanline.core.ids.format_id). */
static inline void put_span_id(Buf *b, const char *prefix, uint64_t start_ns, uint64_t sid) {
    uint64_t ms = start_ns / 1000000ULL;
    put_raw(b, prefix, 3);
    put_b58(b, ms < MAX_MS ? ms : MAX_MS - 1, 8);
    put_b58(b, sid, 12);
}

/* The slots of spanline.core.span.Span that the C code reads, by offset. */
enum {
    S_SID, S_PARENT, S_TRACE, S_NAME, S_KIND, S_START, S_END, S_ATTRIBUTES, S_TYPE,
    S_STATUS, S_STATUS_MESSAGE, S_RECORDS, S_META, S_EVENTS, S_COUNT
};

typedef struct {
    PyTypeObject *type; /* a new reference once initialized */
    Py_ssize_t offsets[S_COUNT];
} SpanLayout;

/* Fill `layout` from the Span class (-1 and an exception if a slot is missing). */
int span_layout_init(SpanLayout *layout, PyObject *span_type);

/* A spanline Trace's 128-bit id (a new reference), drawing a lazy id the way the
   Trace.id property does -- under the same lock, from ids.new_random64 -- without
   the property call; NULL with an exception on failure.  trace_configure() first. */
PyObject *trace_id_of(PyObject *trace);
/* The same id as its high and low 64 bits (-1 and an exception on failure). */
int trace_id_split(PyObject *trace, uint64_t *high, uint64_t *low);

/* Module-level functions, defined in otlp.c and rows.c. */
PyObject *otlp_configure(PyObject *self, PyObject *args);
PyObject *otlp_encode_spans(PyObject *self, PyObject *args);
PyObject *rows_configure(PyObject *self, PyObject *args);
PyObject *rows_from_spans(PyObject *self, PyObject *args);
PyObject *trace_configure(PyObject *self, PyObject *args);
PyObject *asgi_request(PyObject *self, PyObject *scope);
extern const char asgi_request_doc[];
PyObject *span_configure(PyObject *self, PyObject *args);
extern const char span_configure_doc[];
extern PyTypeObject SpanLifecycleType, SpanQueueType, AsgiRequestType;
PyObject *asgi_configure(PyObject *self, PyObject *args);
/* asgi.c's scope reader: 1 with new references in *method, *attributes and
   *carrier (NULL when no trace-context header came), 0 when the Python reader must
   run, -1 on error. */
int asgi_read_request(PyObject *scope, PyObject **method, PyObject **attributes,
                      PyObject **carrier);
extern const char asgi_configure_doc[];

/* Span pieces for asgi.c (span.c; span_configure() first). */
/* A new Span(name, kind=kind) whose attributes dict is `attributes` (not copied). */
PyObject *span_new_with(PyObject *name, PyObject *kind, PyObject *attributes);
/* span.__enter__() and span.__exit__(type, value, traceback). */
PyObject *span_enter(PyObject *span);
PyObject *span_exit(PyObject *span, PyObject *type, PyObject *value, PyObject *traceback);
/* span.update_name(name) (-1 and an exception on failure). */
int span_rename(PyObject *span, PyObject *name);
extern const char otlp_configure_doc[], otlp_encode_spans_doc[];
extern const char rows_configure_doc[], rows_from_spans_doc[];
extern const char trace_configure_doc[];

/* random.c: the default random source of spanline.core.ids.  accel_random64() is
   the next draw; accel_random_fn is the module's random64 function object, which the
   span lifecycle recognizes as ids.new_random64 to draw without a call. */
uint64_t accel_random64(void);
extern PyObject *accel_random_fn;
PyObject *random64(PyObject *self, PyObject *unused);
PyObject *seed_random(PyObject *self, PyObject *seed);
extern const char random64_doc[], seed_random_doc[];

#endif
