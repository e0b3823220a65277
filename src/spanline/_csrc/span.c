/*
 * spanline._accel.SpanLifecycle: Span.__init__, __enter__ and __exit__ in C.
 *
 * spanline.core.span.Span inherits from this type when the module is built, else
 * from object; Span's own Python methods, which define the behaviour, are then
 * removed from the class and called by these.  The C methods do the common case --
 * a span made with a name (and a kind), entered once, in a recorded trace started
 * with sampling off, no context snapshot, no exception -- and call the Python
 * methods for everything else, before changing any state.
 * They write the same slots in the same order, call the same replaceable clock and
 * random source (read from their modules on every call, as the Python code does)
 * and report to the same pipeline.
 */
#include "accel.h"

static struct {
    PyTypeObject *span_type, *node_type, *trace_type, *reentry_type;
    PyObject *current;                 /* the ContextVar */
    PyObject *config, *clock, *ids;    /* modules: settings, now_ns, new_random64 */
    PyObject *pipeline;                /* PIPELINE */
    PyObject *py_init, *py_enter, *py_exit; /* Span's Python methods */
    PyObject *internal;                /* SpanKind.INTERNAL */
    PyObject *n_kind;
    PyObject *zero, *million, *eighty;
    PyObject *n_settings, *n_enabled, *n_sample_all, *n_now_ns, *n_new_random64;
    PyObject *n_ring, *n_append, *n_foreign;
    /* Span slots */
    Py_ssize_t name_at, type_at, kind_at, attributes_at, trace_at, parent_at, sid_at, start_at, end_at, token_at, children_at, snap_at;
    /* Trace slots */
    Py_ssize_t t_id_at, t_start_at, t_external_at, t_actor_at, t_recorded_at;
    Py_ssize_t hooks_at; /* Pipeline.hooks, read by offset: two reads per span */
} lc;

/* PIPELINE.hooks (a new reference), or NULL with an exception. */
static PyObject *pipeline_hooks(void) {
    PyObject *hooks = *(PyObject **)((char *)lc.pipeline + lc.hooks_at);
    if (hooks == NULL) {
        PyErr_SetString(PyExc_AttributeError, "PIPELINE.hooks is unset");
        return NULL;
    }
    return Py_NewRef(hooks);
}

static inline PyObject *get_slot(PyObject *obj, Py_ssize_t at) {
    return *(PyObject **)((char *)obj + at);
}

/* Store a new reference in a slot, releasing the old value. */
static inline void set_slot(PyObject *obj, Py_ssize_t at, PyObject *value) {
    PyObject **slot = (PyObject **)((char *)obj + at);
    PyObject *old = *slot;
    *slot = value;
    Py_XDECREF(old);
}

/* module.name as a new reference: for a plain module, its dict first (what the
   attribute is; __getattr__ only serves missing names), else getattr. */
static PyObject *module_attr(PyObject *module, PyObject *name) {
    if (!PyModule_CheckExact(module)) {
        return PyObject_GetAttr(module, name);
    }
    PyObject *found = PyDict_GetItemWithError(PyModule_GetDict(module), name);
    if (found != NULL) {
        return Py_NewRef(found);
    }
    return PyErr_Occurred() ? NULL : PyObject_GetAttr(module, name);
}

static PyObject *call_attr(PyObject *module, PyObject *name) {
    PyObject *fn = module_attr(module, name);
    if (fn == NULL) {
        return NULL;
    }
    PyObject *result = PyObject_CallNoArgs(fn);
    Py_DECREF(fn);
    return result;
}

/* Draw from ids.new_random64, "or 1": 1 with the value in *drawn when it is the
   compiled default (no Python call), 0 with a new reference in *value when it is
   another source, -1 with an exception. */
