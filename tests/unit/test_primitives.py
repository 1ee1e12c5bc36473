from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aioproducer._protocol import _primitives as p
from aioproducer._protocol._primitives import Reader
from aioproducer.errors import ProtocolError

INT32 = st.integers(-(2**31), 2**31 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)


@given(INT32)
def test_varint_round_trip(v: int) -> None:
    buf = bytearray()
    p.write_varint(buf, v)
    r = Reader(buf)
    assert r.read_varint() == v and r.remaining == 0


@given(INT64)
def test_varlong_round_trip_and_size(v: int) -> None:
    buf = bytearray()
    p.write_varlong(buf, v)
    assert len(buf) == p.varint_size(v)
    assert Reader(buf).read_varlong() == v


@given(st.integers(0, 2**32 - 1))
def test_uvarint_round_trip(v: int) -> None:
    buf = bytearray()
    p.write_uvarint(buf, v)
    assert Reader(buf).read_uvarint() == v


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, b"\x00"),
        (-1, b"\x01"),
        (1, b"\x02"),
        (63, b"\x7e"),
        (-64, b"\x7f"),
        (64, b"\x80\x01"),
        (2**31 - 1, b"\xfe\xff\xff\xff\x0f"),
        (-(2**31), b"\xff\xff\xff\xff\x0f"),
    ],
)
def test_varint_known_encodings(value: int, encoded: bytes) -> None:
    buf = bytearray()
    p.write_varint(buf, value)
    assert bytes(buf) == encoded


@given(st.one_of(st.none(), st.text(max_size=50)), st.booleans())
def test_string_round_trip(v: str | None, compact: bool) -> None:
    buf = bytearray()
    p.write_string(buf, v, compact)
    r = Reader(buf)
    assert r.read_string(compact) == v and r.remaining == 0


@given(st.one_of(st.none(), st.binary(max_size=300)), st.booleans())
def test_bytes_round_trip(v: bytes | None, compact: bool) -> None:
    buf = bytearray()
    p.write_bytes(buf, v, compact)
    assert Reader(buf).read_bytes(compact) == v


@given(st.uuids())
def test_uuid_round_trip(v: uuid.UUID) -> None:
    buf = bytearray()
    p.write_uuid(buf, v)
    assert Reader(buf).read_uuid() == v


@given(st.integers(-(2**15), 2**15 - 1), INT32, INT64, st.booleans(), st.floats(allow_nan=False))
def test_fixed_width_round_trip(i16: int, i32: int, i64: int, b: bool, f: float) -> None:
    buf = bytearray()
    p.write_int16(buf, i16)
    p.write_int32(buf, i32)
    p.write_int64(buf, i64)
    p.write_bool(buf, b)
    p.write_float64(buf, f)
    r = Reader(buf)
    assert (r.read_int16(), r.read_int32(), r.read_int64(), r.read_bool(), r.read_float64()) == (
        i16,
        i32,
        i64,
        b,
        f,
    )


def test_truncated_and_negative_lengths_are_protocol_errors() -> None:
    with pytest.raises(ProtocolError):
        Reader(b"\x00").read_int32()
    with pytest.raises(ProtocolError):
        Reader(b"\xff\xfe").read_string(False)  # -2
    with pytest.raises(ProtocolError):
        Reader(b"\x00\x00\x00\x10abc").read_bytes(False)  # 16 declared, 3 present
    with pytest.raises(ProtocolError):
        Reader(b"\x7f\xff\xff\xff").read_array_len(False)  # 2**31-1 elements in 0 bytes
    with pytest.raises(ProtocolError):
        Reader(b"\xff\xff\xff\xff\xff\xff").read_uvarint()  # over-long varint
    with pytest.raises(ProtocolError):
        Reader(b"\x02").read_bool()
    with pytest.raises(ProtocolError):
        Reader(b"\x00\x02\xff\xfe").read_string(False)  # invalid UTF-8
