/*
 * spanline._accel.AsgiRequest: one HTTP request's SERVER span for the ASGI
 * middleware (spanline.integrations.asgi), as a C context manager whose value is
 * the traced `send`:
 *
 *     with AsgiRequest(middleware, scope, send) as traced_send:
 *         await app(scope, receive, traced_send)
 *
 * It does what the middleware's Python path (SpanlineASGIMiddleware._python) does,
 * step for step, without the Python frames: reading the scope (asgi.c, or the
 * Python reader for unusual scopes), the caller's context, the span, the response
 * status seen in `send`, and the route once the app has returned.  The tests run
 * every middleware test on both paths.
 */
#include "accel.h"

static struct {
    PyObject *request_python; /* _request_python(scope) */
    PyObject *incoming_node;  /* spanline.propagation.carrier.incoming_node */
    PyObject *config;         /* spanline.core.config: settings.enabled */
    PyObject *current;        /* the ContextVar */
    PyObject *server_kind;    /* SpanKind.SERVER */
    PyObject *error_status;   /* StatusCode.ERROR */
    PyObject *names;          /* _NAMES: (method, route) -> span name */
    PyObject *span_name;      /* _span_name(method, route) */
    PyObject *trust_kwnames;  /* ("trust_actor",) */
    PyObject *five_hundred;
} ac;

static PyObject *K_TYPE, *K_STATUS, *K_QUERY, *K_SPANLINE_ROUTE, *K_ROUTE, *N_PATH, *A_QUERY;
static PyObject *A_STATUS_CODE, *A_ROUTE, *V_START, *N_TRUST, *N_RECORD, *N_SETTINGS;
static PyObject *N_ENABLED, *N_SET_STATUS, *N_GET, *C_TRACEPARENT, *C_BAGGAGE;

enum { MADE, ENTERED, EXITED };

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall; /* calling the object is the traced send */
    PyObject *scope, *send, *span, *attributes, *method, *carrier, *token;
    char trust_actor, state;
} AsgiRequest;

/* mapping.get(key) as a new reference (None when missing); NULL on error. */
static PyObject *get_item(PyObject *mapping, PyObject *key) {
    if (PyDict_CheckExact(mapping)) {
        PyObject *value = PyDict_GetItemWithError(mapping, key);
        if (value == NULL) {
            return PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
        }
        return Py_NewRef(value);
    }
    return PyObject_CallMethodOneArg(mapping, N_GET, key);
}

/* bool(getattr(obj, name)) (-1 on error). */
static int attr_truth(PyObject *obj, PyObject *name) {
    PyObject *value = PyObject_GetAttr(obj, name);
    if (value == NULL) {
        return -1;
    }
    int truth = PyObject_IsTrue(value);
    Py_DECREF(value);
    return truth;
}

/* current.reset(token), a ValueError ignored (the app switched contexts); any
   error pending before is kept unless the reset fails otherwise (as a `finally`
   that raises would replace it).  0, or -1 with an exception. */
static int reset_token(AsgiRequest *self) {
    PyObject *token = self->token;
    if (token == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    self->token = NULL;
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    int reset = PyContextVar_Reset(ac.current, token);
    Py_DECREF(token);
    if (reset < 0) {
        if (!PyErr_ExceptionMatches(PyExc_ValueError)) {
            Py_XDECREF(type);
            Py_XDECREF(value);
            Py_XDECREF(traceback);
            return -1;
        }
        PyErr_Clear();
    }
    PyErr_Restore(type, value, traceback);
    return type != NULL ? -1 : 0;
}

/* -- the traced send ------------------------------------------------------------ */

static PyObject *request_send(PyObject *op, PyObject *const *args, size_t nargsf,
                              PyObject *kwnames) {
    AsgiRequest *self = (AsgiRequest *)op;
    /* send(message) or send(message=...), as the Python path's function takes */
    Py_ssize_t keywords = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    if (PyVectorcall_NARGS(nargsf) + keywords != 1 ||
        (keywords && PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, 0), "message"))) {
        PyErr_SetString(PyExc_TypeError, "send(message) takes exactly one message");
        return NULL;
    }
    if (self->span == NULL || self->attributes == NULL || self->send == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "this AsgiRequest was cleared");
        return NULL;
    }
    PyObject *message = args[0];
    PyObject *type = get_item(message, K_TYPE);
    if (type == NULL) {
        return NULL;
    }
    int start = PyObject_RichCompareBool(type, V_START, Py_EQ);
    Py_DECREF(type);
    if (start < 0) {
        return NULL;
    }
    if (start) {
        PyObject *code = get_item(message, K_STATUS);
        if (code == NULL) {
            return NULL;
        }
        if (PyLong_CheckExact(code)) {
            int failed = PyObject_SetItem(self->attributes, A_STATUS_CODE, code) < 0;
            int error = failed ? -1 : PyObject_RichCompareBool(code, ac.five_hundred, Py_GE);
            if (error > 0) {
                PyObject *text = PyUnicode_FromFormat("HTTP %S", code);
                PyObject *done = text == NULL ? NULL
                                              : PyObject_CallMethodObjArgs(
                                                    self->span, N_SET_STATUS, ac.error_status,
                                                    text, NULL);
                Py_XDECREF(text);
                Py_XDECREF(done);
                error = done == NULL ? -1 : 0;
            }
            if (error < 0) {
                Py_DECREF(code);
                return NULL;
            }
        }
        Py_DECREF(code);
    }
    return PyObject_CallOneArg(self->send, message);
}

