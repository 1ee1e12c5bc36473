from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aioproducer._core.murmur2 import murmur2, partition_for_key, to_positive


def reference_murmur2(data: bytes) -> int:
    """An independent transcription of Java's Utils.murmur2, on signed 32-bit ints."""

    def i32(x: int) -> int:
        x &= 0xFFFFFFFF
        return x - 2**32 if x >= 2**31 else x

    def ushr(x: int, n: int) -> int:  # Java's >>> on an int
        return (x & 0xFFFFFFFF) >> n

    m, r = 0x5BD1E995, 24
    length = len(data)
    h = i32(0x9747B28C ^ length)
    for i in range(length // 4):
        o = i * 4
        k = (
            (data[o] & 0xFF)
            + ((data[o + 1] & 0xFF) << 8)
            + ((data[o + 2] & 0xFF) << 16)
            + ((data[o + 3] & 0xFF) << 24)
        )
        k = i32(k * m)
        k = i32(k ^ ushr(k, r))
        k = i32(k * m)
        h = i32(h * m)
        h = i32(h ^ k)
    rest = length % 4
    base = length & ~3
    if rest == 3:
        h = i32(h ^ ((data[base + 2] & 0xFF) << 16))
    if rest >= 2:
        h = i32(h ^ ((data[base + 1] & 0xFF) << 8))
    if rest >= 1:
        h = i32(h ^ (data[base] & 0xFF))
        h = i32(h * m)
    h = i32(h ^ ushr(h, 13))
    h = i32(h * m)
    h = i32(h ^ ushr(h, 15))
    return h


def test_known_java_values() -> None:
    assert murmur2(b"21") == -973932308
    assert murmur2(b"foobar") == -790332482
    assert murmur2(b"abc") == 479470107
    # More values from Java's UtilsTest.
    assert murmur2(b"a-little-bit-long-string") == -985981536
    assert murmur2(b"a-little-bit-longer-string") == -1486304829
    assert murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") == -58897971
    assert murmur2(bytes([ord("a"), ord("b"), ord("c")])) == 479470107


@given(st.binary(max_size=200))
def test_matches_independent_implementation(data: bytes) -> None:
    assert murmur2(data) == reference_murmur2(data)


@given(st.binary(min_size=1, max_size=64), st.integers(1, 10_000))
def test_partition_is_to_positive_mod_n(key: bytes, n: int) -> None:
    p = partition_for_key(key, n)
    assert 0 <= p < n
    assert p == (reference_murmur2(key) & 0x7FFFFFFF) % n
    assert to_positive(-1) == 0x7FFFFFFF