static int draw_random(uint64_t *drawn, PyObject **value) {
    PyObject *fn = module_attr(lc.ids, lc.n_new_random64);
    if (fn == NULL) {
        return -1;
    }
    if (fn == accel_random_fn) {
        Py_DECREF(fn);
        uint64_t x = accel_random64();
        *drawn = x ? x : 1;
        return 1;
    }
    PyObject *result = PyObject_CallNoArgs(fn);
    Py_DECREF(fn);
    if (result == NULL) {
        return -1;
    }
    int truth = PyObject_IsTrue(result);
    if (truth < 0) {
        Py_DECREF(result);
        return -1;
    }
    if (!truth) {
        Py_SETREF(result, PyLong_FromLong(1));
        if (result == NULL) {
            return -1;
        }
    }
    *value = result;
    return 0;
}

/* ids.new_random64() or 1 (a new reference). */
static PyObject *random_or_one(void) {
    uint64_t drawn;
    PyObject *value = NULL;
    int compiled = draw_random(&drawn, &value);
    if (compiled < 0) {
        return NULL;
    }
    return compiled ? PyLong_FromUnsignedLongLong(drawn) : value;
}

/* A generated trace's id, ((start // 1_000_000) << 80) | (ids.new_random64() or 1)
   (ids.new_trace_int), as a new reference; evaluated in Python's order, the clock
   value's arithmetic before the draw. */
static PyObject *new_trace_int(PyObject *start) {
    int overflow = 0;
    long long ns = PyLong_CheckExact(start) ? PyLong_AsLongLongAndOverflow(start, &overflow) : -1;
    if (ns == -1 && PyErr_Occurred()) {
        return NULL;
    }
    uint64_t drawn;
    PyObject *low = NULL;
    if (ns >= 0 && !overflow) {
        int compiled = draw_random(&drawn, &low);
        if (compiled < 0) {
            return NULL;
        }
        if (compiled) {
            /* the usual case in bytes: the millisecond (< 2**48 for any 63-bit ns)
               in bits 80..127, the draw in bits 0..63 */
            uint64_t ms = (uint64_t)ns / 1000000ULL;
            unsigned char bytes[16] = {0};
            for (int i = 0; i < 8; i++) {
                bytes[i] = (unsigned char)(drawn >> (8 * i));
            }
            for (int i = 0; i < 6; i++) {
                bytes[10 + i] = (unsigned char)(ms >> (8 * i));
            }
            return _PyLong_FromByteArray(bytes, 16, 1, 0);
        }
    }
    /* another random source, or a clock value outside the usual range: Python's
       arithmetic (the draw, if not made above, after the shift, as in Python) */
    PyObject *ms = PyNumber_FloorDivide(start, lc.million);
    PyObject *top = ms == NULL ? NULL : PyNumber_Lshift(ms, lc.eighty);
    Py_XDECREF(ms);
    if (top == NULL) {
        Py_XDECREF(low);
        return NULL;
    }
    if (low == NULL) {
        int compiled = draw_random(&drawn, &low);
        if (compiled < 0) {
            Py_DECREF(top);
            return NULL;
        }
        if (compiled) {
            low = PyLong_FromUnsignedLongLong(drawn);
            if (low == NULL) {
                Py_DECREF(top);
                return NULL;
            }
        }
    }
    PyObject *id = PyNumber_Or(top, low);
    Py_DECREF(top);
    Py_DECREF(low);
    return id;
}

/* A new Trace(trace_int, None, None, True, start), its slots written as __init__ does. */
static PyObject *new_trace(PyObject *trace_int, PyObject *start) {
    PyObject *trace = lc.trace_type->tp_alloc(lc.trace_type, 0);
    if (trace == NULL) {
        return NULL;
    }
    set_slot(trace, lc.t_id_at, Py_NewRef(trace_int));
    set_slot(trace, lc.t_start_at, Py_NewRef(start));
    set_slot(trace, lc.t_external_at, Py_NewRef(Py_None));
    set_slot(trace, lc.t_actor_at, Py_NewRef(Py_None));
    set_slot(trace, lc.t_recorded_at, Py_NewRef(Py_True));
    return trace;
}

