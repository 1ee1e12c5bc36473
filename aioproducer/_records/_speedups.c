/*
 * aioproducer._records._speedups: the compiled record appender.
 *
 * RecordBuffer is the per-record hot path of RecordBatchBuilder (record_batch.py) in C: it holds the
 * uncompressed records of one RecordBatch v2 in a bytearray and appends one record per call,
 * with the same room check, encoding and results as the pure-Python _PyRecordBuffer in
 * py_appender.py.  Everything else (sealing, compression, stamping, the CRC) stays in Python, where
 * it runs once per batch.
 *
 * What it buys: ~3x the pure-Python appender on 100-byte records (benchmarks/
 * bench_batch_builder.py).  Setting AIOPRODUCER_PURE_PYTHON=1 makes record_batch.py ignore this module,
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
#include <limits.h>
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
    Py_ssize_t room;    /* record bytes the batch's buffer memory covers (PY_SSIZE_T_MAX: no
                         * limit of its own; buffer_memory_allocation_strategy="incremental") */
    Py_ssize_t need;    /* the last refused append's record bytes when only `room` refused it
                         * (more memory, not a new batch, would take it); else 0 */
    Py_ssize_t initial; /* bytes of the buffer's first allocation (0: the first record's) */
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

/* -- taking a record's inputs --------------------------------------------------------------- */

/*
 * An append first takes everything it needs from its arguments (the timestamp, each buffer,
 * the headers), then writes the record without running any Python code, then releases the
 * buffers.  Each buffer is requested once and held until its bytes are copied: an exporter may
 * hand out a different buffer on every request, and taking a buffer can run arbitrary code
 * (a Python-level __buffer__, or a C exporter calling back), which may mutate the headers list,
 * append to this batch or seal it; so the batch's state is read only once everything is taken,
 * the headers are read from a tuple snapshot (unless no code can run while they are read), and
 * every write is bounds-checked.
 */

/* The type's __name__ (tp_name after its last dot), for error messages. */
static const char *type_name(PyObject *obj)
{
    const char *name = Py_TYPE(obj)->tp_name;
    const char *dot = strrchr(name, '.');
    return dot ? dot + 1 : name;
}

/* One key, value or header value. */
typedef struct {
    const char *data;  /* its bytes, when contiguous */
    Py_ssize_t len;    /* bytes; -1 for None */
    int held;          /* view holds a buffer, to release */
    int contiguous;    /* 0: copied from view in C order (PyBuffer_ToContiguous) */
    Py_buffer view;
} Bytes;

static void drop_bytes(Bytes *b)
{
    if (b->held) {
        b->held = 0;
        PyBuffer_Release(&b->view);
    }
}

/* A non-contiguous buffer's shape must account for exactly len bytes before PyBuffer_ToContiguous
 * copies len bytes by it. */
static int layout_matches(const Py_buffer *v)
{
    if (v->ndim <= 0 || v->ndim > PyBUF_MAX_NDIM || v->shape == NULL || v->strides == NULL ||
        v->itemsize <= 0)
        return 0;
    Py_ssize_t n = v->itemsize;
    for (int i = 0; i < v->ndim; i++) {
        Py_ssize_t dim = v->shape[i];
        if (dim < 0 || (dim && n > PY_SSIZE_T_MAX / dim))
            return 0;
        n *= dim;
    }
    return n == v->len;
}

/* None, bytes, or any object exporting a buffer; -1 with a TypeError or ValueError (or the
 * exporter's own error, as memoryview(obj) would raise it). */
