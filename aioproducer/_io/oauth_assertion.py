"""OAuth's jwt-bearer grant (RFC 7523) for OAUTHBEARER, as Java 4.1+'s ``JwtBearerJwtRetriever``
(KIP-1139): the token request carries ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer``
and an ``assertion``, a JWT that is either read from a file (:class:`FileAssertion`, read again
for every request, so a rotated file is used at once) or made and signed here for every request
(:class:`SignedAssertion`: RS256 or ES256 with a PEM private key, PKCS#8 and optionally
encrypted with a passphrase; read again when the file changes).

Signing uses the ``cryptography`` package (the ``oauth-assertion`` extra), imported only when a
key is loaded: private-key operations must be constant-time and encrypted PKCS#8 needs PBES2
and AES, which have no place in hand-written code. Neither the passphrase, the key nor an
assertion appears in a repr, a log or an error.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .._core.assertion import (
    ALGORITHMS,
    GRANT_TYPE,
    AssertionClaims,
    InvalidAssertionError,
    assertion_parts,
    b64url,
    check_assertion,
    parse_template,
    signing_input,
)
from ..errors import ConfigError, SaslAuthenticationError
from .oauth import ClientCredentialsTokenProvider
from .oauth_http import form_encode, redact

if TYPE_CHECKING:
    from ..config import ProducerConfig

EXTRA = "oauth-assertion"


def cryptography_missing() -> str | None:
    """Why signing cannot work here (None: it can)."""
    try:
        import cryptography  # noqa: F401
    except ImportError:
        return (
            "signing a jwt-bearer assertion needs the 'cryptography' package: "
            f"pip install 'aioproducer[{EXTRA}]'"
        )
    return None


def load_private_key(data: bytes, passphrase: str | None, algorithm: str, source: str) -> Any:
    """The private key in the PEM ``data``, checked to suit ``algorithm`` (RSA for RS256, a
    P-256 key for ES256). Errors name ``source``, never the passphrase."""
    why = cryptography_missing()
    if why is not None:
        raise ConfigError(why)
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    password = passphrase.encode() if passphrase is not None else None
    try:
        key = load_pem_private_key(data, password)
    except TypeError:
        state = "not encrypted" if password is not None else "encrypted"
        hint = "drop the passphrase" if password is not None else "give the passphrase"
        raise InvalidAssertionError(f"the private key in {source} is {state}: {hint}") from None
    except ValueError:
        raise InvalidAssertionError(
            f"cannot read the private key in {source}: not a PEM private key, or a wrong passphrase"
        ) from None
    if algorithm == "RS256" and not isinstance(key, rsa.RSAPrivateKey):
        raise InvalidAssertionError(f"RS256 needs an RSA key; {source} holds another kind")
    if algorithm == "ES256" and not (
        isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    ):
        raise InvalidAssertionError(f"ES256 needs a P-256 EC key; {source} holds another kind")
    return key


def sign(algorithm: str, key: Any, data: bytes) -> bytes:
    """The JWS signature (RFC 7518 §3.3/§3.4: ECDSA as the 64 bytes r || s, not DER)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, utils

    if algorithm == "RS256":
        return bytes(key.sign(data, padding.PKCS1v15(), hashes.SHA256()))
    r, s = utils.decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


class AssertionSource(Protocol):
    def create(self) -> str: ...


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InvalidAssertionError(f"cannot read the {what} {path}: {exc.strerror}") from None


