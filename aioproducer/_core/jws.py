"""Verifying a JWS signature with a public JSON Web Key (RFC 7515/7518), in pure Python.

Only verification, only with public keys: RS256/384/512 (RSASSA-PKCS1-v1_5), PS256/384/512
(RSASSA-PSS, MGF1 with the same hash, salt as long as the hash) and ES256/384/512 (ECDSA on
P-256/384/521). Nothing here is secret, so plain integer arithmetic is fine (no constant-time
needs), and no cryptography library is required.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Mapping
from typing import Any

_HASHES: dict[str, Callable[..., Any]] = {
    "256": hashlib.sha256,
    "384": hashlib.sha384,
    "512": hashlib.sha512,
}
# DER DigestInfo prefixes of RFC 8017 §9.2, note 1.
_DIGEST_INFO = {
    "256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "512": bytes.fromhex("3051300d060960864801650304020305000440"),
}
#: Every algorithm :func:`verify` knows, and the key type it needs.
ALGORITHMS = {
    **{f"RS{b}": "RSA" for b in _HASHES},
    **{f"PS{b}": "RSA" for b in _HASHES},
    **{f"ES{b}": "EC" for b in _HASHES},
}


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _int(jwk: Mapping[str, Any], name: str) -> int:
    value = jwk.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"the key has no {name!r}")
    return int.from_bytes(b64url_decode(value), "big")


def verify(alg: str, jwk: Mapping[str, Any], signing_input: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is ``jwk``'s signature of ``signing_input`` under ``alg``.
    Raises ValueError for an algorithm outside :data:`ALGORITHMS` or a malformed key."""
    kind = ALGORITHMS.get(alg)
    if kind is None:
        raise ValueError(f"algorithm {alg!r} is not supported (supported: {sorted(ALGORITHMS)})")
    if jwk.get("kty") != kind:
        raise ValueError(f"algorithm {alg} needs a key of type {kind}, not {jwk.get('kty')!r}")
    bits = alg[2:]
    digest = _HASHES[bits](signing_input).digest()
    if alg.startswith("ES"):
        return _ecdsa(bits, jwk, digest, signature)
    n, e = _int(jwk, "n"), _int(jwk, "e")
    k = (n.bit_length() + 7) // 8
    if len(signature) != k:
        return False
    s = int.from_bytes(signature, "big")
    if s >= n:
        return False
    m = pow(s, e, n)
    if alg.startswith("RS"):
        t = _DIGEST_INFO[bits] + digest
        if k < len(t) + 11:
            return False
        expected = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
        return hmac.compare_digest(m.to_bytes(k, "big"), expected)
    return _pss(bits, m, n.bit_length() - 1, digest)


def _mgf1(hash_fn: Callable[..., Any], seed: bytes, length: int) -> bytes:
    out = b""
    counter = 0
    while len(out) < length:
        out += hash_fn(seed + counter.to_bytes(4, "big")).digest()
        counter += 1
    return out[:length]


def _pss(bits: str, m: int, em_bits: int, m_hash: bytes) -> bool:
    """EMSA-PSS-VERIFY (RFC 8017 §9.1.2), salt length = hash length."""
    hash_fn = _HASHES[bits]
    h_len = s_len = len(m_hash)
    em_len = (em_bits + 7) // 8
    if m.bit_length() > em_bits or em_len < h_len + s_len + 2:
        return False
    em = m.to_bytes(em_len, "big")
    if em[-1] != 0xBC:
        return False
    masked_db, h = em[: em_len - h_len - 1], em[em_len - h_len - 1 : -1]
    unused = 8 * em_len - em_bits
    if unused and masked_db[0] >> (8 - unused):
        return False
    db = bytearray(a ^ b for a, b in zip(masked_db, _mgf1(hash_fn, h, len(masked_db)), strict=True))
    db[0] &= 0xFF >> unused
    pad = em_len - h_len - s_len - 2
    if any(db[:pad]) or db[pad] != 1:
        return False
    salt = bytes(db[pad + 1 :])
    return hmac.compare_digest(hash_fn(b"\x00" * 8 + m_hash + salt).digest(), h)


