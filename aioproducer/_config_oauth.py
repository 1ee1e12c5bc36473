"""The rules of the OAUTHBEARER login settings (``sasl_login_*``, ``sasl_oauthbearer_*``):
Java's ranges (``SaslConfigs``), its ``Retry`` and ``RefreshingHttpsJwks`` preconditions, and
Java 4.x's rule that a JWKS needs the expected audience and issuer (or the opt-outs), and the
jwt-bearer grant's settings (KIP-1139). Each failure is a :class:`ConfigError` naming the
setting."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .errors import ConfigError

if TYPE_CHECKING:
    from .config import ProducerConfig

_RANGES = {
    "sasl_login_refresh_window_factor": (0.5, 1.0),
    "sasl_login_refresh_window_jitter": (0.0, 0.25),
    "sasl_login_refresh_min_period_seconds": (0, 900),
    "sasl_login_refresh_buffer_seconds": (0, 3600),
    "sasl_oauthbearer_assertion_claim_exp_seconds": (0, 86400),
    "sasl_oauthbearer_assertion_claim_nbf_seconds": (0, 3600),
}
_NON_NEGATIVE = (
    "sasl_login_retry_backoff_ms",
    "sasl_oauthbearer_jwks_endpoint_retry_backoff_ms",
    "sasl_oauthbearer_clock_skew_seconds",
)
_POSITIVE = (
    "sasl_login_connect_timeout_ms",
    "sasl_login_read_timeout_ms",
    "sasl_oauthbearer_jwks_endpoint_refresh_ms",
)
_BACKOFFS = (
    ("sasl_login_retry_backoff_ms", "sasl_login_retry_backoff_max_ms"),
    (
        "sasl_oauthbearer_jwks_endpoint_retry_backoff_ms",
        "sasl_oauthbearer_jwks_endpoint_retry_backoff_max_ms",
    ),
)


def check_endpoint_url(name: str, url: str, file_allowed: bool = False) -> None:
    """``https://`` anywhere, ``http://`` only on a loopback address (what travels there
    must not be readable on the way), ``file:`` where Java allows it."""
    parts = urlsplit(url)
    if file_allowed and parts.scheme == "file":
        if not parts.path:
            raise ConfigError(f"{name}={url!r} names no file")
        return
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        allowed = "https:// (http:// only on a loopback address" + (
            ", or file:)" if file_allowed else ")"
        )
        raise ConfigError(f"{name}: scheme {parts.scheme!r} refused; it must be {allowed}")


#: Settings only a locally signed assertion uses.
_SIGNING_ONLY = (
    "sasl_oauthbearer_assertion_private_key_passphrase",
    "sasl_oauthbearer_assertion_template_file",
    "sasl_oauthbearer_assertion_claim_aud",
    "sasl_oauthbearer_assertion_claim_iss",
    "sasl_oauthbearer_assertion_claim_sub",
)


def jwt_bearer(cfg: ProducerConfig) -> bool:
    """Whether ``cfg`` asks for the jwt-bearer grant (an assertion file or a signing key)."""
    return bool(
        cfg.sasl_oauthbearer_assertion_file or cfg.sasl_oauthbearer_assertion_private_key_file
    )


def validate_assertion(cfg: ProducerConfig) -> None:
    """The jwt-bearer grant's settings (KIP-1139): Java's algorithms, one source of
    assertions, no client credentials beside it, and ``cryptography`` present to sign."""
    algorithm = cfg.sasl_oauthbearer_assertion_algorithm
    if algorithm.upper() not in ("RS256", "ES256"):
        raise ConfigError(
            f"sasl_oauthbearer_assertion_algorithm={algorithm!r} must be 'RS256' or 'ES256'"
        )
    for name in ("sasl_oauthbearer_assertion_file", "sasl_oauthbearer_assertion_private_key_file"):
        if getattr(cfg, name) is not None and not getattr(cfg, name).strip():
            raise ConfigError(f"{name} must not be empty")
    if not jwt_bearer(cfg):
        given = [n for n in _SIGNING_ONLY if getattr(cfg, n) is not None]
        if given:
            raise ConfigError(
                f"{given[0]} is a setting of the jwt-bearer grant: it needs "
                "sasl_oauthbearer_assertion_private_key_file"
            )
        return
    if cfg.sasl_oauthbearer_client_credentials_client_secret is not None:
        raise ConfigError(
            "give either sasl_oauthbearer_client_credentials_client_secret (client credentials) "
            "or the jwt-bearer grant's sasl_oauthbearer_assertion_* settings, not both"
        )
    if cfg.sasl_mechanism != "OAUTHBEARER" or cfg.sasl_oauthbearer_token_endpoint_url is None:
        raise ConfigError(
            "the sasl_oauthbearer_assertion_* settings ask a token endpoint for tokens: they "
            "need sasl_mechanism='OAUTHBEARER' and sasl_oauthbearer_token_endpoint_url"
        )
    if cfg.sasl_oauthbearer_assertion_file:
        given = [
            n
            for n in ("sasl_oauthbearer_assertion_private_key_file", *_SIGNING_ONLY)
            if getattr(cfg, n) is not None
        ]
        if given:
            raise ConfigError(
                f"sasl_oauthbearer_assertion_file holds a ready-made assertion: {given[0]} "
                "(for signing one here) does not apply; give one or the other"
            )
        return
    from ._io.oauth_assertion import cryptography_missing

    why = cryptography_missing()
    if why is not None:
        raise ConfigError(f"sasl_oauthbearer_assertion_private_key_file: {why}")


def validate_oauth(cfg: ProducerConfig) -> None:
    """Check the OAUTHBEARER login settings of ``cfg`` (their types are checked already)."""
    for name, (low, high) in _RANGES.items():
        value = getattr(cfg, name)
        if not low <= value <= high:
            raise ConfigError(f"{name}={value} must be within [{low}, {high}]")
    validate_assertion(cfg)
    for name in _NON_NEGATIVE:
        if getattr(cfg, name) < 0:
            raise ConfigError(f"{name}={getattr(cfg, name)} must be >= 0")
    for name in _POSITIVE:
        value = getattr(cfg, name)
        if value is not None and value <= 0:
            raise ConfigError(
                f"{name}={value} must be > 0" + (" (or None)" if "timeout" in name else "")
            )
    for base, top in _BACKOFFS:
        if getattr(cfg, top) < getattr(cfg, base):
            raise ConfigError(f"{top}={getattr(cfg, top)} must be >= {base}={getattr(cfg, base)}")
    for name in ("sasl_oauthbearer_scope_claim_name", "sasl_oauthbearer_sub_claim_name"):
        if not getattr(cfg, name).strip():
            raise ConfigError(f"{name} must not be empty")
    audience = cfg.sasl_oauthbearer_expected_audience
    if audience is not None and not all(a.strip() for a in audience):
        raise ConfigError("sasl_oauthbearer_expected_audience has an empty audience")
    issuer = cfg.sasl_oauthbearer_expected_issuer
    if issuer is not None and not issuer.strip():
        raise ConfigError("sasl_oauthbearer_expected_issuer must not be empty")
    url = cfg.sasl_oauthbearer_jwks_endpoint_url
    if url is None:
        return
    check_endpoint_url("sasl_oauthbearer_jwks_endpoint_url", url, file_allowed=True)
    if not audience and not cfg.sasl_oauthbearer_allow_unverified_audience:
        raise ConfigError(
            "sasl_oauthbearer_jwks_endpoint_url needs sasl_oauthbearer_expected_audience (the "
            "audiences a token may name), or sasl_oauthbearer_allow_unverified_audience=True "
            "to accept any (insecure)"
        )
    if cfg.sasl_oauthbearer_expected_issuer is None and not (
        cfg.sasl_oauthbearer_allow_unverified_issuer
    ):
        raise ConfigError(
            "sasl_oauthbearer_jwks_endpoint_url needs sasl_oauthbearer_expected_issuer (the "
            "token issuer's URL), or sasl_oauthbearer_allow_unverified_issuer=True to accept "
            "any (insecure)"
        )
    if cfg.sasl_mechanism != "OAUTHBEARER" or cfg.sasl_oauthbearer_token_endpoint_url is None:
        raise ConfigError(
            "sasl_oauthbearer_jwks_endpoint_url checks the tokens of the token endpoint: it "
            "needs sasl_mechanism='OAUTHBEARER' and sasl_oauthbearer_token_endpoint_url"
        )


__all__ = ("check_endpoint_url", "jwt_bearer", "validate_assertion", "validate_oauth")
