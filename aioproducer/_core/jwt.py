"""Checking an OAUTHBEARER access token (a JWT) before it is sent, as Java 4.x's client does.

Java's login callback handler passes every token from the token endpoint through
``DefaultJwtValidator``: without ``sasl.oauthbearer.jwks.endpoint.url`` that is
``ClientJwtValidator`` (:func:`token_claims`: the structure, the subject and scope claims under
their configured names, ``exp``, ``iat``), with it ``BrokerJwtValidator``
(:func:`check_signed`, then :func:`token_claims`: the signature against the JWKS, ``alg: none``
refused, ``exp`` within the allowed clock skew, ``iat`` present, ``nbf``, the expected audience
and issuer). Time is an argument. Errors are :class:`InvalidTokenError`, whose messages name
the claim and never include the token.

One difference from Java: Java's client also insists on a non-empty signature section even
when it verifies nothing; here an unsecured JWT (``alg: none``) passes :func:`token_claims`, as
Kafka's unsecured broker-side validator accepts it (a JWKS refuses it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .jws import ALGORITHMS, b64url_decode, verify


class InvalidTokenError(ValueError):
    """The access token is malformed or fails a check (the message says which)."""


@dataclass(frozen=True, slots=True)
class Jwt:
    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What Java's ``BasicOAuthBearerToken`` keeps of a validated token."""

    scopes: frozenset[str]
    expires_ms: int
    subject: str
    issued_at_ms: int | None


def parse(token: str) -> Jwt:
    """The three sections of a compact JWS, header and payload decoded as JSON objects."""
    parts = token.strip().split(".")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise InvalidTokenError(
            "the access token is not a JWT: expected three sections (header, payload and "
            f"signature), got {len([p for p in parts if p])}"
        )
    sections: list[dict[str, Any]] = []
    for name, text in (("header", parts[0]), ("payload", parts[1])):
        try:
            value = json.loads(b64url_decode(text))
        except ValueError:
            raise InvalidTokenError(
                f"the access token's {name} is not base64url-encoded JSON"
            ) from None
        if not isinstance(value, dict):
            raise InvalidTokenError(f"the access token's {name} is not a JSON object")
        sections.append(value)
    try:
        signature = b64url_decode(parts[2])
    except ValueError:
        raise InvalidTokenError("the access token's signature is not base64url") from None
    return Jwt(sections[0], sections[1], f"{parts[0]}.{parts[1]}".encode(), signature)


def _string(claim: str, value: Any) -> str:
    if value is None:
        raise InvalidTokenError(f"the access token has no {claim!r} claim")
    if not isinstance(value, str):
        raise InvalidTokenError(f"the access token's {claim!r} claim is not a string")
    if not value.strip():
        raise InvalidTokenError(f"the access token's {claim!r} claim is empty")
    return value.strip()


def _time_ms(claim: str, value: Any, required: bool) -> int | None:
    if value is None:
        if required:
            raise InvalidTokenError(f"the access token has no {claim!r} claim")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidTokenError(f"the access token's {claim!r} claim is not a number")
    if value < 0:
        raise InvalidTokenError(f"the access token's {claim!r} claim is negative ({value})")
    return int(value * 1000)


def token_claims(jwt: Jwt, scope_claim: str = "scope", sub_claim: str = "sub") -> TokenClaims:
    """Java's ``ClientJwtValidator``: the subject (claim ``sub_claim``), the scopes (claim
    ``scope_claim``: a string is one scope, a list several; absent, none), ``exp`` (required)
    and ``iat`` (optional)."""
    payload = jwt.payload
    raw = payload.get(scope_claim)
    items: Iterable[Any] = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else ()
    scopes: set[str] = set()
    for item in items:
        scope = _string(scope_claim, item)
        if scope in scopes:
            raise InvalidTokenError(f"the access token's {scope_claim!r} claim has {scope!r} twice")
        scopes.add(scope)
    expires = _time_ms("exp", payload.get("exp"), required=True)
    assert expires is not None
    subject = _string(sub_claim, payload.get(sub_claim))
    issued = _time_ms("iat", payload.get("iat"), required=False)
    return TokenClaims(frozenset(scopes), expires, subject, issued)


