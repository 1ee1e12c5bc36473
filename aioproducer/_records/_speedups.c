/*
 * aioproducer._records._speedups: the compiled record appender.
 *
 * RecordBuffer is the per-record hot path of RecordBatchBuilder (batch.py) in C: it holds the
 * uncompressed records of one RecordBatch v2 in a bytearray and appends one record per call,
 * with the same room check, encoding and results as the pure-Python _PyRecordBuffer in
 * batch.py.  Everything else (sealing, compression, stamping, the CRC) stays in Python, where
 * it runs once per batch.
 *
 * What it buys: ~3x the pure-Python appender on 100-byte records (benchmarks/
 * bench_batch_builder.py).  Setting AIOPRODUCER_PURE_PYTHON=1 makes batch.py ignore this module,
 * and the unit tests run both appenders against the same cases.
 *
 * Record layout (KIP-98): length varint | attributes int8 | timestampDelta varlong |
 * offsetDelta varint | key length varint (-1 = null) | key | value length varint | value |
 * header count varint | per header: key length varint | key (UTF-8) | value length varint
 * (-1 = null) | value.  Every varint here is zigzag-encoded.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

static PyObject *BadRecordError = NULL;

typedef struct {
    PyObject_HEAD
    PyObject *buf;      /* bytearray: the encoded records */
    PyObject *payload;  /* NULL/None while open; the sealed payload once sealed */
    Py_ssize_t count;
    long long base_ts;
    long long max_ts;
    Py_ssize_t hard;    /* record bytes the batch may never exceed */
    Py_ssize_t soft;    /* record bytes past which a non-empty batch is full */
} RecordBuffer;

/* -- zigzag varints ------------------------------------------------------------------------- */

static inline uint64_t zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }

static inline Py_ssize_t varint_size(int64_t v)
{
    uint64_t z = zigzag(v);
    Py_ssize_t n = 1;
    while (z > 0x7F) {
        z >>= 7;
        n++;
    }
    return n;
}

static inline char *write_varint(char *p, int64_t v)
{
    uint64_t z = zigzag(v);
    while (z > 0x7F) {
        *p++ = (char)((z & 0x7F) | 0x80);
        z >>= 7;
    }
    *p++ = (char)z;
    return p;
}

/* -- key/value bytes ------------------------------------------------------------------------ */

typedef struct {
    const char *data;
    Py_ssize_t len; /* -1 for None */
    Py_buffer view;
    int has_view;
} Bytes;

static int get_bytes(PyObject *obj, Bytes *out, const char *what)
{
    out->has_view = 0;
    if (obj == Py_None) {
        out->data = NULL;
        out->len = -1;
        return 0;
    }
    if (PyBytes_CheckExact(obj)) {
        out->data = PyBytes_AS_STRING(obj);
        out->len = PyBytes_GET_SIZE(obj);
        return 0;
    }
    if (PyObject_GetBuffer(obj, &out->view, PyBUF_SIMPLE) < 0) {
        PyErr_Format(PyExc_TypeError, "record %s must be bytes-like or None, not %.100s", what,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    out->has_view = 1;
    out->data = (const char *)out->view.buf;
    out->len = out->view.len;
    return 0;
}

static void drop_bytes(Bytes *b)
{
    if (b->has_view) {
        PyBuffer_Release(&b->view);
        b->has_view = 0;
    }
}

/* -- headers -------------------------------------------------------------------------------- */

/* The encoded size of a headers sequence of (str, bytes | None) pairs; -1 with an exception. */
static Py_ssize_t headers_size(PyObject *seq)
{
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    Py_ssize_t size = varint_size(n);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *h = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyTuple_Check(h) || PyTuple_GET_SIZE(h) != 2 || !PyUnicode_Check(PyTuple_GET_ITEM(h, 0))) {
            PyErr_Format(PyExc_TypeError, "a header must be a (str, bytes | None) pair, got %R", h);
            return -1;
        }
        Py_ssize_t klen;
        if (PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(h, 0), &klen) == NULL)
            return -1;
        size += varint_size(klen) + klen;
        PyObject *v = PyTuple_GET_ITEM(h, 1);
        if (v == Py_None) {
            size += 1;
        } else {
            Bytes b;
            if (get_bytes(v, &b, "header value") < 0)
                return -1;
            size += varint_size(b.len) + b.len;
            drop_bytes(&b);
        }
    }
    return size;
}