# Curve: (p, b, n, Gx, Gy); a = -3 for all three (FIPS 186-4, D.1.2).
_CURVES = {
    "P-256": (
        0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF,
        0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B,
        0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
        0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
        0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5,
    ),
    "P-384": (
        2**384 - 2**128 - 2**96 + 2**32 - 1,
        0xB3312FA7E23EE7E4988E056BE3F82D19181D9C6EFE8141120314088F5013875AC656398D8A2ED19D2A85C8EDD3EC2AEF,
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973,
        0xAA87CA22BE8B05378EB1C71EF320AD746E1D3B628BA79B9859F741E082542A385502F25DBF55296C3A545E3872760AB7,
        0x3617DE4A96262C6F5D9E98BF9292DC29F8F41DBD289A147CE9DA3113B5F0B8C00A60B1CE1D7E819D7A431D7C90EA0E5F,
    ),
    "P-521": (
        2**521 - 1,
        0x0051953EB9618E1C9A1F929A21A0B68540EEA2DA725B99B315F3B8B489918EF109E156193951EC7E937B1652C0BD3BB1BF073573DF883D2C34F1EF451FD46B503F00,
        0x01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFA51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409,
        0x00C6858E06B70404E9CD9E3ECB662395B4429C648139053FB521F828AF606B4D3DBAA14B5E77EFE75928FE1DC127A2FFA8DE3348B3C1856A429BF97E7E31C2E5BD66,
        0x011839296A789A3BC0045C8A5FB42C7D1BD998F54449579B446817AFBD17273E662C97EE72995EF42640C550B9013FAD0761353C7086A272C24088BE94769FD16650,
    ),
}
_CURVE_OF = {"256": "P-256", "384": "P-384", "512": "P-521"}
_Point = tuple[int, int] | None


def _add(p: int, a: _Point, b: _Point) -> _Point:
    if a is None:
        return b
    if b is None:
        return a
    (x1, y1), (x2, y2) = a, b
    if x1 == x2:
        if (y1 + y2) % p == 0:
            return None
        slope = (3 * x1 * x1 - 3) * pow(2 * y1, -1, p) % p
    else:
        slope = (y2 - y1) * pow(x2 - x1, -1, p) % p
    x3 = (slope * slope - x1 - x2) % p
    return x3, (slope * (x1 - x3) - y1) % p


def _mul(p: int, k: int, point: _Point) -> _Point:
    out: _Point = None
    for bit in bin(k)[2:]:
        out = _add(p, out, out)
        if bit == "1":
            out = _add(p, out, point)
    return out


def _ecdsa(bits: str, jwk: Mapping[str, Any], digest: bytes, signature: bytes) -> bool:
    crv = _CURVE_OF[bits]
    if jwk.get("crv") != crv:
        raise ValueError(f"algorithm ES{bits} needs a key on curve {crv}, not {jwk.get('crv')!r}")
    p, b, n, gx, gy = _CURVES[crv]
    x, y = _int(jwk, "x"), _int(jwk, "y")
    if not (0 <= x < p and 0 <= y < p) or (y * y - (x * x * x - 3 * x + b)) % p:
        raise ValueError(f"the key's point is not on curve {crv}")
    size = (n.bit_length() + 7) // 8
    if len(signature) != 2 * size:
        return False
    r, s = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
    if not (0 < r < n and 0 < s < n):
        return False
    e = int.from_bytes(digest, "big")
    excess = 8 * len(digest) - n.bit_length()
    if excess > 0:
        e >>= excess
    w = pow(s, -1, n)
    total = _add(p, _mul(p, e * w % n, (gx, gy)), _mul(p, r * w % n, (x, y)))
    return total is not None and total[0] % n == r


__all__ = ("ALGORITHMS", "b64url_decode", "verify")
