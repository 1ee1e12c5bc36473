"""The schema interpreter: encode and decode any generated message at any of its versions.

Generated message classes (``messages/*.py``) are slotted dataclasses that carry their schema
as data: a tuple of :class:`Field` per struct. For each (class, version) a plan of small
closures is compiled once and cached, so encoding a request is a walk over a flat list.

Flexible versions (KIP-482) switch strings, bytes and arrays to compact encodings and add a
tagged-field section to every struct. Tagged fields whose tag is unknown to us are kept in
``unknown_tags`` and written back unchanged.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from dataclasses import MISSING, dataclass
from typing import Any, ClassVar, Generic, NamedTuple, TypeVar

from ..errors import ProtocolError, UnsupportedVersion
from . import _primitives as p
from ._primitives import Reader


class Versions(NamedTuple):
    """An inclusive version range; empty when ``lo > hi``."""

    lo: int
    hi: int

    def __contains__(self, v: object) -> bool:
        return isinstance(v, int) and self.lo <= v <= self.hi


NO_VERSIONS = Versions(1, 0)
MAX_VERSION = 0x7FFF


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a struct, as the schema declares it."""

    attr: str
    kind: str  # a primitive kind, "struct" or "array"
    versions: Versions
    nullable: Versions = NO_VERSIONS
    tagged: Versions = NO_VERSIONS
    tag: int | None = None
    struct: type[Struct] | None = None  # for "struct", and arrays of structs
    elem: str | None = None  # the element kind of an array


Encoder = Callable[[bytearray, Any], None]
Decoder = Callable[[Reader], Any]
_S = TypeVar("_S", bound="Struct")
_M = TypeVar("_M", bound="Message")


class Struct:
    """Base of every generated struct. Subclasses are slotted dataclasses."""

    __slots__ = ()
    FIELDS: ClassVar[tuple[Field, ...]] = ()
    #: The versions in which this struct is flexible (its message's ``FLEXIBLE_VERSIONS``).
    _flexible_: ClassVar[Versions] = NO_VERSIONS
    # Set by @dataclass on every generated subclass.
    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]
    unknown_tags: dict[int, bytes]

    def encode_into(self, buf: bytearray, version: int) -> None:
        _plan(type(self), version).encode(buf, self)

    @classmethod
    def decode_from(cls: type[_S], r: Reader, version: int) -> _S:
        """Read one ``cls`` at ``version`` from ``r``, leaving ``r`` after it."""
        return _plan(cls, version).decode(r)


class Message(Struct):
    """Base of request and response messages."""

    __slots__ = ()
    API_KEY: ClassVar[int] = -1
    VALID_VERSIONS: ClassVar[Versions] = NO_VERSIONS
    FLEXIBLE_VERSIONS: ClassVar[Versions] = NO_VERSIONS

    def encode(self, version: int) -> bytes:
        self.check_version(version)
        buf = bytearray()
        _plan(type(self), version).encode(buf, self)
        return bytes(buf)

    @classmethod
    def decode(cls: type[_M], data: bytes | bytearray | memoryview, version: int) -> _M:
        """Decode a whole buffer; trailing bytes are a :class:`ProtocolError`."""
        cls.check_version(version)
        r = Reader(data)
        out = _plan(cls, version).decode(r)
        if r.remaining:
            raise ProtocolError(f"{cls.__name__} v{version}: {r.remaining} trailing bytes")
        return out

    @classmethod
    def check_version(cls, version: int) -> None:
        if version not in cls.VALID_VERSIONS:
            raise UnsupportedVersion(
                f"{cls.__name__} has no version {version} "
                f"(valid: {cls.VALID_VERSIONS.lo}-{cls.VALID_VERSIONS.hi})"
            )

    @classmethod
    def is_flexible(cls, version: int) -> bool:
        return version in cls.FLEXIBLE_VERSIONS


# -- plans ---------------------------------------------------------------------------------------