static char *write_headers(char *p, PyObject *seq)
{
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    p = write_varint(p, n);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *h = PySequence_Fast_GET_ITEM(seq, i);
        Py_ssize_t klen;
        const char *k = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(h, 0), &klen); /* cached */
        p = write_varint(p, klen);
        memcpy(p, k, (size_t)klen);
        p += klen;
        PyObject *v = PyTuple_GET_ITEM(h, 1);
        if (v == Py_None) {
            *p++ = 1; /* zigzag(-1) */
        } else {
            Bytes b;
            if (get_bytes(v, &b, "header value") < 0) /* checked by headers_size already */
                return NULL;
            p = write_varint(p, b.len);
            memcpy(p, b.data, (size_t)b.len);
            p += b.len;
            drop_bytes(&b);
        }
    }
    return p;
}

/* -- RecordBuffer.try_append ---------------------------------------------------------------- */

/* Append one record; returns its offset delta, -1 when it does not fit, -2 with an exception. */
static Py_ssize_t append_impl(RecordBuffer *self, PyObject *ts_obj, PyObject *key_obj,
                              PyObject *value_obj, PyObject *headers)
{
    if (self->payload != NULL && self->payload != Py_None)
        return -1;
    if (!PyByteArray_CheckExact(self->buf)) {
        PyErr_SetString(PyExc_TypeError, "RecordBuffer._buf must be a bytearray");
        return -2;
    }
    long long ts = PyLong_AsLongLong(ts_obj);
    if (ts == -1 && PyErr_Occurred())
        return -2;
    if (ts < 0) {
        PyErr_Format(BadRecordError, "invalid negative timestamp %lld (must be >= 0 ms)", ts);
        return -2;
    }
    Py_ssize_t od = self->count;
    int64_t td = od ? (int64_t)((uint64_t)ts - (uint64_t)self->base_ts) : 0;

    PyObject *hseq = NULL;
    Py_ssize_t hsize = 1;
    if (headers != Py_None) {
        hseq = PySequence_Fast(headers, "headers must be a sequence of (str, bytes | None)");
        if (hseq == NULL)
            return -2;
        if (PySequence_Fast_GET_SIZE(hseq) == 0) {
            Py_CLEAR(hseq);
        } else {
            hsize = headers_size(hseq);
            if (hsize < 0) {
                Py_DECREF(hseq);
                return -2;
            }
        }
    }

    Bytes key, value;
    if (get_bytes(key_obj, &key, "key") < 0) {
        Py_XDECREF(hseq);
        return -2;
    }
    if (get_bytes(value_obj, &value, "value") < 0) {
        drop_bytes(&key);
        Py_XDECREF(hseq);
        return -2;
    }
    Py_ssize_t klen = key.len < 0 ? 0 : key.len;
    Py_ssize_t vlen = value.len < 0 ? 0 : value.len;
    Py_ssize_t body = 1 + varint_size(td) + varint_size(od) + varint_size(key.len) + klen +
                      varint_size(value.len) + vlen + hsize;
    Py_ssize_t start = PyByteArray_GET_SIZE(self->buf);
    Py_ssize_t n = start + varint_size(body) + body;
    Py_ssize_t result = -2;
    if (n > self->hard || (od && n > self->soft)) {
        result = -1;
        goto done;
    }
    if (PyByteArray_Resize(self->buf, n) < 0)
        goto done;
    char *p = PyByteArray_AS_STRING(self->buf) + start;
    p = write_varint(p, body);
    *p++ = 0; /* record attributes: unused */
    p = write_varint(p, td);
    p = write_varint(p, od);
    p = write_varint(p, key.len);
    if (klen) {
        memcpy(p, key.data, (size_t)klen);
        p += klen;
    }
    p = write_varint(p, value.len);
    if (vlen) {
        memcpy(p, value.data, (size_t)vlen);
        p += vlen;
    }
    if (hseq == NULL) {
        *p++ = 0;
    } else if ((p = write_headers(p, hseq)) == NULL) {
        PyByteArray_Resize(self->buf, start); /* undo: cannot fail when shrinking */
        goto done;
    }
    if (od == 0)
        self->base_ts = ts;
    if (ts > self->max_ts)
        self->max_ts = ts;
    self->count = od + 1;
    result = od;
done:
    drop_bytes(&key);
    drop_bytes(&value);
    Py_XDECREF(hseq);
    return result;
}

static PyObject *RecordBuffer_try_append(RecordBuffer *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 3 || nargs > 4) {
        PyErr_SetString(PyExc_TypeError, "try_append(timestamp_ms, key, value, headers=None)");
        return NULL;
    }
    Py_ssize_t od = append_impl(self, args[0], args[1], args[2], nargs == 4 ? args[3] : Py_None);
    return od == -2 ? NULL : PyLong_FromSsize_t(od);
}

