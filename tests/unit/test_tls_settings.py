"""Java's TLS settings (issue 16): cipher suites (IANA and OpenSSL names), enabled protocols and
``ssl_protocol`` as a TLS version range, the PEM key store and trust store as text, and the
typed errors for bad values. The handshakes themselves: tests/integration/test_tls_settings.py.
"""

from __future__ import annotations

import logging
import os
import ssl
from pathlib import Path
from typing import Any

import pytest
import trustme

from aioproducer import ProducerConfig
from aioproducer._io import tls_context
from aioproducer._io.tls_settings import cipher_suites, openssl_name, version_range
from aioproducer.config import TlsProtocol, TlsVersion
from aioproducer.errors import ConfigError

V12, V13 = ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3
KEY_PASSWORD = "k3y-Passw0rd-not-shown"


@pytest.mark.parametrize(
    ("iana", "openssl"),
    [
        # What `openssl ciphers -stdname` prints for each (OpenSSL 3.0).
        ("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384"),
        ("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"),
        ("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305"),
        ("TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", "DHE-RSA-AES256-GCM-SHA384"),
        ("TLS_RSA_WITH_AES_128_GCM_SHA256", "AES128-GCM-SHA256"),
        ("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384", "ECDHE-ECDSA-AES256-SHA384"),
        ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA-AES128-SHA"),
        ("TLS_RSA_WITH_AES_256_CBC_SHA256", "AES256-SHA256"),
        ("TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8", "ECDHE-ECDSA-AES128-CCM8"),
        ("SSL_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA"),  # Java's old SSL_ prefix
    ],
)
def test_java_iana_names_map_to_openssl_names(iana: str, openssl: str) -> None:
    assert openssl_name(iana) == openssl
    assert cipher_suites([iana]).tls12 == openssl
    assert cipher_suites([openssl]).tls12 == openssl  # OpenSSL's own name, as is


def test_cipher_suites_split_by_version_and_bad_names_are_typed() -> None:
    split = cipher_suites(
        [
            "TLS_AES_256_GCM_SHA384",
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            "TLS_EMPTY_RENEGOTIATION_INFO_SCSV",  # Java lists it; not a suite
            "ECDHE-RSA-AES256-GCM-SHA384",  # the same suite twice, kept once
        ]
    )
    assert split.tls12 == "ECDHE-RSA-AES256-GCM-SHA384"
    assert split.tls13 == {"TLS_AES_256_GCM_SHA384"}
    assert openssl_name("TLS_RSA_WITH_CHACHA20_POLY1305_SHA256") is None  # no such suite
    for bad, says in [
        ("TLS_ECDHE_RSA_WITH_RC4_128_SHA", "not a cipher suite this Python's OpenSSL has"),
        ("HIGH", "not a cipher suite"),  # an OpenSSL cipher-string keyword, not a suite
        ("ECDHE-RSA-AES256-GCM-SHA384:!aNULL", "not a cipher suite"),
        ("", "is not a cipher suite name"),
        ("TLS_AES_128_CCM_8_SHA256", "Python's ssl cannot offer"),
    ]:
        with pytest.raises(ConfigError, match="ssl_cipher_suites") as info:
            ProducerConfig(security_protocol="SSL", ssl_cipher_suites=[bad])
        assert says in str(info.value)
    with pytest.raises(ConfigError, match="ssl_cipher_suites is empty"):
        ProducerConfig(ssl_cipher_suites=[])
    with pytest.raises(ConfigError, match="ssl_cipher_suites"):
        ProducerConfig(ssl_cipher_suites="TLS_AES_256_GCM_SHA384")


@pytest.mark.parametrize(
    ("protocol", "enabled", "suites", "expected"),
    [
        ("TLSv1.3", ["TLSv1.2", "TLSv1.3"], None, (V12, V13)),
        ("TLSv1.3", ["TLSv1.3"], None, (V13, V13)),
        ("TLSv1.3", ["TLSv1.2"], None, (V12, V12)),
        # ssl.protocol caps the version, as Java's SSLContext protocol does.
        ("TLSv1.2", ["TLSv1.2", "TLSv1.3"], None, (V12, V12)),
        ("TLS", ["TLSv1.3", "TLSv1.2"], None, (V12, V13)),
        # No TLS 1.3 suite listed: no TLS 1.3 (a JSSE client cannot negotiate it either).
        ("TLSv1.3", ["TLSv1.2", "TLSv1.3"], ["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"], (V12, V12)),
        # Only TLS 1.3 suites: no TLS 1.2.
        ("TLSv1.3", ["TLSv1.2", "TLSv1.3"], ["TLS_AES_128_GCM_SHA256"], (V13, V13)),
    ],
)
def test_enabled_protocols_and_protocol_give_the_version_range(
    protocol: TlsProtocol,
    enabled: list[TlsVersion],
    suites: list[str] | None,
    expected: tuple[Any, Any],
) -> None:
    assert version_range(protocol, enabled, suites) == expected
    cfg = ProducerConfig(
        security_protocol="SSL",
        ssl_protocol=protocol,
        ssl_enabled_protocols=enabled,
        ssl_cipher_suites=suites,
    )
    ctx = cfg.make_ssl_context()
    assert (ctx.minimum_version, ctx.maximum_version) == expected


