"""RecordBatch v2 (magic 2): a builder for the producer and a reader for tests and tools.

Layout (KIP-98), all big-endian::

    baseOffset int64 | batchLength int32 | partitionLeaderEpoch int32 | magic int8 = 2
    crc uint32 = CRC-32C of everything from attributes to the end
    attributes int16 | lastOffsetDelta int32 | baseTimestamp int64 | maxTimestamp int64
    producerId int64 | producerEpoch int16 | baseSequence int32 | recordCount int32
    records (compressed as a whole when attributes say so)

Each record: ``length varint | attributes int8 | timestampDelta varlong | offsetDelta varint |
key (varint length, -1 = null) | value (same) | headers (varint count; key as varint-length
UTF-8, value as varint-length bytes, -1 = null)``.

The builder keeps uncompressed records in one ``bytearray`` and compresses once, at
:meth:`RecordBatchBuilder.seal`. Producer id, epoch and base sequence are stamped by
:meth:`RecordBatchBuilder.build`, which can be called again with new values (an epoch bump
re-sequences in-flight batches) without compressing again.
"""

from __future__ import annotations

import functools
import operator
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from crc32c import crc32c

from .._protocol._primitives import Reader
from ..errors import BadRecordError, ProtocolError
from .codecs import DEFAULT_MAX_DECOMPRESSED, Codec, decompress, get_codec

Header = tuple[str, bytes | None]
Headers = Sequence[Header]
#: A key, value or header value: ``bytes``, or any object exporting a buffer. What is written
#: is its bytes in C order, ``memoryview(x).tobytes()``, whatever its item size, shape or strides.
BytesLike = bytes | bytearray | memoryview

#: Bytes before the records: from baseOffset to recordCount.
BATCH_OVERHEAD = 61
# Offsets inside a batch.
_LENGTH_AT = 8
_CRC_AT = 17
_ATTRS_AT = 21
_tail = struct.Struct(">hiqqqhii")  # attributes .. recordCount (40 bytes)
_head = struct.Struct(">qiib")  # baseOffset, batchLength, leaderEpoch, magic
_u32 = struct.Struct(">I")
#: Java's COMPRESSION_RATE_ESTIMATION_FACTOR: over-estimate compressed sizes by 5 %.
ESTIMATION_FACTOR = 1.05

ATTR_TRANSACTIONAL = 0x10
ATTR_CONTROL = 0x20


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
        if v is None:
            out += b"\x01"  # -1
        else:
            if type(v) is bytes:
                n = len(v)
            else:
                v, n = _bytes_like(v, "header value")
            out += table[n + 1] if n < _SMALL else _varint(n)
            out += v
    return out


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


@functools.lru_cache(maxsize=256)
def _hard_limit(codec: Codec, max_size: int) -> int:
    """The most record bytes whose batch, compressed in the worst case, stays <= max_size."""
    lo, hi = 0, max_size
    while lo < hi:  # the codec's bound is monotonic: binary search its inverse
        mid = (lo + hi + 1) // 2
        if codec.bound(BATCH_OVERHEAD + mid) <= max_size:
            lo = mid
        else:
            hi = mid - 1
    return lo


_EXPORTED = (
    "the batch's record buffer cannot grow: a buffer of it is held (a record's key, value or "
    "header value is, or views, the batch's own buffer?)"
)


class _PyRecordBuffer:
    """The per-record hot path in pure Python: one RecordBatch v2's records in a ``bytearray``.

    ``_speedups.RecordBuffer`` (C) does the same with the same fields and results, about 3x
    faster; :data:`RecordBatchBuilder` uses it when it is built, unless the environment sets
    ``AIOPRODUCER_PURE_PYTHON=1``.
    """

    __slots__ = ("_base_ts", "_buf", "_count", "_hard", "_max_ts", "_payload", "_soft")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._payload: bytes | bytearray | None = None
        self._count = 0
        self._base_ts = 0
        self._max_ts = -1
        self._hard = 0
        self._soft = 0

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
            return -1
        # type(), not __class__, which an object can fake; a literal is cheaper than a global
        if type(timestamp_ms) is not int or not 0 <= timestamp_ms <= 0x7FFFFFFFFFFFFFFF:
            timestamp_ms = _timestamp(timestamp_ms)  # its __index__, or an error
        v = _VARINT
        # First the inputs, then the batch's state: taking a buffer (anything but bytes) can run
        # code, which may append to this batch or seal it.
        foreign = False
        if key is None:
            ks = b"\x01"
            klen = 0
        else:
            if type(key) is bytes:
                klen = len(key)
            else:
                key, klen = _bytes_like(key, "key")
                foreign = True
            ks = v[klen + 1] if klen < _SMALL else _varint(klen)
        if value is None:
            vs = b"\x01"
            vlen = 0
        else:
            if type(value) is bytes:
                vlen = len(value)
            else:
                value, vlen = _bytes_like(value, "value")
                foreign = True
            vs = v[vlen + 1] if vlen < _SMALL else _varint(vlen)
        if headers:  # None, [] or anything else false: no headers (as in C)
            hs = _headers_bytes(headers)
            foreign = True
        else:
            hs = _NO_HEADERS
        if foreign and self._payload is not None:  # sealed meanwhile
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


