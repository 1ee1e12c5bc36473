"""One frozen configuration: Java's producer settings in snake_case, with Java 4.x defaults.

Every field says its default and how it interacts with others; :meth:`ProducerConfig.validate`
checks the rules that span fields (as Java's ``ProducerConfig`` does) and raises
:class:`ConfigError` naming the setting and the allowed values.
"""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_type_hints

from ._config_rules import ACKS
from ._core.partitioner import Partitioner
from ._interceptors import ProducerInterceptor
from ._java_settings import from_java_properties, unknown_setting
from .errors import ConfigError

Serializer = Callable[[Any], "bytes | None"]
#: ``acks``: every in-sync replica ("all", -1), the leader (1), or none (0).
Acks = Literal["all", -1, 0, 1, "-1", "0", "1"]
#: ``compression_type``: None or "none" for no compression.
CompressionType = Literal["none", "gzip", "snappy", "lz4", "zstd"]
#: ``security_protocol``.
SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
#: ``sasl_mechanism``.
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", "GSSAPI"]
#: ``ssl_enabled_protocols``' entries: the TLS versions a client may use (older: refused).
TlsVersion = Literal["TLSv1.2", "TLSv1.3"]
#: ``ssl_protocol``: the newest TLS version to use ("TLS": the newest there is).
TlsProtocol = Literal["TLSv1.3", "TLSv1.2", "TLS"]
#: A file's path: a string or a ``pathlib.Path``.
StrPath = str | os.PathLike[str]
_client_ids = itertools.count(1)


