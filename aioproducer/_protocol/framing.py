"""Request/response headers and length-prefixed framing, sans-IO.

A request goes out as ``int32 size`` + request header + body. The request header is v2
(with a tagged-field section) when the API version is flexible, else v1. The response header
is v1 (tagged fields) for flexible versions, except ApiVersions, whose response header is
always v0 so that a client can read the error of a version the broker does not know (KIP-511).

The client writes requests and reads responses; :func:`decode_request` is the other side, for
the brokers the tests run (the simulator's, the fake broker).
"""

from __future__ import annotations

import struct
from typing import NamedTuple, TypeVar

from ..errors import ProtocolError
from . import _primitives as p
from ._primitives import Reader
from ._schema import Message
from .messages import REQUESTS, ApiVersionsResponse

_M = TypeVar("_M", bound=Message)
_size = struct.Struct(">i")
API_VERSIONS_KEY = 18
#: Largest response frame accepted unless a connection sets another limit (Java: 100 MB).
DEFAULT_MAX_FRAME = 100 * 1024 * 1024


def encode_request(
    message: Message, version: int, correlation_id: int, client_id: str | None
) -> bytes:
    """The whole frame (size prefix included) of ``message`` at ``version``."""
    message.check_version(version)
    buf = bytearray(b"\0\0\0\0")
    p.write_int16(buf, message.API_KEY)
    p.write_int16(buf, version)
    p.write_int32(buf, correlation_id)
    p.write_string(buf, client_id, compact=False)  # client id is never compact (header v1/v2)
    if message.is_flexible(version):
        buf.append(0)  # no tagged fields in the header
    message.encode_into(buf, version)
    _size.pack_into(buf, 0, len(buf) - 4)
    return bytes(buf)


class RequestHeader(NamedTuple):
    """A request's header (v1, or v2 for flexible versions, whose tagged fields are skipped)."""

    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None


def decode_request(frame: bytes | bytearray | memoryview) -> tuple[RequestHeader, Message]:
    """Decode a request frame (size prefix removed) as a broker does: the header, then the
    body with the generated request class of its API key, at its version.

    Raises :class:`ProtocolError` for a malformed frame, an API key with no request class here
    or bytes after the body, and :class:`~aioproducer.errors.UnsupportedVersion` for a version
    the class does not have."""
    r = Reader(frame)
    api_key, version, correlation_id = r.read_int16(), r.read_int16(), r.read_int32()
    client_id = r.read_string(compact=False)  # never compact, even in header v2
    cls = REQUESTS.get(api_key)
    if cls is None:
        raise ProtocolError(f"request with API key {api_key}, which has no request class here")
    cls.check_version(version)
    if cls.is_flexible(version):
        _skip_tagged_fields(r)
    body = cls.decode_from(r, version)
    if r.remaining:
        raise ProtocolError(f"{cls.__name__} v{version}: {r.remaining} bytes after the body")
    return RequestHeader(api_key, version, correlation_id, client_id), body


def _skip_tagged_fields(r: Reader) -> None:
    """Skip a header's tagged-field section (no header field is tagged yet)."""
    for _ in range(r.read_uvarint()):
        r.read_uvarint()
        r.skip(r.read_uvarint())


def response_header_flexible(response_cls: type[Message], version: int) -> bool:
    return response_cls.API_KEY != API_VERSIONS_KEY and response_cls.is_flexible(version)


def read_correlation_id(frame: bytes | bytearray | memoryview) -> int:
    """The correlation id at the start of a response frame (size prefix removed)."""
    return Reader(frame).read_int32()


def decode_response(
    frame: bytes | bytearray | memoryview, response_cls: type[_M], version: int
) -> tuple[int, _M]:
    """Decode a response frame (size prefix removed) into ``(correlation_id, message)``.

    Trailing bytes after the body are ignored (see below); anything malformed before that is a
    :class:`ProtocolError`."""
    r = Reader(frame)
    correlation_id = r.read_int32()
    if response_header_flexible(response_cls, version):
        _skip_tagged_fields(r)
    body = response_cls.decode_from(r, version)
    # Trailing bytes are tolerated, as the Java client does: some brokers (librdkafka's mock
    # at Metadata v12, for one) append fields the version does not define.
    return correlation_id, body


def decode_api_versions_fallback(frame: bytes | bytearray | memoryview) -> ApiVersionsResponse:
    """An ApiVersions response read at v0, whatever version was asked (KIP-511 fallback)."""
    r = Reader(frame)
    r.read_int32()
    return ApiVersionsResponse.decode_from(r, 0)


class FrameDecoder:
    """Splits a byte stream into frames; refuses a frame larger than ``max_frame`` before
    buffering it, so a hostile size prefix cannot make us allocate."""

    __slots__ = ("_buf", "max_frame")

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self._buf = bytearray()
        self.max_frame = max_frame

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        frames: list[bytes] = []
        buf = self._buf
        pos = 0
        while len(buf) - pos >= 4:
            (size,) = _size.unpack_from(buf, pos)
            if size < 0:
                raise ProtocolError(f"negative frame size {size}")
            if size > self.max_frame:
                raise ProtocolError(f"frame of {size} bytes exceeds the limit of {self.max_frame}")
            if len(buf) - pos - 4 < size:
                break
            frames.append(bytes(buf[pos + 4 : pos + 4 + size]))
            pos += 4 + size
        if pos:
            del buf[:pos]
        return frames
