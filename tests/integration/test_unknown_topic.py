"""Against Apache Kafka with auto.create.topics.enable=false (the harness's default): a send to
a topic that does not exist logs one WARNING at once naming it and the broker's answer, and
times out after max_block_ms saying the same."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from aioproducer import KafkaTimeoutError, Producer
from aioproducer.testing import KafkaCluster

from ..helpers import wait_until

pytestmark = pytest.mark.asyncio


async def test_a_missing_topic_on_kafka_is_named_at_once(
    kafka: KafkaCluster, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="aioproducer")
    topic = f"missing-{time.monotonic_ns()}"
    async with Producer(bootstrap_servers=kafka.bootstrap_servers, max_block_ms=3000) as p:
        t0 = time.time()
        send = asyncio.ensure_future(p.send(topic, b"v"))
        # At once: logged while send() still waits for the topic (it gives up after 3 s).
        await wait_until(
            lambda: any(topic in r.getMessage() for r in caplog.records),
            f"a warning naming {topic}",
        )
        assert not send.done(), "the warning came only with the timeout"
        with pytest.raises(KafkaTimeoutError, match="UNKNOWN_TOPIC_OR_PARTITION") as info:
            await send
        assert "auto.create.topics.enable" in str(info.value) and topic in str(info.value)
    warnings = [r for r in caplog.records if topic in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert warnings[0].created - t0 < 1.5, "logged in the first half of max_block_ms"