@dataclass(frozen=True, kw_only=True)
class ProducerConfig:
    #: ``host:port`` list (comma-separated string or sequence) used to discover the cluster.
    bootstrap_servers: str | Sequence[str] = "127.0.0.1:9092"
    #: Sent with every request; default ``aioproducer-N``.
    client_id: str | None = None
    #: ``"all"``/-1 (every in-sync replica), 1 (leader only) or 0 (no acknowledgement:
    #: futures complete when the request is written, with offset -1).
    acks: Acks = "all"
    #: Upper bound in bytes of a batch's (estimated compressed) size; 0 disables batching.
    batch_size: int = 16384
    #: How long a batch waits for more records before it is sendable anyway.
    linger_ms: int = 5
    #: Byte budget of all buffered records; ``send`` waits up to ``max_block_ms`` for memory.
    buffer_memory: int = 33554432
    #: How a batch is charged to ``buffer_memory`` (Java 4.4): "full", the default, reserves
    #: ``batch_size`` (or the first record's batch, if larger) when the batch opens, and its
    #: buffer is allocated whole at the first record; "incremental" reserves 16 KiB chunks
    #: (``batch_size`` if smaller) as records arrive, up to ``batch_size``, so memory follows
    #: the data buffered rather than the number of partitions written to (for a large
    #: ``batch_size``). A batch gives its memory back when it completes.
    buffer_memory_allocation_strategy: Literal["full", "incremental"] = "full"
    #: How long ``send`` may wait for metadata or buffer memory before ``KafkaTimeoutError``.
    max_block_ms: int = 60000
    #: Largest produce request (and so largest record) in bytes.
    max_request_size: int = 1048576
    #: Per-request timeout; a request without response after it fails as retriable.
    request_timeout_ms: int = 30000
    #: Upper bound on the time from ``send`` to success or failure, retries included.
    #: Must be >= ``linger_ms + request_timeout_ms``.
    #: Left unset (None), it is 120000, raised to that sum with a warning if needed (Java).
    delivery_timeout_ms: int | None = None
    #: How many times a failed batch is retried (bounded in practice by delivery_timeout_ms).
    retries: int = 2147483647
    #: Base of the exponential retry backoff with jitter (KIP-580).
    retry_backoff_ms: int = 100
    #: Cap of the exponential retry backoff.
    retry_backoff_max_ms: int = 1000
    #: Unacknowledged produce requests per broker connection.
    max_in_flight_requests_per_connection: int = 5
    #: ``None``/"none", "gzip", "snappy" (needs the snappy extra), "lz4" or "zstd".
    compression_type: CompressionType | None = None
    #: gzip's level, 1-9 (None: Kafka's default, 6).
    compression_gzip_level: int | None = None
    #: lz4's level, 1-17 (None: Kafka's default, 9).
    compression_lz4_level: int | None = None
    #: zstd's level, -131072 to 22 (None: Kafka's default, 3).
    compression_zstd_level: int | None = None
    #: Send the cluster id and node id when connecting to a broker known from metadata, so a
    #: Kafka 4.4+ broker that is not that node refuses the connection (REBOOTSTRAP_REQUIRED,
    #: KIP-1242) instead of taking requests meant for another; older brokers ignore it. Not
    #: sent with ``metadata_recovery_strategy="none"``, as in Java.
    metadata_cluster_check_enable: bool = True
    #: Metadata is refreshed at least this often, even without errors.
    metadata_max_age_ms: int = 300000
    #: A topic not produced to for this long leaves the metadata requests.
    metadata_max_idle_ms: int = 300000
    #: What to do when no known broker can be reached: "rebootstrap" (Java 4.x's default,
    #: KIP-899) forgets the brokers learned from metadata and connects to
    #: ``bootstrap_servers`` again (names resolved anew), so a cluster that moved to new
    #: addresses is found; "none" keeps trying the known brokers only.
    metadata_recovery_strategy: Literal["none", "rebootstrap"] = "rebootstrap"
    #: With "rebootstrap": also rebootstrap when no metadata could be obtained for this long
    #: although brokers answer connections (KIP-1102). A broker answering Metadata (v13+)
    #: with REBOOTSTRAP_REQUIRED has the producer rebootstrap at once.
    metadata_recovery_rebootstrap_trigger_ms: int = 300000
    #: Base of the exponential reconnect backoff with jitter.
    reconnect_backoff_ms: int = 50
    #: Cap of the exponential reconnect backoff.
    reconnect_backoff_max_ms: int = 1000
    #: Timeout of one TCP connection attempt (and ApiVersions handshake).
    socket_connection_setup_timeout_ms: int = 10000
    #: Cap of the connection setup timeout, which doubles (with ±20 % jitter) from
    #: ``socket_connection_setup_timeout_ms`` after each consecutive failed attempt to the
    #: same broker (raised to ``socket_connection_setup_timeout_ms`` if lower).
    socket_connection_setup_timeout_max_ms: int = 30000
    #: Close a broker connection that had no request in flight and no traffic for this long
    #: (the next request reconnects); -1: never.
    connections_max_idle_ms: int = 540000
    #: SO_SNDBUF of broker connections in bytes; -1 (the default here) keeps the system's,
    #: which Linux tunes to the connection (Java's default is 131072).
    send_buffer_bytes: int = -1
    #: SO_RCVBUF of broker connections in bytes; -1 (the default here) keeps the system's
    #: (Java's default is 32768).
    receive_buffer_bytes: int = -1
    #: How a broker's name is resolved: every address it has is tried in turn (Java's
    #: default; ``resolve_canonical_bootstrap_servers_only`` is not supported).
    client_dns_lookup: Literal["use_all_dns_ips"] = "use_all_dns_ips"
    #: 0: ``start()`` resolves the bootstrap hosts once and raises :class:`ConfigError` when
    #: none resolves. Positive: it retries resolving them for this many ms, then raises
    #: :class:`BootstrapResolutionError` and the producer is closed (Java 4.4).
    bootstrap_resolve_timeout_ms: int = 0
    #: "PLAINTEXT", "SSL", "SASL_PLAINTEXT" or "SASL_SSL".
    security_protocol: SecurityProtocol = "PLAINTEXT"
    #: TLS: an ``ssl.SSLContext`` to use as is; otherwise one is made from ``ssl_cafile``
    #: (or the system's trust store), verifying certificates and hostnames, with the client
    #: certificate ``ssl_certfile`` (PEM; its key in it or in ``ssl_keyfile``, decrypted with
    #: ``ssl_password``) for mutual TLS.
    ssl_context: Any = field(default=None, repr=False)
    #: A PEM file of the CA certificates to trust (None: the system's trust store).
    ssl_cafile: StrPath | None = None
    #: Mutual TLS: a PEM file with the client's certificate chain (and its key, or see
    #: ``ssl_keyfile``).
    ssl_certfile: StrPath | None = None
    #: Mutual TLS: a PEM file with the client certificate's private key.
    ssl_keyfile: StrPath | None = None
    #: The password of that private key. Never shown in reprs or logs.
    ssl_password: str | None = field(default=None, repr=False)
    #: Verify that the broker's certificate names the host we connect to (Java's
    #: ``ssl.endpoint.identification.algorithm=https``). Turning it off logs a warning.
    ssl_check_hostname: bool = True
    #: The CA certificates to trust, PEM text (Java's ``ssl.truststore.type=PEM`` form), in
    #: place of ``ssl_cafile``'s file (None: neither given, the system's trust store).
    ssl_truststore_certificates: str | None = field(default=None, repr=False)
    #: Mutual TLS without files: the client's certificate chain, PEM text (Java's
    #: ``ssl.keystore.type=PEM`` form), with ``ssl_keystore_key``; instead of ``ssl_certfile``.
    ssl_keystore_certificate_chain: str | None = field(default=None, repr=False)
    #: Mutual TLS without files: the client's private key, PEM text (encrypted with
    #: ``ssl_password``, optionally). It reaches OpenSSL through an anonymous memory file, never
    #: a disk. Never shown in reprs or logs.
    ssl_keystore_key: str | None = field(default=None, repr=False)
    #: The newest TLS version to use: "TLSv1.3", "TLSv1.2", or "TLS" (the newest there is).
    ssl_protocol: TlsProtocol = "TLSv1.3"
    #: The TLS versions allowed, of "TLSv1.2" and "TLSv1.3" (older ones are refused); with
    #: ``ssl_protocol`` they set the context's lowest and highest version.
    ssl_enabled_protocols: Sequence[TlsVersion] = ("TLSv1.2", "TLSv1.3")
    #: The cipher suites allowed (None: Python's defaults), Java's (IANA) names such as
    #: ``TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384`` or OpenSSL's. Without a TLS 1.3 suite, TLS
    #: 1.3 is off (as in Java). Python's ssl cannot choose the TLS 1.3 suites it offers: a
    #: connection that negotiates one the list lacks is refused after the handshake.
    ssl_cipher_suites: Sequence[str] | None = None
    #: SASL: "PLAIN", "SCRAM-SHA-256" or "SCRAM-SHA-512" (with ``sasl_plain_username`` and
    #: ``sasl_plain_password``), or "OAUTHBEARER" with either ``sasl_oauth_token_provider``
    #: (an object whose ``token()`` returns the token, plain or async, and optionally
    #: ``extensions()``) or the token endpoint settings below (client credentials, KIP-768, or
    #: the jwt-bearer grant, KIP-1139), or "GSSAPI" (Kerberos, the ``gssapi`` extra) with the
    #: system's ticket cache or keytab.
    sasl_mechanism: SaslMechanism = "PLAIN"
    #: SASL PLAIN's or SCRAM's user name.
    sasl_plain_username: str | None = None
    #: SASL PLAIN's or SCRAM's password. Never shown in reprs or logs.
    sasl_plain_password: str | None = field(default=None, repr=False)
    #: OAUTHBEARER: an object whose ``token()`` (plain or async) returns the token.
    sasl_oauth_token_provider: Any = field(default=None, repr=False)
    #: OAUTHBEARER without a provider: the OAuth token endpoint (client credentials, KIP-768).
    sasl_oauthbearer_token_endpoint_url: str | None = None
    #: OAUTHBEARER: the client id sent to the token endpoint.
    sasl_oauthbearer_client_credentials_client_id: str | None = None
    #: OAUTHBEARER: the client secret sent to the token endpoint. Never shown in reprs or logs.
    sasl_oauthbearer_client_credentials_client_secret: str | None = field(default=None, repr=False)
    #: OAUTHBEARER: the scope asked of the token endpoint (None: none).
    sasl_oauthbearer_scope: str | None = None
    #: OAUTHBEARER token endpoint (and JWKS): how long to wait for the TCP (and TLS)
    #: connection, in ms. None: no limit of its own, as Java's (``start()`` still ends at
    #: ``max_block_ms``); a JWKS fetch then waits 20 s, as Java's does.
    sasl_login_connect_timeout_ms: int | None = None
    #: OAUTHBEARER token endpoint (and JWKS): how long to wait for the answer, in ms. None: no
    #: limit of its own (Java's default). A timed-out attempt is retried like a refused one.
    sasl_login_read_timeout_ms: int | None = None
    #: OAUTHBEARER token endpoint: the wait after a failed attempt, doubling each time; an
    #: HTTP answer a retry cannot change (400, 401, 403, 404, ...) is not retried.
    sasl_login_retry_backoff_ms: int = 100
    #: OAUTHBEARER token endpoint: every attempt happens within this many ms of the first
    #: (Java's ``Retry``); then the fetch fails with :class:`SaslAuthenticationError`.
    sasl_login_retry_backoff_max_ms: int = 10000
    #: OAUTHBEARER token endpoint: a token is fetched again once this share of its lifetime
    #: (from ``iat``, else from when it was fetched, to ``exp``) has passed; 0.5 to 1.0.
    sasl_login_refresh_window_factor: float = 0.8
    #: OAUTHBEARER token endpoint: up to this share of the lifetime is added at random to the
    #: refresh time (so clients do not refresh together); 0 to 0.25.
    sasl_login_refresh_window_jitter: float = 0.05
    #: OAUTHBEARER token endpoint: a refresh happens no sooner than this many seconds after
    #: the token was fetched (0 to 900), unless the token is too short-lived for both margins.
    sasl_login_refresh_min_period_seconds: int = 60
    #: OAUTHBEARER token endpoint: a refresh happens at least this many seconds before the
    #: token expires (0 to 3600), unless the token is too short-lived for both margins.
    sasl_login_refresh_buffer_seconds: int = 300
    #: OAUTHBEARER token endpoint: URL-encode the client id and secret in the Basic
    #: authorization header (RFC 6749 §2.3.1). Off by default, as Java's (for old servers).
    sasl_oauthbearer_header_urlencode: bool = False
    #: OAUTHBEARER token endpoint: the claim of a token that holds its scopes.
    sasl_oauthbearer_scope_claim_name: str = "scope"
    #: OAUTHBEARER token endpoint: the claim of a token that names its subject (required).
    sasl_oauthbearer_sub_claim_name: str = "sub"
    #: OAUTHBEARER token endpoint: check every token against this JSON Web Key Set
    #: (``https://``, ``http://`` on loopback, or ``file:``) before using it, as Java 4.x's
    #: client does when it is set: the signature (RS*, PS*, ES*), ``exp`` with the clock
    #: skew, ``iat``, ``nbf``, the expected audience and issuer.
    sasl_oauthbearer_jwks_endpoint_url: str | None = None
    #: OAUTHBEARER JWKS: how often (ms) the key set is fetched again; a token signed by a key
    #: the set lacks makes it fetched at once (at most once a minute per key id).
    sasl_oauthbearer_jwks_endpoint_refresh_ms: int = 3600000
    #: OAUTHBEARER JWKS: the wait after a failed fetch, doubling each time.
    sasl_oauthbearer_jwks_endpoint_retry_backoff_ms: int = 100
    #: OAUTHBEARER JWKS: every fetch attempt happens within this many ms of the first.
    sasl_oauthbearer_jwks_endpoint_retry_backoff_max_ms: int = 10000
    #: OAUTHBEARER JWKS: seconds of difference allowed between the identity provider's clock
    #: and ours when checking ``exp`` and ``nbf``.
    sasl_oauthbearer_clock_skew_seconds: int = 30
    #: OAUTHBEARER JWKS: the audiences a token may name in ``aud`` (one must match). Required
    #: with ``sasl_oauthbearer_jwks_endpoint_url`` unless
    #: ``sasl_oauthbearer_allow_unverified_audience``.
    sasl_oauthbearer_expected_audience: Sequence[str] | None = None
    #: OAUTHBEARER JWKS: the issuer a token's ``iss`` must be. Required with
    #: ``sasl_oauthbearer_jwks_endpoint_url`` unless ``sasl_oauthbearer_allow_unverified_issuer``.
    sasl_oauthbearer_expected_issuer: str | None = None
    #: OAUTHBEARER JWKS: accept tokens whatever their audience (insecure; Java 4.x's opt-out).
    sasl_oauthbearer_allow_unverified_audience: bool = False
    #: OAUTHBEARER JWKS: accept tokens whatever their issuer (insecure; Java 4.x's opt-out).
    sasl_oauthbearer_allow_unverified_issuer: bool = False
    #: GSSAPI: the Kerberos service name of the brokers (their principal's first part,
    #: ``kafka/host@REALM``). Java has no default; librdkafka's and aiokafka's is "kafka".
    sasl_kerberos_service_name: str = "kafka"
    #: GSSAPI: the host name in the brokers' service principal, the same for every broker
    #: (aiokafka's setting; None: each broker's host as connected to, which the Kerberos
    #: library may canonicalize, as Java and librdkafka do).
    sasl_kerberos_domain_name: str | None = None
    #: GSSAPI: the client's principal (``app@EXAMPLE.COM``; Java's JAAS ``principal``). With
    #: ``sasl_kerberos_keytab``, the producer logs in from that keytab; alone, it picks that
    #: principal's tickets in the cache. None: the cache's default principal (or the client
    #: keytab ``KRB5_CLIENT_KTNAME`` names).
    sasl_kerberos_principal: str | None = None
    #: GSSAPI: a keytab to log in from as ``sasl_kerberos_principal`` (Java's JAAS
    #: ``useKeyTab=true keyTab=...``), its tickets kept in this producer's memory and renewed
    #: by the Kerberos library; no ticket cache is read or renewed then.
    sasl_kerberos_keytab: StrPath | None = None
    #: GSSAPI with a ticket cache: the ``kinit`` that renews the TGT (run as ``kinit -R``).
    sasl_kerberos_kinit_cmd: str = "/usr/bin/kinit"
    #: GSSAPI: the least time between two TGT renewals, unless the TGT would expire first.
    sasl_kerberos_min_time_before_relogin: int = 60000
    #: GSSAPI: a random extra fraction, up to this, of the TGT's lifetime before renewing it.
    sasl_kerberos_ticket_renew_jitter: float = 0.05
    #: GSSAPI: renew the ticket cache's TGT once this fraction of its lifetime has passed.
    sasl_kerberos_ticket_renew_window_factor: float = 0.8
    #: OAUTHBEARER token endpoint, jwt-bearer grant (RFC 7523, Java 4.1+'s KIP-1139): a file
    #: holding a ready-made signed JWT assertion, read again for every token request (so a
    #: rotated file is used at once). Selects the jwt-bearer grant instead of client
    #: credentials; the other ``sasl_oauthbearer_assertion_*`` settings then do not apply.
    sasl_oauthbearer_assertion_file: str | None = None
    #: OAUTHBEARER jwt-bearer grant: a PEM private key (PKCS#8; RSA for RS256, P-256 for
    #: ES256) that signs an assertion made for every token request; read again when the file
    #: changes. Selects the jwt-bearer grant. Needs the ``cryptography`` package (extra
    #: ``oauth-assertion``).
    sasl_oauthbearer_assertion_private_key_file: str | None = None
    #: OAUTHBEARER jwt-bearer grant: the passphrase of an encrypted private key file. Never
    #: shown in reprs or logs.
    sasl_oauthbearer_assertion_private_key_passphrase: str | None = field(default=None, repr=False)
    #: OAUTHBEARER jwt-bearer grant: how the assertion is signed, "RS256" or "ES256" (also its
    #: ``alg`` header).
    sasl_oauthbearer_assertion_algorithm: str = "RS256"
    #: OAUTHBEARER jwt-bearer grant: the assertion's ``aud`` claim (None: none).
    sasl_oauthbearer_assertion_claim_aud: str | None = None
    #: OAUTHBEARER jwt-bearer grant: the assertion's ``iss`` claim (None: none).
    sasl_oauthbearer_assertion_claim_iss: str | None = None
    #: OAUTHBEARER jwt-bearer grant: the assertion's ``sub`` claim (None: none).
    sasl_oauthbearer_assertion_claim_sub: str | None = None
    #: OAUTHBEARER jwt-bearer grant: the assertion expires (``exp``) this many seconds after
    #: it is made (0 to 86400).
    sasl_oauthbearer_assertion_claim_exp_seconds: int = 300
    #: OAUTHBEARER jwt-bearer grant: the assertion is valid (``nbf``) from this many seconds
    #: before it is made (0 to 3600).
    sasl_oauthbearer_assertion_claim_nbf_seconds: int = 60
    #: OAUTHBEARER jwt-bearer grant: give every assertion a unique ``jti`` claim (a UUID).
    sasl_oauthbearer_assertion_claim_jti_include: bool = False
    #: OAUTHBEARER jwt-bearer grant: a JSON file ``{"header": {...}, "payload": {...}}`` of
    #: more headers and claims for the assertion (read for every token request). As in Java,
    #: its values override ``aud``, ``iss`` and ``sub`` above, and ``alg``, ``typ``, ``iat``,
    #: ``exp``, ``nbf`` and ``jti`` override its own.
    sasl_oauthbearer_assertion_template_file: str | None = None
    #: ``callable(obj) -> bytes | None``; without one, keys must be bytes-like or None.
    key_serializer: Serializer | None = None
    #: ``callable(obj) -> bytes | None``; without one, values must be bytes-like or None.
    value_serializer: Serializer | None = None
    #: ``None`` for the built-in partitioner, or an object with
    #: ``partition(topic, key, key_bytes, value, value_bytes, cluster) -> int``.
    partitioner: Partitioner | None = None
    #: KIP-794: weigh partitions by queue size when choosing one for a record without key.
    partitioner_adaptive_partitioning_enable: bool = True
    #: KIP-794: avoid a partition whose leader accepted nothing for this long (0 = off).
    partitioner_availability_timeout_ms: int = 0
    #: Ignore keys when partitioning (sticky partitioning for every record).
    partitioner_ignore_keys: bool = False
    #: Where this client runs (Java's ``client.rack``, matching the brokers' ``broker.rack``):
    #: any string, "" for none.
    client_rack: str = ""
    #: KIP-1123: records without key (or all, with keys ignored) go to partitions whose
    #: leader's rack is ``client_rack`` (which must then be set), while there is one such
    #: partition with a leader; to any otherwise. For the built-in partitioner only.
    partitioner_rack_aware: bool = False
    #: Instances of :class:`ProducerInterceptor` subclasses, called in this order.
    interceptors: Sequence[ProducerInterceptor] = field(default_factory=tuple)
    #: The window of the samples a metric's rate, average and maximum are computed over.
    metrics_sample_window_ms: int = 30000
    #: How many sample windows are kept.
    metrics_num_samples: int = 2
    #: "INFO", "DEBUG" or "TRACE" (Java's ``metrics.recording.level``): the least level of
    #: the metrics recorded. Every metric of the producer is INFO-level, in Java 4.x as here
    #: (``producer-node-metrics`` included), so every level records them all.
    metrics_recording_level: Literal["INFO", "DEBUG", "TRACE"] = "INFO"
    #: KIP-714 client metrics: when the cluster has a client-metrics subscription matching
    #: this producer, push the metrics it asks for (from ``metrics()``, Java's names) to a
    #: broker at its interval, and once more on ``close()``. Without a subscription, or on
    #: a broker without the APIs, nothing is sent. Never delays or fails the producer's work.
    enable_metrics_push: bool = True
    #: Idempotent delivery (KIP-98): no duplicates from retries, order kept with up to 5
    #: requests in flight. Default (None) is on, as in Java >= 3.0, unless acks/retries/
    #: max_in_flight conflict (then off, silently, as Java) or the cluster cannot grant a
    #: producer id (then off with one warning). ``True`` makes both of those an error.
    enable_idempotence: bool | None = None
    #: Transactions (KIP-98): records sent between ``begin_transaction()`` and
    #: ``commit_transaction()`` become visible to ``read_committed`` consumers together, or
    #: never. The id names the producer across restarts: a new producer with the same id
    #: fences the old one. Implies idempotence (``enable_idempotence=False`` is an error).
    transactional_id: str | None = None
    #: How long the coordinator lets a transaction stay open before it aborts it (and fences
    #: this producer's epoch); at most the broker's ``transaction.max.timeout.ms``.
    transaction_timeout_ms: int = 60000
    #: Two-phase commit (KIP-939): the coordinator is told that an external transaction
    #: manager decides this producer's transactions, and never aborts one for its age
    #: (``transaction_timeout_ms`` must then keep its default). Enables
    #: ``prepare_transaction()`` and ``complete_transaction()``. Needs ``transactional_id``,
    #: and a broker with ``transaction.two.phase.commit.enable=true`` offering InitProducerId
    #: v6 (Kafka 4.4: with ``unstable.api.versions.enable=true``).
    transaction_two_phase_commit_enable: bool = False

    def __post_init__(self) -> None:
        if self.delivery_timeout_ms is None:
            value = 120000
            if isinstance(self.linger_ms, int) and isinstance(self.request_timeout_ms, int):
                floor = self.linger_ms + self.request_timeout_ms
                if value < floor:
                    import logging

                    logging.getLogger("aioproducer").warning(
                        "delivery_timeout_ms raised to linger_ms + request_timeout_ms = %d", floor
                    )
                    value = floor
            object.__setattr__(self, "delivery_timeout_ms", value)
        if self.client_id is None:
            object.__setattr__(self, "client_id", f"aioproducer-{next(_client_ids)}")
        self.validate()

    @classmethod
    def field_types(cls) -> dict[str, Any]:
        """Each field's type (its annotation, evaluated)."""
        return _field_types()

    @classmethod
    def from_properties(cls, props: Mapping[str, Any], **settings: Any) -> ProducerConfig:
        """A config from Java-style properties (``{"linger.ms": "5", "acks": "all"}``, the
        names of Java's ``ProducerConfig``), string values converted; ``settings`` are added
        as keywords. A Java setting aioproducer lacks raises :class:`ConfigError` naming it."""
        return cls(**from_java_properties(props), **settings)

    @property
    def acks_value(self) -> int:
        return ACKS[self.acks]

    def make_ssl_context(self) -> Any:
        """The TLS context for SSL/SASL_SSL, or None for plaintext."""
        from ._io.tls_context import ssl_context_for

        return ssl_context_for(self)

    def oauth_token_provider(self) -> Any:
        """The OAUTHBEARER token provider: the one given, or the client-credentials provider
        the ``sasl_oauthbearer_*`` settings describe; None for other mechanisms."""
        if self.sasl_mechanism != "OAUTHBEARER":
            return None
        if self.sasl_oauth_token_provider is not None:
            return self.sasl_oauth_token_provider
        from ._io.oauth import token_provider_for

        return token_provider_for(self)

    @property
    def delivery_timeout(self) -> int:
        """``delivery_timeout_ms`` as resolved at construction (never None)."""
        assert self.delivery_timeout_ms is not None
        return self.delivery_timeout_ms

    @property
    def idempotence(self) -> bool:
        """Whether idempotence is on: explicitly, or by default when nothing conflicts."""
        if self.enable_idempotence is not None:
            return self.enable_idempotence
        if self.transactional_id is not None:
            return True
        return (
            self.acks_value == -1
            and self.retries > 0
            and self.max_in_flight_requests_per_connection <= 5
        )

    @property
    def bootstrap_list(self) -> list[tuple[str, int]]:
        servers = self.bootstrap_servers
        items = servers.split(",") if isinstance(servers, str) else list(servers)
        out = []
        for item in items:
            item = item.strip()
            host, sep, port = item.rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ConfigError(f"bootstrap_servers entry {item!r} is not host:port")
            out.append((host.strip("[]"), int(port)))
        if not out:
            raise ConfigError("bootstrap_servers is empty")
        return out

    @property
    def compression(self) -> str:
        return self.compression_type or "none"

    def compression_level(self) -> int | None:
        return {
            "gzip": self.compression_gzip_level,
            "lz4": self.compression_lz4_level,
            "zstd": self.compression_zstd_level,
        }.get(self.compression)

    def validate(self) -> None:
        """Check every setting and the rules between them; raise :class:`ConfigError`."""
        from ._config_rules import validate

        validate(self)


@functools.cache
def _field_types() -> dict[str, Any]:
    return get_type_hints(ProducerConfig)


_dataclass_init = ProducerConfig.__init__


@functools.wraps(_dataclass_init)
def _init(self: ProducerConfig, **settings: Any) -> None:
    try:
        _dataclass_init(self, **settings)
    except TypeError:
        # An unknown keyword: say whether it is a Java setting we lack, or a typo.
        unknown = [name for name in settings if name not in _field_types()]
        if unknown:
            raise unknown_setting(unknown[0]) from None
        raise


ProducerConfig.__init__ = _init  # type: ignore[method-assign]


__all__ = (
    "Acks",
    "CompressionType",
    "ProducerConfig",
    "SaslMechanism",
    "SecurityProtocol",
    "Serializer",
    "StrPath",
    "TlsProtocol",
    "TlsVersion",
)