/* -- construction ----------------------------------------------------------------- */

static PyObject *request_create(PyObject *middleware, PyObject *scope, PyObject *send) {
    if (ac.current == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "asgi_configure() was not called");
        return NULL;
    }
    PyObject *method, *attributes, *carrier;
    int usual = asgi_read_request(scope, &method, &attributes, &carrier);
    if (usual < 0) {
        return NULL;
    }
    if (usual == 0) {
        PyObject *read = PyObject_CallOneArg(ac.request_python, scope);
        if (read == NULL) {
            return NULL;
        }
        if (!PyTuple_CheckExact(read) || PyTuple_GET_SIZE(read) != 3) {
            Py_DECREF(read);
            PyErr_SetString(PyExc_TypeError, "the request reader must return a 3-tuple");
            return NULL;
        }
        method = Py_NewRef(PyTuple_GET_ITEM(read, 0));
        attributes = Py_NewRef(PyTuple_GET_ITEM(read, 1));
        carrier = PyTuple_GET_ITEM(read, 2) == Py_None ? NULL
                                                       : Py_NewRef(PyTuple_GET_ITEM(read, 2));
        Py_DECREF(read);
    }
    AsgiRequest *self = PyObject_GC_New(AsgiRequest, &AsgiRequestType);
    if (self == NULL) {
        Py_DECREF(method);
        Py_DECREF(attributes);
        Py_XDECREF(carrier);
        return NULL;
    }
    self->vectorcall = request_send;
    self->scope = Py_NewRef(scope);
    self->send = Py_NewRef(send);
    self->method = method;
    self->attributes = attributes;
    self->carrier = carrier;
    self->span = NULL;
    self->token = NULL;
    self->trust_actor = 0;
    self->state = MADE;
    PyObject_GC_Track(self);
    int record_query = attr_truth(middleware, N_RECORD);
    if (record_query < 0) {
        goto error;
    }
    if (record_query) {
        PyObject *query = get_item(scope, K_QUERY);
        int present = query == NULL ? -1 : PyObject_IsTrue(query);
        if (present > 0) {
            PyObject *raw = PyObject_CallOneArg((PyObject *)&PyBytes_Type, query);
            PyObject *text = raw == NULL || !PyBytes_Check(raw)
                                 ? NULL
                                 : PyUnicode_DecodeLatin1(PyBytes_AS_STRING(raw),
                                                          PyBytes_GET_SIZE(raw), NULL);
            present = text == NULL ? -1 : PyObject_SetItem(attributes, A_QUERY, text);
            Py_XDECREF(raw);
            Py_XDECREF(text);
        }
        Py_XDECREF(query);
        if (present < 0) {
            goto error;
        }
    }
    int trust = attr_truth(middleware, N_TRUST);
    if (trust < 0) {
        goto error;
    }
    self->trust_actor = (char)trust;
    self->span = span_new_with(method, ac.server_kind, attributes);
    if (self->span == NULL) {
        goto error;
    }
    return (PyObject *)self;
