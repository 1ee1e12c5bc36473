"""Java's ``Utils.murmur2``, byte for byte, so a key lands on the same partition as with the
Java client (and librdkafka's ``murmur2_random``)."""

from __future__ import annotations

import sys

_LITTLE_ENDIAN = sys.byteorder == "little"
_M = 0x5BD1E995
_SEED = 0x9747B28C
_MASK = 0xFFFFFFFF


def murmur2(data: bytes | bytearray | memoryview) -> int:
    """The 32-bit murmur2 hash of ``data`` as a signed int, exactly as Java computes it."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    n4 = length & ~3
    # Java reads little-endian 32-bit words; cast("I") is native order, right on little-endian.
    words: object = memoryview(data)[:n4].cast("I") if n4 else ()
    if not _LITTLE_ENDIAN:  # pragma: no cover - big-endian hosts
        words = [int.from_bytes(bytes(data[i : i + 4]), "little") for i in range(0, n4, 4)]
    for k in words:  # type: ignore[attr-defined]
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = length & 3
    if tail:
        if tail == 3:
            h ^= data[n4 + 2] << 16
        if tail >= 2:
            h ^= data[n4 + 1] << 8
        h ^= data[n4]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def to_positive(n: int) -> int:
    """Java's ``Utils.toPositive``: clear the sign bit (not ``abs``)."""
    return n & 0x7FFFFFFF


def partition_for_key(key: bytes | bytearray | memoryview, num_partitions: int) -> int:
    """The partition Java's default partitioner picks for a non-null key."""
    return to_positive(murmur2(key)) % num_partitions