class _Plan(Generic[_S]):
    __slots__ = ("cls", "decode_regular", "encode_regular", "flexible", "tagged", "version")

    def __init__(self, cls: type[_S], version: int, flexible: bool) -> None:
        self.cls = cls
        self.version = version
        self.flexible = flexible
        self.encode_regular: list[tuple[str, Encoder]] = []
        self.decode_regular: list[tuple[str, Decoder]] = []
        # tag -> (attr, encoder, decoder, default factory)
        self.tagged: dict[int, tuple[str, Encoder, Decoder, Callable[[], Any]]] = {}
        for f in cls.FIELDS:
            if version not in f.versions:
                continue
            if flexible and f.tag is not None and version in f.tagged:
                enc, dec = _codec(f, version, flexible)
                self.tagged[f.tag] = (f.attr, enc, dec, _default_factory(cls, f.attr))
            else:
                enc, dec = _codec(f, version, flexible)
                self.encode_regular.append((f.attr, enc))
                self.decode_regular.append((f.attr, dec))

    def encode(self, buf: bytearray, obj: _S) -> None:
        for attr, enc in self.encode_regular:
            enc(buf, getattr(obj, attr))
        if not self.flexible:
            return
        fields: list[tuple[int, bytes]] = []
        for tag, (attr, enc, _dec, default) in self.tagged.items():
            value = getattr(obj, attr)
            if value != default():
                sub = bytearray()
                enc(sub, value)
                fields.append((tag, bytes(sub)))
        unknown: dict[int, bytes] = obj.unknown_tags
        fields.extend((t, v) for t, v in unknown.items() if t not in self.tagged)
        fields.sort()
        p.write_uvarint(buf, len(fields))
        for tag, data in fields:
            p.write_uvarint(buf, tag)
            p.write_uvarint(buf, len(data))
            buf += data

    def decode(self, r: Reader) -> _S:
        kwargs: dict[str, Any] = {}
        for attr, dec in self.decode_regular:
            kwargs[attr] = dec(r)
        if self.flexible:
            unknown: dict[int, bytes] = {}
            count = r.read_uvarint()
            last = -1
            for _ in range(count):
                tag = r.read_uvarint()
                if tag <= last:
                    raise ProtocolError(f"{self.cls.__name__}: tagged fields out of order")
                last = tag
                size = r.read_uvarint()
                if size > r.remaining:
                    raise ProtocolError(f"{self.cls.__name__}: tagged field {tag} truncated")
                known = self.tagged.get(tag)
                if known is None:
                    unknown[tag] = r.skip(size)
                    continue
                sub = Reader(r.buf, r.pos, r.pos + size)
                kwargs[known[0]] = known[2](sub)
                if sub.remaining:
                    raise ProtocolError(f"{self.cls.__name__}: tagged field {tag} has extra bytes")
                r.pos += size
            if unknown:
                kwargs["unknown_tags"] = unknown
        return self.cls(**kwargs)


_PLANS: dict[tuple[type[Struct], int], _Plan[Any]] = {}


def _plan(cls: type[_S], version: int) -> _Plan[_S]:
    plan = _PLANS.get((cls, version))
    if plan is None:
        plan = _PLANS[(cls, version)] = _Plan(cls, version, version in cls._flexible_)
    return plan


def _default_factory(cls: type[Struct], attr: str) -> Callable[[], Any]:
    f = cls.__dataclass_fields__[attr]
    if f.default_factory is not MISSING:
        return f.default_factory
    default = f.default
    return lambda: default


# -- per-kind codecs -----------------------------------------------------------------------------


def _checked_int(lo: int, hi: int, write: Callable[[bytearray, int], None], name: str) -> Encoder:
    def enc(buf: bytearray, v: Any) -> None:
        if not isinstance(v, int) or not lo <= v <= hi:
            raise ValueError(f"{v!r} is not a valid {name}")
        write(buf, v)

    return enc


