"""TLS and SASL against real Apache Kafka listeners (issue 15): one node with SSL, mutual TLS,
SASL_PLAINTEXT and SASL_SSL listeners (the ``secure_kafka`` fixture, started once), every
mechanism, the negative cases, and re-authentication (KIP-368) while records flow.

Every positive test reads its records back with confluent-kafka over the same secured
listener, and checks that no secret reached the logs, the reprs or an error.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trustme

from aioproducer import Producer
from aioproducer.errors import AuthenticationError, SaslAuthenticationError, SslAuthenticationError
from aioproducer.testing import (
    KafkaCluster,
    KafkaSecurity,
    StaticTokenProvider,
    TokenEndpoint,
    read_topic,
)

pytestmark = pytest.mark.asyncio
CLIENT_ID, CLIENT_SECRET = "producer-app", "cl1ent-S3cret-value"
#: How long a failed start() may take: well inside max_block_ms (it must not wait it out).
MAX_BLOCK_MS = 15000
SECRETS = [*KafkaSecurity().users.values(), KafkaSecurity().client_key_password, CLIENT_SECRET]


@pytest.fixture(scope="module")
def idp() -> Iterator[TokenEndpoint]:
    with TokenEndpoint({CLIENT_ID: CLIENT_SECRET}) as endpoint:
        yield endpoint


def _security(cluster: KafkaCluster) -> KafkaSecurity:
    assert cluster.security is not None
    return cluster.security


def _secrets(sec: KafkaSecurity) -> list[str]:
    return [*sec.users.values(), sec.client_key_password, CLIENT_SECRET]


async def _produce(cfg: dict[str, Any], topic: str, count: int) -> list[bytes]:
    values = [f"record-{i}".encode() for i in range(count)]
    async with Producer(**cfg, max_block_ms=MAX_BLOCK_MS) as p:
        futures = [await p.send(topic, v, key=str(i % 3).encode()) for i, v in enumerate(values)]
        await p.flush()
        assert all(f.result().topic == topic for f in futures)
        assert not any(s in repr(p) or s in repr(p.config) for s in SECRETS)
    return values


CASES = [
    ("SSL", None),
    ("MTLS", None),
    ("SASL_SSL", "PLAIN"),
    ("SASL_SSL", "SCRAM-SHA-256"),
    ("SASL_SSL", "SCRAM-SHA-512"),
    ("SASL_PLAINTEXT", "SCRAM-SHA-512"),
    ("SASL_SSL", "OAUTHBEARER"),
]


@pytest.mark.parametrize(("listener", "mechanism"), CASES)
async def test_each_listener_and_mechanism_delivers_and_reads_back(
    secure_kafka: KafkaCluster,
    new_topic: Callable[..., str],
    caplog: pytest.LogCaptureFixture,
    listener: str,
    mechanism: str | None,
) -> None:
    caplog.set_level(logging.DEBUG)
    sec = _security(secure_kafka)
    topic = new_topic(secure_kafka, partitions=2)
    provider = StaticTokenProvider("alice")
    cfg = sec.producer_config(listener, mechanism, token_provider=provider)
    sent = await _produce(cfg, topic, 60)
    got = read_topic(
        sec.bootstrap(listener), topic, timeout=30, client_config=sec.librdkafka_config(listener)
    )
    assert sorted(r.value for r in got if r.value is not None) == sorted(sent)
    assert len(got) == len(sent)
    if mechanism == "OAUTHBEARER":
        assert provider.calls >= 1  # one token per connection
    assert not any(s in caplog.text for s in _secrets(sec))


async def test_oauthbearer_client_credentials_against_a_token_endpoint(
    secure_kafka: KafkaCluster,
    new_topic: Callable[..., str],
    idp: TokenEndpoint,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    sec = _security(secure_kafka)
    topic = new_topic(secure_kafka)
    cfg = sec.producer_config("SASL_SSL", "OAUTHBEARER")
    del cfg["sasl_oauth_token_provider"]
    cfg.update(
        sasl_oauthbearer_token_endpoint_url=idp.url,
        sasl_oauthbearer_client_credentials_client_id=CLIENT_ID,
        sasl_oauthbearer_client_credentials_client_secret=CLIENT_SECRET,
        sasl_oauthbearer_scope="kafka.produce",
    )
    before = len(idp.requests)
    sent = await _produce(cfg, topic, 30)
    grants = idp.requests[before:]
    # Every connection (bootstrap, then the node) took the one cached token.
    assert grants == [(CLIENT_ID, "kafka.produce", 200)]
    got = read_topic(
        sec.bootstrap("SASL_SSL"),
        topic,
        timeout=30,
        client_config=sec.librdkafka_config("SASL_SSL", "OAUTHBEARER"),
    )
    assert sorted(r.value for r in got if r.value is not None) == sorted(sent)
    assert CLIENT_SECRET not in caplog.text


def _bad_configs(sec: KafkaSecurity, idp_url: str) -> list[tuple[str, dict[str, Any], str]]:
    """(case, settings, what the error must say) for every way to be refused."""
    stranger = trustme.CA()
    stranger_ca = f"{sec.ca_file}.stranger"
    stranger.cert_pem.write_to_path(stranger_ca)
    scram = sec.producer_config("SASL_SSL", "SCRAM-SHA-512")
    port = sec.ports["SSL"]
    return [
        (
            "wrong SCRAM password",
            {**scram, "sasl_plain_password": "not-the-Password1"},
            "SCRAM-SHA-512",
        ),
        (
            "unknown SCRAM user",
            {**scram, "sasl_plain_username": "mallory"},
            "SCRAM-SHA-512",
        ),
        (
            "wrong PLAIN password",
            {
                **sec.producer_config("SASL_SSL", "PLAIN"),
                "sasl_plain_password": "not-the-Password1",
            },
            "PLAIN",
        ),
        (
            "mechanism not enabled on the listener",
            sec.producer_config("SASL_PLAINTEXT", "OAUTHBEARER"),
            "OAUTHBEARER",
        ),
        (
            "expired token",
            sec.producer_config(
                "SASL_SSL", "OAUTHBEARER", token_provider=StaticTokenProvider("alice", -60)
            ),
            "OAUTHBEARER",
        ),
        (
            "client secret refused by the token endpoint",
            {
                **{
                    k: v
                    for k, v in sec.producer_config("SASL_SSL", "OAUTHBEARER").items()
                    if k != "sasl_oauth_token_provider"
                },
                "sasl_oauthbearer_token_endpoint_url": idp_url,
                "sasl_oauthbearer_client_credentials_client_id": CLIENT_ID,
                "sasl_oauthbearer_client_credentials_client_secret": "wrong-" + CLIENT_SECRET,
            },
            "OAUTHBEARER",
        ),
        (
            "untrusted CA",
            {**sec.producer_config("SSL"), "ssl_cafile": stranger_ca},
            "issuer certificate",
        ),
        (
            "hostname mismatch",
            {**sec.producer_config("SSL"), "bootstrap_servers": f"localhost:{port}"},
            "localhost",
        ),
        (
            "mutual TLS without a client certificate",
            {
                **sec.producer_config("MTLS"),
                "ssl_certfile": None,
                "ssl_keyfile": None,
                "ssl_password": None,
            },
            "certificate",
        ),
    ]


async def test_refusals_are_typed_prompt_and_leak_no_secret(
    secure_kafka: KafkaCluster, idp: TokenEndpoint, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sec = _security(secure_kafka)
    failures = []
    for case, cfg, says in _bad_configs(sec, idp.url):
        t0 = time.monotonic()
        try:
            async with Producer(**cfg, max_block_ms=MAX_BLOCK_MS):
                pass
        except AuthenticationError as exc:
            elapsed = time.monotonic() - t0
            text = "".join(traceback.format_exception(exc))
            expected = (
                SslAuthenticationError
                if "SASL" not in cfg["security_protocol"]
                else (SaslAuthenticationError)
            )
            if not isinstance(exc, expected) or says not in str(exc) or elapsed > 10:
                failures.append(f"{case}: {type(exc).__name__} after {elapsed:.1f}s: {exc}")
            leaked = [s for s in [*_secrets(sec), "not-the-Password1"] if s in text]
            if leaked:
                failures.append(f"{case}: a secret in the error or traceback: {text}")
        except Exception as exc:
            failures.append(f"{case}: {type(exc).__name__}: {exc}")
        else:
            failures.append(f"{case}: start() succeeded")
    assert not failures, "\n".join(failures)
    assert not any(s in caplog.text for s in [*_secrets(sec), "not-the-Password1"])


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "OAUTHBEARER"])
async def test_reauthentication_under_load_loses_and_fails_nothing(
    secure_kafka: KafkaCluster,
    new_topic: Callable[..., str],
    caplog: pytest.LogCaptureFixture,
    mechanism: str,
) -> None:
    """The REAUTH listener's sessions last 2.5 s: while records flow for ~6 s, every
    connection re-authenticates at least twice, on the same connection (none closed), and
    every record is delivered once, in order. OAUTHBEARER takes its tokens from the token
    endpoint, 6 s tokens: the provider fetches a new one at 80 % of the old one's lifetime, and
    each re-authentication presents a valid one."""
    caplog.set_level(logging.DEBUG, logger="aioproducer")
    sec = _security(secure_kafka)
    topic = new_topic(secure_kafka)
    cfg = sec.producer_config("REAUTH", mechanism)
    idp = TokenEndpoint({CLIENT_ID: CLIENT_SECRET}, lifetime_s=6).start()
    if mechanism == "OAUTHBEARER":
        del cfg["sasl_oauth_token_provider"]
        cfg.update(
            sasl_oauthbearer_token_endpoint_url=idp.url,
            sasl_oauthbearer_client_credentials_client_id=CLIENT_ID,
            sasl_oauthbearer_client_credentials_client_secret=CLIENT_SECRET,
        )
    futures = []
    deadline = time.monotonic() + 6.0
    try:
        async with Producer(**cfg, linger_ms=2, max_block_ms=MAX_BLOCK_MS) as p:
            i = 0
            while time.monotonic() < deadline and i < 200_000:
                futures.append(await p.send(topic, f"r{i}".encode()))
                i += 1
                if i % 200 == 0:
                    await asyncio.sleep(0.01)  # a steady flow, requests always in flight
            await p.flush()
    finally:
        idp.close()
    if mechanism == "OAUTHBEARER":
        assert len(idp.requests) >= 2 and all(r[2] == 200 for r in idp.requests)
    failed = [f.exception() for f in futures if f.exception() is not None]
    assert not failed, failed[:3]
    messages = [r.getMessage() for r in caplog.records]
    reauths = [m for m in messages if m.startswith("re-authenticated with broker")]
    assert len(reauths) >= 2, messages[-20:]
    assert not [m for m in messages if "closed" in m and "connection to broker" in m]
    got = read_topic(
        sec.bootstrap("REAUTH"), topic, timeout=60, client_config=sec.librdkafka_config("REAUTH")
    )
    assert [r.value for r in got] == [f"r{n}".encode() for n in range(len(futures))]