/* Whether PIPELINE has processors (-1 on error). */
static int have_processors(void) {
    PyObject *hooks = pipeline_hooks();
    if (hooks == NULL) {
        return -1;
    }
    int truth = PyObject_IsTrue(hooks);
    Py_DECREF(hooks);
    return truth;
}

enum { HOOK_START = 1, HOOK_END = 2 }; /* their places in a PIPELINE.hooks entry */

/* What Pipeline.start(span) or Pipeline.end(span) does, without its Python frame:
   call each processor's hook; one that raises an Exception is handed to
   PIPELINE.failed() and the others still run (0, or -1 with an exception). */
static int tell_pipeline(int at, PyObject *span) {
    PyObject *hooks = pipeline_hooks();
    if (hooks == NULL) {
        return -1;
    }
    if (!PyTuple_CheckExact(hooks)) {
        Py_DECREF(hooks);
        PyErr_SetString(PyExc_TypeError, "PIPELINE.hooks must be a tuple");
        return -1;
    }
    int rc = 0;
    /* the tuple is held: a hook that changes the processors replaces it, not this one */
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(hooks) && rc == 0; i++) {
        PyObject *entry = PyTuple_GET_ITEM(hooks, i);
        if (!PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 3) {
            PyErr_SetString(PyExc_TypeError, "a PIPELINE.hooks entry must be a 3-tuple");
            rc = -1;
            break;
        }
        PyObject *done = PyObject_CallOneArg(PyTuple_GET_ITEM(entry, at), span);
        if (done != NULL) {
            Py_DECREF(done);
            continue;
        }
        if (!PyErr_ExceptionMatches(PyExc_Exception)) {
            rc = -1; /* KeyboardInterrupt and the like reach the caller, as in Python */
            break;
        }
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        PyErr_NormalizeException(&type, &value, &traceback);
        if (traceback != NULL) {
            PyException_SetTraceback(value, traceback);
        }
        PyObject *counted = PyObject_CallMethod(lc.pipeline, "failed", "sOsO", "processor_errors",
                                                PyTuple_GET_ITEM(entry, 0),
                                                at == HOOK_START ? "on_start" : "on_end", value);
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(traceback);
        if (counted == NULL) {
            rc = -1;
        } else {
            Py_DECREF(counted);
        }
    }
    Py_DECREF(hooks);
    return rc;
}

/* The root trace of a span entered with no current node, or NULL without an
   exception when the Python method must decide (recording off, or sampling). */
static PyObject *root_trace(PyObject **start_out) {
    PyObject *settings = module_attr(lc.config, lc.n_settings);
    if (settings == NULL) {
        return NULL;
    }
    PyObject *enabled = PyObject_GetAttr(settings, lc.n_enabled);
    PyObject *sample_all = enabled == NULL ? NULL : PyObject_GetAttr(settings, lc.n_sample_all);
    Py_DECREF(settings);
    int usual = enabled == Py_True && sample_all == Py_True;
    Py_XDECREF(enabled);
    Py_XDECREF(sample_all);
    if (!usual) {
        return NULL;
    }
    int processors = have_processors();
    if (processors < 0) {
        return NULL;
    }
    PyObject *start = call_attr(lc.clock, lc.n_now_ns);
    if (start == NULL) {
        return NULL;
    }
    PyObject *trace = NULL;
    if (processors) {
        /* an exporter will read the id: draw it now */
        PyObject *id = new_trace_int(start);
        if (id != NULL) {
            trace = new_trace(id, start);
            Py_DECREF(id);
        }
    } else {
        trace = new_trace(lc.zero, start); /* the id is drawn on first read */
    }
    if (trace == NULL) {
        Py_DECREF(start);
        return NULL;
    }
    *start_out = start;
    return trace;
}

/* Span(name) and Span(name, kind=...): the slots Span.__init__ assigns, in its
   order; any other call runs Span.__init__. */
