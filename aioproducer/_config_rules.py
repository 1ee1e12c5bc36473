"""The rules :meth:`ProducerConfig.validate` checks: each value's type and range, and the
rules that span settings (as Java's ``ProducerConfig`` does), each a :class:`ConfigError` that
names the setting and what is allowed."""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING

from . import _config_types
from ._core.partitioner import Partitioner
from ._interceptors import ProducerInterceptor
from .errors import ConfigError

if TYPE_CHECKING:
    from .config import ProducerConfig

ACKS = {"all": -1, "-1": -1, -1: -1, "0": 0, 0: 0, "1": 1, 1: 1}


def validate(cfg: ProducerConfig) -> None:
    """Check every setting of ``cfg`` and the rules between them."""
    from .config import _field_types

    # Each value's type, from the annotations (a Literal's values are checked at the end,
    # after the fields' own checks, which word their errors better).
    types = _field_types()
    for f in fields(cfg):
        _config_types.check(f.name, getattr(cfg, f.name), types[f.name], literal_values=False)
    if cfg.acks not in ACKS:
        raise ConfigError(f"acks={cfg.acks!r} is invalid; allowed: 'all', -1, 0, 1")
    _ = cfg.bootstrap_list
    non_negative = (
        "batch_size",
        "linger_ms",
        "max_block_ms",
        "retries",
        "retry_backoff_ms",
        "retry_backoff_max_ms",
        "reconnect_backoff_ms",
        "reconnect_backoff_max_ms",
        "partitioner_availability_timeout_ms",
    )
    positive = (
        "buffer_memory",
        "max_request_size",
        "request_timeout_ms",
        "delivery_timeout_ms",
        "max_in_flight_requests_per_connection",
        "metadata_max_age_ms",
        "metadata_max_idle_ms",
        "socket_connection_setup_timeout_ms",
        "metrics_sample_window_ms",
        "metrics_num_samples",
        "transaction_timeout_ms",
    )
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if f.name in non_negative or f.name in positive:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{f.name}={value!r} must be an integer")
            if f.name in positive and value <= 0:
                raise ConfigError(f"{f.name}={value} must be > 0")
            if value < 0:
                raise ConfigError(f"{f.name}={value} must be >= 0")
    for name in ("send_buffer_bytes", "receive_buffer_bytes"):
        if getattr(cfg, name) < -1:
            raise ConfigError(f"{name}={getattr(cfg, name)} must be >= -1 (-1: the system's)")
    if cfg.delivery_timeout < cfg.linger_ms + cfg.request_timeout_ms:
        raise ConfigError(
            f"delivery_timeout_ms={cfg.delivery_timeout_ms} must be >= linger_ms + "
            f"request_timeout_ms = {cfg.linger_ms + cfg.request_timeout_ms}"
        )
    from ._records.codecs import get_codec

    if cfg.compression_type is not None and not isinstance(cfg.compression_type, str):
        raise ConfigError(
            f"compression_type={cfg.compression_type!r}: allowed None, 'none', 'gzip', "
            "'snappy', 'lz4', 'zstd'"
        )
    get_codec(cfg.compression, cfg.compression_level())
    for name in ("key_serializer", "value_serializer"):
        value = getattr(cfg, name)
        if value is not None and not callable(value):
            raise ConfigError(f"{name} must be callable(obj) -> bytes | None, got {value!r}")
    if cfg.partitioner is not None and not isinstance(cfg.partitioner, Partitioner):
        raise ConfigError(
            "partitioner must have a partition(topic, key, key_bytes, value, value_bytes, "
            f"cluster) method, got {cfg.partitioner!r}"
        )
    for i, ic in enumerate(cfg.interceptors):
        if not isinstance(ic, ProducerInterceptor):
            raise ConfigError(
                f"interceptors[{i}] must be an instance of a subclass of "
                f"aioproducer.ProducerInterceptor, got {ic!r}"
            )
    if cfg.security_protocol not in ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"):
        raise ConfigError(
            f"security_protocol={cfg.security_protocol!r}: allowed 'PLAINTEXT', 'SSL', "
            "'SASL_PLAINTEXT', 'SASL_SSL'"
        )
    if cfg.security_protocol.startswith("SASL"):
        _validate_sasl(cfg)
    if cfg.ssl_context is not None and (cfg.ssl_cafile or cfg.ssl_certfile):
        raise ConfigError("give either ssl_context or ssl_cafile/ssl_certfile, not both")
    if cfg.ssl_certfile is None and (cfg.ssl_keyfile or cfg.ssl_password is not None):
        raise ConfigError("ssl_keyfile and ssl_password need ssl_certfile (mutual TLS)")
    if cfg.enable_idempotence is not None and not isinstance(cfg.enable_idempotence, bool):
        raise ConfigError(f"enable_idempotence={cfg.enable_idempotence!r} must be a bool")
    if cfg.transactional_id is not None:
        if not isinstance(cfg.transactional_id, str) or not cfg.transactional_id:
            raise ConfigError(
                f"transactional_id={cfg.transactional_id!r} must be a non-empty string"
            )
        if cfg.enable_idempotence is False:
            raise ConfigError("transactional_id needs idempotence: remove enable_idempotence=False")
    if cfg.idempotence and (cfg.enable_idempotence is not None or cfg.transactional_id is not None):
        why = (
            "enable_idempotence=True"
            if cfg.enable_idempotence
            else f"transactional_id={cfg.transactional_id!r}"
        )
        if cfg.acks_value != -1:
            raise ConfigError(f"{why} requires acks='all'")
        if cfg.retries == 0:
            raise ConfigError(f"{why} requires retries > 0")
        if cfg.max_in_flight_requests_per_connection > 5:
            raise ConfigError(f"{why} requires max_in_flight_requests_per_connection <= 5")
    for f in fields(cfg):
        _config_types.check(f.name, getattr(cfg, f.name), types[f.name])


def _validate_sasl(cfg: ProducerConfig) -> None:
    mechanism = cfg.sasl_mechanism
    if mechanism not in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"):
        raise ConfigError(
            f"sasl_mechanism={mechanism!r}: allowed 'PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512', "
            "'OAUTHBEARER'"
        )
    if mechanism != "OAUTHBEARER":
        if not cfg.sasl_plain_username or cfg.sasl_plain_password is None:
            raise ConfigError(
                f"sasl_mechanism={mechanism!r} needs sasl_plain_username and sasl_plain_password"
            )
        return
    provider, url = cfg.sasl_oauth_token_provider, cfg.sasl_oauthbearer_token_endpoint_url
    if provider is not None:
        if url is not None:
            raise ConfigError(
                "give either sasl_oauth_token_provider or sasl_oauthbearer_token_endpoint_url"
            )
        if not callable(getattr(provider, "token", None)):
            raise ConfigError(
                "sasl_oauth_token_provider must have a token() method (plain or async)"
            )
        return
    if url is None:
        raise ConfigError(
            "sasl_mechanism='OAUTHBEARER' needs sasl_oauth_token_provider or "
            "sasl_oauthbearer_token_endpoint_url"
        )
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise ConfigError(
            f"sasl_oauthbearer_token_endpoint_url: scheme {parts.scheme!r} refused; it must "
            "be https:// (http:// only on a loopback address): the client secret travels in it"
        )
    if (
        not cfg.sasl_oauthbearer_client_credentials_client_id
        or not cfg.sasl_oauthbearer_client_credentials_client_secret
    ):
        raise ConfigError(
            "sasl_oauthbearer_token_endpoint_url needs "
            "sasl_oauthbearer_client_credentials_client_id and _client_secret"
        )
