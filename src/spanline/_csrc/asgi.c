/*
 * spanline._accel.asgi_request: what the ASGI middleware reads from an HTTP scope
 * (the request method, the span's attributes and the trace-context headers), in
 * one C call instead of ~13,000 interpreted instructions per request.
 *
 * It handles the scope every ASGI server sends (a dict; str method, path and
 * scheme; (host, port) pairs; a list of (bytes, bytes) headers).  For anything
 * else it returns None and the middleware's Python reader
 * (spanline.integrations.asgi._request_python), which defines the result, runs
 * instead; tests compare the two.
 */
#include "accel.h"

/* scope keys, attribute keys and default values (interned once) */
static PyObject *K_METHOD, *K_HEADERS, *K_PATH, *K_SCHEME, *K_SERVER, *K_CLIENT;
static PyObject *A_METHOD, *A_PATH, *A_SCHEME, *A_SERVER_ADDRESS, *A_SERVER_PORT;
static PyObject *A_CLIENT_ADDRESS, *A_USER_AGENT, *V_SLASH, *V_HTTP;

/* the headers read, by their lower-case names; their index is also their carrier key's */
enum { H_TRACEPARENT, H_TRACESTATE, H_BAGGAGE, H_USER_AGENT, H_COUNT };
static const char *const HEADER_NAMES[H_COUNT] = {"traceparent", "tracestate", "baggage",
                                                  "user-agent"};
static PyObject *HEADER_KEYS[H_COUNT];

static int strings_ready(void) {
    if (V_HTTP != NULL) {
        return 0;
    }
    if (intern_string(&K_METHOD, "method") < 0 || intern_string(&K_HEADERS, "headers") < 0 ||
        intern_string(&K_PATH, "path") < 0 || intern_string(&K_SCHEME, "scheme") < 0 ||
        intern_string(&K_SERVER, "server") < 0 || intern_string(&K_CLIENT, "client") < 0 ||
        intern_string(&A_METHOD, "http.request.method") < 0 || intern_string(&A_PATH, "url.path") < 0 ||
        intern_string(&A_SCHEME, "url.scheme") < 0 ||
        intern_string(&A_SERVER_ADDRESS, "server.address") < 0 ||
        intern_string(&A_SERVER_PORT, "server.port") < 0 ||
        intern_string(&A_CLIENT_ADDRESS, "client.address") < 0 ||
        intern_string(&A_USER_AGENT, "user_agent.original") < 0 || intern_string(&V_SLASH, "/") < 0) {
        return -1;
    }
    for (int i = 0; i < H_COUNT; i++) {
        if (intern_string(&HEADER_KEYS[i], HEADER_NAMES[i]) < 0) {
            return -1;
        }
    }
    return intern_string(&V_HTTP, "http"); /* last: it marks the set complete */
}

/* Whether the header name `name` (n bytes) is `lower` in any ASCII case. */
static int same_name(const char *name, Py_ssize_t n, const char *lower) {
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c >= 'A' && c <= 'Z') {
            c = (unsigned char)(c + ('a' - 'A'));
        }
        if (c != (unsigned char)lower[i]) {
            return 0;
        }
    }
    return 1;
}

/* The index of a wanted header name, or -1 (the length picks the candidates). */
static int wanted_header(PyObject *name) {
    const char *text = PyBytes_AS_STRING(name);
    Py_ssize_t n = PyBytes_GET_SIZE(name);
    switch (n) {
    case 11:
        return same_name(text, n, "traceparent") ? H_TRACEPARENT : -1;
    case 10:
        if (same_name(text, n, "tracestate")) {
            return H_TRACESTATE;
        }
        return same_name(text, n, "user-agent") ? H_USER_AGENT : -1;
    case 7:
        return same_name(text, n, "baggage") ? H_BAGGAGE : -1;
    default:
        return -1;
    }
}

/* Add the wanted headers of `headers` (an exact list or tuple) to *carrier, a dict
   of lists created on the first one.  1 on success, 0 when an entry is not a
   (bytes, bytes) pair (the Python reader must run), -1 on error. */
