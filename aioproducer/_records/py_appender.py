"""The per-record append in pure Python, and the record encoding it shares with the builder.

The compiled ``_speedups.RecordBuffer`` (C) does the same with the same fields and results;
``record_batch.RecordBatchBuilder`` uses it when it is built, unless the environment sets
``AIOPRODUCER_PURE_PYTHON=1``.
"""

from __future__ import annotations

import operator
import sys
from collections.abc import Sequence

from ..errors import BadRecordError
from .reader import Header

Headers = Sequence[Header]
#: A key, value or header value: ``bytes``, or any object exporting a buffer. What is written
#: is its bytes in C order, ``memoryview(x).tobytes()``, whatever its item size, shape or strides.
BytesLike = bytes | bytearray | memoryview


def _zigzag_table(n: int) -> list[bytes]:
    """Pre-encoded zigzag varints of -1 .. n-2 (index v + 1), the common small values."""
    out = []
    for v in range(-1, n - 1):
        z = (v << 1) ^ (v >> 63)
        b = bytearray()
        while z > 0x7F:
            b.append((z & 0x7F) | 0x80)
            z >>= 7
        b.append(z)
        out.append(bytes(b))
    return out


_SMALL = 1 << 14
_VARINT = _zigzag_table(_SMALL + 1)


def _varint(v: int) -> bytes:
    if -1 <= v < _SMALL:
        return _VARINT[v + 1]
    z = ((v << 1) ^ (v >> 63)) & 0xFFFFFFFFFFFFFFFF
    b = bytearray()
    while z > 0x7F:
        b.append((z & 0x7F) | 0x80)
        z >>= 7
    b.append(z)
    return bytes(b)


def _bytes_like(obj: BytesLike, what: str) -> tuple[bytes | memoryview, int]:
    """A key, value or header value other than bytes or None: (what ``bytearray +=`` takes, its
    size in bytes).

    The size is the buffer's byte count: ``len()`` of a memoryview counts items of the first
    dimension. A non-contiguous buffer is copied in C order, as ``bytes(obj)`` does. The buffer
    is requested once. Errors are the compiled appender's, word for word.
    """
    try:
        view = memoryview(obj)
    except TypeError:
        raise TypeError(
            f"record {what} must be bytes-like or None, not {type(obj).__name__}"
        ) from None
    n = view.nbytes
    if n < 0:
        raise ValueError(f"record {what}: its buffer has an invalid length {n}")
    return (view if view.c_contiguous else view.tobytes()), n


def _byte_size(obj: BytesLike | None, what: str) -> int:
    """The size a key or value is written with: -1 for None, else its byte count."""
    if obj is None:
        return -1
    if type(obj) is bytes:
        return len(obj)
    return _bytes_like(obj, what)[1]


_HEADERS_NOT_A_SEQUENCE = "headers must be a sequence of (str, bytes | None)"


def _headers_bytes(headers: Headers) -> bytes | bytearray:
    """The encoded headers (count, then each pair), from any iterable of (str, bytes-like |
    None) pairs; errors are the compiled appender's, word for word."""
    if type(headers) is not tuple:
        # A snapshot: taking a value's buffer can run code, which may change the list.
        if type(headers) is list:
            headers = tuple(headers)
        else:
            try:
                it = iter(headers)
            except TypeError:
                raise TypeError(_HEADERS_NOT_A_SEQUENCE) from None
            headers = tuple(it)
    table = _VARINT
    n = len(headers)
    out = bytearray(table[n + 1] if n < _SMALL else _varint(n))
    for h in headers:
        if type(h) is tuple and len(h) == 2:
            k, v = h
        elif isinstance(h, tuple) and tuple.__len__(h) == 2:  # a subclass: read as C does
            k, v = tuple.__getitem__(h, 0), tuple.__getitem__(h, 1)
        else:
            k = v = None
        if type(k) is not str and not isinstance(k, str):
            raise TypeError(f"a header must be a (str, bytes | None) pair, got {h!r}")
        kb = str.encode(k)  # UTF-8, of the str itself even in a subclass
        n = len(kb)
        out += table[n + 1] if n < _SMALL else _varint(n)
        out += kb
        v, _, vs, _ = _field(v, "header value")
        out += vs
        if v is not None:
            out += v
    return out


def _field(data: BytesLike | None, what: str) -> tuple[BytesLike | None, int, bytes, bool]:
    """A nullable bytes field: (its bytes, their length, the length's varint (-1 for None),
    whether they came from anything but ``bytes``, whose buffer protocol may have run code)."""
    if data is None:
        return None, 0, b"\x01", False
    if type(data) is bytes:
        n = len(data)
        foreign = False
    else:
        data, n = _bytes_like(data, what)
        foreign = True
    return data, n, _VARINT[n + 1] if n < _SMALL else _varint(n), foreign