class _Builder:
    """Appends records to one RecordBatch v2 and closes it into bytes.

    ``batch_size`` is the soft limit (a record that would push the estimated size past it does
    not fit, unless the batch is empty); ``max_size`` is the hard limit: the worst-case size of
    the built batch, compression included, never exceeds it.

    The per-record state and ``try_append`` come from the record buffer this mixin is combined
    with (:class:`_PyRecordBuffer` or the compiled ``RecordBuffer``); the rest runs once per
    batch.
    """

    if TYPE_CHECKING:  # the fields live in the record buffer this mixin is combined with
        _buf: bytearray
        _payload: bytes | bytearray | None
        _count: int
        _base_ts: int
        _max_ts: int
        _hard: int
        _soft: int
        batch_size: int
        codec: Codec
        max_size: int
        ratio: float
        transactional: bool

        def try_append(
            self,
            timestamp_ms: int,
            key: BytesLike | None,
            value: BytesLike | None,
            headers: Headers | None = None,
        ) -> int: ...

        def is_full(self) -> bool: ...

    else:
        __slots__ = ()

    def __init__(
        self,
        codec: Codec | str = "none",
        batch_size: int = 16384,
        max_size: int = 1048576,
        ratio: float = 1.0,
        transactional: bool = False,
    ) -> None:
        self.codec = get_codec(codec) if isinstance(codec, str) else codec
        self.batch_size = batch_size
        self.max_size = max_size
        # Compressed/uncompressed estimate for this topic and codec (Java's per-topic ratio).
        self.ratio = 1.0
        self.transactional = transactional
        super().__init__()  # the record buffer's empty state (the C one sets it in tp_new)
        self._hard = _hard_limit(self.codec, max_size)
        self._soft = 0
        self.set_ratio(ratio)

    # -- size accounting -------------------------------------------------------------------------

    @property
    def record_count(self) -> int:
        return self._count

    @property
    def uncompressed_size(self) -> int:
        return BATCH_OVERHEAD + len(self._buf)

    def estimated_size(self) -> int:
        """Estimated size of the built batch (compressed size estimated by the ratio)."""
        if self._payload is not None:
            return BATCH_OVERHEAD + len(self._payload)
        if not self.codec.id:
            return BATCH_OVERHEAD + len(self._buf)
        return BATCH_OVERHEAD + int(len(self._buf) * self.ratio * ESTIMATION_FACTOR)

    @staticmethod
    def record_size(
        timestamp_delta: int,
        offset_delta: int,
        key: BytesLike | None,
        value: BytesLike | None,
        headers: Headers | None,
    ) -> int:
        """Exact encoded size of one record, its length prefix included."""
        klen = _byte_size(key, "key")
        vlen = _byte_size(value, "value")
        body = (
            1
            + len(_varint(timestamp_delta))
            + len(_varint(offset_delta))
            + len(_varint(klen))
            + max(klen, 0)
            + len(_varint(vlen))
            + max(vlen, 0)
            + (len(_headers_bytes(headers)) if headers else 1)
        )
        return len(_varint(body)) + body

    def has_room_for(self, size: int) -> bool:
        """Whether a record of ``size`` encoded bytes fits (an empty batch takes any record
        that fits the hard limit)."""
        if self._payload is not None:
            return False
        n = len(self._buf) + size
        return n <= self._hard and (self._count == 0 or n <= self._soft)

    def set_ratio(self, ratio: float) -> None:
        """Update the compression-ratio estimate (Java: per topic and codec)."""
        self.ratio = ratio if self.codec.id else 1.0
        # Records bytes allowed before the estimated batch reaches batch_size.
        self._soft = int(
            (self.batch_size - BATCH_OVERHEAD)
            / (self.ratio * (ESTIMATION_FACTOR if self.codec.id else 1.0))
        )

    # -- appending --------------------------------------------------------------------------------

    def append(
        self,
        timestamp_ms: int,
        key: BytesLike | None,
        value: BytesLike | None,
        headers: Headers | None = None,
    ) -> int:
        """Append one record whatever the soft limit; return its offset delta.

        Raises :class:`BadRecordError` when the record would exceed the hard limit.
        """
        soft = self._soft
        self._soft = 1 << 62
        try:
            od = self.try_append(timestamp_ms, key, value, headers)
        finally:
            self._soft = soft
        if od < 0:
            raise BadRecordError(
                f"record does not fit a batch of at most {self.max_size} bytes"
                if self._payload is None
                else "the batch is sealed"
            )
        return od

    # -- closing ---------------------------------------------------------------------------------

    def seal(self) -> int:
        """Compress the records (once); no more appends. Returns the built batch's size.

        This is the CPU-heavy step: the producer may call it in a worker thread.
        """
        if self._payload is None:
            if self._count == 0:
                raise RuntimeError("cannot seal an empty batch")
            # Uncompressed: the payload is the buffer itself (sealed, it never changes again).
            self._payload = self.codec.compress(self._buf) if self.codec.id else self._buf
        return BATCH_OVERHEAD + len(self._payload)

    def records(self) -> tuple[Record, ...]:
        """The records appended so far, read back from the uncompressed buffer (whatever the
        codec, sealed or not; offsets are the relative ones): a batch the broker refused as
        too large is split into smaller ones with them (KIP-126)."""
        return _read_records(bytes(self._buf), self._count, 0, self._base_ts)

    def release(self) -> None:
        """Drop the buffers (the batch is done); further use is a bug."""
        self._buf = bytearray()
        self._payload = b""

    @property
    def compression_ratio(self) -> float:
        """Actual compressed/uncompressed ratio of the sealed batch."""
        if self._payload is None or not self._buf:
            return 1.0
        return len(self._payload) / len(self._buf)

    def build(
        self,
        producer_id: int = -1,
        producer_epoch: int = -1,
        base_sequence: int = -1,
        partition_leader_epoch: int = -1,
    ) -> bytes:
        """The batch's bytes, stamped with the given producer id, epoch and base sequence."""
        return b"".join(
            self.build_parts(producer_id, producer_epoch, base_sequence, partition_leader_epoch)
        )

    def build_parts(
        self,
        producer_id: int = -1,
        producer_epoch: int = -1,
        base_sequence: int = -1,
        partition_leader_epoch: int = -1,
    ) -> tuple[bytes, bytes | bytearray | memoryview]:
        """:meth:`build` as (header, records): the produce request joins them into its frame,
        so the records are copied once on their way to the socket."""
        self.seal()
        payload = self._payload
        assert payload is not None
        attrs = self.codec.id | (ATTR_TRANSACTIONAL if self.transactional else 0)
        tail = _tail.pack(
            attrs,
            self._count - 1,
            self._base_ts,
            self._max_ts,
            producer_id,
            producer_epoch,
            base_sequence,
            self._count,
        )
        crc = crc32c(payload, crc32c(tail))
        length = BATCH_OVERHEAD - 12 + len(payload)
        return _head.pack(0, length, partition_leader_epoch, 2) + _u32.pack(crc) + tail, payload