/* -- RecordHandle: the per-record future, without GC tracking ------------------------------- */

/*
 * One per record, alive while the record is in flight: tens of thousands at once under load.
 * A Python object with __slots__ is tracked by the cyclic GC, and a full collection walked
 * them all (an 11-23 ms event-loop stall, measured with 1 MiB zstd batches).  This type is
 * not tracked; no cycle can outlive a batch through it because ProducerBatch.complete() drops
 * the batch's handle list and each handle's callback.  Its methods (done, result, __await__,
 * ...) are attached from aioproducer/_core/batch.py, shared with the pure-Python handle.
 */
typedef struct {
    PyObject_HEAD
    PyObject *batch;
    PyObject *callback;
    Py_ssize_t relative_offset;
    long long timestamp;
    Py_ssize_t key_size;
    Py_ssize_t value_size;
} RecordHandle;

static PyTypeObject *RecordHandleType = NULL;
static PyObject *str_handles = NULL;

static PyObject *new_handle(PyObject *batch, Py_ssize_t od, long long ts, Py_ssize_t ksize,
                            Py_ssize_t vsize, PyObject *callback)
{
    RecordHandle *h = PyObject_New(RecordHandle, RecordHandleType);
    if (h == NULL)
        return NULL;
    Py_INCREF(batch);
    h->batch = batch;
    Py_INCREF(callback);
    h->callback = callback;
    h->relative_offset = od;
    h->timestamp = ts;
    h->key_size = ksize;
    h->value_size = vsize;
    return (PyObject *)h;
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
    return new_handle(batch, od, ts, ksize, vsize, callback);
}

static void RecordHandle_dealloc(RecordHandle *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    Py_CLEAR(self->batch);
    Py_CLEAR(self->callback);
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
    {NULL},
};

static PyType_Slot RecordHandle_slots[] = {
    {Py_tp_new, RecordHandle_new},
    {Py_tp_dealloc, RecordHandle_dealloc},
    {Py_tp_members, RecordHandle_members},
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

/* append_record(batch, timestamp_ms, key, value, headers, callback) -> handle or None:
 * try_append, then the record's handle, appended to batch.handles. */
static PyObject *RecordBuffer_append_record(RecordBuffer *self, PyObject *const *args,
                                            Py_ssize_t nargs)
{
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError,
                        "append_record(batch, timestamp_ms, key, value, headers, callback)");
        return NULL;
    }
    Py_ssize_t od = append_impl(self, args[1], args[2], args[3], args[4]);
    if (od == -2)
        return NULL;
    if (od == -1)
        Py_RETURN_NONE;
    PyObject *k = args[2], *v = args[3];
    Py_ssize_t ksize = k == Py_None ? -1 : PyObject_Length(k);
    Py_ssize_t vsize = v == Py_None ? -1 : PyObject_Length(v);
    long long ts = PyLong_AsLongLong(args[1]); /* an int >= 0: checked by append_impl */
    PyObject *h = new_handle(args[0], od, ts, ksize, vsize, args[5]);
    if (h == NULL)
        return NULL;
    PyObject *handles = PyObject_GetAttr(args[0], str_handles);
    if (handles == NULL || PyList_Append(handles, h) < 0) {
        Py_XDECREF(handles);
        Py_DECREF(h);
        return NULL;
    }
    Py_DECREF(handles);
    return h;
}

static PyObject *RecordBuffer_is_full(RecordBuffer *self, PyObject *unused)
{
    if ((self->payload != NULL && self->payload != Py_None) ||
        (self->buf != NULL && PyByteArray_GET_SIZE(self->buf) >= self->soft))
        Py_RETURN_TRUE;
    Py_RETURN_FALSE;
}

/* -- type boilerplate ----------------------------------------------------------------------- */