static int read_headers(PyObject *headers, PyObject **carrier) {
    Py_ssize_t count = PySequence_Fast_GET_SIZE(headers);
    for (Py_ssize_t i = 0; i < count; i++) {
        /* re-read each round: decoding runs no Python code, but stay safe */
        if (i >= PySequence_Fast_GET_SIZE(headers)) {
            return 0;
        }
        PyObject *entry = PySequence_Fast_GET_ITEM(headers, i);
        if (!(PyTuple_CheckExact(entry) || PyList_CheckExact(entry)) ||
            PySequence_Fast_GET_SIZE(entry) != 2) {
            return 0;
        }
        PyObject *name = PySequence_Fast_GET_ITEM(entry, 0);
        PyObject *value = PySequence_Fast_GET_ITEM(entry, 1);
        if (!PyBytes_CheckExact(name) || !PyBytes_CheckExact(value)) {
            return 0;
        }
        int index = wanted_header(name);
        if (index < 0) {
            continue;
        }
        PyObject *text =
            PyUnicode_DecodeLatin1(PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value), NULL);
        if (text == NULL) {
            return -1;
        }
        if (*carrier == NULL && (*carrier = PyDict_New()) == NULL) {
            Py_DECREF(text);
            return -1;
        }
        PyObject *values = PyDict_GetItemWithError(*carrier, HEADER_KEYS[index]);
        int failed;
        if (values != NULL) {
            failed = PyList_Append(values, text);
        } else if (PyErr_Occurred()) {
            failed = -1;
        } else {
            values = PyList_New(1);
            if (values == NULL) {
                failed = -1;
            } else {
                PyList_SET_ITEM(values, 0, Py_NewRef(text));
                failed = PyDict_SetItem(*carrier, HEADER_KEYS[index], values);
                Py_DECREF(values);
            }
        }
        Py_DECREF(text);
        if (failed < 0) {
            return -1;
        }
    }
    return 1;
}

const char asgi_request_doc[] =
    "asgi_request(scope) -> (method, attributes, carrier) or None\n\n"
    "The request method, the SERVER span's attributes and the trace-context headers\n"
    "(a dict of lists, or None) of an HTTP scope; None when the scope is not the\n"
    "usual shape and the Python reader must run instead.";

/* The parts of the scope read, as new references (the scope stays the caller's to
   change: a finalizer run by an allocation here must not free what is in use). */
typedef struct {
    PyObject *method, *headers, *path, *scheme, *server_host, *server_port, *client_host;
} Parts;

static void parts_clear(Parts *p) {
    Py_CLEAR(p->method);
    Py_CLEAR(p->headers);
    Py_CLEAR(p->path);
    Py_CLEAR(p->scheme);
    Py_CLEAR(p->server_host);
    Py_CLEAR(p->server_port);
    Py_CLEAR(p->client_host);
}

/* Fill `p` from `scope`: 1 when it has the usual shape, 0 when the Python reader
   must run, -1 on error. */
static int read_parts(PyObject *scope, Parts *p) {
    PyObject *value;
#define READ(field, key)                                                                 \
    value = PyDict_GetItemWithError(scope, key);                                         \
    if (value == NULL && PyErr_Occurred()) {                                             \
        return -1;                                                                       \
    }                                                                                    \
    p->field = Py_XNewRef(value);
    READ(method, K_METHOD)
    READ(headers, K_HEADERS)
    READ(path, K_PATH)
    READ(scheme, K_SCHEME)
#undef READ
    if (p->method == NULL || !PyUnicode_CheckExact(p->method)) {
        return 0;
    }
    if (p->path == NULL || !PyUnicode_CheckExact(p->path) || PyUnicode_GET_LENGTH(p->path) == 0) {
        Py_XSETREF(p->path, Py_NewRef(V_SLASH));
    }
    if (p->scheme == NULL || p->scheme == Py_None ||
        (PyUnicode_CheckExact(p->scheme) && PyUnicode_GET_LENGTH(p->scheme) == 0)) {
        Py_XSETREF(p->scheme, Py_NewRef(V_HTTP));
    } else if (!PyUnicode_CheckExact(p->scheme)) {
        return 0;
    }
    if (p->headers == Py_None) {
        Py_CLEAR(p->headers);
    } else if (p->headers != NULL && !(PyList_CheckExact(p->headers) || PyTuple_CheckExact(p->headers))) {
        return 0;
    }
    /* a (host, port) pair, else no server attributes; a non-str host: Python's str() */
    PyObject *server = PyDict_GetItemWithError(scope, K_SERVER);
    if (server == NULL && PyErr_Occurred()) {
        return -1;
    }
    if (server != NULL && (PyTuple_CheckExact(server) || PyList_CheckExact(server)) &&
        PySequence_Fast_GET_SIZE(server) == 2) {
        p->server_host = Py_NewRef(PySequence_Fast_GET_ITEM(server, 0));
        p->server_port = Py_NewRef(PySequence_Fast_GET_ITEM(server, 1));
        if (!PyUnicode_CheckExact(p->server_host)) {
            return 0;
        }
    } else if (server != NULL && server != Py_None) {
        return 0; /* an odd value: the Python reader decides */
    }
    PyObject *client = PyDict_GetItemWithError(scope, K_CLIENT);
    if (client == NULL && PyErr_Occurred()) {
        return -1;
    }
    if (client != NULL && (PyTuple_CheckExact(client) || PyList_CheckExact(client)) &&
        PySequence_Fast_GET_SIZE(client) > 0) {
        p->client_host = Py_NewRef(PySequence_Fast_GET_ITEM(client, 0));
        if (!PyUnicode_CheckExact(p->client_host)) {
            return 0;
        }
    } else if (client != NULL && client != Py_None) {
        return 0;
    }
    return 1;
}