class FileAssertion:
    """A ready-made assertion in ``path``, read for every token request."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"<FileAssertion {self.path}>"

    def create(self) -> str:
        text = _read(self.path, "assertion file").decode(errors="replace")
        return check_assertion(text, self.path)


class SignedAssertion:
    """An assertion made and signed for every token request: ``claims`` and the optional
    template file (read every time) layered as Java layers them, the key in ``key_file`` read
    again when the file changes. ``clock`` (seconds) and ``new_jti`` are for tests."""

    def __init__(
        self,
        claims: AssertionClaims,
        key_file: str,
        passphrase: str | None = None,
        template_file: str | None = None,
        *,
        clock: Any = time.time,
        new_jti: Any = None,
    ) -> None:
        if claims.algorithm.upper() not in ALGORITHMS:
            raise ConfigError(
                f"assertion algorithm {claims.algorithm!r}: one of {', '.join(ALGORITHMS)}"
            )
        self.claims = claims
        self.key_file = key_file
        self._passphrase = passphrase
        self.template_file = template_file
        self._clock = clock
        self._new_jti = new_jti or (lambda: str(uuid.uuid4()))
        self._key: Any = None
        self._key_stamp: tuple[int, int] | None = None

    def __repr__(self) -> str:
        return f"<SignedAssertion {self.claims.algorithm.upper()} key={self.key_file}>"

    def _private_key(self) -> Any:
        try:
            st = os.stat(self.key_file)
        except OSError as exc:
            raise InvalidAssertionError(
                f"cannot read the private key file {self.key_file}: {exc.strerror}"
            ) from None
        stamp = (st.st_mtime_ns, st.st_size)
        if self._key is None or stamp != self._key_stamp:
            data = _read(self.key_file, "private key file")
            algorithm = self.claims.algorithm.upper()
            self._key = load_private_key(data, self._passphrase, algorithm, self.key_file)
            self._key_stamp = stamp
        return self._key

    def create(self) -> str:
        template = None
        if self.template_file is not None:
            text = _read(self.template_file, "assertion template file")
            template = parse_template(text, self.template_file)
        jti = self._new_jti() if self.claims.jti_include else None
        now_ms = int(self._clock() * 1000)
        header, payload = assertion_parts(self.claims, now_ms, template, jti)
        data = signing_input(header, payload)
        signature = sign(self.claims.algorithm.upper(), self._private_key(), data.encode())
        return f"{data}.{b64url(signature)}"


class JwtBearerTokenProvider(ClientCredentialsTokenProvider):
    """OAuth 2 jwt-bearer grant against ``token_endpoint_url`` (Java 4.1+, KIP-1139): every
    token request carries a fresh ``assertion.create()``, and no client credentials. The
    keywords are those of :class:`ClientCredentialsTokenProvider` (refresh, retries, JWKS)."""

    def __init__(
        self,
        token_endpoint_url: str,
        assertion: AssertionSource,
        scope: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(token_endpoint_url, "", "", scope, **kwargs)
        self.assertion = assertion

    def __repr__(self) -> str:
        return (
            f"<JwtBearerTokenProvider {redact(self.token_endpoint_url)} "
            f"assertion={self.assertion!r} scope={self.scope!r}>"
        )

    def _who(self) -> str:
        return f"the jwt-bearer assertion ({self.assertion!r})"

    def _grant(self) -> tuple[str, dict[str, str]]:
        try:
            assertion = self.assertion.create()
        except InvalidAssertionError as exc:
            raise SaslAuthenticationError(
                f"SASL/OAUTHBEARER: cannot make the jwt-bearer assertion: {exc}"
            ) from None
        return f"grant_type={form_encode(GRANT_TYPE)}&assertion={form_encode(assertion)}", {}


def jwt_bearer_provider_for(
    cfg: ProducerConfig, url: str, scope: str | None, common: dict[str, Any]
) -> JwtBearerTokenProvider:
    """The jwt-bearer provider of ``cfg``'s ``sasl_oauthbearer_assertion_*`` settings."""
    source: AssertionSource
    if cfg.sasl_oauthbearer_assertion_file:
        source = FileAssertion(cfg.sasl_oauthbearer_assertion_file)
    else:
        assert cfg.sasl_oauthbearer_assertion_private_key_file is not None
        source = SignedAssertion(
            AssertionClaims(
                cfg.sasl_oauthbearer_assertion_algorithm,
                cfg.sasl_oauthbearer_assertion_claim_aud,
                cfg.sasl_oauthbearer_assertion_claim_iss,
                cfg.sasl_oauthbearer_assertion_claim_sub,
                cfg.sasl_oauthbearer_assertion_claim_exp_seconds,
                cfg.sasl_oauthbearer_assertion_claim_nbf_seconds,
                cfg.sasl_oauthbearer_assertion_claim_jti_include,
            ),
            cfg.sasl_oauthbearer_assertion_private_key_file,
            cfg.sasl_oauthbearer_assertion_private_key_passphrase,
            cfg.sasl_oauthbearer_assertion_template_file,
        )
    return JwtBearerTokenProvider(url, source, scope, **common)


__all__ = (
    "EXTRA",
    "AssertionSource",
    "FileAssertion",
    "JwtBearerTokenProvider",
    "SignedAssertion",
    "cryptography_missing",
    "jwt_bearer_provider_for",
    "load_private_key",
    "sign",
)