def test_default_context_is_tls_1_2_to_1_3_with_pythons_suites() -> None:
    ctx = ProducerConfig(security_protocol="SSL").make_ssl_context()
    assert (ctx.minimum_version, ctx.maximum_version) == (V12, V13)
    assert ctx.get_ciphers() == ssl.create_default_context().get_ciphers()
    for cipher in ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384"):
        assert tls_context.refused_cipher(ctx, _Transport((cipher, "TLSv1.3")), "b") is None


def test_cipher_suites_reach_the_context() -> None:
    cfg = ProducerConfig(
        security_protocol="SSL",
        ssl_cipher_suites=["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"],
    )
    ctx = cfg.make_ssl_context()
    tls12 = [c["name"] for c in ctx.get_ciphers() if c["protocol"] != "TLSv1.3"]
    assert tls12 == ["ECDHE-ECDSA-AES128-GCM-SHA256"]
    assert (ctx.minimum_version, ctx.maximum_version) == (V12, V13)
    # TLS 1.3: what was negotiated is checked after the handshake.
    ok = _Transport(("TLS_AES_128_GCM_SHA256", "TLSv1.3"))
    assert tls_context.refused_cipher(ctx, ok, "b") is None
    error = tls_context.refused_cipher(ctx, _Transport(("TLS_AES_256_GCM_SHA384", "TLSv1.3")), "b")
    assert error is not None and "ssl_cipher_suites" in str(error)
    assert "TLS_AES_256_GCM_SHA384" in str(error) and "TLS_AES_128_GCM_SHA256" in str(error)
    tls12_session = _Transport(("ECDHE-ECDSA-AES128-GCM-SHA256", "TLSv1.2"))
    assert tls_context.refused_cipher(ctx, tls12_session, "b") is None
    # Every TLS 1.3 suite Python offers listed: nothing to check.
    every = ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"]
    ctx = ProducerConfig(security_protocol="SSL", ssl_cipher_suites=every).make_ssl_context()
    other = _Transport(("TLS_AES_256_GCM_SHA384", "TLSv1.3"))
    assert tls_context.refused_cipher(ctx, other, "b") is None


class _Transport:
    def __init__(self, cipher: tuple[str, str]) -> None:
        self.cipher = (*cipher, 256)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.cipher if name == "cipher" else default


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"ssl_enabled_protocols": ["TLSv1.1", "TLSv1.2"]}, "'TLSv1.1' is refused"),
        ({"ssl_enabled_protocols": ["SSLv3"]}, "ssl_enabled_protocols: 'SSLv3' is refused"),
        ({"ssl_enabled_protocols": ["TLSv2"]}, "'TLSv2' is not a TLS version"),
        ({"ssl_enabled_protocols": []}, "ssl_enabled_protocols=.* must be a non-empty list"),
        ({"ssl_enabled_protocols": "TLSv1.2"}, "ssl_enabled_protocols='TLSv1.2' must be a seq"),
        ({"ssl_enabled_protocols": [1.2]}, "ssl_enabled_protocols: 1.2 is not a TLS version"),
        ({"ssl_protocol": "TLSv1.1"}, "ssl_protocol: 'TLSv1.1' is refused"),
        ({"ssl_protocol": "SSL"}, "ssl_protocol: 'SSL' is not a TLS version"),
        (
            {"ssl_protocol": "TLSv1.2", "ssl_enabled_protocols": ["TLSv1.3"]},
            "leave no TLS version",
        ),
        (
            {"ssl_enabled_protocols": ["TLSv1.3"], "ssl_cipher_suites": ["AES128-GCM-SHA256"]},
            "leave no TLS version",
        ),
    ],
)
def test_bad_tls_versions_are_typed_errors_naming_the_setting(
    settings: dict[str, Any], says: str
) -> None:
    with pytest.raises(ConfigError, match=says):
        ProducerConfig(security_protocol="SSL", **settings)


