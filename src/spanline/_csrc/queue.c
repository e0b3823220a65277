/*
 * spanline._accel.SpanQueue: the application thread's side of a batch processor's
 * queue -- count a span's start, queue its end -- as C methods the pipeline calls
 * directly.  spanline.export.span_queue._PySpanQueue defines the behaviour; the
 * tests run both.  The counters are plain integers: every method runs under the
 * GIL and calls no Python code before it has counted.
 */
#include "accel.h"

typedef struct {
    PyObject_HEAD
    PyObject *queue;  /* a collections.deque */
    PyObject *append; /* queue.append, bound */
    PyObject *wake;   /* a threading.Event */
    PyObject *drop;   /* called for a span turned away */
    Py_ssize_t max_queue, batch_size;
    Py_ssize_t started_count, ended_count;
    char stopping;
} SpanQueue;

static PyObject *n_append, *n_is_set, *n_set;

static int queue_traverse(SpanQueue *self, visitproc visit, void *arg) {
    Py_VISIT(self->queue);
    Py_VISIT(self->append);
    Py_VISIT(self->wake);
    Py_VISIT(self->drop);
    return 0;
}

static int queue_clear(SpanQueue *self) {
    Py_CLEAR(self->queue);
    Py_CLEAR(self->append);
    Py_CLEAR(self->wake);
    Py_CLEAR(self->drop);
    return 0;
}

static void queue_dealloc(SpanQueue *self) {
    PyObject_GC_UnTrack(self);
    queue_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Point at a new deque and event; counters to 0, not stopping. */
static int queue_reset_to(SpanQueue *self, PyObject *queue, PyObject *wake) {
    /* n_set, interned last, marks the set complete */
    if (n_set == NULL && (intern_string(&n_append, "append") < 0 ||
                          intern_string(&n_is_set, "is_set") < 0 ||
                          intern_string(&n_set, "set") < 0)) {
        return -1;
    }
    PyObject *append = PyObject_GetAttr(queue, n_append);
    if (append == NULL) {
        return -1;
    }
    Py_XSETREF(self->append, append);
    Py_XSETREF(self->queue, Py_NewRef(queue));
    Py_XSETREF(self->wake, Py_NewRef(wake));
    self->started_count = 0;
    self->ended_count = 0;
    self->stopping = 0;
    return 0;
}

static int queue_init(SpanQueue *self, PyObject *args, PyObject *kwds) {
    static char *keywords[] = {"queue", "wake", "drop", "max_queue", "batch_size", NULL};
    PyObject *queue, *wake, *drop;
    Py_ssize_t max_queue, batch_size;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOnn:SpanQueue", keywords, &queue, &wake,
                                     &drop, &max_queue, &batch_size)) {
        return -1;
    }
    if (!PyCallable_Check(drop)) {
        PyErr_SetString(PyExc_TypeError, "drop must be callable");
        return -1;
    }
    Py_XSETREF(self->drop, Py_NewRef(drop));
    self->max_queue = max_queue;
    self->batch_size = batch_size;
    return queue_reset_to(self, queue, wake);
}

static PyObject *queue_reset(SpanQueue *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "reset(queue, wake) takes 2 arguments");
        return NULL;
    }
    if (queue_reset_to(self, args[0], args[1]) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *queue_started(SpanQueue *self, PyObject *span) {
    (void)span;
    self->started_count++;
    Py_RETURN_NONE;
}

/* Call `method` of `obj` with no arguments, dropping the result (-1 on error). */
static int call_method(PyObject *obj, PyObject *method) {
    PyObject *done = PyObject_CallMethodNoArgs(obj, method);
    if (done == NULL) {
        return -1;
    }
    Py_DECREF(done);
    return 0;
}

static PyObject *queue_ended(SpanQueue *self, PyObject *span) {
    if (self->queue == NULL || self->drop == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "SpanQueue was not initialized");
        return NULL;
    }
    self->ended_count++;
    /* held: a deque subclass or a wake-up may run Python code that resets us */
    PyObject *queue = Py_NewRef(self->queue);
    PyObject *append = Py_NewRef(self->append);
    PyObject *wake = Py_NewRef(self->wake);
    PyObject *drop = Py_NewRef(self->drop);
    PyObject *result = NULL;
    Py_ssize_t depth = PyObject_Size(queue);
    if (depth < 0) {
        goto done;
    }
    if (depth >= self->max_queue || self->stopping) {
        result = PyObject_CallNoArgs(drop);
        goto done;
    }
    PyObject *appended = PyObject_CallOneArg(append, span);
    if (appended == NULL) {
        goto done;
    }
    Py_DECREF(appended);
    depth = PyObject_Size(queue);
    if (depth < 0) {
        goto done;
    }
    if (depth >= self->batch_size) {
        PyObject *is_set = PyObject_CallMethodNoArgs(wake, n_is_set);
        if (is_set == NULL) {
            goto done;
        }
        int truth = PyObject_IsTrue(is_set);
        Py_DECREF(is_set);
        if (truth < 0 || (!truth && call_method(wake, n_set) < 0)) {
            goto done;
        }
    }
    result = Py_NewRef(Py_None);
done:
    Py_DECREF(queue);
    Py_DECREF(append);
    Py_DECREF(wake);
    Py_DECREF(drop);
    if (result != NULL && result != Py_None) {
        Py_SETREF(result, Py_NewRef(Py_None)); /* drop()'s own result is not ours */
    }
    return result;
}

static PyObject *queue_get_stopping(SpanQueue *self, void *closure) {
    (void)closure;
    return PyBool_FromLong(self->stopping);
}

static int queue_set_stopping(SpanQueue *self, PyObject *value, void *closure) {
    (void)closure;
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "stopping cannot be deleted");
        return -1;
    }
    int truth = PyObject_IsTrue(value);
    if (truth < 0) {
        return -1;
    }
    self->stopping = (char)truth;
    return 0;
}

static PyMethodDef queue_methods[] = {
    {"started", (PyCFunction)queue_started, METH_O, "Count a span's start."},
    {"ended", (PyCFunction)queue_ended, METH_O,
     "Queue an ended span, or drop it when the queue is full or stopping."},
    {"reset", (PyCFunction)(void (*)(void))queue_reset, METH_FASTCALL,
     "Start over with a new queue and event (a forked child), counters at 0."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef queue_members[] = {
    {"started_count", T_PYSSIZET, offsetof(SpanQueue, started_count), READONLY,
     "Spans started so far."},
    {"ended_count", T_PYSSIZET, offsetof(SpanQueue, ended_count), READONLY,
     "Spans ended so far (queued or dropped)."},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef queue_getset[] = {
    {"stopping", (getter)queue_get_stopping, (setter)queue_set_stopping,
     "Set at shutdown: every span that ends from then on is dropped.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject SpanQueueType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "spanline._accel.SpanQueue",
    .tp_basicsize = sizeof(SpanQueue),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "SpanQueue(queue, wake, drop, max_queue, batch_size): a batch processor's "
              "producer side (spanline.export.span_queue).",
    .tp_traverse = (traverseproc)queue_traverse,
    .tp_clear = (inquiry)queue_clear,
    .tp_dealloc = (destructor)queue_dealloc,
    .tp_methods = queue_methods,
    .tp_members = queue_members,
    .tp_getset = queue_getset,
    .tp_init = (initproc)queue_init,
    .tp_new = PyType_GenericNew,
};
