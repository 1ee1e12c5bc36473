/*
 * aioproducer._records._speedups, part two: RecordHandle, the per-record future send() returns
 * (its pure-Python twin is PyRecordFuture in aioproducer/_core/record_future.py; the unit tests
 * run both through the same cases).
 *
 * One per record, alive while the record is in flight: tens of thousands at once under load.
 * A Python object with __slots__ is tracked by the cyclic GC, and a full collection walked
 * them all (an 11-23 ms event-loop stall, measured with 1 MiB zstd batches).  This type is not
 * tracked; no cycle can outlive a batch through it because ProducerBatch.complete() drops the
 * batch's handle list, each handle's send() callback and done callbacks, and the batch's
 * completion (which holds the event loop): a finished handle reaches only its batch, the
 * batch's results and its RecordMetadata (a tuple of a str and ints).
 *
 * What is compiled here is the success path a service reads once per record: done(), result(),
 * exception() and `await` on a handle whose record was written.  The RecordMetadata is built
 * once, on the first read, straight into a tuple (RecordMetadata is a NamedTuple), and cached:
 * reading it again costs an attribute check.  `await` returns an iterator that hands back the
 * result through am_send, without raising StopIteration, and waits on the batch while the
 * record is pending (AwaitIter).  Everything else (result() of a failed or cancelled record,
 * the Future protocol's callbacks) runs the shared Python methods, attached to this type by
 * record_future.py (under _py_* names where C has the method).
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

typedef struct {
    PyObject_HEAD
    PyObject *batch;
    PyObject *callback;   /* send()'s callback(metadata, error), dropped once called */
    PyObject *md;         /* the RecordMetadata once read (NULL/None before) */
    PyObject *callbacks;  /* add_done_callback()'s [(fn, context)] while pending (NULL/None) */
    PyObject *cancelled;  /* NULL/None; (msg,) once cancel() detached the handle */
    Py_ssize_t relative_offset;
    long long timestamp;
    Py_ssize_t key_size;
    Py_ssize_t value_size;
} RecordHandle;

typedef struct {
    PyObject_HEAD
    PyObject *result;     /* a written record's metadata, handed back by the first send */
    RecordHandle *handle; /* else the handle, until it is done */
} AwaitIter;

static PyTypeObject *RecordHandleType = NULL;
static PyTypeObject *AwaitIterType = NULL;
static PyTypeObject *MetadataType = NULL; /* RecordMetadata, from bind_handles() */
static PyObject *s_final, *s_error, *s_record_errors, *s_tp, *s_base_offset, *s_log_append_time;
static PyObject *s_py_result, *s_py_exception, *s_py_metadata, *s_py_await;
static PyObject *s_completion, *s_wait_record, *s_blocking, *s_native_await;

#define PRESENT(o) ((o) != NULL && (o) != Py_None)

PyObject *aiop_new_handle(PyObject *batch, Py_ssize_t od, long long ts, Py_ssize_t ksize,
                          Py_ssize_t vsize, PyObject *callback)
{
    RecordHandle *h = PyObject_New(RecordHandle, RecordHandleType);
    if (h == NULL)
        return NULL;
    Py_INCREF(batch);
    h->batch = batch;
    Py_INCREF(callback);
    h->callback = callback;
    h->md = NULL;
    h->callbacks = NULL;
    h->cancelled = NULL;
    h->relative_offset = od;
    h->timestamp = ts;
    h->key_size = ksize;
    h->value_size = vsize;
    return (PyObject *)h;
}

/* batch.<name> as a C long long; -1 with an exception set on failure. */
static int batch_ll(PyObject *batch, PyObject *name, long long *out)
{
    PyObject *v = PyObject_GetAttr(batch, name);
    if (v == NULL)
        return -1;
    *out = PyLong_AsLongLong(v);
    Py_DECREF(v);
    return (*out == -1 && PyErr_Occurred()) ? -1 : 0;
}