static int get_bytes(PyObject *obj, Bytes *out, const char *what)
{
    out->held = 0;
    out->contiguous = 1;
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
    if (!PyObject_CheckBuffer(obj)) {
        PyErr_Format(PyExc_TypeError, "record %s must be bytes-like or None, not %.100s", what,
                     type_name(obj));
        return -1;
    }
    /* Strides and suboffsets allowed, as memoryview(obj) takes it: any buffer's bytes in C order. */
    if (PyObject_GetBuffer(obj, &out->view, PyBUF_FULL_RO) < 0) {
        if (!PyErr_Occurred()) /* a broken exporter */
            PyErr_Format(PyExc_TypeError, "record %s: its buffer could not be taken", what);
        return -1;
    }
    out->held = 1;
    out->data = (const char *)out->view.buf;
    out->len = out->view.len;
    if (out->len < 0) {
        PyErr_Format(PyExc_ValueError, "record %s: its buffer has an invalid length %zd", what,
                     out->len);
        goto fail;
    }
    if (out->data == NULL && out->len > 0) {
        PyErr_Format(PyExc_ValueError, "record %s: its buffer of %zd bytes has no memory", what,
                     out->len);
        goto fail;
    }
    if (!PyBuffer_IsContiguous(&out->view, 'C')) {
        if (!layout_matches(&out->view)) {
            PyErr_Format(PyExc_ValueError,
                         "record %s: its buffer's shape does not match its length %zd", what,
                         out->len);
            goto fail;
        }
        out->contiguous = 0;
    }
    return 0;
fail:
    drop_bytes(out);
    return -1;
}

/* A timestamp: an int (or its __index__) in [0, 2**63). */
static int check_timestamp(PyObject *i, long long *out)
{
    int overflow;
    long long ts = PyLong_AsLongLongAndOverflow(i, &overflow);
    if (ts == -1 && PyErr_Occurred())
        return -1;
    if (overflow < 0 || (!overflow && ts < 0)) {
        PyErr_Format(BadRecordError, "invalid negative timestamp %R (must be >= 0 ms)", i);
        return -1;
    }
    if (overflow > 0) {
        PyErr_Format(BadRecordError, "invalid timestamp %R (must be < 2**63 ms)", i);
        return -1;
    }
    *out = ts;
    return 0;
}

/* Now, in milliseconds since the epoch: what time.time_ns() // 1_000_000 gives, from the same
 * clock, without the two ints and the division per record. */
static int now_ms(long long *out)
{
#if PY_VERSION_HEX >= 0x030D0000
    PyTime_t ns;
    if (PyTime_Time(&ns) < 0)
        return -1;
    *out = (long long)(ns >= 0 ? ns / 1000000 : -((-ns + 999999) / 1000000));
#else
    *out = (long long)_PyTime_AsMilliseconds(_PyTime_GetSystemClock(), _PyTime_ROUND_FLOOR);
#endif
    return 0;
}

/* A record's timestamp: an int in range, or None for now (send() without timestamp_ms). */
static int get_timestamp(PyObject *obj, long long *out)
{
    if (obj == Py_None)
        return now_ms(out);
    if (PyLong_CheckExact(obj))
        return check_timestamp(obj, out);
    PyObject *i = PyNumber_Index(obj);
    if (i == NULL)
        return -1;
    int rc = check_timestamp(i, out);
    Py_DECREF(i);
    return rc;
}

typedef struct {
    const char *key; /* UTF-8, owned by the key (a str held by the snapshot) */
    Py_ssize_t klen;
    Bytes value;
} Header;

#define SMALL_HEADERS 8

/* Everything one append takes from its arguments, held until rec_drop(). */
typedef struct {
    long long ts;
    Bytes key;
    Bytes value;
    PyObject *hseq;    /* the headers (see take_headers); NULL when there are none */
    Header *hs;        /* hseq's keys and values: small, or PyMem */
    Py_ssize_t nh;     /* entries of hs holding a value to drop */
    Py_ssize_t hsize;  /* the encoded headers' size (1: a zero count) */
    Header small[SMALL_HEADERS];
} Rec;

static void rec_drop(Rec *r)
{
    drop_bytes(&r->key);
    drop_bytes(&r->value);
    for (Py_ssize_t i = 0; i < r->nh; i++)
        drop_bytes(&r->hs[i].value);
    r->nh = 0;
    if (r->hs != r->small)
        PyMem_Free(r->hs);
    r->hs = r->small;
    Py_CLEAR(r->hseq);
}

/* Whether every header value of the list is None or bytes (well-formed or not: an error stops the
 * append anyway): then taking the headers runs no code, and the list needs no snapshot. */
