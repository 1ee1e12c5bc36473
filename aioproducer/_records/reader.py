"""Reading RecordBatch v2: the format's layout, and the decoder our tests and tools use.

The producer only writes batches (``record_batch.py``); reading them back serves the split of a
batch too large for the broker, the test brokers, and the checks that what we write is what
Kafka reads. Every batch's CRC-32C is checked, compressed batches are decompressed (bounded),
and malformed input raises :class:`ProtocolError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from crc32c import crc32c

from .._protocol._primitives import Reader
from ..errors import ProtocolError
from .codecs import DEFAULT_MAX_DECOMPRESSED, decompress

Header = tuple[str, bytes | None]

#: Bytes before the records: from baseOffset to recordCount.
BATCH_OVERHEAD = 61
# Offsets inside a batch.
_LENGTH_AT = 8
_CRC_AT = 17
_ATTRS_AT = 21
_tail = struct.Struct(">hiqqqhii")  # attributes .. recordCount (40 bytes)
_head = struct.Struct(">qiib")  # baseOffset, batchLength, leaderEpoch, magic
_u32 = struct.Struct(">I")

ATTR_TRANSACTIONAL = 0x10
ATTR_CONTROL = 0x20


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


__all__ = [
    "ATTR_CONTROL",
    "ATTR_TRANSACTIONAL",
    "BATCH_OVERHEAD",
    "Record",
    "RecordBatch",
    "read_batches",
]