static int lifecycle_init(PyObject *self, PyObject *args, PyObject *kwds) {
    PyObject *kind = lc.internal;
    int usual = lc.span_type != NULL && PyObject_TypeCheck(self, lc.span_type) &&
                PyTuple_GET_SIZE(args) == 1 && PyUnicode_CheckExact(PyTuple_GET_ITEM(args, 0));
    if (usual && kwds != NULL && PyDict_GET_SIZE(kwds) != 0) {
        kind = PyDict_GET_SIZE(kwds) == 1 ? PyDict_GetItemWithError(kwds, lc.n_kind) : NULL;
        if (kind == NULL) {
            if (PyErr_Occurred()) {
                return -1;
            }
            usual = 0;
        }
    }
    if (!usual) {
        if (lc.py_init == NULL) {
            PyErr_SetString(PyExc_RuntimeError, "span_configure() was not called");
            return -1;
        }
        /* Span.__init__(self, *args, **kwds) */
        Py_ssize_t n = PyTuple_GET_SIZE(args);
        PyObject *full = PyTuple_New(n + 1);
        if (full == NULL) {
            return -1;
        }
        PyTuple_SET_ITEM(full, 0, Py_NewRef(self));
        for (Py_ssize_t i = 0; i < n; i++) {
            PyTuple_SET_ITEM(full, i + 1, Py_NewRef(PyTuple_GET_ITEM(args, i)));
        }
        PyObject *done = PyObject_Call(lc.py_init, full, kwds);
        Py_DECREF(full);
        if (done == NULL) {
            return -1;
        }
        Py_DECREF(done);
        return 0;
    }
    Py_INCREF(kind); /* the dict may drop it while the old slot values are released */
    set_slot(self, lc.name_at, Py_NewRef(PyTuple_GET_ITEM(args, 0)));
    set_slot(self, lc.type_at, Py_NewRef(lc.zero)); /* SPAN */
    set_slot(self, lc.kind_at, kind);
    set_slot(self, lc.start_at, Py_NewRef(lc.zero));
    set_slot(self, lc.end_at, Py_NewRef(lc.zero));
    set_slot(self, lc.children_at, Py_NewRef(Py_None));
    set_slot(self, lc.snap_at, Py_NewRef(Py_None));
    set_slot(self, lc.attributes_at, Py_NewRef(Py_None));
    return 0;
}

static PyObject *lifecycle_enter(PyObject *self, PyObject *unused) {
    (void)unused;
    if (lc.span_type == NULL || !PyObject_TypeCheck(self, lc.span_type) ||
        get_slot(self, lc.start_at) != lc.zero || get_slot(self, lc.snap_at) != Py_None) {
        return PyObject_CallOneArg(lc.py_enter, self);
    }
    PyObject *parent = NULL;
    if (PyContextVar_Get(lc.current, Py_None, &parent) < 0) {
        return NULL;
    }
    PyObject *trace = NULL, *start = NULL;
    if (parent == Py_None) {
        trace = root_trace(&start);
    } else if (PyObject_TypeCheck(parent, lc.node_type)) {
        PyObject *found = get_slot(parent, lc.trace_at);
        if (found != NULL && Py_IS_TYPE(found, lc.trace_type) &&
            get_slot(found, lc.t_recorded_at) == Py_True) {
            trace = Py_NewRef(found); /* held: the clock may be Python code */
            start = call_attr(lc.clock, lc.n_now_ns);
            if (start == NULL) {
                Py_CLEAR(trace);
            }
        }
    }
    if (trace == NULL) {
        Py_DECREF(parent);
        if (PyErr_Occurred()) {
            return NULL;
        }
        return PyObject_CallOneArg(lc.py_enter, self); /* nothing was changed yet */
    }
    /* the Python method's order: trace and parent, then the id draw (which may fail) */
    set_slot(self, lc.trace_at, trace);
    set_slot(self, lc.parent_at, Py_NewRef(parent));
    PyObject *sid = random_or_one();
    if (sid == NULL) {
        Py_DECREF(parent);
        Py_DECREF(start);
        return NULL;
    }
    set_slot(self, lc.sid_at, sid);
    set_slot(self, lc.start_at, start);
    PyObject *token = PyContextVar_Set(lc.current, self);
    if (token == NULL) {
        Py_DECREF(parent);
        return NULL;
    }
    set_slot(self, lc.token_at, token);
    if (Py_IS_TYPE(parent, lc.span_type)) {
        PyObject *siblings = get_slot(parent, lc.children_at);
        if (siblings != NULL && PyList_CheckExact(siblings)) {
            if (PyList_Append(siblings, self) < 0) {
                Py_DECREF(parent);
                return NULL;
            }
        } else {
            PyObject *list = PyList_New(1);
            if (list == NULL) {
                Py_DECREF(parent);
                return NULL;
            }
            PyList_SET_ITEM(list, 0, Py_NewRef(self));
            set_slot(parent, lc.children_at, list);
        }
    }
    Py_DECREF(parent);
    if (tell_pipeline(HOOK_START, self) < 0) {
        return NULL;
    }
    return Py_NewRef(self);
}