static int plain_values(PyObject *list)
{
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++) {
        PyObject *h = PyList_GET_ITEM(list, i);
        if (PyTuple_Check(h) && PyTuple_GET_SIZE(h) == 2) {
            PyObject *v = PyTuple_GET_ITEM(h, 1);
            if (v != Py_None && !PyBytes_CheckExact(v))
                return 0;
        }
    }
    return 1;
}

static const char headers_not_a_sequence[] = "headers must be a sequence of (str, bytes | None)";

static int take_headers(Rec *r, PyObject *headers)
{
    PyObject *seq;
    if (headers == Py_None)
        return 0;
    if (PyTuple_CheckExact(headers)) {
        if (PyTuple_GET_SIZE(headers) == 0)
            return 0;
        Py_INCREF(headers);
        seq = headers;
    } else if (PyList_CheckExact(headers)) {
        if (PyList_GET_SIZE(headers) == 0)
            return 0;
        if (plain_values(headers)) { /* nothing below runs code: the list stays as it is */
            Py_INCREF(headers);
            seq = headers;
        } else {
            seq = PyList_AsTuple(headers);
        }
    } else {
        int any = PyObject_IsTrue(headers); /* false (an empty deque, 0): no headers */
        if (any <= 0)
            return any;
        PyObject *it = PyObject_GetIter(headers);
        if (it == NULL) {
            if (PyErr_ExceptionMatches(PyExc_TypeError))
                PyErr_SetString(PyExc_TypeError, headers_not_a_sequence);
            return -1;
        }
        seq = PySequence_Tuple(it);
        Py_DECREF(it);
    }
    if (seq == NULL)
        return -1;
    r->hseq = seq;
    PyObject **items = PySequence_Fast_ITEMS(seq); /* a tuple, or a list that cannot change */
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > SMALL_HEADERS && (r->hs = PyMem_New(Header, n)) == NULL) {
        r->hs = r->small;
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t size = varint_size(n);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *h = items[i];
        if (!PyTuple_Check(h) || PyTuple_GET_SIZE(h) != 2 ||
            !PyUnicode_Check(PyTuple_GET_ITEM(h, 0))) {
            PyErr_Format(PyExc_TypeError, "a header must be a (str, bytes | None) pair, got %R", h);
            return -1;
        }
        Header *e = &r->hs[i];
        e->key = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(h, 0), &e->klen);
        if (e->key == NULL)
            return -1;
        if (get_bytes(PyTuple_GET_ITEM(h, 1), &e->value, "header value") < 0)
            return -1;
        r->nh = i + 1;
        size += varint_size(e->klen) + e->klen + varint_size(e->value.len) +
                (e->value.len < 0 ? 0 : e->value.len);
    }
    r->hsize = size;
    return 0;
}

/* Take the record's inputs: 0, or -1 with an exception and nothing held. */
static int rec_take(Rec *r, PyObject *ts, PyObject *key, PyObject *value, PyObject *headers)
{
    r->key.held = r->value.held = 0;
    r->hseq = NULL;
    r->hs = r->small;
    r->nh = 0;
    r->hsize = 1;
    if (get_timestamp(ts, &r->ts) < 0 || get_bytes(key, &r->key, "key") < 0 ||
        get_bytes(value, &r->value, "value") < 0 || take_headers(r, headers) < 0) {
        rec_drop(r);
        return -1;
    }
    return 0;
}

/* -- writing it ----------------------------------------------------------------------------- */

/* Each writer stops (NULL) rather than write at or past end. */
static inline char *put_varint(char *p, const char *end, int64_t v)
{
    uint64_t z = zigzag(v);
    while (z > 0x7F) {
        if (p >= end)
            return NULL;
        *p++ = (char)((z & 0x7F) | 0x80);
        z >>= 7;
    }
    if (p >= end)
        return NULL;
    *p++ = (char)z;
    return p;
}

static inline char *put_raw(char *p, const char *end, const char *data, Py_ssize_t len)
{
    if (p == NULL || len > end - p)
        return NULL;
    if (len > 0)
        memcpy(p, data, (size_t)len);
    return p + len;
}

