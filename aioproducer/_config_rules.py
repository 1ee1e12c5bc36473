"""The rules :meth:`ProducerConfig.validate` checks: each value's type and range, and the
rules that span settings (as Java's ``ProducerConfig`` does), each a :class:`ConfigError` that
names the setting and what is allowed."""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING

from . import _config_types
from ._config_oauth import check_endpoint_url, jwt_bearer, validate_oauth
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
        "bootstrap_resolve_timeout_ms",
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
        "socket_connection_setup_timeout_max_ms",
        "metadata_recovery_rebootstrap_trigger_ms",
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
    if cfg.connections_max_idle_ms < -1:
        raise ConfigError(
            f"connections_max_idle_ms={cfg.connections_max_idle_ms} must be >= -1 (-1: never)"
        )
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
    if cfg.buffer_memory_allocation_strategy not in ("full", "incremental"):
        raise ConfigError(
            f"buffer_memory_allocation_strategy={cfg.buffer_memory_allocation_strategy!r}: "
            "must be 'full' (Java's default: a batch reserves batch_size when it opens) or "
            "'incremental' (16 KiB chunks as records arrive)"
        )
    if cfg.partitioner_rack_aware and not cfg.client_rack.strip():
        raise ConfigError("client_rack must be set when partitioner_rack_aware is on")
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
    validate_oauth(cfg)
    _validate_ssl(cfg)
    if cfg.enable_idempotence is not None and not isinstance(cfg.enable_idempotence, bool):
        raise ConfigError(f"enable_idempotence={cfg.enable_idempotence!r} must be a bool")
    if cfg.transactional_id is not None:
        if not isinstance(cfg.transactional_id, str) or not cfg.transactional_id:
            raise ConfigError(
                f"transactional_id={cfg.transactional_id!r} must be a non-empty string"
            )
        if cfg.enable_idempotence is False:
            raise ConfigError("transactional_id needs idempotence: remove enable_idempotence=False")
    if cfg.transaction_two_phase_commit_enable:
        _validate_two_phase_commit(cfg)
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


def _validate_two_phase_commit(cfg: ProducerConfig) -> None:
    """Java's rule, and ours: two-phase commit is a transactional producer's, and its
    transactions never time out, so a transaction timeout cannot be given with it. (Java
    refuses ``transaction.timeout.ms`` when given at all; a keyword equal to the default cannot
    be told from none, so only another value is refused here.)"""
    if cfg.transactional_id is None:
        raise ConfigError(
            "transaction_two_phase_commit_enable=True needs transactional_id (two-phase commit "
            "is for transactions)"
        )
    default = _field_default("transaction_timeout_ms")
    if cfg.transaction_timeout_ms != default:
        raise ConfigError(
            f"transaction_timeout_ms={cfg.transaction_timeout_ms} cannot be set with "
            "transaction_two_phase_commit_enable=True: two-phase commit transactions never "
            "expire"
        )


def _field_default(name: str) -> object:
    from .config import ProducerConfig

    return ProducerConfig.__dataclass_fields__[name].default


_PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"


def _validate_ssl(cfg: ProducerConfig) -> None:
    from ._io.tls_settings import version_range

    given = [
        name
        for name in (
            "ssl_cafile",
            "ssl_truststore_certificates",
            "ssl_certfile",
            "ssl_keystore_certificate_chain",
            "ssl_keystore_key",
            "ssl_cipher_suites",
        )
        if getattr(cfg, name) is not None
    ]
    if cfg.ssl_protocol != "TLSv1.3":
        given.append("ssl_protocol")
    if isinstance(cfg.ssl_enabled_protocols, str) or list(cfg.ssl_enabled_protocols) != [
        "TLSv1.2",
        "TLSv1.3",
    ]:
        given.append("ssl_enabled_protocols")
    if cfg.ssl_context is not None and given:
        raise ConfigError(
            f"give either ssl_context or {', '.join(given)}, not both (ssl_context is used as is)"
        )
    for file, text in (
        ("ssl_cafile", "ssl_truststore_certificates"),
        ("ssl_certfile", "ssl_keystore_certificate_chain"),
        ("ssl_certfile", "ssl_keystore_key"),
    ):
        if getattr(cfg, file) is not None and getattr(cfg, text) is not None:
            raise ConfigError(f"give either {file} (a file) or {text} (PEM text), not both")
    chain, key = cfg.ssl_keystore_certificate_chain, cfg.ssl_keystore_key
    if (chain is None) != (key is None):
        raise ConfigError(
            "ssl_keystore_certificate_chain and ssl_keystore_key go together (mutual TLS)"
        )
    if cfg.ssl_certfile is None and cfg.ssl_keyfile is not None:
        raise ConfigError("ssl_keyfile given alone: the key files need ssl_certfile (mutual TLS)")
    if cfg.ssl_certfile is None and key is None and cfg.ssl_password is not None:
        raise ConfigError(
            "ssl_password (the client key's) needs ssl_certfile or ssl_keystore_key (mutual TLS)"
        )
    for name in ("ssl_truststore_certificates", "ssl_keystore_certificate_chain"):
        value = getattr(cfg, name)
        if isinstance(value, str) and _PEM_CERTIFICATE not in value:
            raise ConfigError(f"{name} holds no PEM certificate ({_PEM_CERTIFICATE} ...)")
    if isinstance(key, str) and not ("-----BEGIN " in key and "PRIVATE KEY-----" in key):
        # The message never holds the key.
        raise ConfigError("ssl_keystore_key holds no PEM private key (-----BEGIN PRIVATE KEY...)")
    version_range(cfg.ssl_protocol, cfg.ssl_enabled_protocols, cfg.ssl_cipher_suites)


