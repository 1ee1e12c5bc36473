"""Every setting of Java's 4.x ``KafkaProducer``, and what aioproducer makes of it.

The table below lists Java's names: every name Kafka 4.4's ``ProducerConfig.configNames()``
reports (its own, ``CommonClientConfigs``', and the SSL and SASL settings every client has);
tests/unit/test_java_settings.py compares the table with what Java reports, so a setting a
later Kafka adds fails that test until it has a row here. A Java setting is *supported* when
its Python name (the Java name with ``_`` for ``.``, or the rename given here) is a field of
:class:`ProducerConfig`: adding the field is the only step, this module needs no change. A
setting that can never apply to a Python client carries the reason; every other one is "not
supported yet".

:func:`check_names` turns an unknown or unsupported keyword into a :class:`ConfigError` that
says which of those it is, and :func:`from_java_properties` reads Java-style properties
(``linger.ms=5``), as ``--producer-props`` of the command line does.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError


@dataclass(frozen=True, slots=True)
class JavaSetting:
    """One Java producer setting: its name here, and why it does not apply if it does not."""

    java: str
    python: str
    #: Why the setting can never apply to aioproducer (None: it applies).
    not_applicable: str | None = None
    #: What to use instead, or what the Python setting differs in.
    note: str | None = None


_JVM = "a JVM mechanism; Python's ssl module and interpreter have no equivalent"
_CLASS = "names a Java class; aioproducer takes Python objects"
_PEM_ONLY = "JKS and PKCS12 are Java's key store formats; Python's ssl reads PEM"

# (java name, python name if not the mechanical one, not applicable because, note)
_TABLE: tuple[tuple[str, str | None, str | None, str | None], ...] = (
    ("acks", None, None, None),
    ("batch.size", None, None, None),
    ("bootstrap.resolve.timeout.ms", None, None, None),
    ("bootstrap.servers", None, None, None),
    ("buffer.memory", None, None, None),
    ("buffer.memory.allocation.strategy", None, None, None),
    ("client.dns.lookup", None, None, None),
    ("client.id", None, None, None),
    ("client.rack", None, None, "KIP-1123 rack-aware partitioning"),
    ("compression.type", None, None, None),
    ("compression.gzip.level", None, None, None),
    ("compression.lz4.level", None, None, None),
    ("compression.zstd.level", None, None, None),
    (
        "config.providers",
        None,
        "Java's ${provider:path:key} indirection loads values through ConfigProvider classes",
        "pass the values themselves (read a file or a secret store in Python first)",
    ),
    ("connections.max.idle.ms", None, None, None),
    ("delivery.timeout.ms", None, None, None),
    ("enable.idempotence", None, None, None),
    ("enable.metrics.push", None, None, "KIP-714 client metrics"),
    ("interceptor.classes", "interceptors", None, "ProducerInterceptor objects"),
    ("key.serializer", None, None, "a callable or an object with serialize()"),
    ("linger.ms", None, None, None),
    ("max.block.ms", None, None, None),
    ("max.in.flight.requests.per.connection", None, None, None),
    ("max.request.size", None, None, None),
    ("metadata.cluster.check.enable", None, None, None),
    ("metadata.max.age.ms", None, None, None),
    ("metadata.max.idle.ms", None, None, None),
    ("metadata.recovery.strategy", None, None, None),
    ("metadata.recovery.rebootstrap.trigger.ms", None, None, None),
    ("metric.reporters", None, _CLASS, "export producer.metrics() instead"),
    ("metrics.num.samples", None, None, None),
    ("metrics.recording.level", None, None, None),
    ("metrics.sample.window.ms", None, None, None),
    ("partitioner.adaptive.partitioning.enable", None, None, None),
    ("partitioner.availability.timeout.ms", None, None, None),
    ("partitioner.class", "partitioner", None, "an object with a partition() method"),
    ("partitioner.ignore.keys", None, None, None),
    ("partitioner.rack.aware", None, None, "KIP-1123, with client.rack"),
    ("receive.buffer.bytes", None, None, None),
    ("reconnect.backoff.max.ms", None, None, None),
    ("reconnect.backoff.ms", None, None, None),
    ("request.timeout.ms", None, None, None),
    ("retries", None, None, None),
    ("retry.backoff.max.ms", None, None, None),
    ("retry.backoff.ms", None, None, None),
    ("security.protocol", None, None, None),
    ("security.providers", None, _JVM, None),
    ("send.buffer.bytes", None, None, None),
    ("socket.connection.setup.timeout.max.ms", None, None, None),
    ("socket.connection.setup.timeout.ms", None, None, None),
    ("transaction.timeout.ms", None, None, None),
    ("transaction.two.phase.commit.enable", None, None, "KIP-939"),
    ("transactional.id", None, None, None),
    ("value.serializer", None, None, "a callable or an object with serialize()"),
    # SSL (SslConfigs.addClientSslSupport)
    ("ssl.cipher.suites", None, None, None),
    ("ssl.enabled.protocols", None, None, None),
    (
        "ssl.endpoint.identification.algorithm",
        "ssl_check_hostname",
        None,
        "a bool: True is Java's 'https', False its ''",
    ),
    ("ssl.engine.factory.class", None, _CLASS, "pass ssl_context, an ssl.SSLContext"),
    (
        "ssl.key.password",
        "ssl_password",
        None,
        "the password of the client key (ssl_certfile's, ssl_keyfile's or ssl_keystore_key's)",
    ),
    ("ssl.keymanager.algorithm", None, _JVM, None),
    ("ssl.keystore.certificate.chain", None, None, None),
    ("ssl.keystore.key", None, None, None),
    (
        "ssl.keystore.location",
        "ssl_certfile",
        None,
        "a PEM file: the client's certificate chain (and key, or ssl_keyfile); as PEM text: "
        "ssl_keystore_certificate_chain and ssl_keystore_key",
    ),
    (
        "ssl.keystore.password",
        None,
        "a PEM key store has no store password (Java refuses one with PEM too)",
        "the key's password is ssl_password (ssl.key.password)",
    ),
    (
        "ssl.keystore.type",
        None,
        _PEM_ONLY,
        "PEM, the only type read: files (ssl_certfile, ssl_keyfile) or text (ssl_keystore_*); "
        "ssl.keystore.type=PEM is accepted in properties",
    ),
    ("ssl.protocol", None, None, None),
    ("ssl.provider", None, _JVM, None),
    ("ssl.secure.random.implementation", None, _JVM, None),
    ("ssl.trustmanager.algorithm", None, _JVM, None),
    ("ssl.truststore.certificates", None, None, None),
    (
        "ssl.truststore.location",
        "ssl_cafile",
        None,
        "a PEM file of CA certificates; as PEM text: ssl_truststore_certificates",
    ),
    (
        "ssl.truststore.password",
        None,
        "a PEM trust store has no password",
        "ssl_cafile (a file) or ssl_truststore_certificates (text)",
    ),
    (
        "ssl.truststore.type",
        None,
        _PEM_ONLY,
        "PEM, the only type read: a file (ssl_cafile) or text (ssl_truststore_certificates); "
        "ssl.truststore.type=PEM is accepted in properties",
    ),
    # SASL (SaslConfigs.addClientSaslSupport)
    ("sasl.client.callback.handler.class", None, _CLASS, None),
    (
        "sasl.jaas.config",
        None,
        "a JAAS login module line is Java's way to pass credentials",
        "use sasl_plain_username and sasl_plain_password (and the other sasl_* settings)",
    ),
    ("sasl.kerberos.kinit.cmd", None, None, "GSSAPI: renews a ticket cache's TGT (kinit -R)"),
    ("sasl.kerberos.min.time.before.relogin", None, None, "GSSAPI: ticket cache renewal"),
    ("sasl.kerberos.service.name", None, None, "GSSAPI; default 'kafka' (Java: none)"),
    ("sasl.kerberos.ticket.renew.jitter", None, None, "GSSAPI: ticket cache renewal"),
    ("sasl.kerberos.ticket.renew.window.factor", None, None, "GSSAPI: ticket cache renewal"),
    ("sasl.login.callback.handler.class", None, _CLASS, None),
    ("sasl.login.class", None, _CLASS, None),
    ("sasl.login.connect.timeout.ms", None, None, None),
    ("sasl.login.read.timeout.ms", None, None, None),
    ("sasl.login.refresh.buffer.seconds", None, None, None),
    ("sasl.login.refresh.min.period.seconds", None, None, None),
    ("sasl.login.refresh.window.factor", None, None, None),
    ("sasl.login.refresh.window.jitter", None, None, None),
    ("sasl.login.retry.backoff.max.ms", None, None, None),
    ("sasl.login.retry.backoff.ms", None, None, None),
    ("sasl.mechanism", None, None, None),
    ("sasl.oauthbearer.allow.unverified.audience", None, None, None),
    ("sasl.oauthbearer.allow.unverified.issuer", None, None, None),
    ("sasl.oauthbearer.assertion.algorithm", None, None, None),
    ("sasl.oauthbearer.assertion.claim.aud", None, None, None),
    ("sasl.oauthbearer.assertion.claim.exp.seconds", None, None, None),
    ("sasl.oauthbearer.assertion.claim.iss", None, None, None),
    ("sasl.oauthbearer.assertion.claim.jti.include", None, None, None),
    ("sasl.oauthbearer.assertion.claim.nbf.seconds", None, None, None),
    ("sasl.oauthbearer.assertion.claim.sub", None, None, None),
    ("sasl.oauthbearer.assertion.file", None, None, None),
    ("sasl.oauthbearer.assertion.private.key.file", None, None, None),
    ("sasl.oauthbearer.assertion.private.key.passphrase", None, None, None),
    ("sasl.oauthbearer.assertion.template.file", None, None, None),
    ("sasl.oauthbearer.client.credentials.client.id", None, None, None),
    ("sasl.oauthbearer.client.credentials.client.secret", None, None, None),
    ("sasl.oauthbearer.clock.skew.seconds", None, None, None),
    ("sasl.oauthbearer.expected.audience", None, None, None),
    ("sasl.oauthbearer.expected.issuer", None, None, None),
    ("sasl.oauthbearer.header.urlencode", None, None, None),
    ("sasl.oauthbearer.jwks.endpoint.refresh.ms", None, None, None),
    ("sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms", None, None, None),
    ("sasl.oauthbearer.jwks.endpoint.retry.backoff.ms", None, None, None),
    ("sasl.oauthbearer.jwks.endpoint.url", None, None, None),
    (
        "sasl.oauthbearer.jwt.retriever.class",
        None,
        _CLASS,
        "the token comes from sasl_oauth_token_provider (an object with token()) or the "
        "sasl_oauthbearer_* settings (client credentials, or jwt-bearer with an assertion); "
        "in properties, Java's built-in class names are accepted when they agree with those",
    ),
    (
        "sasl.oauthbearer.jwt.validator.class",
        None,
        _CLASS,
        "a sasl_oauth_token_provider vouches for its tokens; the token endpoint's are checked "
        "against sasl_oauthbearer_jwks_endpoint_url when it is set",
    ),
    ("sasl.oauthbearer.scope", None, None, None),
    ("sasl.oauthbearer.scope.claim.name", None, None, None),
    ("sasl.oauthbearer.sub.claim.name", None, None, None),
    ("sasl.oauthbearer.token.endpoint.url", None, None, None),
)

JAVA_SETTINGS: tuple[JavaSetting, ...] = tuple(
    JavaSetting(java, python or java.replace(".", "_"), na, note)
    for java, python, na, note in _TABLE
)
BY_JAVA: dict[str, JavaSetting] = {s.java: s for s in JAVA_SETTINGS}
#: Python name → Java setting, for both the Python name and the mechanical translation of
#: the Java name where they differ (``partitioner_class`` finds ``partitioner.class``).
BY_PYTHON: dict[str, JavaSetting] = {
    **{s.java.replace(".", "_"): s for s in JAVA_SETTINGS},
    **{s.python: s for s in JAVA_SETTINGS},
}


def _field_names() -> frozenset[str]:
    from dataclasses import fields

    from .config import ProducerConfig

    return frozenset(f.name for f in fields(ProducerConfig))


def java_name(field: str) -> str | None:
    """The Java name of a :class:`ProducerConfig` field, or None for aioproducer's own."""
    s = BY_PYTHON.get(field)
    return s.java if s is not None and s.python == field else None


