"""The JWT assertion of OAuth's jwt-bearer grant (RFC 7523, KIP-1139), as values: what Java
4.x's ``JwtBearerJwtRetriever`` puts in the assertion it signs, and the checks on one given
ready-made. Time and the ``jti`` are arguments; signing happens in :mod:`aioproducer._io`.

The header and claims are layered as Java layers its templates, each layer overriding the one
before: the static claims of the settings (``aud``, ``iss``, ``sub``), then the template file's
``header`` and ``payload`` objects, then the dynamic values (``alg``, ``typ: JWT``, ``iat``,
``exp`` = now + ``exp_seconds``, ``nbf`` = now - ``nbf_seconds``, and ``jti`` when asked), all
in whole seconds since the epoch.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from .jwt import InvalidTokenError, parse

#: The signing algorithms Java's client offers (``sasl.oauthbearer.assertion.algorithm``).
ALGORITHMS = ("RS256", "ES256")
#: The grant type sent to the token endpoint (RFC 7523 §2.1).
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"


class InvalidAssertionError(ValueError):
    """An assertion (or its template) cannot be made; the message says why."""


@dataclass(frozen=True, slots=True)
class AssertionClaims:
    """The settings of a locally made assertion (Java's ``sasl.oauthbearer.assertion.*``)."""

    algorithm: str = "RS256"
    aud: str | None = None
    iss: str | None = None
    sub: str | None = None
    exp_seconds: int = 300
    nbf_seconds: int = 60
    jti_include: bool = False


def parse_template(text: str | bytes, source: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``header`` and ``payload`` objects (each optional) of a template file's JSON."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InvalidAssertionError(f"the assertion template {source} is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidAssertionError(f"the assertion template {source} is not a JSON object")
    parts = []
    for name in ("header", "payload"):
        part = value.get(name, {})
        if not isinstance(part, dict):
            raise InvalidAssertionError(
                f"the assertion template {source}: {name!r} is not an object"
            )
        parts.append(part)
    return parts[0], parts[1]


def assertion_parts(
    claims: AssertionClaims,
    now_ms: int,
    template: tuple[dict[str, Any], dict[str, Any]] | None = None,
    jti: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and payload of an assertion made at ``now_ms``; ``jti`` (a fresh unique id)
    is used only with ``claims.jti_include``."""
    header: dict[str, Any] = {}
    payload: dict[str, Any] = {
        k: v for k, v in (("aud", claims.aud), ("iss", claims.iss), ("sub", claims.sub)) if v
    }
    if template is not None:
        header.update(template[0])
        payload.update(template[1])
    header.update(alg=claims.algorithm.upper(), typ="JWT")
    now_s = now_ms // 1000
    payload.update(iat=now_s, exp=now_s + claims.exp_seconds, nbf=now_s - claims.nbf_seconds)
    if claims.jti_include:
        if not jti:
            raise InvalidAssertionError("jti_include needs a fresh jti")
        payload["jti"] = jti
    return header, payload


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def signing_input(header: dict[str, Any], payload: dict[str, Any]) -> str:
    """``base64url(header) . base64url(payload)``, compact JSON, what the signature covers."""
    return ".".join(
        b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, payload)
    )


def check_assertion(text: str, source: str) -> str:
    """A ready-made assertion (Java's ``sasl.oauthbearer.assertion.file``), stripped: it must
    be a compact JWS whose header and payload are JSON objects and that has a signature."""
    assertion = text.strip()
    try:
        jwt = parse(assertion)
    except InvalidTokenError as exc:
        raise InvalidAssertionError(
            f"the assertion in {source} is not a JWT: " + str(exc).replace("the access token", "it")
        ) from None
    if not jwt.signature:
        raise InvalidAssertionError(f"the assertion in {source} has no signature")
    return assertion


__all__ = (
    "ALGORITHMS",
    "GRANT_TYPE",
    "AssertionClaims",
    "InvalidAssertionError",
    "assertion_parts",
    "b64url",
    "check_assertion",
    "parse_template",
    "signing_input",
)
