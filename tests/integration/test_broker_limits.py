"""A record Kafka refuses as larger than the topic's max.message.bytes fails its future with a
RecordTooLargeError that names the broker's limit (not the client's max_request_size)."""

from __future__ import annotations

import time

import pytest

from aioproducer import BrokerResponseError, Producer, RecordTooLargeError
from aioproducer.testing import KafkaCluster

pytestmark = pytest.mark.asyncio


async def test_a_record_over_the_topics_max_message_bytes(kafka: KafkaCluster) -> None:
    topic = f"small-messages-{time.monotonic_ns()}"
    kafka.create_topic(topic, config={"max.message.bytes": "2000"})
    async with Producer(bootstrap_servers=kafka.bootstrap_servers, linger_ms=0) as p:
        fut = await p.send(topic, b"x" * 10_000)  # within max_request_size (1 MiB)
        with pytest.raises(RecordTooLargeError) as info:
            await fut
        exc = info.value
        assert isinstance(exc, BrokerResponseError) and exc.code == 10
        text = str(exc)
        assert text.count("MESSAGE_TOO_LARGE") == 1 and f"{topic}-0" in text
        assert "message.max.bytes" in text and "max.message.bytes" in text
        assert (await p.send_and_wait(topic, b"small")).offset >= 0