def status(setting: JavaSetting, names: Iterable[str] | None = None) -> str:
    """``"supported"``, ``"not applicable"`` or ``"not supported yet"``."""
    if setting.python in (_field_names() if names is None else names):
        return "supported"
    return "not applicable" if setting.not_applicable else "not supported yet"


def unknown_setting(name: str) -> ConfigError:
    """The error for a keyword that is not a :class:`ProducerConfig` field."""
    names = _field_names()
    s = BY_JAVA.get(name) or BY_PYTHON.get(name)
    if s is not None and s.python in names:
        if name == s.java:
            why = f"setting {name!r} is Java's spelling; aioproducer calls it {s.python!r}"
        else:
            why = f"Java's {s.java!r} is {s.python!r} in aioproducer, not {name!r}"
        return ConfigError(why + (f" ({s.note})" if s.note else ""))
    if s is not None:
        spelled = repr(name) if name == s.python else f"{name!r} (here: {s.python!r})"
        if s.not_applicable:
            msg = (
                f"{spelled} is a Java producer setting ({s.java!r}) that does not apply to "
                f"aioproducer: {s.not_applicable}"
            )
        else:
            msg = f"{spelled} is a Java producer setting ({s.java!r}) aioproducer does not "
            msg += "support yet"
        return ConfigError(msg + (f"; {s.note}" if s.note else ""))
    close = difflib.get_close_matches(name.replace(".", "_").lower(), sorted(names), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"unknown setting {name!r}{hint} (the settings: ProducerConfig's fields)")


