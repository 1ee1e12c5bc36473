"""Java's TLS settings against real Apache Kafka listeners (issue 16; the session's
``secure_kafka`` node, its SSL and mutual-TLS listeners): the PEM key store and trust store as
text, TLS versions restricted (the negotiated version checked on each connection), cipher
suites by Java's names, and a suite the broker does not take (a typed error); under asyncio and
under trio (the anyio shell's TLS streams). Records read back with confluent-kafka over the
same listener."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from aioproducer import Producer
from aioproducer.errors import SslAuthenticationError
from aioproducer.testing import KafkaCluster, KafkaSecurity, read_topic

MAX_BLOCK_MS = 15000
#: The TLS 1.3 suites Python's ssl offers (all of them, always).
TLS13_SUITES = ("TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256")


def _security(cluster: KafkaCluster) -> KafkaSecurity:
    assert cluster.security is not None
    return cluster.security


async def _produce_and_inspect(
    cfg: dict[str, Any], topic: str, count: int
) -> tuple[list[bytes], set[tuple[str, str]]]:
    """Send ``count`` records; the (TLS version, cipher) of every broker connection."""
    values = [f"tls-{i}".encode() for i in range(count)]
    async with Producer(**cfg, max_block_ms=MAX_BLOCK_MS) as p:
        futures = [await p.send(topic, v) for v in values]
        await p.flush()
        assert all(f.result().topic == topic for f in futures)
        assert p._sender is not None
        sessions = set()
        for conn in p._sender.connections.values():
            ssl_object = conn._transport.get_extra_info("ssl_object")  # type: ignore[union-attr]
            sessions.add((ssl_object.version(), ssl_object.cipher()[0]))
        assert sessions, "no open broker connection to inspect"
    return values, sessions


def _read_back(sec: KafkaSecurity, listener: str, topic: str) -> list[bytes]:
    got = read_topic(
        sec.bootstrap(listener), topic, timeout=30, client_config=sec.librdkafka_config(listener)
    )
    return [r.value for r in got if r.value is not None]


def _pem_text_settings(sec: KafkaSecurity) -> dict[str, Any]:
    """The MTLS listener's settings with the harness's PEM files given as text."""
    return {
        "bootstrap_servers": sec.bootstrap("MTLS"),
        "security_protocol": "SSL",
        "ssl_truststore_certificates": Path(sec.ca_file).read_text(),
        "ssl_keystore_certificate_chain": Path(sec.client_cert_file).read_text(),
        "ssl_keystore_key": Path(sec.client_key_file).read_text(),
        "ssl_password": sec.client_key_password,
    }


@pytest.mark.asyncio
async def test_pem_text_key_store_and_trust_store_over_mutual_tls(
    secure_kafka: KafkaCluster, new_topic: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sec = _security(secure_kafka)
    topic = new_topic(secure_kafka)
    cfg = _pem_text_settings(sec)
    key = cfg["ssl_keystore_key"]
    sent, sessions = await _produce_and_inspect(cfg, topic, 40)
    assert {version for version, _ in sessions} == {"TLSv1.3"}  # Java's default, ssl.protocol
    assert sorted(_read_back(sec, "MTLS", topic)) == sorted(sent)
    body = key.splitlines()[3]
    assert sec.client_key_password not in caplog.text and body not in caplog.text


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("settings", "version"),
    [
        ({"ssl_enabled_protocols": ["TLSv1.2"]}, "TLSv1.2"),
        ({"ssl_enabled_protocols": ["TLSv1.3"]}, "TLSv1.3"),
        ({"ssl_protocol": "TLSv1.2"}, "TLSv1.2"),  # the enabled list's default kept
    ],
)
async def test_restricted_tls_version_is_the_one_negotiated(
    secure_kafka: KafkaCluster,
    new_topic: Callable[..., str],
    settings: dict[str, Any],
    version: str,
) -> None:
    sec = _security(secure_kafka)
    topic = new_topic(secure_kafka)
    cfg = {**sec.producer_config("SSL"), **settings}
    sent, sessions = await _produce_and_inspect(cfg, topic, 20)
    assert {v for v, _ in sessions} == {version}
    assert sorted(_read_back(sec, "SSL", topic)) == sorted(sent)


@pytest.mark.asyncio
async def test_tls_1_2_cipher_suite_by_its_java_name(
    secure_kafka: KafkaCluster, new_topic: Callable[..., str]
) -> None:
    sec = _security(secure_kafka)
    topic = new_topic(secure_kafka)
    # The harness's certificates have ECDSA keys.
    cfg = {
        **sec.producer_config("SSL"),
        "ssl_cipher_suites": ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"],
    }
    sent, sessions = await _produce_and_inspect(cfg, topic, 20)
    # No TLS 1.3 suite listed: TLS 1.2, as a Java client with this list would.
    assert sessions == {("TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256")}
    assert sorted(_read_back(sec, "SSL", topic)) == sorted(sent)


@pytest.mark.asyncio
async def test_a_cipher_suite_the_broker_does_not_allow_is_a_typed_error(
    secure_kafka: KafkaCluster,
) -> None:
    sec = _security(secure_kafka)
    # AES-CCM: OpenSSL has it, Java's TLS (the broker's) does not.
    cfg = {**sec.producer_config("SSL"), "ssl_cipher_suites": ["TLS_ECDHE_ECDSA_WITH_AES_128_CCM"]}
    t0 = time.monotonic()
    with pytest.raises(SslAuthenticationError, match="ssl_cipher_suites") as info:
        async with Producer(**cfg, max_block_ms=MAX_BLOCK_MS):
            pass
    assert time.monotonic() - t0 < 10, "a refused handshake must not wait out max_block_ms"
    assert "HANDSHAKE_FAILURE" in str(info.value)


@pytest.mark.asyncio
async def test_tls_1_3_suites_are_checked_after_the_handshake(
    secure_kafka: KafkaCluster, new_topic: Callable[..., str]
) -> None:
    """Python's ssl offers all of its TLS 1.3 suites; the broker picks one. A list naming
    only another one is refused after the handshake, with a typed error naming the setting."""
    sec = _security(secure_kafka)
    outcomes: dict[str, str] = {}
    for suite in (
        "TLS_AES_256_GCM_SHA384",
        "TLS_AES_128_GCM_SHA256",
        "TLS_CHACHA20_POLY1305_SHA256",
    ):
        cfg = {**sec.producer_config("SSL"), "ssl_cipher_suites": [suite]}
        try:
            _, sessions = await _produce_and_inspect(cfg, new_topic(secure_kafka), 5)
        except SslAuthenticationError as exc:
            assert "ssl_cipher_suites" in str(exc) and suite in str(exc)
            outcomes[suite] = "refused"
        else:
            assert sessions == {("TLSv1.3", suite)}
            outcomes[suite] = "negotiated"
    # The broker's choice is one suite: that list connects, the two others are refused.
    assert sorted(outcomes.values()) == ["negotiated", "refused", "refused"], outcomes


def test_pem_text_tls_1_2_and_tls_1_3_suites_under_trio(
    secure_kafka: KafkaCluster, new_topic: Callable[..., str]
) -> None:
    sec = _security(secure_kafka)
    topic = new_topic(secure_kafka)
    cfg = {**_pem_text_settings(sec), "ssl_enabled_protocols": ["TLSv1.2"]}
    sent, sessions = trio.run(_produce_and_inspect, cfg, topic, 20)
    assert {version for version, _ in sessions} == {"TLSv1.2"}
    assert sorted(_read_back(sec, "MTLS", topic)) == sorted(sent)
    outcomes: dict[str, str] = {}
    for suite in TLS13_SUITES:
        cfg = {**sec.producer_config("SSL"), "ssl_cipher_suites": [suite]}
        try:
            _, sessions = trio.run(_produce_and_inspect, cfg, new_topic(secure_kafka), 5)
        except SslAuthenticationError as exc:
            assert "ssl_cipher_suites" in str(exc) and suite in str(exc)
            outcomes[suite] = "refused"
        else:
            assert sessions == {("TLSv1.3", suite)}
            outcomes[suite] = "negotiated"
    assert sorted(outcomes.values()) == ["negotiated", "refused", "refused"], outcomes