_PRIMITIVES: dict[str, tuple[Encoder, Callable[[Reader], Any]]] = {
    "bool": (lambda b, v: p.write_bool(b, bool(v)), Reader.read_bool),
    "int8": (_checked_int(*p.INT8_RANGE, p.write_int8, "int8"), Reader.read_int8),
    "int16": (_checked_int(*p.INT16_RANGE, p.write_int16, "int16"), Reader.read_int16),
    "uint16": (_checked_int(*p.UINT16_RANGE, p.write_uint16, "uint16"), Reader.read_uint16),
    "int32": (_checked_int(*p.INT32_RANGE, p.write_int32, "int32"), Reader.read_int32),
    "uint32": (_checked_int(*p.UINT32_RANGE, p.write_uint32, "uint32"), Reader.read_uint32),
    "int64": (_checked_int(*p.INT64_RANGE, p.write_int64, "int64"), Reader.read_int64),
    "float64": (p.write_float64, Reader.read_float64),
    "uuid": (p.write_uuid, Reader.read_uuid),
}


def _scalar_codec(
    kind: str, nullable: bool, flexible: bool, struct: type[Struct] | None, version: int
) -> tuple[Encoder, Decoder]:
    if kind in _PRIMITIVES:
        return _PRIMITIVES[kind]
    if kind == "string":
        return _nullable("string", p.write_string, Reader.read_string, nullable, flexible)
    if kind in ("bytes", "records"):
        return _nullable("bytes", p.write_bytes, Reader.read_bytes, nullable, flexible)
    if kind == "struct":
        assert struct is not None
        cls = struct

        def enc_struct(buf: bytearray, v: Any) -> None:
            if nullable:
                if v is None:
                    buf.append(0xFF)
                    return
                buf.append(1)
            _plan(cls, version).encode(buf, v)

        def dec_struct(r: Reader) -> Any:
            if nullable and r.read_int8() < 0:
                return None
            return _plan(cls, version).decode(r)

        return enc_struct, dec_struct
    raise AssertionError(f"unknown kind {kind}")


def _codec(f: Field, version: int, flexible: bool) -> tuple[Encoder, Decoder]:
    nullable = version in f.nullable
    if f.kind != "array":
        return _scalar_codec(f.kind, nullable, flexible, f.struct, version)
    assert f.elem is not None
    enc_e, dec_e = _scalar_codec(f.elem, False, flexible, f.struct, version)

    def enc_a(buf: bytearray, v: Any) -> None:
        if v is None:
            if not nullable:
                raise ValueError(f"null array in non-nullable field {f.attr}")
            p.write_array_len(buf, None, flexible)
            return
        p.write_array_len(buf, len(v), flexible)
        for item in v:
            enc_e(buf, item)

    def dec_a(r: Reader) -> Any:
        n = r.read_array_len(flexible)
        if n == -1:
            if not nullable:
                raise ProtocolError(f"null array in non-nullable field {f.attr}")
            return None
        return [dec_e(r) for _ in range(n)]

    return enc_a, dec_a


def _nullable(
    what: str,
    write: Callable[[bytearray, Any, bool], None],
    read: Callable[[Reader, bool], Any],
    nullable: bool,
    flexible: bool,
) -> tuple[Callable[[bytearray, Any], None], Callable[[Reader], Any]]:
    """The codec of a string or bytes field: null only where the schema allows it."""

    def enc(buf: bytearray, v: Any) -> None:
        if v is None and not nullable:
            raise ValueError(f"null {what} in a non-nullable field")
        write(buf, v, flexible)

    def dec(r: Reader) -> Any:
        x = read(r, flexible)
        if x is None and not nullable:
            raise ProtocolError(f"null {what} in a non-nullable field")
        return x

    return enc, dec


__all__ = ["MAX_VERSION", "NO_VERSIONS", "Field", "Message", "Struct", "Versions", "uuid"]