def _timestamp(timestamp_ms: int) -> int:
    """A timestamp that is not an int (its __index__), checked as the compiled appender does."""
    if type(timestamp_ms) is not int:
        timestamp_ms = operator.index(timestamp_ms)
    if timestamp_ms < 0:
        raise BadRecordError(f"invalid negative timestamp {timestamp_ms} (must be >= 0 ms)")
    if timestamp_ms > 0x7FFFFFFFFFFFFFFF:
        raise BadRecordError(f"invalid timestamp {timestamp_ms} (must be < 2**63 ms)")
    return timestamp_ms


_NO_HEADERS = b"\x00"


_EXPORTED = (
    "the batch's record buffer cannot grow: a buffer of it is held (a record's key, value or "
    "header value is, or views, the batch's own buffer?)"
)


#: ``_room`` of a batch whose memory is all reserved up front (the C buffer's PY_SSIZE_T_MAX).
NO_ROOM_LIMIT = sys.maxsize


class _PyRecordBuffer:
    """The per-record hot path in pure Python: one RecordBatch v2's records in a ``bytearray``.

    ``_speedups.RecordBuffer`` (C) does the same with the same fields and results, about 3x
    faster; :data:`RecordBatchBuilder` uses it when it is built, unless the environment sets
    ``AIOPRODUCER_PURE_PYTHON=1``.
    """

    __slots__ = (
        "_base_ts",
        "_buf",
        "_count",
        "_hard",
        "_initial",
        "_max_ts",
        "_need",
        "_payload",
        "_room",
        "_soft",
    )

    def __init__(self) -> None:
        self._buf = bytearray()
        self._payload: bytes | bytearray | None = None
        self._count = 0
        self._base_ts = 0
        self._max_ts = -1
        self._hard = 0
        self._soft = 0
        #: Record bytes the batch's buffer memory covers (incremental allocation), and the
        #: record bytes the last refused append needed when only that refused it (else 0).
        self._room = NO_ROOM_LIMIT
        self._need = 0
        self._initial = 0  # the compiled buffer's first allocation; bytearray sizes its own

    def try_append(
        self,
        timestamp_ms: int,
        key: BytesLike | None,
        value: BytesLike | None,
        headers: Headers | None = None,
    ) -> int:
        """Append one record if it fits; return its offset delta, or -1 when it does not fit.

        This is the producer's per-record hot path: sizes come from pre-encoded varints, the
        room check is two integer comparisons against limits computed once per batch.

        A record that fails (a wrong type, a bad timestamp) raises TypeError or ValueError and
        leaves the batch exactly as it was.
        """
        if self._payload is not None:
            self._need = 0
            return -1
        # type(), not __class__, which an object can fake; a literal is cheaper than a global
        if type(timestamp_ms) is not int or not 0 <= timestamp_ms <= 0x7FFFFFFFFFFFFFFF:
            timestamp_ms = _timestamp(timestamp_ms)  # its __index__, or an error
        v = _VARINT
        # First the inputs, then the batch's state: taking a buffer (anything but bytes) can run
        # code, which may append to this batch or seal it.
        key, klen, ks, foreign_key = _field(key, "key")
        value, vlen, vs, foreign = _field(value, "value")
        foreign |= foreign_key
        if headers:  # None, [] or anything else false: no headers (as in C)
            hs = _headers_bytes(headers)
            foreign = True
        else:
            hs = _NO_HEADERS
        if foreign and self._payload is not None:  # sealed meanwhile
            self._need = 0
            return -1
        od = self._count
        td = timestamp_ms - self._base_ts if od else 0
        tds = v[td + 1] if -1 <= td < _SMALL else _varint(td)
        ods = v[od + 1] if od < _SMALL else _varint(od)
        body = 1 + len(tds) + len(ods) + len(ks) + klen + len(vs) + vlen + len(hs)
        bs = v[body + 1] if body < _SMALL else _varint(body)
        buf = self._buf
        start = len(buf)
        n = start + len(bs) + body
        if n > self._hard or (od and n > self._soft):
            self._need = 0
            return -1
        if od and n > self._room:
            self._need = n  # within batch_size, beyond the memory the batch has
            return -1
        try:
            buf += bs
            buf.append(0)  # record attributes: unused, always 0
            buf += tds
            buf += ods
            buf += ks
            if key is not None:
                buf += key
            buf += vs
            if value is not None:
                buf += value
            buf += hs
        except BaseException as exc:  # no half-written record
            if len(buf) > start:
                del buf[start:]
            if isinstance(exc, BufferError):  # exported: a memoryview of it is alive
                raise ValueError(_EXPORTED) from exc
            raise
        if od == 0:
            self._base_ts = timestamp_ms
        if timestamp_ms > self._max_ts:
            self._max_ts = timestamp_ms
        self._count = od + 1
        return od

    def is_full(self) -> bool:
        """Whether the batch takes no more records (sealed, or at its soft limit)."""
        return self._payload is not None or len(self._buf) >= self._soft
