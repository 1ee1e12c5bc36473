"""Secured listeners for the Kafka harness: TLS, mutual TLS, SASL (PLAIN, SCRAM, OAUTHBEARER).

``KafkaCluster(1, security=KafkaSecurity())`` starts Kafka with these listeners beside the
plaintext one (which stays for the harness's own admin requests):

========================  =================  =========================================
listener                  protocol           authentication
========================  =================  =========================================
``SSL``                   SSL                the broker's certificate only
``MTLS``                  SSL                client certificate required (mutual TLS)
``SASL_PLAINTEXT``        SASL_PLAINTEXT     SCRAM-SHA-512 only (no secret in clear)
``SASL_SSL``              SASL_SSL           PLAIN, SCRAM-SHA-256/512, OAUTHBEARER
``REAUTH`` (optional)     SASL_SSL           as SASL_SSL, ``connections.max.reauth.ms``
``OAUTH`` (optional)      SASL_SSL           OAUTHBEARER with signed JWTs, checked by
                                             Kafka's secured validator against a JWKS
``GSSAPI`` (optional)     SASL_PLAINTEXT     GSSAPI (Kerberos) only, with ``kerberos``
========================  =================  =========================================

Certificates come from a throwaway CA made with ``trustme`` (the broker's names 127.0.0.1
only, so a client that connects as ``localhost`` fails hostname verification). The SCRAM
credentials of ``users`` are created when the storage is formatted (``kafka-storage format
--add-scram``); PLAIN checks the same users. OAUTHBEARER uses Kafka's validator of unsecured
JWTs (``alg: none``): any token from :func:`unsecured_jwt` (or
:class:`aioproducer.testing.TokenEndpoint`) with an unexpired ``exp`` is accepted. The ``OAUTH``
listener (``KafkaSecurity(jwks_url=...)``) takes only tokens signed by a key of that JWKS, for
the audience ``jwks_audience`` and from the issuer ``jwks_issuer`` (a signing
:class:`~aioproducer.testing.TokenEndpoint` serves both; start it before the cluster, which
fetches the key set at start-up). The ``GSSAPI`` listener authenticates against a
:class:`~aioproducer.testing.KerberosKdc` (started by the caller) with the service principal's
keytab (JAAS ``Krb5LoginModule``).

:meth:`KafkaSecurity.producer_config` and :meth:`KafkaSecurity.librdkafka_config` give the
client settings for a listener and mechanism.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .kerberos import KerberosKdc

#: Listener name -> security protocol.
LISTENERS = {
    "SSL": "SSL",
    "MTLS": "SSL",
    "SASL_PLAINTEXT": "SASL_PLAINTEXT",
    "SASL_SSL": "SASL_SSL",
    "REAUTH": "SASL_SSL",
    "OAUTH": "SASL_SSL",
    "GSSAPI": "SASL_PLAINTEXT",
}
_SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")
_JAAS = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule required{users};",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule required;",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule required;",
    "OAUTHBEARER": "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule "
    'required unsecuredLoginStringClaim_sub="broker";',
}
_UNSECURED_VALIDATOR = (
    "org.apache.kafka.common.security.oauthbearer.internals.unsecured."
    "OAuthBearerUnsecuredValidatorCallbackHandler"
)
_JWKS_VALIDATOR = "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler"


def _gssapi_listener(kdc: KerberosKdc) -> dict[str, str]:
    jaas = (
        "com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true storeKey=true "
        f'keyTab="{kdc.service_keytab}" principal="{kdc.service_principal}";'
    )
    return {
        "listener.name.gssapi.sasl.enabled.mechanisms": "GSSAPI",
        "listener.name.gssapi.gssapi.sasl.jaas.config": jaas,
        "sasl.kerberos.service.name": "kafka",
    }


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unsecured_jwt(
    principal: str, lifetime_s: float = 3600.0, now: float | None = None, **claims: Any
) -> str:
    """An unsecured JWT (``alg: none``) for ``principal``, valid for ``lifetime_s`` seconds
    from ``now`` (negative: already expired), as Kafka's unsecured validator accepts."""
    issued = time.time() if now is None else now
    # Seconds with milliseconds (Kafka reads a decimal NumericDate): a token's lifetime is not
    # cut short by up to a second.
    payload = {
        "sub": principal,
        "iat": round(issued, 3),
        "exp": round(issued + lifetime_s, 3),
        **claims,
    }
    header = _b64url(json.dumps({"alg": "none"}).encode())
    return f"{header}.{_b64url(json.dumps(payload).encode())}."