static PyObject *RecordBuffer_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    RecordBuffer *self = (RecordBuffer *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->buf = PyByteArray_FromStringAndSize(NULL, 0);
    if (self->buf == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    self->payload = NULL;
    self->count = 0;
    self->base_ts = 0;
    self->max_ts = -1;
    self->hard = 0;
    self->soft = 0;
    return (PyObject *)self;
}

static int RecordBuffer_traverse(RecordBuffer *self, visitproc visit, void *arg)
{
    Py_VISIT(self->buf);
    Py_VISIT(self->payload);
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static int RecordBuffer_clear(RecordBuffer *self)
{
    Py_CLEAR(self->buf);
    Py_CLEAR(self->payload);
    return 0;
}

static void RecordBuffer_dealloc(RecordBuffer *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    RecordBuffer_clear(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *RecordBuffer_get_buf(RecordBuffer *self, void *closure)
{
    if (self->buf == NULL)
        return PyByteArray_FromStringAndSize(NULL, 0);
    Py_INCREF(self->buf);
    return self->buf;
}

static int RecordBuffer_set_buf(RecordBuffer *self, PyObject *value, void *closure)
{
    if (value == NULL || !PyByteArray_CheckExact(value)) {
        PyErr_SetString(PyExc_TypeError, "_buf must be a bytearray");
        return -1;
    }
    Py_INCREF(value);
    Py_XSETREF(self->buf, value);
    return 0;
}

static PyGetSetDef RecordBuffer_getset[] = {
    {"_buf", (getter)RecordBuffer_get_buf, (setter)RecordBuffer_set_buf, "encoded records", NULL},
    {NULL},
};

static PyMemberDef RecordBuffer_members[] = {
    {"_payload", T_OBJECT, offsetof(RecordBuffer, payload), 0, "sealed payload or None"},
    {"_count", T_PYSSIZET, offsetof(RecordBuffer, count), 0, "records appended"},
    {"_base_ts", T_LONGLONG, offsetof(RecordBuffer, base_ts), 0, "first record's timestamp"},
    {"_max_ts", T_LONGLONG, offsetof(RecordBuffer, max_ts), 0, "largest timestamp"},
    {"_hard", T_PYSSIZET, offsetof(RecordBuffer, hard), 0, "hard limit of record bytes"},
    {"_soft", T_PYSSIZET, offsetof(RecordBuffer, soft), 0, "soft limit of record bytes"},
    {NULL},
};

static PyMethodDef RecordBuffer_methods[] = {
    {"try_append", (PyCFunction)(void (*)(void))RecordBuffer_try_append, METH_FASTCALL,
     "try_append(timestamp_ms, key, value, headers=None) -> offset delta, or -1 if it does not "
     "fit"},
    {"append_record", (PyCFunction)(void (*)(void))RecordBuffer_append_record, METH_FASTCALL,
     "append_record(batch, timestamp_ms, key, value, headers, callback) -> the record's handle "
     "(appended to batch.handles), or None if it does not fit"},
    {"is_full", (PyCFunction)RecordBuffer_is_full, METH_NOARGS,
     "is_full() -> whether the batch takes no more records (sealed, or at its soft limit)"},
    {NULL},
};

static PyType_Slot RecordBuffer_slots[] = {
    {Py_tp_new, RecordBuffer_new},
    {Py_tp_dealloc, RecordBuffer_dealloc},
    {Py_tp_traverse, RecordBuffer_traverse},
    {Py_tp_clear, RecordBuffer_clear},
    {Py_tp_methods, RecordBuffer_methods},
    {Py_tp_members, RecordBuffer_members},
    {Py_tp_getset, RecordBuffer_getset},
    {Py_tp_doc, "The compiled record appender behind RecordBatchBuilder."},
    {0, NULL},
};

static PyType_Spec RecordBuffer_spec = {
    "aioproducer._records._speedups.RecordBuffer",
    sizeof(RecordBuffer),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    RecordBuffer_slots,
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT, "aioproducer._records._speedups",
    "The compiled record appender (see batch.py).", -1, NULL,
};

PyMODINIT_FUNC PyInit__speedups(void)
{
    PyObject *errors = PyImport_ImportModule("aioproducer.errors");
    if (errors == NULL)
        return NULL;
    BadRecordError = PyObject_GetAttrString(errors, "BadRecordError");
    Py_DECREF(errors);
    if (BadRecordError == NULL)
        return NULL;
    PyObject *m = PyModule_Create(&speedups_module);
    if (m == NULL)
        return NULL;
    PyObject *type = PyType_FromSpec(&RecordBuffer_spec);
    if (type == NULL || PyModule_AddObject(m, "RecordBuffer", type) < 0) {
        Py_XDECREF(type);
        Py_DECREF(m);
        return NULL;
    }
    str_handles = PyUnicode_InternFromString("handles");
    RecordHandleType = (PyTypeObject *)PyType_FromSpec(&RecordHandle_spec);
    if (str_handles == NULL || RecordHandleType == NULL) {
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(RecordHandleType);
    if (PyModule_AddObject(m, "RecordHandle", (PyObject *)RecordHandleType) < 0) {
        Py_DECREF(RecordHandleType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
