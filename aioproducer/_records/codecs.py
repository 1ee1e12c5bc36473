"""Compression codecs behind one small interface, in the framings Kafka's Java client uses.

* gzip — stdlib ``zlib`` (gzip container);
* snappy — the xerial block framing Java's ``SnappyOutputStream`` writes (magic header, then
  ``int32 length`` + raw snappy block per 32 KiB); raw unframed snappy is read too;
* lz4 — the LZ4 frame format with independent 64 KiB blocks, as ``KafkaLZ4BlockOutputStream``;
* zstd — a standard zstd frame.

``compress``/``decompress`` are plain functions on bytes: the producer may run them in a
worker thread (lz4, zstandard and zlib release the GIL). ``decompress`` takes a size limit so
a decompression bomb raises :class:`ProtocolError` instead of exhausting memory.
"""

from __future__ import annotations

import functools
import struct
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import ConfigError, ProtocolError

CompressionType = Literal["none", "gzip", "snappy", "lz4", "zstd"]
NONE, GZIP, SNAPPY, LZ4, ZSTD = 0, 1, 2, 3, 4
CODEC_IDS: dict[str, int] = {"none": NONE, "gzip": GZIP, "snappy": SNAPPY, "lz4": LZ4, "zstd": ZSTD}
CODEC_NAMES = {v: k for k, v in CODEC_IDS.items()}
DEFAULT_MAX_DECOMPRESSED = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True, eq=False)  # identity hash: a cache key per batch
class Codec:
    """A compression codec: its Kafka attribute id and two functions on bytes."""

    name: str
    id: int
    compress: Callable[[bytes | bytearray | memoryview], bytes]
    decompress: Callable[[bytes | bytearray | memoryview, int], bytes]
    #: Worst-case compressed size for ``n`` input bytes (used to keep a batch under the limit).
    bound: Callable[[int], int]


# -- gzip ----------------------------------------------------------------------------------------


def _gzip_compressor(level: int) -> Callable[[bytes | bytearray | memoryview], bytes]:
    def compress(data: bytes | bytearray | memoryview) -> bytes:
        c = zlib.compressobj(level, zlib.DEFLATED, 31)
        return c.compress(data) + c.flush()

    return compress


def _gzip_decompress(data: bytes | bytearray | memoryview, limit: int) -> bytes:
    out = bytearray()
    rest = bytes(data)
    try:
        while rest:
            d = zlib.decompressobj(47)  # gzip or zlib header, several members allowed
            out += d.decompress(rest, limit + 1 - len(out))
            if len(out) > limit or d.unconsumed_tail:
                raise ProtocolError(f"gzip data decompresses beyond {limit} bytes")
            if not d.eof:
                raise ProtocolError("truncated gzip data")
            rest = d.unused_data
    except zlib.error as exc:
        raise ProtocolError(f"invalid gzip data: {exc}") from exc
    return bytes(out)


# -- snappy (xerial framing) ---------------------------------------------------------------------

_XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER = _XERIAL_MAGIC + struct.pack(">ii", 1, 1)
_XERIAL_BLOCK = 32 * 1024
_i32 = struct.Struct(">i")


def _cramjam() -> Any:
    try:
        import cramjam
    except ImportError as exc:
        raise ConfigError(
            "compression_type='snappy' needs the snappy extra: pip install 'aioproducer[snappy]'"
        ) from exc
    return cramjam


def _snappy_compress(data: bytes | bytearray | memoryview) -> bytes:
    snappy = _cramjam().snappy
    out = bytearray(_XERIAL_HEADER)
    view = memoryview(data)
    for i in range(0, len(view), _XERIAL_BLOCK):
        block = bytes(snappy.compress_raw(view[i : i + _XERIAL_BLOCK]))
        out += _i32.pack(len(block))
        out += block
    return bytes(out)


def _snappy_raw(data: bytes | bytearray | memoryview, limit: int) -> bytes:
    cj = _cramjam()
    try:
        n = int(cj.snappy.decompress_raw_len(bytes(data)))
    except Exception as exc:
        raise ProtocolError(f"invalid snappy data: {exc}") from exc
    if n > limit:
        raise ProtocolError(f"snappy data decompresses beyond {limit} bytes")
    try:
        return bytes(cj.snappy.decompress_raw(bytes(data)))
    except Exception as exc:
        raise ProtocolError(f"invalid snappy data: {exc}") from exc


def _snappy_decompress(data: bytes | bytearray | memoryview, limit: int) -> bytes:
    data = bytes(data)
    if not data.startswith(_XERIAL_MAGIC):
        return _snappy_raw(data, limit)
    pos = len(_XERIAL_HEADER)
    if len(data) < pos:
        raise ProtocolError("truncated xerial snappy header")
    out = bytearray()
    while pos < len(data):
        if pos + 4 > len(data):
            raise ProtocolError("truncated xerial snappy block length")
        (n,) = _i32.unpack_from(data, pos)
        pos += 4
        if n < 0 or pos + n > len(data):
            raise ProtocolError(f"xerial snappy block of {n} bytes is truncated")
        out += _snappy_raw(data[pos : pos + n], limit - len(out))
        pos += n
    return bytes(out)