error:
    Py_DECREF(self);
    return NULL;
}

static PyObject *request_vectorcall_new(PyObject *type, PyObject *const *args, size_t nargsf,
                                        PyObject *kwnames) {
    (void)type;
    if (PyVectorcall_NARGS(nargsf) != 3 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames))) {
        PyErr_SetString(PyExc_TypeError, "AsgiRequest(middleware, scope, send)");
        return NULL;
    }
    return request_create(args[0], args[1], args[2]);
}

static PyObject *request_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    (void)type;
    PyObject *middleware, *scope, *send;
    if ((kwds != NULL && PyDict_GET_SIZE(kwds)) ||
        !PyArg_UnpackTuple(args, "AsgiRequest", 3, 3, &middleware, &scope, &send)) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, "AsgiRequest(middleware, scope, send)");
        }
        return NULL;
    }
    return request_create(middleware, scope, send);
}

/* -- entering: the caller's context, then the span -------------------------------- */

/* The node the request runs under when it is not the span's own new trace (a new
   reference), Py_None when the span starts its trace itself, NULL on error. */
static PyObject *incoming(AsgiRequest *self) {
    int continued = 0;
    if (self->carrier != NULL) {
        continued = PyObject_IsTrue(self->carrier);
        if (continued > 0) {
            continued = PySequence_Contains(self->carrier, C_TRACEPARENT);
            if (continued == 0 && self->trust_actor) {
                continued = PySequence_Contains(self->carrier, C_BAGGAGE);
            }
        }
        if (continued < 0) {
            return NULL;
        }
    }
    if (continued) {
        PyObject *args[2] = {self->carrier, self->trust_actor ? Py_True : Py_False};
        return PyObject_Vectorcall(ac.incoming_node, args, 1, ac.trust_kwnames);
    }
    /* a request starts its own trace even when the server runs inside one; and with
       recording off the span is a no-op that starts nothing, so the request's trace
       needs its root */
    PyObject *outer = NULL;
    if (PyContextVar_Get(ac.current, Py_None, &outer) < 0) {
        return NULL;
    }
    int root = outer != Py_None;
    Py_DECREF(outer);
    if (!root) {
        PyObject *settings = PyObject_GetAttr(ac.config, N_SETTINGS);
        int enabled = settings == NULL ? -1 : attr_truth(settings, N_ENABLED);
        Py_XDECREF(settings);
        if (enabled < 0) {
            return NULL;
        }
        root = !enabled;
    }
    if (!root) {
        return Py_NewRef(Py_None);
    }
    PyObject *empty = PyDict_New();
    if (empty == NULL) {
        return NULL;
    }
    PyObject *node = PyObject_CallOneArg(ac.incoming_node, empty);
    Py_DECREF(empty);
    return node;
}

static PyObject *request_enter(PyObject *op, PyObject *unused) {
    (void)unused;
    AsgiRequest *self = (AsgiRequest *)op;
    if (self->state != MADE || self->span == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "an AsgiRequest is entered once");
        return NULL;
    }
    self->state = EXITED; /* until it has entered: a failed enter has no exit */
    PyObject *node = incoming(self);
    if (node == NULL) {
        return NULL;
    }
    if (node != Py_None) {
        self->token = PyContextVar_Set(ac.current, node);
    }
    Py_DECREF(node);
    if (node != Py_None && self->token == NULL) {
        return NULL;
    }
    PyObject *entered = span_enter(self->span);
    if (entered == NULL) {
        reset_token(self);
        return NULL;
    }
    Py_DECREF(entered);
    self->state = ENTERED;
    return Py_NewRef(op);
}

/* -- exiting: the route, the span, the caller's context --------------------------- */

/* The matched route template (a new reference; None when there is none), as the
   Python path reads it: an Exception while reading means no route; NULL with a
   BaseException pending. */