static inline char *put_bytes(char *p, const char *end, Bytes *b)
{
    if (p == NULL || (p = put_varint(p, end, b->len)) == NULL || b->len <= 0)
        return p;
    if (b->contiguous)
        return put_raw(p, end, b->data, b->len);
    if (b->len > end - p || PyBuffer_ToContiguous(p, &b->view, b->len, 'C') < 0)
        return NULL;
    return p + b->len;
}

/* What an append changed, to undo it. */
typedef struct {
    Py_ssize_t start;
    Py_ssize_t count;
    long long base_ts;
    long long max_ts;
} Undo;

/* Cut the buffer back to size: in place, as bytearray itself does a small shrink, so that it
 * cannot fail (no allocation) and runs no code.  Only called right after a successful resize to
 * a larger size, with no Python code run since: no export of the buffer can exist. */
static void truncate_buf(PyObject *buf, Py_ssize_t size)
{
    Py_SET_SIZE(buf, size);
    PyByteArray_AS_STRING(buf)[size] = '\0';
}

static void undo_append(RecordBuffer *self, const Undo *u)
{
    truncate_buf(self->buf, u->start);
    self->count = u->count;
    self->base_ts = u->base_ts;
    self->max_ts = u->max_ts;
}

static const char buffer_exported[] =
    "the batch's record buffer cannot grow: a buffer of it is held (a record's key, value or "
    "header value is, or views, the batch's own buffer?)";

/* Make the buffer n bytes long, growing its allocation by doubling (up to the soft limit, or
 * exactly n past it) instead of bytearray's 1/8: a 16 KiB batch of 1 KiB records was
 * reallocated, and often copied whole, on nearly every record.  Within the allocation the size
 * is set in place, as bytearray does for a small shrink; an exported buffer goes through
 * PyByteArray_Resize, which refuses it (BufferError) as before. */
static int grow_buf(RecordBuffer *self, PyObject *buf, Py_ssize_t n)
{
    PyByteArrayObject *ba = (PyByteArrayObject *)buf;
    if (ba->ob_exports == 0 && ba->ob_start == ba->ob_bytes && n < ba->ob_alloc) {
        Py_SET_SIZE(buf, n);
        ba->ob_start[n] = '\0';
        return 0;
    }
    Py_ssize_t want = n;
    Py_ssize_t limit = self->soft < self->room ? self->soft : self->room;
    if (ba->ob_exports == 0 && n < limit) {
        Py_ssize_t twice = ba->ob_alloc > PY_SSIZE_T_MAX / 2 ? PY_SSIZE_T_MAX : 2 * ba->ob_alloc;
        if (ba->ob_alloc == 0 && twice < self->initial)
            twice = self->initial; /* the first allocation: what the batch's memory covers */
        want = twice < n ? n : (twice > limit ? limit : twice);
    }
    if (PyByteArray_Resize(buf, want) < 0)
        return -1;
    if (want != n)
        truncate_buf(buf, n); /* in place: the allocation stays */
    return 0;
}

/* Append the taken record if it fits: its offset delta; -1 when it does not fit or the batch is
 * sealed; -2 with an exception.  Unless it returns >= 0, the batch is unchanged.  Runs no
 * Python code. */