def check_names(settings: Iterable[str]) -> None:
    """Raise :class:`ConfigError` for the first name that is not a ProducerConfig field."""
    names = _field_names()
    for name in settings:
        if name not in names:
            raise unknown_setting(name)


def from_java_properties(props: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword settings from Java-style properties (``{"linger.ms": "5"}``): names translated,
    and string values converted to the field's type (``"5"`` → 5, ``"true"`` → True,
    ``"null"``/empty → None where None is allowed). Unknown or unsupported names raise
    :class:`ConfigError`, as keywords do."""
    from ._config_types import convert_string
    from .config import ProducerConfig

    out: dict[str, Any] = {}
    hints = ProducerConfig.field_types()
    for key, value in props.items():
        s = BY_JAVA.get(key)
        name = s.python if s is not None else key
        if name not in hints and key not in _READ_SPECIALLY:
            raise unknown_setting(key)
        if key in ("ssl.keystore.type", "ssl.truststore.type"):
            _pem_store_type(key, value)
        elif name == "ssl_check_hostname" and isinstance(value, str):
            out[name] = _endpoint_identification(value)
        elif key == _RETRIEVER:
            pass  # checked against the other settings below
        elif key == "sasl.jaas.config" and isinstance(value, str):
            jaas = _jaas_credentials(value)
            _same_service_name(jaas, props)
            out.update(jaas)
        elif (
            key in ("ssl.truststore.location", "ssl.keystore.location")
            and isinstance(value, str)
            and value.lower().endswith((".jks", ".p12", ".pfx"))
        ):
            raise ConfigError(
                f"{key}={value!r} is a Java key store; aioproducer reads PEM files (convert it "
                "with keytool -exportcert -rfc, or openssl pkcs12 -nodes)"
            )
        else:
            out[name] = (
                convert_string(name, value, hints[name]) if isinstance(value, str) else value
            )
    if _RETRIEVER in props:
        _jwt_retriever(props[_RETRIEVER], out)
    return out


def _same_service_name(jaas: Mapping[str, str], props: Mapping[str, Any]) -> None:
    """Java refuses a JAAS ``serviceName`` that differs from ``sasl.kerberos.service.name``."""
    given = props.get("sasl.kerberos.service.name")
    in_jaas = jaas.get("sasl_kerberos_service_name")
    if given is not None and in_jaas is not None and given != in_jaas:
        raise ConfigError(
            f"sasl.jaas.config's serviceName={in_jaas!r} conflicts with "
            f"sasl.kerberos.service.name={given!r}"
        )


def _jwt_retriever(value: Any, settings: Mapping[str, Any]) -> None:
    """``sasl.oauthbearer.jwt.retriever.class`` names one of Java's built-in grants: here the
    settings choose it (an assertion file or key: jwt-bearer; else client credentials), so the
    class must agree with them. Any other class is an error."""
    short = str(value).strip().rsplit(".", 1)[-1]
    bearer = bool(
        settings.get("sasl_oauthbearer_assertion_file")
        or settings.get("sasl_oauthbearer_assertion_private_key_file")
    )
    expected = "JwtBearerJwtRetriever" if bearer else "ClientCredentialsJwtRetriever"
    if short in ("DefaultJwtRetriever", expected):
        return
    if short == "JwtBearerJwtRetriever":
        why = "needs sasl.oauthbearer.assertion.file or sasl.oauthbearer.assertion.private.key.file"
    elif short == "ClientCredentialsJwtRetriever":
        why = "cannot take the sasl.oauthbearer.assertion.* settings (the jwt-bearer grant's)"
    else:
        why = (
            "aioproducer knows JwtBearerJwtRetriever, ClientCredentialsJwtRetriever and "
            "DefaultJwtRetriever; for another source of tokens, give sasl_oauth_token_provider"
        )
    raise ConfigError(f"{_RETRIEVER}={value!r} {why}")


def _pem_store_type(key: str, value: Any) -> None:
    """``ssl.keystore.type``/``ssl.truststore.type``: PEM (what aioproducer reads), or an error."""
    if not isinstance(value, str) or value.strip().upper() != "PEM":
        raise ConfigError(
            f"{key}={value!r}: aioproducer reads PEM key and trust stores only (convert with "
            "keytool -exportcert -rfc, or openssl pkcs12 -nodes)"
        )


def _endpoint_identification(value: str) -> bool:
    """``ssl.endpoint.identification.algorithm``: "https" verifies the hostname, "" does not;
    anything else is an error (a typo must not turn verification off)."""
    text = value.strip().lower()
    if text not in ("https", "", "null"):
        raise ConfigError(
            f"ssl.endpoint.identification.algorithm={value!r}: allowed 'https' or '' (no "
            "hostname verification)"
        )
    return text == "https"


#: Properties without a field that are read (the credentials in a JAAS line; PEM types).
_RETRIEVER = "sasl.oauthbearer.jwt.retriever.class"
_READ_SPECIALLY = ("sasl.jaas.config", "ssl.keystore.type", "ssl.truststore.type", _RETRIEVER)
_JAAS_OPTION = re.compile(
    r"""(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|(\S+?))\s*(?=;|\s|$)"""
)


def _jaas_credentials(text: str) -> dict[str, str]:
    """The settings in a ``sasl.jaas.config`` line, for the login modules that carry them:
    PLAIN's and SCRAM's user name and password (what Confluent Cloud's and most generated
    client configs hold), OAUTHBEARER's client credentials (``clientId``, ``clientSecret``,
    ``scope``), Kerberos' principal, keytab and service name."""
    module = text.strip().split(None, 1)[0] if text.strip() else ""
    options = {
        m[0]: re.sub(r"\\(.)", r"\1", m[1] or m[2]) if (m[1] or m[2]) else m[3]
        for m in _JAAS_OPTION.findall(text)
    }
    if module.endswith(("PlainLoginModule", "ScramLoginModule")):
        if "username" not in options or "password" not in options:
            raise ConfigError("sasl.jaas.config has no username=... password=... options")
        return {
            "sasl_plain_username": options["username"],
            "sasl_plain_password": options["password"],
        }
    if module.endswith("Krb5LoginModule"):
        return _krb5_options(options)
    if module.endswith("OAuthBearerLoginModule"):
        names = {
            "clientId": "sasl_oauthbearer_client_credentials_client_id",
            "clientSecret": "sasl_oauthbearer_client_credentials_client_secret",
            "scope": "sasl_oauthbearer_scope",
        }
        return {names[k]: v for k, v in options.items() if k in names}
    raise ConfigError(
        f"sasl.jaas.config with {module or 'nothing'!r}: only PlainLoginModule, "
        "ScramLoginModule, OAuthBearerLoginModule and Krb5LoginModule lines are understood; use "
        "the sasl_* settings instead"
    )


