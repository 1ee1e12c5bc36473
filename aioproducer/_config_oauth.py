"""The rules of the OAUTHBEARER login settings (``sasl_login_*``, ``sasl_oauthbearer_*``):
Java's ranges (``SaslConfigs``), its ``Retry`` and ``RefreshingHttpsJwks`` preconditions, and
Java 4.x's rule that a JWKS needs the expected audience and issuer (or the opt-outs). Each
failure is a :class:`ConfigError` naming the setting."""

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


def validate_oauth(cfg: ProducerConfig) -> None:
    """Check the OAUTHBEARER login settings of ``cfg`` (their types are checked already)."""
    for name, (low, high) in _RANGES.items():
        value = getattr(cfg, name)
        if not low <= value <= high:
            raise ConfigError(f"{name}={value} must be within [{low}, {high}]")
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


__all__ = ("check_endpoint_url", "validate_oauth")