static Py_ssize_t rec_write(RecordBuffer *self, Rec *r, Undo *undo)
{
    if (self->payload != NULL && self->payload != Py_None) {
        self->need = 0;
        return -1; /* sealed (maybe while the buffers were taken) */
    }
    PyObject *buf = self->buf;
    if (buf == NULL) {
        PyErr_SetString(PyExc_ValueError, "the batch's record buffer was released");
        return -2;
    }
    if (!PyByteArray_CheckExact(buf)) {
        PyErr_SetString(PyExc_TypeError, "RecordBuffer._buf must be a bytearray");
        return -2;
    }
    Py_ssize_t od = self->count;
    int64_t td = od ? (int64_t)((uint64_t)r->ts - (uint64_t)self->base_ts) : 0;
    Py_ssize_t klen = r->key.len < 0 ? 0 : r->key.len;
    Py_ssize_t vlen = r->value.len < 0 ? 0 : r->value.len;
    Py_ssize_t body = 1 + varint_size(td) + varint_size(od) + varint_size(r->key.len) + klen +
                      varint_size(r->value.len) + vlen + r->hsize;
    Py_ssize_t start = PyByteArray_GET_SIZE(buf);
    Py_ssize_t n = start + varint_size(body) + body;
    if (n > self->hard || (od && n > self->soft)) {
        self->need = 0;
        return -1;
    }
    if (od && n > self->room) {
        self->need = n; /* within batch_size, beyond the memory the batch has */
        return -1;
    }
    if (grow_buf(self, buf, n) < 0) {
        if (PyErr_ExceptionMatches(PyExc_BufferError))
            PyErr_SetString(PyExc_ValueError, buffer_exported);
        return -2;
    }
    char *p = PyByteArray_AS_STRING(buf) + start;
    const char *end = PyByteArray_AS_STRING(buf) + n;
    p = put_varint(p, end, body);
    if (p == NULL || p >= end)
        goto fail;
    *p++ = 0; /* record attributes: unused */
    p = put_varint(p, end, td);
    if (p != NULL)
        p = put_varint(p, end, od);
    p = put_bytes(p, end, &r->key);
    p = put_bytes(p, end, &r->value);
    if (p != NULL)
        p = put_varint(p, end, r->hseq == NULL ? 0 : r->nh);
    for (Py_ssize_t i = 0; p != NULL && i < r->nh; i++) {
        Header *e = &r->hs[i];
        if ((p = put_varint(p, end, e->klen)) != NULL)
            p = put_raw(p, end, e->key, e->klen);
        p = put_bytes(p, end, &e->value);
    }
    if (p != end)
        goto fail;
    undo->start = start;
    undo->count = od;
    undo->base_ts = self->base_ts;
    undo->max_ts = self->max_ts;
    if (od == 0)
        self->base_ts = r->ts;
    if (r->ts > self->max_ts)
        self->max_ts = r->ts;
    self->count = od + 1;
    return od;
fail:
    if (!PyErr_Occurred()) /* cannot happen: every size was measured on the buffers held */
        PyErr_SetString(PyExc_ValueError, "a record's size changed while it was written");
    truncate_buf(buf, start);
    return -2;
}

/* -- RecordBuffer.try_append ---------------------------------------------------------------- */

static inline int is_sealed(RecordBuffer *self)
{
    return self->payload != NULL && self->payload != Py_None;
}

static PyObject *RecordBuffer_try_append(RecordBuffer *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 3 || nargs > 4) {
        PyErr_SetString(PyExc_TypeError, "try_append(timestamp_ms, key, value, headers=None)");
        return NULL;
    }
    if (is_sealed(self))
        return PyLong_FromLong(-1);
    Rec r;
    if (rec_take(&r, args[0], args[1], args[2], nargs == 4 ? args[3] : Py_None) < 0)
        return NULL;
    Undo u;
    Py_ssize_t od = rec_write(self, &r, &u);
    PyObject *result = od == -2 ? NULL : PyLong_FromSsize_t(od);
    if (result == NULL && od >= 0)
        undo_append(self, &u);
    rec_drop(&r); /* last: releasing a buffer can run code */
    return result;
}

/* -- the record handles (_handle.c) -------------------------------------------------------- */

PyObject *aiop_new_handle(PyObject *batch, Py_ssize_t od, long long ts, Py_ssize_t ksize,
                          Py_ssize_t vsize, PyObject *callback);
PyObject *aiop_bind_handles(PyObject *module, PyObject *type);
int aiop_init_handles(PyObject *m);

static PyObject *str_handles = NULL, *str_has_callbacks = NULL;

/* append_record(batch, timestamp_ms, key, value, headers, callback) -> handle or None:
 * try_append, then the record's handle, appended to batch.handles; on any error the batch is
 * unchanged.  The handle's key_size and value_size are byte counts (-1 for None). */
