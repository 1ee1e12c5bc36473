"""SASL/GSSAPI (Kerberos) against a real MIT KDC and a real Kafka GSSAPI listener.

The KDC (Debian's krb5-kdc) runs on 127.0.0.1 with its own realm in a temporary directory; the
broker's listener logs in with the ``kafka/localhost`` keytab (JAAS ``Krb5LoginModule``). The
producer authenticates with a ticket cache filled by ``kinit`` or with a client keytab, and
kcat (librdkafka with Cyrus SASL GSSAPI, which confluent-kafka's wheels lack) reads the records
back as another Kerberos principal's client. The ticket-cache refresher (Java's
``KerberosLogin`` thread: ``kinit -R``) is checked with short-lived renewable tickets.
"""

from __future__ import annotations

import logging
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from aioproducer import Producer, ProducerConfig
from aioproducer._core.gssapi import Ticket
from aioproducer._io.gssapi import read_tgt
from aioproducer.errors import SaslAuthenticationError
from aioproducer.testing import KafkaCluster, KafkaSecurity, KerberosKdc, read_topic_kcat
from aioproducer.testing.kerberos import REALM
from tests.helpers import wait_until

pytestmark = pytest.mark.kafka
MAX_BLOCK_MS = 15000


@pytest.fixture(scope="module")
def kdc() -> Iterator[KerberosKdc]:
    with KerberosKdc(clients=("alice", "reader")) as k:
        yield k


@pytest.fixture(scope="module")
def kerberized_kafka(kdc: KerberosKdc) -> Iterator[KafkaCluster]:
    with KafkaCluster(1, security=KafkaSecurity(kerberos=kdc)) as cluster:
        yield cluster


