"""Security under trio against real Apache Kafka listeners (the ``secure_kafka`` fixture of
``test_security_kafka.py``): the anyio-based shell's TLS streams, SASL exchanges, OAUTHBEARER
token fetches (anyio worker thread, anyio lock) and KIP-368 re-authentication (its timer and
task on the AnyioLoop). Records read back with confluent-kafka over the same listener."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
import trio

from aioproducer import Producer, RecordFuture
from aioproducer.testing import KafkaCluster, KafkaSecurity, TokenEndpoint, read_topic

CLIENT_ID, CLIENT_SECRET = "producer-app", "cl1ent-S3cret-value"


def _security(cluster: KafkaCluster) -> KafkaSecurity:
    assert cluster.security is not None
    return cluster.security


@pytest.mark.parametrize(
    ("listener", "mechanism"),
    [("MTLS", None), ("SASL_SSL", "SCRAM-SHA-512"), ("REAUTH", "OAUTHBEARER")],
)
def test_secured_listeners_under_trio(
    secure_kafka: KafkaCluster,
    new_topic: Callable[..., str],
    caplog: pytest.LogCaptureFixture,
    listener: str,
    mechanism: str | None,
) -> None:
    """On REAUTH, sessions last 2.5 s and tokens 6 s: records flow for ~6 s, so every
    connection re-authenticates (with tokens fetched from the endpoint) while they do."""
    caplog.set_level(logging.DEBUG, logger="aioproducer")
    sec = _security(secure_kafka)
    topic = new_topic(secure_kafka)
    cfg: dict[str, Any] = sec.producer_config(listener, mechanism)
    idp = TokenEndpoint({CLIENT_ID: CLIENT_SECRET}, lifetime_s=6).start()
    if mechanism == "OAUTHBEARER":
        del cfg["sasl_oauth_token_provider"]
        cfg.update(
            sasl_oauthbearer_token_endpoint_url=idp.url,
            sasl_oauthbearer_client_credentials_client_id=CLIENT_ID,
            sasl_oauthbearer_client_credentials_client_secret=CLIENT_SECRET,
        )
    seconds = 6.0 if listener == "REAUTH" else 0.5

    async def main() -> list[RecordFuture]:
        futures = []
        deadline = time.monotonic() + seconds
        async with Producer(**cfg, linger_ms=2, max_block_ms=15_000) as p:
            i = 0
            while time.monotonic() < deadline and i < 200_000:
                futures.append(await p.send(topic, b"r%d" % i))
                i += 1
                if i % 200 == 0:
                    await trio.sleep(0.01)  # a steady flow, requests always in flight
            await p.flush()
        return futures

    try:
        futures = trio.run(main)
    finally:
        idp.close()
    failed = [f.exception() for f in futures if f.exception() is not None]
    assert not failed, failed[:3]
    if listener == "REAUTH":
        assert len(idp.requests) >= 2 and all(r[2] == 200 for r in idp.requests)
        messages = [r.getMessage() for r in caplog.records]
        reauths = [m for m in messages if m.startswith("re-authenticated with broker")]
        assert len(reauths) >= 2, messages[-20:]
        assert not [m for m in messages if "closed" in m and "connection to broker" in m]
    got = read_topic(
        sec.bootstrap(listener),
        topic,
        timeout=60,
        client_config=sec.librdkafka_config(listener, mechanism),
    )
    assert [r.value for r in got] == [b"r%d" % n for n in range(len(futures))]