static PyObject *RecordBuffer_append_record(RecordBuffer *self, PyObject *const *args,
                                            Py_ssize_t nargs)
{
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError,
                        "append_record(batch, timestamp_ms, key, value, headers, callback)");
        return NULL;
    }
    if (is_sealed(self))
        Py_RETURN_NONE;
    /* A record with a send() callback: the batch's completion reads its handles (without
     * any, it does not).  Set before the record is written, where a failure changes nothing. */
    if (args[5] != Py_None && PyObject_SetAttr(args[0], str_has_callbacks, Py_True) < 0)
        return NULL;
    /* The handle list first: once the record is written, nothing may fail but an allocation. */
    PyObject *handles = PyObject_GetAttr(args[0], str_handles);
    if (handles == NULL)
        return NULL;
    if (!PyList_Check(handles)) {
        PyErr_Format(PyExc_TypeError, "append_record: batch.handles must be a list, not %.100s",
                     type_name(handles));
        Py_DECREF(handles);
        return NULL;
    }
    Rec r;
    if (rec_take(&r, args[1], args[2], args[3], args[4]) < 0) {
        Py_DECREF(handles);
        return NULL;
    }
    Undo u;
    PyObject *h = NULL;
    Py_ssize_t od = rec_write(self, &r, &u);
    if (od >= 0) {
        h = aiop_new_handle(args[0], od, r.ts, r.key.len, r.value.len, args[5]);
        if (h == NULL || PyList_Append(handles, h) < 0) {
            undo_append(self, &u);
            Py_CLEAR(h);
        }
    } else if (od == -1) {
        h = Py_None;
        Py_INCREF(h);
    }
    rec_drop(&r);
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
    self->room = PY_SSIZE_T_MAX;
    self->need = 0;
    self->initial = 0;
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
    {"_room", T_PYSSIZET, offsetof(RecordBuffer, room), 0, "record bytes the memory covers"},
    {"_need", T_PYSSIZET, offsetof(RecordBuffer, need), 0,
     "record bytes the last append needed beyond _room (0: refused for another reason)"},
    {"_initial", T_PYSSIZET, offsetof(RecordBuffer, initial), 0, "first allocation's bytes"},
    {NULL},
};

