"""Kafka primitive types: writers append to a ``bytearray``, a :class:`Reader` reads defensively.

Every read is bounds-checked against the buffer: a truncated buffer, a negative length that is
not the null marker, or a length beyond the remaining bytes raises :class:`ProtocolError`.
"""

from __future__ import annotations

import struct
import uuid

from ..errors import ProtocolError

_i8 = struct.Struct(">b")
_i16 = struct.Struct(">h")
_u16 = struct.Struct(">H")
_i32 = struct.Struct(">i")
_u32 = struct.Struct(">I")
_i64 = struct.Struct(">q")
_f64 = struct.Struct(">d")

INT8_RANGE = (-(2**7), 2**7 - 1)
INT16_RANGE = (-(2**15), 2**15 - 1)
UINT16_RANGE = (0, 2**16 - 1)
INT32_RANGE = (-(2**31), 2**31 - 1)
UINT32_RANGE = (0, 2**32 - 1)
INT64_RANGE = (-(2**63), 2**63 - 1)


# -- writers -------------------------------------------------------------------------------------


def write_bool(buf: bytearray, v: bool) -> None:
    buf.append(1 if v else 0)


def write_int8(buf: bytearray, v: int) -> None:
    buf += _i8.pack(v)


def write_int16(buf: bytearray, v: int) -> None:
    buf += _i16.pack(v)


def write_uint16(buf: bytearray, v: int) -> None:
    buf += _u16.pack(v)


def write_int32(buf: bytearray, v: int) -> None:
    buf += _i32.pack(v)


def write_uint32(buf: bytearray, v: int) -> None:
    buf += _u32.pack(v)


def write_int64(buf: bytearray, v: int) -> None:
    buf += _i64.pack(v)


def write_float64(buf: bytearray, v: float) -> None:
    buf += _f64.pack(v)


def write_uvarint(buf: bytearray, v: int) -> None:
    if v < 0:
        raise ValueError(f"unsigned varint cannot encode {v}")
    while v > 0x7F:
        buf.append((v & 0x7F) | 0x80)
        v >>= 7
    buf.append(v)


def write_varint(buf: bytearray, v: int) -> None:
    """Zigzag-encoded signed 32-bit varint."""
    write_uvarint(buf, ((v << 1) ^ (v >> 31)) & 0xFFFFFFFF)


def write_varlong(buf: bytearray, v: int) -> None:
    """Zigzag-encoded signed 64-bit varint."""
    write_uvarint(buf, ((v << 1) ^ (v >> 63)) & 0xFFFFFFFFFFFFFFFF)


def varint_size(v: int) -> int:
    """Bytes taken by the zigzag varint (or varlong) encoding of ``v``."""
    z = (v << 1) ^ (v >> 63)
    z &= 0xFFFFFFFFFFFFFFFF
    n = 1
    while z > 0x7F:
        z >>= 7
        n += 1
    return n


def write_uuid(buf: bytearray, v: uuid.UUID) -> None:
    buf += v.bytes


def write_string(buf: bytearray, v: str | None, compact: bool) -> None:
    if v is None:
        if compact:
            buf.append(0)
        else:
            buf += b"\xff\xff"
        return
    data = v.encode("utf-8")
    if compact:
        write_uvarint(buf, len(data) + 1)
    else:
        if len(data) > INT16_RANGE[1]:
            raise ValueError(f"string of {len(data)} bytes is too long for an int16 length")
        buf += _i16.pack(len(data))
    buf += data


def write_bytes(buf: bytearray, v: bytes | bytearray | memoryview | None, compact: bool) -> None:
    if v is None:
        if compact:
            buf.append(0)
        else:
            buf += b"\xff\xff\xff\xff"
        return
    if compact:
        write_uvarint(buf, len(v) + 1)
    else:
        buf += _i32.pack(len(v))
    buf += v


def write_array_len(buf: bytearray, n: int | None, compact: bool) -> None:
    if n is None:
        if compact:
            buf.append(0)
        else:
            buf += b"\xff\xff\xff\xff"
    elif compact:
        write_uvarint(buf, n + 1)
    else:
        buf += _i32.pack(n)