_SLOTS = ("batch_size", "codec", "max_size", "ratio", "transactional")


class PyRecordBatchBuilder(_Builder, _PyRecordBuffer):
    """:class:`RecordBatchBuilder` on the pure-Python record buffer."""

    __slots__ = _SLOTS


CRecordBatchBuilder: type[_Builder] | None
try:
    from ._speedups import RecordBuffer as _CRecordBuffer  # type: ignore[import-not-found]
except ImportError:  # not compiled (no C compiler at install time): the pure path
    CRecordBatchBuilder = None
else:

    class _CBuilder(_Builder, _CRecordBuffer):  # type: ignore[misc]
        """:class:`RecordBatchBuilder` on the compiled record buffer."""

        __slots__ = _SLOTS

    CRecordBatchBuilder = _CBuilder

#: Whether the environment asks for the pure-Python record buffer even when compiled.
PURE_PYTHON = os.environ.get("AIOPRODUCER_PURE_PYTHON", "") not in ("", "0")

if TYPE_CHECKING:
    RecordBatchBuilder = PyRecordBatchBuilder
else:
    RecordBatchBuilder = (
        PyRecordBatchBuilder if PURE_PYTHON or CRecordBatchBuilder is None else CRecordBatchBuilder
    )
#: Which record buffer :data:`RecordBatchBuilder` runs on: ``"c"`` or ``"python"``.
IMPLEMENTATION = "python" if RecordBatchBuilder is PyRecordBatchBuilder else "c"