static PyMethodDef RecordBuffer_methods[] = {
    {"try_append", (PyCFunction)(void (*)(void))RecordBuffer_try_append, METH_FASTCALL,
     "try_append(timestamp_ms, key, value, headers=None) -> offset delta, or -1 if it does not "
     "fit; timestamp_ms None: now"},
    {"append_record", (PyCFunction)(void (*)(void))RecordBuffer_append_record, METH_FASTCALL,
     "append_record(batch, timestamp_ms, key, value, headers, callback) -> the record's handle "
     "(appended to batch.handles), or None if it does not fit; timestamp_ms None: now"},
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

/* -- per-request metrics --------------------------------------------------------------------- */

static PyObject *RecordBufferType = NULL;
static PyObject *str_builder = NULL, *str_created_ms = NULL, *str_tp = NULL, *str_topic = NULL,
                *str_estimated_size = NULL;

static Py_ssize_t payload_len(PyObject *payload)
{
    if (PyBytes_CheckExact(payload))
        return PyBytes_GET_SIZE(payload);
    if (PyByteArray_CheckExact(payload))
        return PyByteArray_GET_SIZE(payload);
    return PyObject_Size(payload);
}

/* tally_batches(batches, now_ms, compressed, overhead): one pass over a produce request's
 * batches for the per-request metrics (metrics.py's ProducerMetrics.request_sent, whose pure
 * twin is _tally_py there):
 * (records, bytes, queue_ms, bytes_max, queue_max, record_size_max, ratio_sum, record_size_sum,
 *  sized_batches, topic_runs); topic_runs is a list of [topic, records, bytes, ratio_sum,
 *  batches], one per run of consecutive batches of one topic. */
static PyObject *aiop_tally_batches(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "tally_batches(batches, now_ms, compressed, overhead)");
        return NULL;
    }
    PyObject *seq = PySequence_Fast(args[0], "tally_batches: batches must be a sequence");
    if (seq == NULL)
        return NULL;
    long long now = PyLong_AsLongLong(args[1]);
    int compressed = PyObject_IsTrue(args[2]);
    long long overhead = PyLong_AsLongLong(args[3]);
    if (PyErr_Occurred() || compressed < 0) {
        Py_DECREF(seq);
        return NULL;
    }
    long long records = 0, nbytes = 0, queue = 0, bmax = LLONG_MIN, qmax = LLONG_MIN;
    double ratios = 0.0, sizes = 0.0, rmax = -Py_HUGE_VAL;
    long long sized = 0;
    PyObject *runs = PyList_New(0);
    PyObject *run_topic = NULL; /* the current run's topic (a reference of ours) */
    long long run_records = 0, run_bytes = 0, run_batches = 0;
    double run_ratios = 0.0;
    if (runs == NULL)
        goto fail;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *b = items[i];
        PyObject *handles = PyObject_GetAttr(b, str_handles);
        if (handles == NULL)
            goto fail;
        Py_ssize_t count = PyObject_Size(handles);
        Py_DECREF(handles);
        if (count < 0)
            goto fail;
        PyObject *builder = PyObject_GetAttr(b, str_builder);
        if (builder == NULL)
            goto fail;
        long long size;
        Py_ssize_t buflen = -1, paylen = -1;
        if (PyObject_TypeCheck(builder, (PyTypeObject *)RecordBufferType)) {
            RecordBuffer *rb = (RecordBuffer *)builder;
            if (rb->buf != NULL && PyByteArray_Check(rb->buf))
                buflen = PyByteArray_GET_SIZE(rb->buf);
            if (rb->payload != NULL && rb->payload != Py_None) {
                paylen = payload_len(rb->payload);
                if (paylen < 0) {
                    Py_DECREF(builder);
                    goto fail;
                }
            }
        }
        if (paylen >= 0) {
            size = overhead + paylen; /* sealed: the real size */
        }
        else { /* not sealed, or not a compiled buffer: ask the builder */
            PyObject *est = PyObject_CallMethodNoArgs(builder, str_estimated_size);
            size = est == NULL ? -1 : PyLong_AsLongLong(est);
            Py_XDECREF(est);
            if (size == -1 && PyErr_Occurred()) {
                Py_DECREF(builder);
                goto fail;
            }
        }
        double ratio = 1.0;
        long long raw = size;
        if (compressed) {
            if (buflen < 0) { /* the pure buffer: read its properties */
                PyObject *r = PyObject_GetAttrString(builder, "compression_ratio");
                PyObject *u = r == NULL ? NULL : PyObject_GetAttrString(builder, "uncompressed_size");
                ratio = u == NULL ? -1.0 : PyFloat_AsDouble(r);
                raw = u == NULL ? -1 : PyLong_AsLongLong(u);
                Py_XDECREF(r);
                Py_XDECREF(u);
                if (PyErr_Occurred()) {
                    Py_DECREF(builder);
                    goto fail;
                }
            }
            else {
                ratio = (paylen < 0 || buflen == 0) ? 1.0 : (double)paylen / (double)buflen;
                raw = overhead + buflen;
            }
        }
        Py_DECREF(builder);
        PyObject *created = PyObject_GetAttr(b, str_created_ms);
        long long c = created == NULL ? -1 : PyLong_AsLongLong(created);
        Py_XDECREF(created);
        if (c == -1 && PyErr_Occurred())
            goto fail;
        long long q = now - c;
        records += count;
        nbytes += size;
        queue += q;
        if (size > bmax)
            bmax = size;
        if (q > qmax)
            qmax = q;
        ratios += ratio;
        if (count) {
            double mean = (double)(raw - overhead) / (double)count;
            sizes += mean;
            sized += 1;
            if (mean > rmax)
                rmax = mean;
        }
        PyObject *tp = PyObject_GetAttr(b, str_tp);
        PyObject *topic = tp == NULL ? NULL : PyObject_GetAttr(tp, str_topic);
        Py_XDECREF(tp);
        if (topic == NULL)
            goto fail;
        int same = 0;
        if (run_topic != NULL) {
            same = topic == run_topic ? 1 : PyObject_RichCompareBool(topic, run_topic, Py_EQ);
            if (same < 0) {
                Py_DECREF(topic);
                goto fail;
            }
        }
        if (!same) {
            if (run_topic != NULL) {
                PyObject *row = Py_BuildValue("OLLdL", run_topic, run_records, run_bytes,
                                              run_ratios, run_batches);
                if (row == NULL || PyList_Append(runs, row) < 0) {
                    Py_XDECREF(row);
                    Py_DECREF(topic);
                    goto fail;
                }
                Py_DECREF(row);
            }
            Py_XSETREF(run_topic, topic);
            topic = NULL;
            run_records = run_bytes = run_batches = 0;
            run_ratios = 0.0;
        }
        Py_XDECREF(topic);
        run_records += count;
        run_bytes += size;
        run_ratios += ratio;
        run_batches += 1;
    }
    if (run_topic != NULL) {
        PyObject *row = Py_BuildValue("OLLdL", run_topic, run_records, run_bytes, run_ratios,
                                      run_batches);
        if (row == NULL || PyList_Append(runs, row) < 0) {
            Py_XDECREF(row);
            goto fail;
        }
        Py_DECREF(row);
        Py_CLEAR(run_topic);
    }
    Py_DECREF(seq);
    PyObject *out = Py_BuildValue("LLLLLdddLN", records, nbytes, queue, bmax, qmax, rmax, ratios,
                                  sizes, sized, runs);
    return out;