def candidate_keys(jwt: Jwt, keys: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The JWKS keys that may have signed ``jwt`` (jose4j's ``VerificationJwkSelector``): its
    ``kid`` when it names one, the key type and curve its algorithm needs, not an encryption
    key, and the key's own ``alg`` if it states one."""
    alg, kid = jwt.header.get("alg"), jwt.header.get("kid")
    out = []
    for key in keys:
        if kid is not None and key.get("kid") != kid:
            continue
        if key.get("kty") != ALGORITHMS.get(str(alg)) or key.get("use", "sig") != "sig":
            continue
        if key.get("alg", alg) != alg:
            continue
        out.append(key)
    return out


def check_signed(
    jwt: Jwt,
    keys: Sequence[Mapping[str, Any]],
    now_s: float,
    clock_skew_s: int = 30,
    audience: Sequence[str] | None = None,
    issuer: str | None = None,
    check_audience: bool = True,
) -> None:
    """Java's ``BrokerJwtValidator`` (through jose4j): the signature by one of ``keys`` (the
    JWKS's), then ``exp`` (required; expired once ``now_s - clock_skew_s`` reaches it), ``iat``
    (required), ``nbf``, ``aud`` (a token naming an audience needs ``audience`` to include
    one of them; with ``check_audience`` False, ``aud`` is not looked at) and ``iss`` (when
    ``issuer`` is given). Raises :class:`InvalidTokenError`."""
    alg = jwt.header.get("alg")
    if not isinstance(alg, str) or alg == "none":
        raise InvalidTokenError(f"the access token is not signed (alg {alg!r} refused)")
    if alg not in ALGORITHMS:
        raise InvalidTokenError(
            f"the access token's algorithm {alg!r} is not supported (supported: "
            f"{', '.join(sorted(ALGORITHMS))})"
        )
    candidates = candidate_keys(jwt, keys)
    if not candidates:
        kid = jwt.header.get("kid")
        raise InvalidTokenError(
            f"no key of the JWKS can verify the access token (alg {alg}, kid {kid!r}; the "
            f"JWKS has kids {[k.get('kid') for k in keys]})"
        )
    try:
        ok = any(verify(alg, key, jwt.signing_input, jwt.signature) for key in candidates)
    except ValueError as exc:
        raise InvalidTokenError(f"the access token's signature cannot be checked: {exc}") from None
    if not ok:
        raise InvalidTokenError(f"the access token's signature ({alg}) does not verify")
    claims = jwt.payload
    exp = _time_ms("exp", claims.get("exp"), required=True)
    assert exp is not None
    if (now_s - clock_skew_s) * 1000 >= exp:
        raise InvalidTokenError(
            f"the access token expired at exp={exp / 1000:.0f} (now {now_s:.0f}, allowing "
            f"{clock_skew_s} s of clock skew)"
        )
    _time_ms("iat", claims.get("iat"), required=True)
    nbf = _time_ms("nbf", claims.get("nbf"), required=False)
    if nbf is not None and (now_s + clock_skew_s) * 1000 < nbf:
        raise InvalidTokenError(
            f"the access token is not valid before nbf={nbf / 1000:.0f} (now {now_s:.0f}, "
            f"allowing {clock_skew_s} s of clock skew)"
        )
    aud = claims.get("aud") if check_audience else None
    if check_audience and aud is None and audience:
        raise InvalidTokenError(
            f"the access token has no 'aud' claim; expected one of {sorted(audience)} "
            "(sasl_oauthbearer_expected_audience)"
        )
    if aud is not None:
        named = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else None
        if named is None or not all(isinstance(a, str) for a in named):
            raise InvalidTokenError("the access token's 'aud' claim is malformed")
        if not set(named) & set(audience or ()):
            expected = (
                f"one of {sorted(audience)} (sasl_oauthbearer_expected_audience)"
                if audience
                else "none: sasl_oauthbearer_expected_audience is not set"
            )
            raise InvalidTokenError(
                f"the access token's audience {named} is not expected: {expected}"
            )
    if issuer is not None and claims.get("iss") != issuer:
        raise InvalidTokenError(
            f"the access token's issuer {claims.get('iss')!r} is not the expected {issuer!r} "
            "(sasl_oauthbearer_expected_issuer)"
        )


__all__ = (
    "InvalidTokenError",
    "Jwt",
    "TokenClaims",
    "candidate_keys",
    "check_signed",
    "parse",
    "token_claims",
)