/* The span's attributes from the checked parts; NULL with an exception on error. */
static PyObject *build_attributes(const Parts *p, PyObject *carrier) {
    /* room for every attribute a request gets (up to 10 with the status and route
       written later) without growing the table on the way (CPython's own presized
       constructor where its headers are known to declare it) */
#if PY_VERSION_HEX < 0x030D0000
    PyObject *attributes = _PyDict_NewPresized(10);
#else
    PyObject *attributes = PyDict_New();
#endif
    if (attributes == NULL) {
        return NULL;
    }
    if (PyDict_SetItem(attributes, A_METHOD, p->method) < 0 ||
        PyDict_SetItem(attributes, A_PATH, p->path) < 0 ||
        PyDict_SetItem(attributes, A_SCHEME, p->scheme) < 0 ||
        (p->server_host != NULL &&
         PyDict_SetItem(attributes, A_SERVER_ADDRESS, p->server_host) < 0) ||
        (p->server_port != NULL && PyLong_CheckExact(p->server_port) &&
         PyDict_SetItem(attributes, A_SERVER_PORT, p->server_port) < 0) ||
        (p->client_host != NULL &&
         PyDict_SetItem(attributes, A_CLIENT_ADDRESS, p->client_host) < 0)) {
        Py_DECREF(attributes);
        return NULL;
    }
    if (carrier != NULL) {
        /* the carrier is ours and its lists hold str only (read_headers made them) */
        PyObject *agents = PyDict_GetItemWithError(carrier, HEADER_KEYS[H_USER_AGENT]);
        if ((agents == NULL && PyErr_Occurred()) ||
            (agents != NULL && PyList_GET_SIZE(agents) > 0 &&
             PyUnicode_GET_LENGTH(PyList_GET_ITEM(agents, 0)) > 0 &&
             PyDict_SetItem(attributes, A_USER_AGENT, PyList_GET_ITEM(agents, 0)) < 0)) {
            Py_DECREF(attributes);
            return NULL;
        }
    }
    return attributes;
}

/* Read an HTTP scope: 1 with new references in *method, *attributes and *carrier
   (NULL when no trace-context header came), 0 when the Python reader must run,
   -1 on error. */
int asgi_read_request(PyObject *scope, PyObject **method, PyObject **attributes,
                      PyObject **carrier) {
    *method = *attributes = *carrier = NULL;
    if (!PyDict_CheckExact(scope)) {
        return 0;
    }
    if (strings_ready() < 0) {
        return -1;
    }
    Parts parts = {0};
    int usual = read_parts(scope, &parts);
    if (usual > 0 && parts.headers != NULL) {
        usual = read_headers(parts.headers, carrier);
    }
    if (usual > 0) {
        *attributes = build_attributes(&parts, *carrier);
        if (*attributes == NULL) {
            usual = -1;
        } else {
            *method = Py_NewRef(parts.method);
        }
    }
    if (usual <= 0) {
        Py_CLEAR(*carrier);
    }
    parts_clear(&parts);
    return usual;
}

PyObject *asgi_request(PyObject *self, PyObject *scope) {
    (void)self;
    PyObject *method, *attributes, *carrier;
    int usual = asgi_read_request(scope, &method, &attributes, &carrier);
    if (usual <= 0) {
        return usual == 0 ? Py_NewRef(Py_None) : NULL;
    }
    PyObject *result = PyTuple_Pack(3, method, attributes, carrier ? carrier : Py_None);
    Py_DECREF(method);
    Py_DECREF(attributes);
    Py_XDECREF(carrier);
    return result;
}