# -- lz4 -----------------------------------------------------------------------------------------


def _lz4_compressor(level: int) -> Callable[[bytes | bytearray | memoryview], bytes]:
    import lz4.frame as lz4f

    def compress(data: bytes | bytearray | memoryview) -> bytes:
        return bytes(
            lz4f.compress(
                data,
                compression_level=level,
                block_size=lz4f.BLOCKSIZE_MAX64KB,
                block_linked=False,
                content_checksum=False,
                store_size=False,
            )
        )

    return compress


def _lz4_decompress(data: bytes | bytearray | memoryview, limit: int) -> bytes:
    import lz4.frame as lz4f

    d = lz4f.LZ4FrameDecompressor()
    try:
        out = d.decompress(bytes(data), max_length=limit + 1)
    except RuntimeError as exc:
        raise ProtocolError(f"invalid lz4 data: {exc}") from exc
    if len(out) > limit:
        raise ProtocolError(f"lz4 data decompresses beyond {limit} bytes")
    if not d.eof:
        raise ProtocolError("truncated lz4 frame")
    return bytes(out)


# -- zstd ----------------------------------------------------------------------------------------


def _zstd_compressor(level: int) -> Callable[[bytes | bytearray | memoryview], bytes]:
    import zstandard

    # A ZstdCompressor must not be used by two threads at once, and the producer compresses
    # small batches on the event loop while its worker thread compresses big ones: one context
    # per thread.
    local = threading.local()

    def compress(data: bytes | bytearray | memoryview) -> bytes:
        cctx = getattr(local, "cctx", None)
        if cctx is None:
            cctx = local.cctx = zstandard.ZstdCompressor(level=level)
        return bytes(cctx.compress(data))

    return compress


def _zstd_decompress(data: bytes | bytearray | memoryview, limit: int) -> bytes:
    import zstandard

    d = zstandard.ZstdDecompressor().decompressobj()
    out = bytearray()
    try:
        view = memoryview(bytes(data))
        for i in range(0, len(view), 65536):
            out += d.decompress(view[i : i + 65536])
            if len(out) > limit:
                raise ProtocolError(f"zstd data decompresses beyond {limit} bytes")
    except zstandard.ZstdError as exc:
        raise ProtocolError(f"invalid zstd data: {exc}") from exc
    if not d.eof:
        raise ProtocolError("truncated zstd frame")
    return bytes(out)


def _identity(data: bytes | bytearray | memoryview) -> bytes:
    return bytes(data)


def _identity_d(data: bytes | bytearray | memoryview, limit: int) -> bytes:
    return bytes(data)


# Default levels: Kafka's (KIP-390): gzip 6 (zlib default), lz4 9, zstd 3.
DEFAULT_LEVELS = {"gzip": 6, "lz4": 9, "zstd": 3}
LEVEL_RANGES = {"gzip": (1, 9), "lz4": (1, 17), "zstd": (-131072, 22)}


@functools.lru_cache(maxsize=64)
def get_codec(name: str, level: int | None = None) -> Codec:
    """The codec called ``name`` (``none``, ``gzip``, ``snappy``, ``lz4``, ``zstd``): one shared,
    thread-safe instance per name and level."""
    if name not in CODEC_IDS:
        raise ConfigError(f"compression_type={name!r} is not one of none, gzip, snappy, lz4, zstd")
    if level is not None and name in LEVEL_RANGES:
        lo, hi = LEVEL_RANGES[name]
        if not lo <= level <= hi:
            raise ConfigError(f"compression level {level} for {name} is outside {lo}..{hi}")
    lvl = DEFAULT_LEVELS.get(name, 0) if level is None else level
    if name == "none":
        return Codec(name, NONE, _identity, _identity_d, lambda n: n)
    if name == "gzip":
        return Codec(
            name, GZIP, _gzip_compressor(lvl), _gzip_decompress, lambda n: n + n // 1000 + 64
        )
    if name == "snappy":
        _cramjam()
        return Codec(
            name,
            SNAPPY,
            _snappy_compress,
            _snappy_decompress,
            lambda n: n + n // 6 + 64 + 36 * (n // _XERIAL_BLOCK + 1),
        )
    if name == "lz4":
        return Codec(
            name,
            LZ4,
            _lz4_compressor(lvl),
            _lz4_decompress,
            lambda n: n + n // 255 + 64 + 4 * (n // 65536 + 1),
        )
    return Codec(name, ZSTD, _zstd_compressor(lvl), _zstd_decompress, lambda n: n + n // 128 + 128)


def decompress(
    codec_id: int, data: bytes | bytearray | memoryview, limit: int = DEFAULT_MAX_DECOMPRESSED
) -> bytes:
    name = CODEC_NAMES.get(codec_id)
    if name is None:
        raise ProtocolError(f"unknown compression codec id {codec_id}")
    return get_codec(name).decompress(data, limit)