# -- reader --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Record:
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[Header, ...]


@dataclass(frozen=True, slots=True)
class RecordBatch:
    base_offset: int
    partition_leader_epoch: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records: tuple[Record, ...]

    @property
    def compression(self) -> int:
        return self.attributes & 0x07

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & ATTR_TRANSACTIONAL)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & ATTR_CONTROL)


def read_batches(
    data: bytes | bytearray | memoryview,
    max_decompressed: int = DEFAULT_MAX_DECOMPRESSED,
    allow_partial: bool = False,
) -> list[RecordBatch]:
    """Decode every RecordBatch v2 in ``data``, validating CRC-32C and decompressing.

    Malformed input raises :class:`ProtocolError`. With ``allow_partial`` a truncated last
    batch (as a Fetch response may end with) is ignored instead.
    """
    data = bytes(data)
    out: list[RecordBatch] = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < BATCH_OVERHEAD:
            if allow_partial:
                break
            raise ProtocolError(f"truncated batch header at offset {pos}")
        base_offset, length, leader_epoch, magic = _head.unpack_from(data, pos)
        if magic != 2:
            raise ProtocolError(f"unsupported record batch magic {magic} at offset {pos}")
        if length < BATCH_OVERHEAD - 12:
            raise ProtocolError(f"batch length {length} is too small at offset {pos}")
        end = pos + 12 + length
        if end > len(data):
            if allow_partial:
                break
            raise ProtocolError(f"batch at offset {pos} is truncated ({length} bytes declared)")
        (crc,) = _u32.unpack_from(data, pos + _CRC_AT)
        actual = crc32c(memoryview(data)[pos + _ATTRS_AT : end])
        if crc != actual:
            raise ProtocolError(
                f"CRC mismatch at offset {pos}: stored {crc:#x}, actual {actual:#x}"
            )
        attrs, lod, base_ts, max_ts, pid, epoch, seq, count = _tail.unpack_from(
            data, pos + _ATTRS_AT
        )
        payload = data[pos + BATCH_OVERHEAD : end]
        codec = attrs & 0x07
        if codec:
            payload = decompress(codec, payload, max_decompressed)
        records = _read_records(payload, count, base_offset, base_ts)
        out.append(
            RecordBatch(
                base_offset, leader_epoch, attrs, lod, base_ts, max_ts, pid, epoch, seq, records
            )
        )
        pos = end
    return out


def _read_records(payload: bytes, count: int, base_offset: int, base_ts: int) -> tuple[Record, ...]:
    if count < 0 or count > len(payload):
        raise ProtocolError(f"record count {count} does not fit {len(payload)} bytes")
    r = Reader(payload)
    records = []
    for _ in range(count):
        length = r.read_varint()
        if length < 0 or length > r.remaining:
            raise ProtocolError(f"record length {length} exceeds the {r.remaining} bytes left")
        sub = Reader(payload, r.pos, r.pos + length)
        r.pos += length
        sub.read_int8()
        ts = base_ts + sub.read_varlong()
        od = sub.read_varint()
        key = _read_varbytes(sub)
        value = _read_varbytes(sub)
        nh = sub.read_varint()
        if nh < 0 or nh > sub.remaining:
            raise ProtocolError(f"header count {nh} is invalid")
        headers = []
        for _ in range(nh):
            hk = _read_varbytes(sub)
            if hk is None:
                raise ProtocolError("null header key")
            try:
                hks = hk.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ProtocolError("header key is not UTF-8") from exc
            headers.append((hks, _read_varbytes(sub)))
        if sub.remaining:
            raise ProtocolError(f"record has {sub.remaining} unread bytes")
        records.append(Record(base_offset + od, ts, key, value, tuple(headers)))
    if r.remaining:
        raise ProtocolError(f"{r.remaining} bytes after the last record of the batch")
    return tuple(records)


def _read_varbytes(r: Reader) -> bytes | None:
    n = r.read_varint()
    if n == -1:
        return None
    if n < -1:
        raise ProtocolError(f"negative length {n}")
    return r.skip(n)