static PyObject *read_route(AsgiRequest *self) {
    PyObject *route = get_item(self->scope, K_SPANLINE_ROUTE);
    if (route != NULL && !PyUnicode_CheckExact(route)) {
        Py_DECREF(route);
        PyObject *matched = get_item(self->scope, K_ROUTE);
        if (matched == Py_None) {
            Py_DECREF(matched); /* no router matched: skip raising AttributeError */
            return Py_NewRef(Py_None);
        }
        route = matched == NULL ? NULL : PyObject_GetAttr(matched, N_PATH);
        Py_XDECREF(matched);
        if (route == NULL && matched != NULL && PyErr_ExceptionMatches(PyExc_AttributeError)) {
            PyErr_Clear(); /* getattr(matched, "path", None) */
            return Py_NewRef(Py_None);
        }
    }
    if (route == NULL && clear_if_exception()) {
        return Py_NewRef(Py_None); /* an odd route object: no route */
    }
    return route;
}

/* Rename the span `METHOD route` once the app has matched a route (0, or -1). */
static int name_by_route(AsgiRequest *self) {
    PyObject *route = read_route(self);
    if (route == NULL) {
        return -1;
    }
    int rc = 0;
    if (PyUnicode_CheckExact(route) && PyUnicode_GET_LENGTH(route) > 0) {
        PyObject *key = NULL, *name = NULL;
        rc = PyObject_SetItem(self->attributes, A_ROUTE, route);
        if (rc == 0) {
            key = PyTuple_Pack(2, self->method, route);
            name = key == NULL ? NULL : PyDict_GetItemWithError(ac.names, key);
            if (name != NULL && PyUnicode_CheckExact(name) && PyUnicode_GET_LENGTH(name) > 0) {
                Py_INCREF(name);
            } else if (key == NULL || PyErr_Occurred()) {
                name = NULL;
            } else {
                name = PyObject_CallFunctionObjArgs(ac.span_name, self->method, route, NULL);
            }
            rc = name == NULL ? -1 : span_rename(self->span, name);
        }
        Py_XDECREF(key);
        Py_XDECREF(name);
    }
    Py_DECREF(route);
    return rc;
}

static PyObject *request_exit(PyObject *op, PyObject *const *args, Py_ssize_t nargs) {
    AsgiRequest *self = (AsgiRequest *)op;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "__exit__ takes 3 arguments");
        return NULL;
    }
    if (self->state != ENTERED) {
        PyErr_SetString(PyExc_RuntimeError, "an AsgiRequest exits once, after entering");
        return NULL;
    }
    self->state = EXITED;
    if (self->span == NULL || self->attributes == NULL || self->scope == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "this AsgiRequest was cleared");
        return NULL;
    }
    PyObject *done;
    if (name_by_route(self) < 0) {
        /* naming failed (or a BaseException while reading the route): as an
           exception raised in the Python path's `finally`, it replaces the app's
           and ends the span */
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        PyErr_NormalizeException(&type, &value, &traceback);
        if (traceback != NULL) {
            PyException_SetTraceback(value, traceback);
        }
        done = span_exit(self->span, type, value, traceback ? traceback : Py_None);
        Py_XDECREF(done);
        if (done != NULL) {
            PyErr_Restore(type, value, traceback);
        } else {
            Py_XDECREF(type);
            Py_XDECREF(value);
            Py_XDECREF(traceback);
        }
        reset_token(self);
        return NULL;
    }
    done = span_exit(self->span, args[0], args[1], args[2]);
    Py_XDECREF(done);
    if (reset_token(self) < 0) {
        return NULL;
    }
    Py_RETURN_FALSE; /* the app's exception, if any, goes on */
}

/* -- the type ---------------------------------------------------------------------- */

static int request_traverse(AsgiRequest *self, visitproc visit, void *arg) {
    Py_VISIT(self->scope);
    Py_VISIT(self->send);
    Py_VISIT(self->span);
    Py_VISIT(self->attributes);
    Py_VISIT(self->method);
    Py_VISIT(self->carrier);
    Py_VISIT(self->token);
    return 0;
}

static int request_clear(AsgiRequest *self) {
    Py_CLEAR(self->scope);
    Py_CLEAR(self->send);
    Py_CLEAR(self->span);
    Py_CLEAR(self->attributes);
    Py_CLEAR(self->method);
    Py_CLEAR(self->carrier);
    Py_CLEAR(self->token);
    return 0;
}

static void request_dealloc(AsgiRequest *self) {
    PyObject_GC_UnTrack(self);
    request_clear(self);
    PyObject_GC_Del(self);
}

static PyObject *request_get_span(AsgiRequest *self, void *closure) {
    (void)closure;
    return Py_NewRef(self->span != NULL ? self->span : Py_None);
}