static PyObject *lifecycle_exit(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (lc.span_type == NULL || !PyObject_TypeCheck(self, lc.span_type) || nargs != 3) {
        goto python;
    }
    PyObject *token = get_slot(self, lc.token_at);
    if (token == Py_None) {
        Py_RETURN_NONE; /* entered as a no-op span */
    }
    PyObject *trace = get_slot(self, lc.trace_at);
    if (token == NULL || Py_IS_TYPE(token, lc.reentry_type) || args[1] != Py_None ||
        trace == NULL || !Py_IS_TYPE(trace, lc.trace_type) ||
        get_slot(trace, lc.t_recorded_at) != Py_True || get_slot(self, lc.snap_at) != Py_None) {
        goto python;
    }
    /* as the Python method: the span is closed (token cleared) before the clock,
       which may be Python code, runs; the token is held until the reset */
    Py_INCREF(token);
    set_slot(self, lc.token_at, Py_NewRef(Py_None));
    PyObject *end = call_attr(lc.clock, lc.n_now_ns);
    if (end == NULL) {
        Py_DECREF(token);
        return NULL;
    }
    set_slot(self, lc.end_at, end);
    int reset = PyContextVar_Reset(lc.current, token);
    Py_DECREF(token);
    if (reset < 0) {
        if (!PyErr_ExceptionMatches(PyExc_ValueError)) {
            return NULL;
        }
        PyErr_Clear(); /* closed from another context: the span still ends */
        PyObject *done = PyObject_CallMethodNoArgs(self, lc.n_foreign);
        if (done == NULL) {
            return NULL;
        }
        Py_DECREF(done);
    }
    if (tell_pipeline(HOOK_END, self) < 0) {
        return NULL;
    }
    PyObject *parent = get_slot(self, lc.parent_at);
    if (parent == NULL || !Py_IS_TYPE(parent, lc.span_type)) {
        PyObject *ring = PyObject_GetAttr(lc.pipeline, lc.n_ring);
        PyObject *done = ring == NULL ? NULL : PyObject_CallMethodOneArg(ring, lc.n_append, self);
        Py_XDECREF(ring);
        if (done == NULL) {
            return NULL;
        }
        Py_DECREF(done);
    }
    Py_RETURN_NONE;
python : {
    /* Span.__exit__(self, *args): every argument, so a wrong count fails as in Python */
    PyObject **full = PyMem_Malloc((size_t)(nargs + 1) * sizeof(PyObject *));
    if (full == NULL) {
        return PyErr_NoMemory();
    }
    full[0] = self;
    for (Py_ssize_t i = 0; i < nargs; i++) {
        full[i + 1] = args[i];
    }
    PyObject *result = PyObject_Vectorcall(lc.py_exit, full, (size_t)(nargs + 1), NULL);
    PyMem_Free(full);
    return result;
}
}

/* ---------------------------------------------- for the other C helpers (asgi.c) */