/*
 * The record's RecordMetadata when it was written: 1 with self->md set (built now, or
 * earlier); 0 when the answer is not that (pending, cancelled, failed, or a state this fast
 * path does not read), for the Python methods to give; -1 with an exception set.
 */
static int written(RecordHandle *self)
{
    if (PRESENT(self->cancelled))
        return 0;
    if (PRESENT(self->md))
        return 1;
    if (MetadataType == NULL || self->batch == NULL)
        return 0;
    PyObject *b = self->batch;
    PyObject *v = PyObject_GetAttr(b, s_final);
    if (v == NULL)
        return -1;
    int final = PyObject_IsTrue(v);
    Py_DECREF(v);
    if (final <= 0)
        return final;
    if ((v = PyObject_GetAttr(b, s_error)) == NULL)
        return -1;
    int ok = v == Py_None;
    Py_DECREF(v);
    if (!ok)
        return 0;
    if ((v = PyObject_GetAttr(b, s_record_errors)) == NULL)
        return -1;
    ok = v == Py_None;
    Py_DECREF(v);
    if (!ok)
        return 0;
    long long base, append_time;
    if (batch_ll(b, s_base_offset, &base) < 0 || batch_ll(b, s_log_append_time, &append_time) < 0)
        return -1;
    PyObject *tp = PyObject_GetAttr(b, s_tp);
    if (tp == NULL)
        return -1;
    if (!PyTuple_Check(tp) || PyTuple_GET_SIZE(tp) != 2) {
        Py_DECREF(tp);
        return 0;
    }
    PyObject *items[6] = {PyTuple_GET_ITEM(tp, 0), PyTuple_GET_ITEM(tp, 1), NULL, NULL, NULL, NULL};
    Py_INCREF(items[0]);
    Py_INCREF(items[1]);
    Py_DECREF(tp);
    items[2] = PyLong_FromLongLong(base < 0 ? -1 : base + self->relative_offset);
    items[3] = PyLong_FromLongLong(append_time >= 0 ? append_time : self->timestamp);
    items[4] = PyLong_FromSsize_t(self->key_size);
    items[5] = PyLong_FromSsize_t(self->value_size);
    /* A NamedTuple instance is a tuple of its type: what tuple.__new__(RecordMetadata, ...)
     * makes, without the argument tuple in between. */
    PyObject *md = NULL;
    if (items[2] && items[3] && items[4] && items[5])
        md = MetadataType->tp_alloc(MetadataType, 6);
    if (md == NULL) {
        for (int i = 0; i < 6; i++)
            Py_XDECREF(items[i]);
        return -1;
    }
    for (int i = 0; i < 6; i++)
        PyTuple_SET_ITEM(md, i, items[i]);
    Py_XSETREF(self->md, md);
    return 1;
}

static PyObject *RecordHandle_done(RecordHandle *self, PyObject *unused)
{
    if (PRESENT(self->md) || PRESENT(self->cancelled))
        Py_RETURN_TRUE;
    if (self->batch == NULL) {
        PyErr_SetString(PyExc_AttributeError, "the handle has no batch");
        return NULL;
    }
    PyObject *v = PyObject_GetAttr(self->batch, s_final);
    if (v == NULL)
        return NULL;
    int final = PyObject_IsTrue(v);
    Py_DECREF(v);
    if (final < 0)
        return NULL;
    return PyBool_FromLong(final);
}

static PyObject *RecordHandle_result(RecordHandle *self, PyObject *unused)
{
    int r = written(self);
    if (r < 0)
        return NULL;
    if (r == 0)
        return PyObject_CallMethodNoArgs((PyObject *)self, s_py_result);
    Py_INCREF(self->md);
    return self->md;
}

static PyObject *RecordHandle_exception(RecordHandle *self, PyObject *unused)
{
    int r = written(self);
    if (r < 0)
        return NULL;
    if (r == 0)
        return PyObject_CallMethodNoArgs((PyObject *)self, s_py_exception);
    Py_RETURN_NONE;
}