def _krb5_options(options: Mapping[str, str]) -> dict[str, str]:
    """A ``Krb5LoginModule`` line's settings: the principal, the keytab (``useKeyTab``), the
    service name. A ticket cache is the default; one at another path is ``KRB5CCNAME``'s."""
    if "ticketCache" in options:
        raise ConfigError(
            "sasl.jaas.config: Krb5LoginModule's ticketCache= is not a setting here; set "
            f"KRB5CCNAME=FILE:{options['ticketCache']} in the environment instead"
        )
    out: dict[str, str] = {}
    if "principal" in options:
        out["sasl_kerberos_principal"] = options["principal"]
    if options.get("useKeyTab", "false").lower() == "true":
        if "keyTab" not in options or "principal" not in options:
            raise ConfigError(
                "sasl.jaas.config: Krb5LoginModule useKeyTab=true needs keyTab= and principal="
            )
        out["sasl_kerberos_keytab"] = options["keyTab"]
    if "serviceName" in options:
        out["sasl_kerberos_service_name"] = options["serviceName"]
    return out


__all__ = (
    "BY_JAVA",
    "BY_PYTHON",
    "JAVA_SETTINGS",
    "JavaSetting",
    "check_names",
    "from_java_properties",
    "java_name",
    "status",
    "unknown_setting",
)