fail:
    Py_XDECREF(run_topic);
    Py_XDECREF(runs);
    Py_DECREF(seq);
    return NULL;
}

static PyMethodDef speedups_functions[] = {
    {"bind_handles", aiop_bind_handles, METH_O,
     "bind_handles(RecordMetadata): the type the record handles build their metadata as"},
    {"tally_batches", (PyCFunction)(void (*)(void))aiop_tally_batches, METH_FASTCALL,
     "tally_batches(batches, now_ms, compressed, overhead) -> a produce request's batch "
     "metrics (see ProducerMetrics.request_sent)"},
    {NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT, "aioproducer._records._speedups",
    "The compiled record appender and record handles (see record_batch.py, record_future.py).",
    -1, speedups_functions,
};

PyMODINIT_FUNC PyInit__speedups(void)
{
    PyObject *errors = PyImport_ImportModule("aioproducer.errors");
    if (errors == NULL)
        return NULL;
    Py_XSETREF(BadRecordError, PyObject_GetAttrString(errors, "BadRecordError"));
    Py_DECREF(errors);
    if (BadRecordError == NULL)
        return NULL;
    if (str_handles == NULL && (str_handles = PyUnicode_InternFromString("handles")) == NULL)
        return NULL;
    if (str_has_callbacks == NULL &&
        (str_has_callbacks = PyUnicode_InternFromString("has_callbacks")) == NULL)
        return NULL;
    if ((str_builder == NULL && (str_builder = PyUnicode_InternFromString("builder")) == NULL) ||
        (str_created_ms == NULL &&
         (str_created_ms = PyUnicode_InternFromString("created_ms")) == NULL) ||
        (str_tp == NULL && (str_tp = PyUnicode_InternFromString("tp")) == NULL) ||
        (str_topic == NULL && (str_topic = PyUnicode_InternFromString("topic")) == NULL) ||
        (str_estimated_size == NULL &&
         (str_estimated_size = PyUnicode_InternFromString("estimated_size")) == NULL))
        return NULL;
    PyObject *m = PyModule_Create(&speedups_module);
    if (m == NULL)
        return NULL;
    PyObject *type = PyType_FromSpec(&RecordBuffer_spec);
    if (type == NULL) {
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(type);
    Py_XSETREF(RecordBufferType, type);
    if (PyModule_AddObject(m, "RecordBuffer", type) < 0) {
        Py_DECREF(type);
        Py_DECREF(m);
        return NULL;
    }
    if (aiop_init_handles(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