class StaticTokenProvider:
    """A token provider returning unsecured JWTs for ``principal`` (a fresh one per call)."""

    def __init__(self, principal: str, lifetime_s: float = 3600.0) -> None:
        self.principal = principal
        self.lifetime_s = lifetime_s
        self.calls = 0

    def token(self) -> str:
        self.calls += 1
        return unsecured_jwt(self.principal, self.lifetime_s)


@dataclass
class KafkaSecurity:
    """The secured listeners' settings; ``KafkaCluster`` fills in ``ports`` and the files."""

    #: SCRAM (and PLAIN) users and their passwords.
    users: dict[str, str] = field(default_factory=lambda: {"alice": "alice-pw-Secret1"})
    #: ``connections.max.reauth.ms`` of the extra ``REAUTH`` listener (None: no such listener).
    reauth_ms: int | None = None
    #: A running KDC: adds the ``GSSAPI`` listener (None: no such listener).
    kerberos: KerberosKdc | None = None
    #: The password of the client key (``client_key_file`` is encrypted with it).
    client_key_password: str = "client-key-pw"
    #: The JWKS of the ``OAUTH`` listener's validator (None: no such listener), and the
    #: audience and issuer its tokens must have.
    jwks_url: str | None = None
    jwks_audience: str = "kafka"
    jwks_issuer: str = "aioproducer-test-idp"
    #: Filled in by the cluster: listener name -> port (single node), and the PEM files.
    ports: dict[str, int] = field(default_factory=dict)
    ca_file: str = ""
    client_cert_file: str = ""
    client_key_file: str = ""
    _broker_pem: str = ""

    @property
    def listener_names(self) -> list[str]:
        optional = {
            "REAUTH": self.reauth_ms is not None,
            "OAUTH": self.jwks_url is not None,
            "GSSAPI": self.kerberos is not None,
        }
        return [n for n in LISTENERS if optional.get(n, True)]

    def jvm_options(self) -> list[str]:
        """The broker JVM's extra options: the KDC's krb5.conf; the OAuth URLs Kafka 4.x may
        fetch (``org.apache.kafka.sasl.oauthbearer.allowed.urls``)."""
        options = list(self.kerberos.jvm_options()) if self.kerberos is not None else []
        if self.jwks_url is not None:
            options.append(f"-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls={self.jwks_url}")
        return options

    def write_certificates(self, directory: Path) -> None:
        """Make a CA, a broker certificate for 127.0.0.1 and a client certificate (its key
        encrypted with ``client_key_password``), as PEM files in ``directory``."""
        import trustme
        from cryptography.hazmat.primitives import serialization

        directory.mkdir(parents=True, exist_ok=True)
        ca = trustme.CA()
        broker = ca.issue_cert("127.0.0.1")
        client = ca.issue_cert("aioproducer-test-client")

        def pkcs8(cert: Any, password: bytes | None) -> bytes:
            key = serialization.load_pem_private_key(cert.private_key_pem.bytes(), None)
            encryption: serialization.KeySerializationEncryption = (
                serialization.BestAvailableEncryption(password)
                if password
                else serialization.NoEncryption()
            )
            return key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
            )

        paths = {name: directory / f"{name}.pem" for name in ("ca", "broker", "client", "key")}
        paths["ca"].write_bytes(ca.cert_pem.bytes())
        chain = b"".join(p.bytes() for p in broker.cert_chain_pems)
        paths["broker"].write_bytes(pkcs8(broker, None) + chain)
        paths["client"].write_bytes(b"".join(p.bytes() for p in client.cert_chain_pems))
        paths["key"].write_bytes(pkcs8(client, self.client_key_password.encode()))
        self.ca_file, self._broker_pem = str(paths["ca"]), str(paths["broker"])
        self.client_cert_file, self.client_key_file = str(paths["client"]), str(paths["key"])

    def broker_config(self) -> dict[str, str]:
        """The broker settings for the secured listeners (merged into server.properties)."""
        plain_users = "".join(f' user_{u}="{p}"' for u, p in self.users.items())
        props = {
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": self._broker_pem,
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": self.ca_file,
            "ssl.client.auth": "none",
            "listener.name.mtls.ssl.client.auth": "required",
            "sasl.enabled.mechanisms": ",".join(_SASL_MECHANISMS),
            "listener.name.sasl_plaintext.sasl.enabled.mechanisms": "SCRAM-SHA-512",
        }
        if self.kerberos is not None:
            props.update(_gssapi_listener(self.kerberos))
        for name in self.listener_names:
            if not LISTENERS[name].startswith("SASL") or name == "GSSAPI":
                continue
            prefix = f"listener.name.{name.lower()}"
            for mech in _SASL_MECHANISMS:
                props[f"{prefix}.{mech.lower()}.sasl.jaas.config"] = _JAAS[mech].format(
                    users=plain_users
                )
            props[f"{prefix}.oauthbearer.sasl.server.callback.handler.class"] = _UNSECURED_VALIDATOR
        if self.reauth_ms is not None:
            props["listener.name.reauth.connections.max.reauth.ms"] = str(self.reauth_ms)
        if self.jwks_url is not None:
            props["listener.name.oauth.sasl.enabled.mechanisms"] = "OAUTHBEARER"
            props["listener.name.oauth.oauthbearer.sasl.server.callback.handler.class"] = (
                _JWKS_VALIDATOR
            )
            # Only the OAUTH listener's validator reads these (the others are unsecured).
            props["sasl.oauthbearer.jwks.endpoint.url"] = self.jwks_url
            props["sasl.oauthbearer.expected.audience"] = self.jwks_audience
            props["sasl.oauthbearer.expected.issuer"] = self.jwks_issuer
        return props

    def format_arguments(self) -> list[str]:
        """``kafka-storage format`` arguments creating every user's SCRAM credentials."""
        out = []
        for user, password in self.users.items():
            for mech in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
                out += ["--add-scram", f"{mech}=[name={user},password={password}]"]
        return out

    def bootstrap(self, listener: str, host: str = "127.0.0.1") -> str:
        return f"{host}:{self.ports[listener]}"

    def producer_config(
        self,
        listener: str,
        mechanism: str | None = None,
        user: str | None = None,
        token_provider: Any = None,
    ) -> dict[str, Any]:
        """aioproducer settings for ``listener`` (and ``mechanism`` on a SASL listener)."""
        protocol = LISTENERS[listener]
        cfg: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap(listener),
            "security_protocol": protocol,
        }
        if protocol.endswith("SSL"):
            cfg["ssl_cafile"] = self.ca_file
        if listener == "MTLS":
            cfg.update(
                ssl_certfile=self.client_cert_file,
                ssl_keyfile=self.client_key_file,
                ssl_password=self.client_key_password,
            )
        if protocol.startswith("SASL"):
            mech = mechanism or "SCRAM-SHA-512"
            cfg["sasl_mechanism"] = mech
            if mech == "OAUTHBEARER":
                cfg["sasl_oauth_token_provider"] = token_provider or StaticTokenProvider("alice")
            else:
                user = user or next(iter(self.users))
                cfg.update(sasl_plain_username=user, sasl_plain_password=self.users[user])
        return cfg

    def librdkafka_config(self, listener: str, mechanism: str | None = None) -> dict[str, Any]:
        """confluent-kafka (librdkafka) settings for ``listener``: the independent reader's."""
        protocol = LISTENERS[listener]
        cfg: dict[str, Any] = {"security.protocol": protocol}
        if protocol.endswith("SSL"):
            cfg["ssl.ca.location"] = self.ca_file
        if listener == "MTLS":
            cfg.update(
                {
                    "ssl.certificate.location": self.client_cert_file,
                    "ssl.key.location": self.client_key_file,
                    "ssl.key.password": self.client_key_password,
                }
            )
        if protocol.startswith("SASL"):
            mech = mechanism or "SCRAM-SHA-512"
            cfg["sasl.mechanism"] = mech
            if mech == "OAUTHBEARER":
                cfg["enable.sasl.oauthbearer.unsecure.jwt"] = True
                cfg["sasl.oauthbearer.config"] = "principal=alice"
            else:
                user = next(iter(self.users))
                cfg.update({"sasl.username": user, "sasl.password": self.users[user]})
        return cfg


__all__ = ("LISTENERS", "KafkaSecurity", "StaticTokenProvider", "unsecured_jwt")