@pytest.fixture(scope="module")
def pem(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A CA, and a client certificate chain and its PKCS#8 key encrypted with KEY_PASSWORD."""
    from cryptography.hazmat.primitives import serialization

    ca = trustme.CA()
    client = ca.issue_cert("client.example")
    key = serialization.load_pem_private_key(client.private_key_pem.bytes(), None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(KEY_PASSWORD.encode()),
    )
    return {
        "ca": ca.cert_pem.bytes().decode(),
        "chain": b"".join(p.bytes() for p in client.cert_chain_pems).decode(),
        "key": encrypted.decode(),
    }


def test_pem_text_key_store_and_trust_store_load(pem: dict[str, str]) -> None:
    cfg = ProducerConfig(
        security_protocol="SSL",
        ssl_truststore_certificates=pem["ca"],
        ssl_keystore_certificate_chain=pem["chain"],
        ssl_keystore_key=pem["key"],
        ssl_password=KEY_PASSWORD,
    )
    ctx = cfg.make_ssl_context()
    # Only the CA given is trusted (Java: the PEM trust store replaces the default one).
    assert [c["subject"] for c in ctx.get_ca_certs()] == [
        c["subject"] for c in _context_trusting(pem["ca"]).get_ca_certs()
    ]
    assert len(ctx.get_ca_certs()) == 1
    for name in ("ssl_keystore_key", "ssl_password", "ssl_keystore_certificate_chain"):
        assert name not in repr(cfg)
    assert KEY_PASSWORD not in repr(cfg) and "PRIVATE KEY" not in repr(cfg)


def _context_trusting(cadata: str) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=cadata)


def test_pem_text_never_lands_on_a_disk(pem: dict[str, str], monkeypatch: Any) -> None:
    # memfd: the paths OpenSSL opens are /proc/self/fd/N of anonymous memory files, closed after.
    opened: list[str] = []
    real = ssl.SSLContext.load_cert_chain

    def spy(self: ssl.SSLContext, certfile: Any, keyfile: Any = None, password: Any = None) -> None:
        opened.extend([certfile, keyfile])
        real(self, certfile, keyfile, password)

    monkeypatch.setattr(ssl.SSLContext, "load_cert_chain", spy)
    settings: dict[str, Any] = {
        "security_protocol": "SSL",
        "ssl_keystore_certificate_chain": pem["chain"],
        "ssl_keystore_key": pem["key"],
        "ssl_password": KEY_PASSWORD,
    }
    ProducerConfig(**settings).make_ssl_context()
    assert len(opened) == 2 and all(p.startswith("/proc/self/fd/") for p in opened)
    assert not any(os.path.exists(p) and _is_memfd(p) for p in opened)
    # Without memfd_create (macOS, Windows): a private directory, removed at once.
    opened.clear()
    monkeypatch.delattr(os, "memfd_create")
    ProducerConfig(**settings).make_ssl_context()
    assert len(opened) == 2
    assert not any(Path(p).parent.exists() for p in opened)
    modes = []

    real_unlink = os.unlink

    def check_mode(path: Any) -> None:
        modes.append((os.stat(path).st_mode & 0o777, os.stat(Path(path).parent).st_mode & 0o777))
        real_unlink(path)

    monkeypatch.setattr(os, "unlink", check_mode)
    ProducerConfig(**settings).make_ssl_context()
    assert modes == [(0o600, 0o700), (0o600, 0o700)]


def _is_memfd(path: str) -> bool:
    return "aioproducer-tls" in os.readlink(path)