PyObject *span_new_with(PyObject *name, PyObject *kind, PyObject *attributes) {
    if (lc.span_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "span_configure() was not called");
        return NULL;
    }
    /* Span(name, kind=kind) -- what lifecycle_init writes -- then the attributes,
       as spanline.core.span.span_with_attributes does */
    PyObject *span = lc.span_type->tp_alloc(lc.span_type, 0);
    if (span == NULL) {
        return NULL;
    }
    set_slot(span, lc.name_at, Py_NewRef(name));
    set_slot(span, lc.type_at, Py_NewRef(lc.zero));
    set_slot(span, lc.kind_at, Py_NewRef(kind));
    set_slot(span, lc.start_at, Py_NewRef(lc.zero));
    set_slot(span, lc.end_at, Py_NewRef(lc.zero));
    set_slot(span, lc.children_at, Py_NewRef(Py_None));
    set_slot(span, lc.snap_at, Py_NewRef(Py_None));
    set_slot(span, lc.attributes_at, Py_NewRef(attributes));
    return span;
}

PyObject *span_enter(PyObject *span) { return lifecycle_enter(span, NULL); }

PyObject *span_exit(PyObject *span, PyObject *type, PyObject *value, PyObject *traceback) {
    PyObject *args[3] = {type, value, traceback};
    return lifecycle_exit(span, args, 3);
}

int span_rename(PyObject *span, PyObject *name) {
    PyObject *end = NULL; /* unset too for a Span not made by Span.__init__ */
    if (lc.span_type != NULL && Py_IS_TYPE(span, lc.span_type) && PyUnicode_CheckExact(name)) {
        end = get_slot(span, lc.end_at);
    }
    if (end == NULL) { /* anything unusual: the method decides */
        PyObject *done = PyObject_CallMethod(span, "update_name", "O", name);
        Py_XDECREF(done);
        return done == NULL ? -1 : 0;
    }
    /* Span.update_name: a span that has ended keeps its name */
    int ended = PyObject_IsTrue(end);
    if (ended < 0) {
        return -1;
    }
    if (!ended) {
        set_slot(span, lc.name_at, Py_NewRef(name));
    }
    return 0;
}

static PyMethodDef lifecycle_methods[] = {
    {"__enter__", lifecycle_enter, METH_NOARGS,
     "Start the span and make it current (see spanline.core.span._PyLifecycle)."},
    {"__exit__", (PyCFunction)(void (*)(void))lifecycle_exit, METH_FASTCALL,
     "End the span (see spanline.core.span._PyLifecycle)."},
    {NULL, NULL, 0, NULL},
};

PyTypeObject SpanLifecycleType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "spanline._accel.SpanLifecycle",
    .tp_basicsize = sizeof(PyObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Span.__enter__ and Span.__exit__ in C, for spanline.core.span.Span.",
    .tp_methods = lifecycle_methods,
    .tp_init = lifecycle_init,
    .tp_new = PyType_GenericNew,
};

const char span_configure_doc[] =
    "span_configure(span_type, node_type, trace_type, reentry_type, current, config,\n"
    "               clock, ids, pipeline, internal, py_init, py_enter, py_exit) -> None\n\n"
    "What SpanLifecycle's methods read and call; until this runs they call the\n"
    "Python methods.";