# -- reader --------------------------------------------------------------------------------------


class Reader:
    """A cursor over a buffer; every read checks bounds and raises :class:`ProtocolError`."""

    __slots__ = ("buf", "end", "pos")

    def __init__(self, buf: bytes | bytearray | memoryview, pos: int = 0, end: int | None = None):
        self.buf = memoryview(buf).cast("B") if not isinstance(buf, bytes) else buf
        self.pos = pos
        self.end = len(buf) if end is None else end

    @property
    def remaining(self) -> int:
        return self.end - self.pos

    def _take(self, n: int) -> int:
        p = self.pos
        if n < 0 or p + n > self.end:
            raise ProtocolError(f"truncated: need {n} bytes at offset {p}, have {self.end - p}")
        self.pos = p + n
        return p

    def read_bool(self) -> bool:
        p = self._take(1)
        b = self.buf[p]
        if b > 1:
            raise ProtocolError(f"invalid boolean byte {b} at offset {p}")
        return b == 1

    def read_int8(self) -> int:
        return int(_i8.unpack_from(self.buf, self._take(1))[0])

    def read_int16(self) -> int:
        return int(_i16.unpack_from(self.buf, self._take(2))[0])

    def read_uint16(self) -> int:
        return int(_u16.unpack_from(self.buf, self._take(2))[0])

    def read_int32(self) -> int:
        return int(_i32.unpack_from(self.buf, self._take(4))[0])

    def read_uint32(self) -> int:
        return int(_u32.unpack_from(self.buf, self._take(4))[0])

    def read_int64(self) -> int:
        return int(_i64.unpack_from(self.buf, self._take(8))[0])

    def read_float64(self) -> float:
        return float(_f64.unpack_from(self.buf, self._take(8))[0])

    def read_uvarint(self, max_bytes: int = 5) -> int:
        value = shift = 0
        for _ in range(max_bytes):
            p = self._take(1)
            b = self.buf[p]
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7
        raise ProtocolError(f"varint longer than {max_bytes} bytes at offset {self.pos}")

    def read_varint(self) -> int:
        z = self.read_uvarint(5)
        if z > 0xFFFFFFFF:
            raise ProtocolError("varint out of 32-bit range")
        return (z >> 1) ^ -(z & 1)

    def read_varlong(self) -> int:
        z = self.read_uvarint(10)
        if z > 0xFFFFFFFFFFFFFFFF:
            raise ProtocolError("varlong out of 64-bit range")
        return (z >> 1) ^ -(z & 1)

    def read_uuid(self) -> uuid.UUID:
        p = self._take(16)
        return uuid.UUID(bytes=bytes(self.buf[p : p + 16]))

    def _length(self, compact: bool, wide: bool) -> int:
        """A length prefix; -1 means null. Never more than the bytes remaining."""
        if compact:
            n = self.read_uvarint() - 1
        else:
            n = self.read_int32() if wide else self.read_int16()
        if n < -1:
            raise ProtocolError(f"negative length {n} at offset {self.pos}")
        return n

    def read_string(self, compact: bool) -> str | None:
        n = self._length(compact, wide=False)
        if n == -1:
            return None
        p = self._take(n)
        try:
            return str(bytes(self.buf[p : p + n]), "utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"string at offset {p} is not valid UTF-8") from exc

    def read_bytes(self, compact: bool) -> bytes | None:
        n = self._length(compact, wide=True)
        if n == -1:
            return None
        p = self._take(n)
        return bytes(self.buf[p : p + n])

    def read_array_len(self, compact: bool) -> int:
        """An array length, -1 for null; bounded by the remaining bytes (elements are >= 1 B)."""
        n = self._length(compact, wide=True)
        if n > self.remaining:
            raise ProtocolError(f"array of {n} elements cannot fit in {self.remaining} bytes")
        return n

    def skip(self, n: int) -> bytes:
        p = self._take(n)
        return bytes(self.buf[p : p + n])
