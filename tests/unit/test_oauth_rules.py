"""The OAUTHBEARER login rules as values, time an argument: Java's refresh time
(``ExpiringCredentialRefreshingLogin.refreshMs``), its retry backoff (``Retry``), the token
checks of its ``ClientJwtValidator`` and ``BrokerJwtValidator``, and the JWS signatures."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from aioproducer._core.jws import verify
from aioproducer._core.jwt import InvalidTokenError, check_signed, parse, token_claims
from aioproducer._core.oauth import RefreshWindow, refresh_at_ms, retry_wait_ms
from aioproducer._io.oauth_http import HttpFailure, form_encode, with_retries

S = 1000  # ms
NOW = 1_700_000_000 * S
JAVA = RefreshWindow()  # 0.8, 0.05, 60 s, 300 s


@pytest.mark.parametrize(
    ("window", "start", "expire", "rnd", "expected", "why"),
    [
        (JAVA, NOW, NOW + 3600 * S, 0.0, NOW + 2880 * S, "80 % of an hour"),
        (JAVA, NOW, NOW + 3600 * S, 1.0, NOW + 3060 * S, "plus the whole 5 % jitter"),
        (JAVA, NOW - 600 * S, NOW + 3000 * S, 0.0, NOW + 2280 * S, "lifetime from iat"),
        (RefreshWindow(1.0, 0.0), NOW, NOW + 3600 * S, 0.0, NOW + 3300 * S, "buffer: 300 s"),
        (JAVA, NOW - 3000 * S, NOW + 600 * S, 0.0, NOW + 60 * S, "min period: 60 s from now"),
        (JAVA, NOW, NOW + 6 * S, 0.0, NOW + 4800, "too short for the margins: 80 %"),
        (JAVA, None, NOW + 100 * S, 0.0, NOW + 80 * S, "too short, no iat"),
        (JAVA, NOW - 20 * S, NOW - S, 0.0, NOW + 10 * S, "expired: again in 10 s"),
        (RefreshWindow(0.5, 0.0, 0, 0), NOW, NOW + 10 * S, 0.0, NOW + 5 * S, "no margins"),
    ],
)
def test_refresh_time_is_javas(
    window: RefreshWindow, start: int | None, expire: int, rnd: float, expected: int, why: str
) -> None:
    assert refresh_at_ms(window, NOW, start, expire, rnd) == expected, why


def test_retry_waits_double_within_the_max_from_the_first_attempt() -> None:
    waits = [retry_wait_ms(n, 100, 0, now, 1000) for n, now in [(1, 0), (2, 100), (3, 300)]]
    assert waits == [100, 200, 400]
    assert retry_wait_ms(4, 100, 0, 700, 1000) == 300  # clipped to what is left
    assert retry_wait_ms(5, 100, 0, 1000, 1000) == 0  # the max is spent: give up
    assert retry_wait_ms(1, 0, 0, 0, 1000) == 0  # Java: no backoff, no retry


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, s: float) -> None:
        self.slept.append(round(s, 3))
        self.now += s


def test_with_retries_retries_what_may_improve_and_stops_on_what_cannot() -> None:
    clock = _Clock()
    answers: list[Any] = [HttpFailure("HTTP 503"), HttpFailure("unreachable"), b"ok"]

    def attempt() -> bytes:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return bytes(answer)

    assert with_retries(attempt, 100, 10000, "t", lambda: clock.now, clock.sleep) == b"ok"
    assert clock.slept == [0.1, 0.2]

    clock = _Clock()
    answers = [HttpFailure("HTTP 401", retriable=False), b"never"]
    with pytest.raises(HttpFailure, match="HTTP 401"):
        with_retries(attempt, 100, 10000, "t", lambda: clock.now, clock.sleep)
    assert clock.slept == []

    clock = _Clock()
    answers = [HttpFailure("HTTP 503")] * 20
    with pytest.raises(HttpFailure, match=r"HTTP 503 \(attempt 5, retried for 1000 ms\)"):
        with_retries(attempt, 100, 1000, "t", lambda: clock.now, clock.sleep)
    assert clock.slept == [0.1, 0.2, 0.4, 0.3]


def test_form_encoding_is_javas_url_encoder() -> None:
    assert form_encode("a b+c:d/é~*._-") == "a+b%2Bc%3Ad%2F%C3%A9%7E*._-"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _token(payload: dict[str, Any], header: dict[str, Any] | None = None, sig: bytes = b"") -> str:
    h = _b64(json.dumps(header or {"alg": "none"}).encode())
    return f"{h}.{_b64(json.dumps(payload).encode())}.{_b64(sig)}"


GOOD = {"sub": "app", "exp": 2000, "iat": 1000, "scope": "a"}


def test_client_checks_of_a_token() -> None:
    claims = token_claims(parse(_token(GOOD)))
    assert (claims.subject, claims.expires_ms, claims.issued_at_ms) == ("app", 2_000_000, 1_000_000)
    assert claims.scopes == {"a"}
    listed = token_claims(parse(_token({**GOOD, "scp": ["x", "y"], "cid": "c1"})), "scp", "cid")
    assert listed.scopes == {"x", "y"} and listed.subject == "c1"
    assert token_claims(parse(_token({"sub": "a", "exp": 5}))).scopes == frozenset()


@pytest.mark.parametrize(
    ("payload", "names", "says"),
    [
        ({**GOOD, "sub": None}, {}, "has no 'sub' claim"),
        (GOOD, {"sub_claim": "client_id"}, "has no 'client_id' claim"),
        ({**GOOD, "sub": "  "}, {}, "'sub' claim is empty"),
        ({**GOOD, "sub": 7}, {}, "'sub' claim is not a string"),
        ({**GOOD, "exp": None}, {}, "has no 'exp' claim"),
        ({**GOOD, "exp": "soon"}, {}, "'exp' claim is not a number"),
        ({**GOOD, "iat": -1}, {}, "'iat' claim is negative"),
        ({**GOOD, "scope": ["a", "a"]}, {}, "'scope' claim has 'a' twice"),
        ({**GOOD, "scp": ["a", ""]}, {"scope_claim": "scp"}, "'scp' claim is empty"),
    ],
)
def test_client_refuses_a_token_naming_the_claim(
    payload: dict[str, Any], names: dict[str, str], says: str
) -> None:
    token = _token({k: v for k, v in payload.items() if v is not None})
    with pytest.raises(InvalidTokenError, match=says) as info:
        token_claims(parse(token), **names)
    assert token not in str(info.value)


@pytest.mark.parametrize("token", ["opaque", "a.b", "..", "e30.bm90IGpzb24.", "W10.e30."])
def test_what_is_not_a_jwt(token: str) -> None:
    with pytest.raises(InvalidTokenError):
        token_claims(parse(token))


def _uint(value: int, size: int | None = None) -> str:
    return _b64(value.to_bytes(size or (value.bit_length() + 7) // 8, "big"))


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_RSA_PUB = RSA_KEY.public_key().public_numbers()
RSA_JWK = {"kty": "RSA", "kid": "k1", "n": _uint(_RSA_PUB.n), "e": _uint(_RSA_PUB.e)}
HASHES = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}
CURVES = {"256": ec.SECP256R1(), "384": ec.SECP384R1(), "512": ec.SECP521R1()}
CRV = {"256": "P-256", "384": "P-384", "512": "P-521"}


def _sign(alg: str, data: bytes, key: Any = RSA_KEY) -> bytes:
    h = HASHES[alg[2:]]
    if alg.startswith("RS"):
        return bytes(key.sign(data, padding.PKCS1v15(), h))
    if alg.startswith("PS"):
        return bytes(key.sign(data, padding.PSS(padding.MGF1(h), salt_length=h.digest_size), h))
    size = (key.curve.key_size + 7) // 8
    r, s = utils.decode_dss_signature(key.sign(data, ec.ECDSA(h)))
    return bytes(r.to_bytes(size, "big") + s.to_bytes(size, "big"))


@pytest.mark.parametrize("alg", [f"{k}{b}" for k in ("RS", "PS", "ES") for b in HASHES])
def test_signatures_verify_and_tampering_does_not(alg: str) -> None:
    key: Any = RSA_KEY
    jwk: dict[str, Any] = RSA_JWK
    if alg.startswith("ES"):
        key = ec.generate_private_key(CURVES[alg[2:]])
        pub, size = key.public_key().public_numbers(), (key.curve.key_size + 7) // 8
        jwk = {"kty": "EC", "crv": CRV[alg[2:]], "x": _uint(pub.x, size), "y": _uint(pub.y, size)}
    sig = _sign(alg, b"head.body", key)
    assert verify(alg, jwk, b"head.body", sig)
    assert not verify(alg, jwk, b"head.bodY", sig)
    assert not verify(alg, jwk, b"head.body", sig[:-1] + bytes([sig[-1] ^ 1]))


def _signed(payload: dict[str, Any], alg: str = "RS256", kid: str = "k1") -> str:
    """A token signed by ``RSA_KEY``; claims of None are left out."""
    header = _b64(json.dumps({"alg": alg, "kid": kid}).encode())
    body = _b64(json.dumps({k: v for k, v in payload.items() if v is not None}).encode())
    return f"{header}.{body}.{_b64(_sign(alg, f'{header}.{body}'.encode()))}"


CLAIMS = {"sub": "app", "iat": 1000, "exp": 2000, "aud": "kafka", "iss": "idp"}


def _check(token: str, now: float = 1500, **kw: Any) -> None:
    kw = {"audience": ["kafka"], "issuer": "idp", **kw}
    check_signed(parse(token), [RSA_JWK], now, 30, **kw)


def test_a_signed_token_passes_within_the_clock_skew() -> None:
    _check(_signed(CLAIMS))
    _check(_signed(CLAIMS), now=2029)  # 29 s after exp: within the 30 s skew
    _check(_signed({**CLAIMS, "nbf": 1520}), now=1500)
    _check(_signed({**CLAIMS, "aud": ["other", "kafka"]}))
    _check(_signed({**CLAIMS, "aud": "x"}), check_audience=False)


@pytest.mark.parametrize(
    ("token", "kw", "says"),
    [
        (_token(CLAIMS), {}, "not signed"),
        (_signed(CLAIMS, kid="k2"), {}, "no key of the JWKS"),
        (_signed(CLAIMS)[:-4] + "AAAA", {}, "does not verify"),
        (_signed(CLAIMS), {"now": 2030}, "expired at exp=2000"),
        (_signed({**CLAIMS, "iat": None}), {}, "no 'iat' claim"),
        (_signed({**CLAIMS, "nbf": 1600}), {}, "not valid before nbf=1600"),
        (_signed({**CLAIMS, "aud": "other"}), {}, r"audience \['other'\] is not expected"),
        (_signed({**CLAIMS, "aud": None}), {}, "no 'aud' claim"),
        (_signed(CLAIMS), {"audience": None}, "sasl_oauthbearer_expected_audience is not set"),
        (_signed({**CLAIMS, "iss": "evil"}), {}, "issuer 'evil' is not the expected 'idp'"),
    ],
)
def test_a_signed_token_is_refused_saying_why(token: str, kw: dict[str, Any], says: str) -> None:
    with pytest.raises(InvalidTokenError, match=says):
        _check(token, **kw)