PyObject *span_configure(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *span_type, *node_type, *trace_type, *reentry_type, *current, *config, *clock;
    PyObject *ids, *pipeline, *internal, *py_init, *py_enter, *py_exit;
    if (!PyArg_ParseTuple(args, "O!O!O!O!OOOOOOOOO:span_configure", &PyType_Type, &span_type,
                          &PyType_Type, &node_type, &PyType_Type, &trace_type, &PyType_Type,
                          &reentry_type, &current, &config, &clock, &ids, &pipeline, &internal,
                          &py_init, &py_enter, &py_exit)) {
        return NULL;
    }
    if (!PyContextVar_CheckExact(current) || !PyCallable_Check(py_init) ||
        !PyCallable_Check(py_enter) || !PyCallable_Check(py_exit)) {
        PyErr_SetString(PyExc_TypeError, "a ContextVar and three callables expected");
        return NULL;
    }
    if (slot_offset(span_type, "name", &lc.name_at) < 0 ||
        slot_offset(span_type, "_type", &lc.type_at) < 0 ||
        slot_offset(span_type, "kind", &lc.kind_at) < 0 ||
        slot_offset(span_type, "_attributes", &lc.attributes_at) < 0 ||
        slot_offset(span_type, "_trace", &lc.trace_at) < 0 ||
        slot_offset(span_type, "_parent", &lc.parent_at) < 0 ||
        slot_offset(span_type, "_sid", &lc.sid_at) < 0 ||
        slot_offset(span_type, "_start", &lc.start_at) < 0 ||
        slot_offset(span_type, "_end", &lc.end_at) < 0 ||
        slot_offset(span_type, "_token", &lc.token_at) < 0 ||
        slot_offset(span_type, "_children", &lc.children_at) < 0 ||
        slot_offset(span_type, "_snap", &lc.snap_at) < 0 ||
        slot_offset(trace_type, "_id", &lc.t_id_at) < 0 ||
        slot_offset(trace_type, "_start", &lc.t_start_at) < 0 ||
        slot_offset(trace_type, "external", &lc.t_external_at) < 0 ||
        slot_offset(trace_type, "actor", &lc.t_actor_at) < 0 ||
        slot_offset(trace_type, "recorded", &lc.t_recorded_at) < 0) {
        return NULL;
    }
    Py_ssize_t node_trace_at;
    if (slot_offset(node_type, "_trace", &node_trace_at) < 0) {
        return NULL;
    }
    if (slot_offset((PyObject *)Py_TYPE(pipeline), "hooks", &lc.hooks_at) < 0) {
        return NULL;
    }
    if (node_trace_at != lc.trace_at) {
        PyErr_SetString(PyExc_TypeError, "Span must take _trace from Node");
        return NULL;
    }
    if (intern_string(&lc.n_settings, "settings") < 0 || intern_string(&lc.n_enabled, "enabled") < 0 ||
        intern_string(&lc.n_sample_all, "sample_all") < 0 ||
        intern_string(&lc.n_now_ns, "now_ns") < 0 ||
        intern_string(&lc.n_new_random64, "new_random64") < 0 ||

        intern_string(&lc.n_ring, "ring") < 0 || intern_string(&lc.n_append, "append") < 0 ||
        intern_string(&lc.n_foreign, "_foreign_context") < 0 ||
        intern_string(&lc.n_kind, "kind") < 0) {
        return NULL;
    }
    lc.zero = PyLong_FromLong(0); /* the small-int singleton Span.__init__ stores */
    lc.million = PyLong_FromLong(1000000);
    lc.eighty = PyLong_FromLong(80);
    if (lc.zero == NULL || lc.million == NULL || lc.eighty == NULL) {
        return NULL;
    }
    /* previous values stay alive on purpose: another thread may be using them */
    lc.node_type = (PyTypeObject *)Py_NewRef(node_type);
    lc.trace_type = (PyTypeObject *)Py_NewRef(trace_type);
    lc.reentry_type = (PyTypeObject *)Py_NewRef(reentry_type);
    lc.current = Py_NewRef(current);
    lc.config = Py_NewRef(config);
    lc.clock = Py_NewRef(clock);
    lc.ids = Py_NewRef(ids);
    lc.pipeline = Py_NewRef(pipeline);
    lc.internal = Py_NewRef(internal);
    lc.py_init = Py_NewRef(py_init);
    lc.py_enter = Py_NewRef(py_enter);
    lc.py_exit = Py_NewRef(py_exit);
    lc.span_type = (PyTypeObject *)Py_NewRef(span_type); /* last: it switches C on */
    Py_RETURN_NONE;
}
