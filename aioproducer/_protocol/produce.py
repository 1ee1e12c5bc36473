"""The hot path's two messages, hand-written: the Produce request frame and the all-success
Produce response.

Every batch the producer sends goes through one Produce request and comes back in one Produce
response. The generic schema codec (``_schema``) builds one dataclass per topic and partition
and walks the schema field by field; on a 1 KB-record load (15 records a batch) that was about
a tenth of the producer's CPU. These two functions do the same job with ``struct`` and no
intermediate objects:

* :func:`encode_produce_request` writes the whole frame (size prefix, header, body) in one
  join, the batches' parts included, so a batch is copied once on its way to the socket.
* :func:`decode_produce_acks` reads a response in which *every* partition succeeded, with no
  tagged fields, record errors or error messages: the common case. For anything else it
  returns None and the caller decodes the frame with the generic codec, which knows every
  field (KIP-951 leader hints, record errors, ...).

Both are tested byte-for-byte against the generic codec at every supported version
(``tests/unit/test_produce_codec.py``).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from ._primitives import write_uvarint

PRODUCE_KEY = 0
#: Produce versions this module writes and reads: 3 (RecordBatch v2) to 12. Version 12 is
#: version 11's format (KIP-890: it only tells the broker that the producer speaks
#: transactions v2, so the partitions of a transaction join it implicitly); the generated
#: schema stops at 11, so a v12 answer that the fast path leaves is read as v11
#: (:func:`decode_produce_v12`).
LOWEST, HIGHEST = 3, 12
#: The version the generic codec reads a v12 answer as (the same bytes).
V12_AS = 11
FLEXIBLE_FROM = 9

_i16 = struct.Struct(">h")
_i32 = struct.Struct(">i")
_header = struct.Struct(">ihhi")  # size, api key, version, correlation id
_acks_timeout = struct.Struct(">hi")
_part_head = struct.Struct(">ii")  # index, records length (non-flexible)
_u16 = struct.Struct(">H")
_part_v3 = struct.Struct(">ihqq")  # index, error, base offset, log append time
_part_v5 = struct.Struct(">ihqqq")  # ... and log start offset

#: One partition's data: (partition index, the batch as parts joined in order).
PartitionData = tuple[int, Sequence[bytes]]


def _uvarint(v: int) -> bytes:
    if v < 0x80:
        return bytes((v,))
    buf = bytearray()
    write_uvarint(buf, v)
    return bytes(buf)


def _string(s: str | None, flexible: bool) -> bytes:
    if s is None:
        return b"\0" if flexible else b"\xff\xff"
    data = s.encode("utf-8")
    if flexible:
        return _uvarint(len(data) + 1) + data
    if len(data) > 0x7FFF:
        raise ValueError(f"string of {len(data)} bytes is too long for an int16 length")
    return _i16.pack(len(data)) + data


def encode_produce_request(
    version: int,
    correlation_id: int,
    client_id: str | None,
    transactional_id: str | None,
    acks: int,
    timeout_ms: int,
    topics: Sequence[tuple[str, Sequence[PartitionData]]],
) -> bytes:
    """The whole Produce request frame, size prefix included."""
    if not LOWEST <= version <= HIGHEST:
        raise ValueError(f"Produce v{version} is not written by the fast encoder")
    flexible = version >= FLEXIBLE_FROM
    out: list[bytes] = [b"", _string(client_id, False)]  # the client id is never compact
    if flexible:
        out.append(b"\0")  # no tagged fields in the request header
    out.append(_string(transactional_id, flexible))
    out.append(_acks_timeout.pack(acks, timeout_ms))
    out.append(_uvarint(len(topics) + 1) if flexible else _i32.pack(len(topics)))
    for name, partitions in topics:
        out.append(_string(name, flexible))
        out.append(_uvarint(len(partitions) + 1) if flexible else _i32.pack(len(partitions)))
        for index, parts in partitions:
            size = 0
            for piece in parts:
                size += len(piece)
            if flexible:
                out.append(_i32.pack(index) + _uvarint(size + 1))
            else:
                out.append(_part_head.pack(index, size))
            out.extend(parts)
            if flexible:
                out.append(b"\0")  # partition tagged fields
        if flexible:
            out.append(b"\0")  # topic tagged fields
    if flexible:
        out.append(b"\0")  # request tagged fields
    total = _header.size
    for piece in out:
        total += len(piece)
    out[0] = _header.pack(total - 4, PRODUCE_KEY, version, correlation_id)
    return b"".join(out)


#: One acknowledged partition: (topic, partition, base offset, log append time).
Ack = tuple[str, int, int, int]


def decode_produce_acks(frame: bytes, version: int) -> list[Ack] | None:
    """The acknowledgements of a Produce response frame (size prefix removed) in which every
    partition succeeded; None when the frame holds anything else (an error, a record error,
    an error message, a tagged field) or does not parse, for the generic codec to read."""
    if not LOWEST <= version <= HIGHEST:
        return None
    flexible = version >= FLEXIBLE_FROM
    try:
        pos = 4  # correlation id
        if flexible:
            if frame[pos]:  # header tagged fields
                return None
            pos += 1
            n_topics, pos = _compact_len(frame, pos)
        else:
            (n_topics,) = _i32.unpack_from(frame, pos)
            pos += 4
            if n_topics < 0:
                return None
        part = _part_v5 if version >= 5 else _part_v3
        part_size = part.size
        acks: list[Ack] = []
        for _ in range(n_topics):
            if flexible:
                n, pos = _compact_len(frame, pos)
            else:
                (n,) = _u16.unpack_from(frame, pos)
                pos += 2
            name = frame[pos : pos + n].decode("utf-8")
            pos += n
            if flexible:
                n_parts, pos = _compact_len(frame, pos)
            else:
                (n_parts,) = _i32.unpack_from(frame, pos)
                pos += 4
                if n_parts < 0:
                    return None
            for _ in range(n_parts):
                fields = part.unpack_from(frame, pos)
                pos += part_size
                if fields[1]:  # an error: the generic path handles it
                    return None
                if version >= 8:
                    if flexible:
                        # record errors: empty compact array (1); error message: null (0);
                        # partition tagged fields: none (0)
                        if frame[pos : pos + 3] != b"\x01\x00\x00":
                            return None
                        pos += 3
                    else:
                        # record errors: empty array (int32 0); error message: null (-1)
                        if frame[pos : pos + 6] != b"\x00\x00\x00\x00\xff\xff":
                            return None
                        pos += 6
                acks.append((name, fields[0], fields[2], fields[3]))
            if flexible:
                if frame[pos]:  # topic tagged fields
                    return None
                pos += 1
        if frame[pos : pos + 4] != b"\0\0\0\0":  # throttled (KIP-219): the generic path
            return None
        pos += 4
        if flexible:
            if frame[pos]:  # top-level tagged fields (KIP-951 node endpoints)
                return None
            pos += 1
        if pos > len(frame):
            return None
    except (IndexError, struct.error, UnicodeDecodeError, _Unread):
        return None
    return acks


def decode_produce_v12(frame: bytes, version: int) -> Any:
    """A Produce v12 answer: the fast path's acknowledgements, else the generic codec's
    reading of the same bytes as v11."""
    acks = decode_produce_acks(frame, version)
    if acks is not None:
        return acks
    from . import framing
    from .messages import ProduceResponse

    return framing.decode_response(frame, ProduceResponse, V12_AS)[1]


class _Unread(Exception):
    """Something the fast path leaves to the generic codec."""


def _compact_len(frame: bytes, pos: int) -> tuple[int, int]:
    """A compact array or string length at ``pos`` and the position after it; a null
    (length 0) or an over-long varint is :class:`_Unread`."""
    b = frame[pos]
    if b < 0x80:
        if not b:
            raise _Unread
        return b - 1, pos + 1
    value, shift = 0, 0
    while True:
        b = frame[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            break
        shift += 7
        if shift > 28:
            raise _Unread
    if not value:
        raise _Unread
    return value - 1, pos
