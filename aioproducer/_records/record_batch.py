"""RecordBatch v2 (magic 2): the builder the producer writes batches with (reading them back:
``reader.py``; the pure-Python per-record append: ``py_appender.py``).

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
import math
import os
from typing import TYPE_CHECKING

from crc32c import crc32c

from ..errors import BadRecordError
from .codecs import Codec, get_codec
from .py_appender import (
    NO_ROOM_LIMIT,
    BytesLike,
    Headers,
    _byte_size,
    _headers_bytes,
    _PyRecordBuffer,
    _varint,
)
from .reader import (
    ATTR_TRANSACTIONAL,
    BATCH_OVERHEAD,
    Record,
    _head,
    _read_records,
    _tail,
    _u32,
)

#: Java's COMPRESSION_RATE_ESTIMATION_FACTOR: over-estimate compressed sizes by 5 %.
ESTIMATION_FACTOR = 1.05


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


if TYPE_CHECKING:
    # What the builder is combined with: the compiled ``RecordBuffer`` has the pure one's
    # fields and methods, so the type checker reads the builder as built on the pure one.
    _RecordBuffer = _PyRecordBuffer
else:
    _RecordBuffer = object


class _Builder(_RecordBuffer):
    """Appends records to one RecordBatch v2 and closes it into bytes.

    ``batch_size`` is the soft limit (a record that would push the estimated size past it does
    not fit, unless the batch is empty); ``max_size`` is the hard limit: the worst-case size of
    the built batch, compression included, never exceeds it.

    The per-record state and ``try_append`` come from the record buffer this mixin is combined
    with (:class:`_PyRecordBuffer` or the compiled ``RecordBuffer``); the rest runs once per
    batch.
    """

    if TYPE_CHECKING:  # slots of the combined class (_SLOTS)
        batch_size: int
        codec: Codec
        max_size: int
        memory: int
        ratio: float
        transactional: bool
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
        #: Buffer-memory bytes the batch holds when they are fewer than batch_size
        #: (buffer_memory_allocation_strategy="incremental", see set_memory); 0: batch_size.
        self.memory = 0
        super().__init__()  # the record buffer's empty state (the C one sets it in tp_new)
        self._hard = _hard_limit(self.codec, max_size)
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
        """Update the compression-ratio estimate (Java: per topic and codec), and with it the
        record bytes allowed before the estimated batch reaches batch_size (``_soft``) or the
        memory it holds (``_room``). Runs for every new batch."""
        if self.codec.id:
            self.ratio = ratio
            factor = ratio * ESTIMATION_FACTOR
            self._soft = soft = int((self.batch_size - BATCH_OVERHEAD) / factor)
        else:
            self.ratio = factor = 1.0
            self._soft = soft = self.batch_size - BATCH_OVERHEAD
        if self.memory:
            self._room = room = int((self.memory - BATCH_OVERHEAD) / factor)
            self._initial = room if room < soft else soft
        else:
            # All of batch_size is reserved for the batch: its buffer is allocated once, at
            # the first record, instead of doubling (each reallocation may copy it; measured
            # 2 % of the instructions of fire-and-forget with 1 KiB records).
            cap = self.batch_size if self.batch_size < _INITIAL_MAX else _INITIAL_MAX
            self._initial = soft if soft < cap else cap

    def set_memory(self, memory: int) -> None:
        """The batch holds ``memory`` bytes of buffer memory, fewer than batch_size
        (incremental allocation): records beyond what they cover are refused with ``_need``
        set, until more is given; ``memory`` >= batch_size lifts the limit."""
        if memory >= self.batch_size:
            self.memory = 0
            self._room = NO_ROOM_LIMIT
        else:
            self.memory = memory
        self.set_ratio(self.ratio)

    def batch_bytes_for(self, record_bytes: int) -> int:
        """The estimated batch size (buffer memory) once its records take ``record_bytes``:
        :meth:`set_ratio`'s record bytes for a batch size, inverted."""
        factor = self.ratio * (ESTIMATION_FACTOR if self.codec.id else 1.0)
        return BATCH_OVERHEAD + math.ceil(record_bytes * factor) + 1  # +1: float rounding

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


#: The largest first allocation of a batch's buffer (bytes): past it, it doubles as records
#: come (a buffer this large comes from mmap, whose growth does not copy).
_INITIAL_MAX = 1 << 17

_SLOTS = ("batch_size", "codec", "max_size", "memory", "ratio", "transactional")


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
#: Whether :data:`RecordBatchBuilder` reads the clock itself for a record appended with the
#: timestamp None (the compiled buffer: ``time.time_ns() // 1_000_000``, from the same clock, as
#: it appends); ``send()`` then leaves a record without ``timestamp_ms`` to it. The pure buffer
#: takes ints only (the sans-IO layers read no clock).
CLOCKED_BUFFER = IMPLEMENTATION == "c"
if CRecordBatchBuilder is None and not PURE_PYTHON:
    # Installed without a C compiler (setup.py's extension is optional): say so once.
    import warnings

    warnings.warn(
        "aioproducer: the compiled record appender (aioproducer._records._speedups) is not "
        "built, probably for want of a C compiler at install time; running on the pure-Python "
        "one, which is correct but several times slower per record. Reinstall with a C "
        "compiler, or set AIOPRODUCER_PURE_PYTHON=1 to choose the pure one and silence this.",
        RuntimeWarning,
        stacklevel=2,
    )


# -- reader --------------------------------------------------------------------------------------