def test_bad_pem_and_wrong_password_are_typed_and_leak_nothing(
    pem: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    base: dict[str, Any] = {
        "security_protocol": "SSL",
        "ssl_keystore_certificate_chain": pem["chain"],
        "ssl_keystore_key": pem["key"],
    }
    with pytest.raises(ConfigError, match="ssl_keystore_certificate_chain / ssl_keystore_key") as e:
        ProducerConfig(**base, ssl_password="wrong-" + KEY_PASSWORD).make_ssl_context()
    with pytest.raises(ConfigError, match="cannot load the client certificate") as e2:
        ProducerConfig(**base).make_ssl_context()  # encrypted, no password
    other = trustme.CA().issue_cert("x").private_key_pem.bytes().decode()
    with pytest.raises(ConfigError, match="cannot load the client certificate") as e3:
        ProducerConfig(**{**base, "ssl_keystore_key": other}).make_ssl_context()
    with pytest.raises(ConfigError, match="ssl_keystore_key holds no PEM private key") as e4:
        ProducerConfig(**{**base, "ssl_keystore_key": "not a key " + KEY_PASSWORD})
    with pytest.raises(ConfigError, match="ssl_truststore_certificates holds no PEM cert"):
        ProducerConfig(security_protocol="SSL", ssl_truststore_certificates="nope")
    broken = pem["ca"].replace("\n", "\nX", 3)
    with pytest.raises(ConfigError, match="ssl_truststore_certificates: cannot read"):
        ProducerConfig(
            security_protocol="SSL", ssl_truststore_certificates=broken
        ).make_ssl_context()
    for info in (e, e2, e3, e4):
        text = str(info.value)
        assert KEY_PASSWORD not in text and "PRIVATE KEY-----\n" not in text
        assert pem["key"][40:80] not in text and "/proc/self" not in text
    assert KEY_PASSWORD not in caplog.text and pem["key"][40:80] not in caplog.text


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"ssl_cafile": "ca.pem", "ssl_truststore_certificates": "x"}, "either ssl_cafile"),
        ({"ssl_certfile": "c.pem", "ssl_keystore_key": "k"}, "either ssl_certfile"),
        ({"ssl_certfile": "c.pem", "ssl_keystore_certificate_chain": "c"}, "either ssl_certf"),
        ({"ssl_keystore_key": "k"}, "ssl_keystore_certificate_chain and ssl_keystore_key go"),
        ({"ssl_keystore_certificate_chain": "c"}, "go together"),
        ({"ssl_password": "pw"}, "ssl_password .* needs ssl_certfile or ssl_keystore_key"),
        ({"ssl_keyfile": "k.pem"}, "need ssl_certfile"),
        ({"ssl_context": "CTX", "ssl_cipher_suites": ["AES128-SHA"]}, "either ssl_context or"),
        ({"ssl_context": "CTX", "ssl_enabled_protocols": ["TLSv1.3"]}, "ssl_enabled_protocols,"),
        ({"ssl_context": "CTX", "ssl_protocol": "TLSv1.2"}, "either ssl_context or ssl_protocol"),
        ({"ssl_context": "CTX", "ssl_truststore_certificates": "x"}, "ssl_truststore_certif"),
    ],
)
def test_settings_that_exclude_each_other(settings: dict[str, Any], says: str) -> None:
    if settings.get("ssl_context") == "CTX":
        settings = {**settings, "ssl_context": ssl.create_default_context()}
    with pytest.raises(ConfigError, match=says):
        ProducerConfig(security_protocol="SSL", **settings)


def test_from_java_properties_pem_key_store_and_tls_lists(pem: dict[str, str]) -> None:
    c = ProducerConfig.from_properties(
        {
            "security.protocol": "SSL",
            "ssl.keystore.type": "PEM",
            "ssl.keystore.certificate.chain": pem["chain"],
            "ssl.keystore.key": pem["key"],
            "ssl.key.password": KEY_PASSWORD,
            "ssl.truststore.type": "PEM",
            "ssl.truststore.certificates": pem["ca"],
            "ssl.enabled.protocols": "TLSv1.2, TLSv1.3",
            "ssl.protocol": "TLSv1.2",
            "ssl.cipher.suites": "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_AES_128_GCM_SHA256",
            "ssl.endpoint.identification.algorithm": "https",
        }
    )
    assert c.ssl_enabled_protocols == ["TLSv1.2", "TLSv1.3"]
    assert c.ssl_cipher_suites == [
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        "TLS_AES_128_GCM_SHA256",
    ]
    assert c.ssl_check_hostname is True
    ctx = c.make_ssl_context()
    assert (ctx.minimum_version, ctx.maximum_version) == (V12, V12)
    assert ProducerConfig.from_properties({"ssl.cipher.suites": ""}).ssl_cipher_suites is None
    for value in ("", "null"):
        props = {"ssl.endpoint.identification.algorithm": value}
        assert ProducerConfig.from_properties(props).ssl_check_hostname is False


@pytest.mark.parametrize(
    ("props", "says"),
    [
        # A misspelt algorithm must not turn hostname verification off.
        ({"ssl.endpoint.identification.algorithm": "http"}, "ssl.endpoint.identification"),
        ({"ssl.endpoint.identification.algorithm": "htps"}, "'https' or ''"),
        ({"ssl.keystore.type": "JKS"}, "ssl.keystore.type='JKS'.* PEM"),
        ({"ssl.truststore.type": "PKCS12"}, "ssl.truststore.type='PKCS12'.* PEM"),
        (
            {"ssl.keystore.type": "PEM", "ssl.keystore.password": "store-pw"},
            "key store has no store password.* ssl_password",
        ),
        ({"ssl.truststore.password": "changeit"}, "ssl.truststore.password"),
    ],
)
def test_java_tls_properties_that_are_refused(props: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigError, match=says) as info:
        ProducerConfig.from_properties(props)
    assert "store-pw" not in str(info.value) and "changeit" not in str(info.value)