@pytest.fixture
def krb_env(kdc: KerberosKdc, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """This process's Kerberos library pointed at the test realm, with an empty FILE cache
    (returned) of its own."""
    ccache = tmp_path / "krb5cc"
    for name, value in kdc.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{ccache}")
    monkeypatch.delenv("KRB5_CLIENT_KTNAME", raising=False)
    return ccache


def _cfg(cluster: KafkaCluster, **extra: Any) -> dict[str, Any]:
    assert cluster.security is not None
    return {
        "bootstrap_servers": cluster.security.bootstrap("GSSAPI"),
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "GSSAPI",
        "max_block_ms": MAX_BLOCK_MS,
        **extra,
    }


async def _produce(cfg: dict[str, Any], topic: str, count: int, tag: str = "r") -> list[bytes]:
    values = [f"{tag}-{i}".encode() for i in range(count)]
    async with Producer(**cfg) as p:
        futures = [await p.send(topic, v, key=str(i % 3).encode()) for i, v in enumerate(values)]
        await p.flush()
        assert all(f.result().topic == topic for f in futures)
    return values


def _read_back(cluster: KafkaCluster, kdc: KerberosKdc, topic: str, tmp_path: Path) -> list[bytes]:
    """The topic's values as kcat reads them over the GSSAPI listener, as principal reader."""
    assert cluster.security is not None
    keytab = kdc.keytab("reader")
    got = read_topic_kcat(
        cluster.security.bootstrap("GSSAPI"),
        topic,
        timeout=60,
        config={
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": "GSSAPI",
            "sasl.kerberos.service.name": "kafka",
            "sasl.kerberos.principal": f"reader@{REALM}",
            "sasl.kerberos.keytab": str(keytab),
        },
        env={**kdc.env, "KRB5CCNAME": f"FILE:{tmp_path / 'reader-cc'}"},
    )
    return [r.value for r in got if r.value is not None]


@pytest.mark.asyncio
async def test_ticket_cache_from_kinit_delivers_and_kcat_reads_back(
    kerberized_kafka: KafkaCluster,
    kdc: KerberosKdc,
    krb_env: Path,
    new_topic: Callable[..., str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="aioproducer")
    kdc.kinit("alice", krb_env)
    topic = new_topic(kerberized_kafka, partitions=2)
    sent = await _produce(_cfg(kerberized_kafka), topic, 60)
    assert sorted(_read_back(kerberized_kafka, kdc, topic, tmp_path)) == sorted(sent)
    # The library put the broker's service ticket beside the TGT in the cache it used.
    assert read_tgt(str(krb_env)) is not None
    # Kerberos sends no secret in clear (unlike PLAIN or OAUTHBEARER): no warning over
    # SASL_PLAINTEXT, as Java gives none.
    assert "in clear" not in caplog.text
    cache = krb_env.read_bytes()  # noqa: ASYNC240 (a small local file)
    assert b"kafka" in cache and b"localhost" in cache


@pytest.mark.asyncio
async def test_client_keytab_without_kinit_delivers(
    kerberized_kafka: KafkaCluster,
    kdc: KerberosKdc,
    krb_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    new_topic: Callable[..., str],
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("KRB5_CLIENT_KTNAME", str(kdc.keytab("alice")))
    assert not krb_env.exists()  # noqa: ASYNC240
    topic = new_topic(kerberized_kafka)
    sent = await _produce(_cfg(kerberized_kafka), topic, 20, tag="kt")
    assert sorted(_read_back(kerberized_kafka, kdc, topic, tmp_path)) == sorted(sent)


@pytest.mark.asyncio
async def test_java_properties_with_a_krb5_keytab_login_deliver_without_a_ticket_cache(
    kerberized_kafka: KafkaCluster,
    kdc: KerberosKdc,
    krb_env: Path,
    new_topic: Callable[..., str],
    tmp_path: Path,
) -> None:
    # A Java client's properties, Krb5LoginModule with useKeyTab: the producer logs in from the
    # keytab into a memory cache of its own; the ticket cache is neither read nor renewed.
    assert kerberized_kafka.security is not None
    script, calls = _kinit_wrapper(tmp_path)
    cfg = ProducerConfig.from_properties(
        {
            "bootstrap.servers": kerberized_kafka.security.bootstrap("GSSAPI"),
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "GSSAPI",
            "sasl.kerberos.service.name": "kafka",
            "sasl.kerberos.kinit.cmd": str(script),
            "sasl.kerberos.min.time.before.relogin": "0",
            "max.block.ms": str(MAX_BLOCK_MS),
            "sasl.jaas.config": "com.sun.security.auth.module.Krb5LoginModule required "
            f'useKeyTab=true storeKey=true keyTab="{kdc.keytab("alice")}" '
            f'principal="alice@{REALM}";',
        }
    )
    topic = new_topic(kerberized_kafka)
    sent = await _produce({"config": cfg}, topic, 20, tag="jaas")
    assert not krb_env.exists()  # noqa: ASYNC240
    assert not calls.exists()
    assert sorted(_read_back(kerberized_kafka, kdc, topic, tmp_path)) == sorted(sent)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("case", "extra", "message"),
    [
        ("no ticket", {}, r"SASL/GSSAPI \(service kafka@127\.0\.0\.1\).*credential"),
        (
            "unknown service principal",
            {"sasl_kerberos_service_name": "not-kafka"},
            r"SASL/GSSAPI \(service not-kafka@127\.0\.0\.1\).*not found in Kerberos database",
        ),
        (
            "service host the broker is not",
            {"sasl_kerberos_domain_name": "broker.invalid"},
            r"service kafka@broker\.invalid",
        ),
    ],
)
async def test_refusals_raise_sasl_authentication_error_at_once(
    kerberized_kafka: KafkaCluster,
    kdc: KerberosKdc,
    krb_env: Path,
    case: str,
    extra: dict[str, Any],
    message: str,
) -> None:
    if case != "no ticket":
        kdc.kinit("alice", krb_env)
    t0 = time.monotonic()
    with pytest.raises(SaslAuthenticationError, match=message):
        async with Producer(**_cfg(kerberized_kafka, **extra)):
            pass
    assert time.monotonic() - t0 < MAX_BLOCK_MS / 1000 / 2


def _kinit_wrapper(tmp_path: Path) -> tuple[Path, Path]:
    """A kinit that records each call's arguments, then runs the real one."""
    calls = tmp_path / "kinit-calls"
    script = tmp_path / "kinit-wrapper"
    script.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexec kinit "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script, calls


@pytest.mark.asyncio
async def test_ticket_cache_tgt_is_renewed_with_kinit_cmd_before_it_expires(
    kerberized_kafka: KafkaCluster,
    kdc: KerberosKdc,
    krb_env: Path,
    new_topic: Callable[..., str],
    tmp_path: Path,
) -> None:
    # A 16 s renewable TGT: at 50 % of its life (no jitter; the 1 s minimum does not bind),
    # the refresher runs "kinit -R" through the configured command; a new connection after the
    # first TGT's expiry authenticates with the renewed one.
    kdc.kinit("alice", krb_env, lifetime="16s", renew="10m")
    first = read_tgt(str(krb_env))
    assert first is not None and first.end - first.start <= 16
    script, calls = _kinit_wrapper(tmp_path)
    cfg = _cfg(
        kerberized_kafka,
        sasl_kerberos_kinit_cmd=str(script),
        sasl_kerberos_ticket_renew_window_factor=0.5,
        sasl_kerberos_ticket_renew_jitter=0.0,
        sasl_kerberos_min_time_before_relogin=1000,
    )
    topic = new_topic(kerberized_kafka)
    sent: list[bytes] = []
    async with Producer(**cfg) as p:
        await (await p.send(topic, b"before"))
        sent.append(b"before")

        def renewed_past(end: int) -> Ticket | None:
            tgt = read_tgt(str(krb_env))
            return tgt if tgt is not None and tgt.end > end else None

        renewed = await wait_until(
            lambda: renewed_past(first.end), "a renewed TGT", timeout=first.end - time.time() + 5
        )
        assert calls.read_text().split() == ["-R"]
        # The next renewal follows at half the renewed ticket's life.
        await wait_until(lambda: renewed_past(renewed.end), "a second renewal", timeout=20)
        assert calls.read_text().split() == ["-R", "-R"]
        # Past the first TGT's expiry, only a renewed one can authenticate a new connection.
        await wait_until(lambda: time.time() > first.end + 1, "the first TGT's expiry", timeout=20)
    sent += await _produce(cfg, topic, 10, tag="after")
    assert sorted(_read_back(kerberized_kafka, kdc, topic, tmp_path)) == sorted(sent)


@pytest.mark.asyncio
async def test_unrenewable_tgt_stops_the_refresher_as_java_does(
    kerberized_kafka: KafkaCluster,
    kdc: KerberosKdc,
    krb_env: Path,
    new_topic: Callable[..., str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="aioproducer")
    kdc.kinit("alice", krb_env, lifetime="1h", renew=None)
    tgt = read_tgt(str(krb_env))
    assert tgt is not None and tgt.renew_till < tgt.end
    script, calls = _kinit_wrapper(tmp_path)
    topic = new_topic(kerberized_kafka)
    cfg = _cfg(kerberized_kafka, sasl_kerberos_kinit_cmd=str(script))
    sent = await _produce(cfg, topic, 5)
    assert "the TGT refresher stops: the TGT cannot be renewed beyond its expiry" in caplog.text
    assert not calls.exists()
    assert sorted(_read_back(kerberized_kafka, kdc, topic, tmp_path)) == sorted(sent)


def test_gssapi_and_tgt_renewal_under_trio(
    kerberized_kafka: KafkaCluster,
    kdc: KerberosKdc,
    krb_env: Path,
    new_topic: Callable[..., str],
    tmp_path: Path,
) -> None:
    """Under trio the KDC round trip runs in an anyio worker thread and the refresher's timer
    and kinit task live on the AnyioLoop: a 6 s TGT is renewed while the producer runs."""
    import trio

    kdc.kinit("alice", krb_env, lifetime="6s", renew="10m")
    first = read_tgt(str(krb_env))
    assert first is not None
    script, calls = _kinit_wrapper(tmp_path)
    cfg = _cfg(
        kerberized_kafka,
        sasl_kerberos_kinit_cmd=str(script),
        sasl_kerberos_ticket_renew_window_factor=0.5,
        sasl_kerberos_ticket_renew_jitter=0.0,
        sasl_kerberos_min_time_before_relogin=500,
    )
    topic = new_topic(kerberized_kafka)

    async def main() -> list[bytes]:
        values = [b"trio-%d" % i for i in range(20)]
        async with Producer(**cfg) as p:
            for v in values:
                await p.send(topic, v)
            await p.flush()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                renewed = read_tgt(str(krb_env))
                if renewed is not None and renewed.end > first.end:
                    break
                await trio.sleep(0.05)
        return values

    sent = trio.run(main)
    renewed = read_tgt(str(krb_env))
    assert renewed is not None and renewed.end > first.end, "the TGT was not renewed under trio"
    assert calls.read_text().split()[0] == "-R"
    assert sorted(_read_back(kerberized_kafka, kdc, topic, tmp_path)) == sorted(sent)