static PyMethodDef request_methods[] = {
    {"__enter__", request_enter, METH_NOARGS,
     "Continue the caller's context and start the span; the value is the traced send."},
    {"__exit__", (PyCFunction)(void (*)(void))request_exit, METH_FASTCALL,
     "Name the span by its route, end it, restore the context."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef request_getset[] = {
    {"span", (getter)request_get_span, NULL, "The request's SERVER span.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject AsgiRequestType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "spanline._accel.AsgiRequest",
    .tp_basicsize = sizeof(AsgiRequest),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "AsgiRequest(middleware, scope, send): one HTTP request's SERVER span, a "
              "context manager whose value is the traced send "
              "(spanline.integrations.asgi).",
    .tp_vectorcall_offset = offsetof(AsgiRequest, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall = request_vectorcall_new,
    .tp_new = request_new,
    .tp_traverse = (traverseproc)request_traverse,
    .tp_clear = (inquiry)request_clear,
    .tp_dealloc = (destructor)request_dealloc,
    .tp_methods = request_methods,
    .tp_getset = request_getset,
};

const char asgi_configure_doc[] =
    "asgi_configure(request_python, incoming_node, config, current, server_kind,\n"
    "               error_status, names, span_name) -> None\n\n"
    "What AsgiRequest reads and calls (spanline.integrations.asgi passes its own).";

PyObject *asgi_configure(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *request_python, *incoming_node, *config, *current, *server_kind, *error_status;
    PyObject *names, *span_name;
    if (!PyArg_ParseTuple(args, "OOOOOOO!O:asgi_configure", &request_python, &incoming_node,
                          &config, &current, &server_kind, &error_status, &PyDict_Type, &names,
                          &span_name)) {
        return NULL;
    }
    if (!PyContextVar_CheckExact(current) || !PyCallable_Check(request_python) ||
        !PyCallable_Check(incoming_node) || !PyCallable_Check(span_name)) {
        PyErr_SetString(PyExc_TypeError, "a ContextVar and three callables expected");
        return NULL;
    }
    if (intern_string(&K_TYPE, "type") < 0 || intern_string(&K_STATUS, "status") < 0 ||
        intern_string(&K_QUERY, "query_string") < 0 ||
        intern_string(&K_SPANLINE_ROUTE, "spanline.route") < 0 ||
        intern_string(&K_ROUTE, "route") < 0 || intern_string(&N_PATH, "path") < 0 ||
        intern_string(&A_QUERY, "url.query") < 0 ||
        intern_string(&A_STATUS_CODE, "http.response.status_code") < 0 ||
        intern_string(&A_ROUTE, "http.route") < 0 ||
        intern_string(&V_START, "http.response.start") < 0 ||
        intern_string(&N_TRUST, "trust_actor") < 0 ||
        intern_string(&N_RECORD, "record_query") < 0 ||
        intern_string(&N_SETTINGS, "settings") < 0 || intern_string(&N_ENABLED, "enabled") < 0 ||
        intern_string(&N_SET_STATUS, "set_status") < 0 || intern_string(&N_GET, "get") < 0 ||
        intern_string(&C_TRACEPARENT, "traceparent") < 0 ||
        intern_string(&C_BAGGAGE, "baggage") < 0) {
        return NULL;
    }
    PyObject *kwnames = PyTuple_Pack(1, N_TRUST);
    PyObject *five_hundred = PyLong_FromLong(500);
    if (kwnames == NULL || five_hundred == NULL) {
        Py_XDECREF(kwnames);
        Py_XDECREF(five_hundred);
        return NULL;
    }
    /* previous values stay alive on purpose: another thread may be using them */
    ac.request_python = Py_NewRef(request_python);
    ac.incoming_node = Py_NewRef(incoming_node);
    ac.config = Py_NewRef(config);
    ac.server_kind = Py_NewRef(server_kind);
    ac.error_status = Py_NewRef(error_status);
    ac.names = Py_NewRef(names);
    ac.span_name = Py_NewRef(span_name);
    ac.trust_kwnames = kwnames;
    ac.five_hundred = five_hundred;
    ac.current = Py_NewRef(current); /* last: it switches AsgiRequest on */
    Py_RETURN_NONE;
}