static PyObject *RecordHandle_metadata(RecordHandle *self, PyObject *unused)
{
    int r = written(self);
    if (r < 0)
        return NULL;
    if (r == 0)
        return PyObject_CallMethodNoArgs((PyObject *)self, s_py_metadata);
    Py_INCREF(self->md);
    return self->md;
}

static int native_await(RecordHandle *self);

static PyObject *RecordHandle_await(RecordHandle *self)
{
    int r = written(self);
    if (r < 0)
        return NULL;
    if (r == 0) {
        int native = native_await(self);
        if (native < 0)
            return NULL;
        if (!native)
            return PyObject_CallMethodNoArgs((PyObject *)self, s_py_await);
    }
    AwaitIter *it = PyObject_New(AwaitIter, AwaitIterType);
    if (it == NULL)
        return NULL;
    it->handle = NULL;
    it->result = NULL;
    if (r == 1) {
        Py_INCREF(self->md);
        it->result = self->md;
    } else { /* pending, failed or cancelled: see AwaitIter_send */
        Py_INCREF(self);
        it->handle = self;
    }
    return (PyObject *)it;
}

/* Whether the batch's completion hands out asyncio futures, which AwaitIter yields to the
 * task itself; under trio (the anyio-based shell loop) its futures are awaited through their
 * own __await__, so the shared Python generator runs instead. -1 with an error set. */
static int native_await(RecordHandle *self)
{
    if (self->batch == NULL)
        return 0;
    PyObject *completion = PyObject_GetAttr(self->batch, s_completion);
    if (completion == NULL)
        return -1;
    PyObject *flag = PyObject_GetAttr(completion, s_native_await);
    Py_DECREF(completion);
    if (flag == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError))
            return -1;
        PyErr_Clear();
        return 0;
    }
    int native = PyObject_IsTrue(flag);
    Py_DECREF(flag);
    return native;
}

static PyObject *RecordHandle_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"batch", "relative_offset", "timestamp", "key_size", "value_size",
                             "callback", NULL};
    PyObject *batch, *callback;
    Py_ssize_t od, ksize, vsize;
    long long ts;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OnLnnO", kwlist, &batch, &od, &ts, &ksize,
                                     &vsize, &callback))
        return NULL;
    return aiop_new_handle(batch, od, ts, ksize, vsize, callback);
}