def _validate_kerberos(cfg: ProducerConfig) -> None:
    from ._io.gssapi import import_gssapi

    import_gssapi()  # the missing extra is named now, not at the first connection
    if not cfg.sasl_kerberos_service_name or "@" in cfg.sasl_kerberos_service_name:
        raise ConfigError(
            f"sasl_kerberos_service_name={cfg.sasl_kerberos_service_name!r}: the first part "
            "of the brokers' principal (e.g. 'kafka'), without '@' or a host"
        )
    if cfg.sasl_kerberos_domain_name is not None and not cfg.sasl_kerberos_domain_name.strip():
        raise ConfigError("sasl_kerberos_domain_name must be a host name (or None)")
    if cfg.sasl_kerberos_keytab is not None:
        import os

        if cfg.sasl_kerberos_principal is None:
            raise ConfigError("sasl_kerberos_keytab needs sasl_kerberos_principal")
        if not os.access(cfg.sasl_kerberos_keytab, os.R_OK):
            raise ConfigError(
                f"sasl_kerberos_keytab={str(cfg.sasl_kerberos_keytab)!r}: no such readable file"
            )
    if cfg.sasl_kerberos_principal is not None and not cfg.sasl_kerberos_principal.strip():
        raise ConfigError("sasl_kerberos_principal must be a principal name (or None)")
    if not cfg.sasl_kerberos_kinit_cmd:
        raise ConfigError("sasl_kerberos_kinit_cmd must name the kinit command")
    if cfg.sasl_kerberos_min_time_before_relogin < 0:
        raise ConfigError("sasl_kerberos_min_time_before_relogin must be >= 0")
    # Java checks neither; outside these a renewal would be scheduled in the past or never.
    if not 0 <= cfg.sasl_kerberos_ticket_renew_jitter < 1:
        raise ConfigError(
            f"sasl_kerberos_ticket_renew_jitter={cfg.sasl_kerberos_ticket_renew_jitter}: "
            "must be in [0, 1)"
        )
    if not 0 < cfg.sasl_kerberos_ticket_renew_window_factor <= 1:
        raise ConfigError(
            "sasl_kerberos_ticket_renew_window_factor="
            f"{cfg.sasl_kerberos_ticket_renew_window_factor}: must be in (0, 1]"
        )


def _validate_sasl(cfg: ProducerConfig) -> None:
    mechanism = cfg.sasl_mechanism
    if mechanism not in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", "GSSAPI"):
        raise ConfigError(
            f"sasl_mechanism={mechanism!r}: allowed 'PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512', "
            "'OAUTHBEARER', 'GSSAPI'"
        )
    if mechanism == "GSSAPI":
        _validate_kerberos(cfg)
        return
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
    check_endpoint_url("sasl_oauthbearer_token_endpoint_url", url)
    if jwt_bearer(cfg):
        return
    if (
        not cfg.sasl_oauthbearer_client_credentials_client_id
        or not cfg.sasl_oauthbearer_client_credentials_client_secret
    ):
        raise ConfigError(
            "sasl_oauthbearer_token_endpoint_url needs "
            "sasl_oauthbearer_client_credentials_client_id and _client_secret (client "
            "credentials), or sasl_oauthbearer_assertion_file or "
            "sasl_oauthbearer_assertion_private_key_file (the jwt-bearer grant)"
        )