static void RecordHandle_dealloc(RecordHandle *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    Py_CLEAR(self->batch);
    Py_CLEAR(self->callback);
    Py_CLEAR(self->md);
    Py_CLEAR(self->callbacks);
    Py_CLEAR(self->cancelled);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyMemberDef RecordHandle_members[] = {
    {"batch", T_OBJECT, offsetof(RecordHandle, batch), 0, "the batch holding the record"},
    {"callback", T_OBJECT, offsetof(RecordHandle, callback), 0, "callback(metadata, error)"},
    {"relative_offset", T_PYSSIZET, offsetof(RecordHandle, relative_offset), 0, NULL},
    {"timestamp", T_LONGLONG, offsetof(RecordHandle, timestamp), 0, NULL},
    {"key_size", T_PYSSIZET, offsetof(RecordHandle, key_size), 0, NULL},
    {"value_size", T_PYSSIZET, offsetof(RecordHandle, value_size), 0, NULL},
    {"_md", T_OBJECT, offsetof(RecordHandle, md), 0, "the RecordMetadata once read"},
    {"_callbacks", T_OBJECT, offsetof(RecordHandle, callbacks), 0, "done callbacks"},
    {"_cancelled", T_OBJECT, offsetof(RecordHandle, cancelled), 0, "(msg,) once cancelled"},
    {NULL},
};

static PyMethodDef RecordHandle_methods[] = {
    {"done", (PyCFunction)RecordHandle_done, METH_NOARGS,
     "done() -> whether the record is acknowledged, failed, or this handle cancelled"},
    {"result", (PyCFunction)RecordHandle_result, METH_NOARGS,
     "result() -> the record's RecordMetadata; raises its error, CancelledError, or "
     "InvalidStateError while pending"},
    {"exception", (PyCFunction)RecordHandle_exception, METH_NOARGS,
     "exception() -> the record's error or None"},
    {"_metadata", (PyCFunction)RecordHandle_metadata, METH_NOARGS,
     "_metadata() -> the RecordMetadata of a final batch's record (built once)"},
    {NULL},
};

static PyType_Slot RecordHandle_slots[] = {
    {Py_tp_new, RecordHandle_new},
    {Py_tp_dealloc, RecordHandle_dealloc},
    {Py_tp_members, RecordHandle_members},
    {Py_tp_methods, RecordHandle_methods},
    {Py_am_await, RecordHandle_await},
    {Py_tp_doc, "The handle send() returns: await it for the record's RecordMetadata."},
    {0, NULL},
};

static PyType_Spec RecordHandle_spec = {
    "aioproducer.RecordFuture",
    sizeof(RecordHandle),
    0,
    Py_TPFLAGS_DEFAULT, /* no GC, no subclasses: see above */
    RecordHandle_slots,
};

/* -- AwaitIter: what `await handle` iterates ------------------------------------------------ */

/*
 * A written record's metadata is handed back at once (PYGEN_RETURN: no generator, no
 * StopIteration).  While the record is pending, each send yields a private waiter future of
 * the batch's completion to the awaiting task (as `yield from future` would, with its
 * _asyncio_future_blocking set), then checks again once woken: the waiter resolves when the
 * batch completes, or earlier when the handle is cancelled or the batch split (the record
 * then waits on its new batch).  Cancelling the awaiting task cancels only its own waiter;
 * the CancelledError is raised at the await (this iterator has no throw()).  A failed or
 * cancelled record raises what result() raises.  This is PyRecordFuture.__await__ in C.
 */
static PySendResult AwaitIter_send(AwaitIter *self, PyObject *arg, PyObject **presult)
{
    if (self->result != NULL) {
        *presult = self->result;
        self->result = NULL;
        return PYGEN_RETURN;
    }
    RecordHandle *h = self->handle;
    if (h == NULL) {
        *presult = Py_NewRef(Py_None);
        return PYGEN_RETURN;
    }
    PyObject *res = NULL;
    int r = written(h);
    if (r == 1) {
        res = Py_NewRef(h->md);
    } else if (r == 0) {
        PyObject *done = RecordHandle_done(h, NULL);
        if (done == NULL)
            goto error;
        int is_done = done == Py_True;
        Py_DECREF(done);
        if (is_done) {
            res = PyObject_CallMethodNoArgs((PyObject *)h, s_py_result);
        } else {
            PyObject *completion = PyObject_GetAttr(h->batch, s_completion);
            if (completion == NULL)
                goto error;
            PyObject *waiter = PyObject_CallMethodNoArgs(completion, s_wait_record);
            Py_DECREF(completion);
            if (waiter == NULL)
                goto error;
            if (PyObject_SetAttr(waiter, s_blocking, Py_True) < 0) {
                Py_DECREF(waiter);
                goto error;
            }
            *presult = waiter;
            return PYGEN_NEXT;
        }
    }
    Py_CLEAR(self->handle);
    if (res == NULL) {
        *presult = NULL;
        return PYGEN_ERROR;
    }
    *presult = res;
    return PYGEN_RETURN;
error:
    Py_CLEAR(self->handle);
    *presult = NULL;
    return PYGEN_ERROR;
}

/* The same through the iterator protocol (used when a tracer runs): a yield is returned, a
 * return raised as StopIteration(result), made as an instance so that a tuple result is not
 * taken for the exception's arguments. */
static PyObject *AwaitIter_next(AwaitIter *self)
{
    PyObject *res;
    PySendResult how = AwaitIter_send(self, Py_None, &res);
    if (how != PYGEN_RETURN)
        return res; /* the yielded waiter, or NULL with the error set */
    if (res == Py_None) {
        Py_DECREF(res);
        return NULL;
    }
    PyObject *stop = PyObject_CallOneArg(PyExc_StopIteration, res);
    Py_DECREF(res);
    if (stop != NULL) {
        PyErr_SetObject(PyExc_StopIteration, stop);
        Py_DECREF(stop);
    }
    return NULL;
}

static void AwaitIter_dealloc(AwaitIter *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    Py_CLEAR(self->result);
    Py_CLEAR(self->handle);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyType_Slot AwaitIter_slots[] = {
    {Py_tp_dealloc, AwaitIter_dealloc},
    {Py_tp_iter, PyObject_SelfIter},
    {Py_tp_iternext, AwaitIter_next},
    {Py_am_send, AwaitIter_send},
    {0, NULL},
};

static PyType_Spec AwaitIter_spec = {
    "aioproducer._records._speedups.AwaitIter",
    sizeof(AwaitIter),
    0,
    Py_TPFLAGS_DEFAULT,
    AwaitIter_slots,
};

/* bind_handles(metadata_type): the RecordMetadata type the handles build (a NamedTuple). */
PyObject *aiop_bind_handles(PyObject *module, PyObject *type)
{
    if (!PyType_Check(type) || !PyType_IsSubtype((PyTypeObject *)type, &PyTuple_Type) ||
        ((PyTypeObject *)type)->tp_basicsize != PyTuple_Type.tp_basicsize) {
        PyErr_SetString(PyExc_TypeError, "bind_handles: a tuple subclass without slots expected");
        return NULL;
    }
    Py_INCREF(type);
    Py_XSETREF(MetadataType, (PyTypeObject *)type);
    Py_RETURN_NONE;
}

static int intern(PyObject **slot, const char *s)
{
    if (*slot == NULL)
        *slot = PyUnicode_InternFromString(s);
    return *slot == NULL ? -1 : 0;
}

static int add_type(PyObject *m, PyTypeObject **slot, PyType_Spec *spec, const char *name)
{
    Py_XSETREF(*slot, (PyTypeObject *)PyType_FromSpec(spec));
    if (*slot == NULL)
        return -1;
    if (name == NULL)
        return 0;
    Py_INCREF(*slot);
    if (PyModule_AddObject(m, name, (PyObject *)*slot) < 0) {
        Py_DECREF(*slot);
        return -1;
    }
    return 0;
}

/* Called by the module's init: the types, and the attribute names read here. */
int aiop_init_handles(PyObject *m)
{
    if (intern(&s_final, "final") < 0 || intern(&s_error, "error") < 0 ||
        intern(&s_record_errors, "record_errors") < 0 || intern(&s_tp, "tp") < 0 ||
        intern(&s_base_offset, "base_offset") < 0 ||
        intern(&s_log_append_time, "log_append_time") < 0 ||
        intern(&s_py_result, "_py_result") < 0 || intern(&s_py_exception, "_py_exception") < 0 ||
        intern(&s_py_metadata, "_py_metadata") < 0 || intern(&s_completion, "completion") < 0 ||
        intern(&s_wait_record, "wait_record") < 0 ||
        intern(&s_blocking, "_asyncio_future_blocking") < 0 ||
        intern(&s_py_await, "_py_await") < 0 || intern(&s_native_await, "native_await") < 0)
        return -1;
    if (add_type(m, &RecordHandleType, &RecordHandle_spec, "RecordHandle") < 0 ||
        add_type(m, &AwaitIterType, &AwaitIter_spec, NULL) < 0)
        return -1;
    return 0;
}
