"""A topic the cluster does not have and does not create (auto.create.topics.enable=false):
``send()`` says so at once in one WARNING per topic, and its ``max_block_ms`` timeout names
the broker's answer."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from aioproducer import KafkaTimeoutError, Producer
from aioproducer._protocol.framing import decode_request
from aioproducer._protocol.messages import MetadataRequest, MetadataResponse
from tests.faults.fake_broker import FakeBroker, _frame

pytestmark = pytest.mark.asyncio


class NoAutoCreateBroker(FakeBroker):
    """The fake broker, where a topic named ``missing*`` does not exist and is not created:
    Metadata answers UNKNOWN_TOPIC_OR_PARTITION (3) for it, as Kafka does with auto-create
    off."""

    async def _answer(self, frame: bytes, writer: asyncio.StreamWriter) -> bool:
        header, request = decode_request(frame)
        if not isinstance(request, MetadataRequest):
            return await super()._answer(frame, writer)
        version, cid = header.api_version, header.correlation_id
        flexible = request.is_flexible(version)
        T = MetadataResponse.MetadataResponseTopic
        P = T.MetadataResponsePartition
        topics = [
            T(name=t.name, error_code=3)
            if (t.name or "").startswith("missing")
            else T(
                name=t.name,
                partitions=[P(partition_index=0, leader_id=1, replica_nodes=[1], isr_nodes=[1])],
            )
            for t in request.topics or []
        ]
        body = MetadataResponse(
            brokers=[
                MetadataResponse.MetadataResponseBroker(node_id=1, host="127.0.0.1", port=self.port)
            ],
            topics=topics,
        ).encode(version)
        writer.write(_frame(cid, body, flexible))
        return True


@pytest_asyncio.fixture
async def broker() -> AsyncIterator[NoAutoCreateBroker]:
    b = await NoAutoCreateBroker().start()
    yield b
    await b.close()


async def test_an_unknown_topic_is_named_in_a_warning_at_once_and_in_the_timeout(
    broker: NoAutoCreateBroker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="aioproducer")
    async with Producer(bootstrap_servers=broker.bootstrap_servers, max_block_ms=1500) as p:
        t0 = time.time()
        for _ in range(2):  # the second send to the same topic does not warn again
            with pytest.raises(KafkaTimeoutError) as info:
                await p.send("missing-topic", b"v")
        assert time.time() - t0 >= 2 * 1.5
        text = str(info.value)
        assert "'missing-topic'" in text and "max_block_ms" in text
        assert "UNKNOWN_TOPIC_OR_PARTITION" in text and "auto.create.topics.enable" in text
        warnings = [r for r in caplog.records if "missing-topic" in r.getMessage()]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]
        w = warnings[0]
        assert w.levelno == logging.WARNING and w.created - t0 < 0.5
        assert "UNKNOWN_TOPIC_OR_PARTITION" in w.getMessage()
        assert "auto.create.topics.enable" in w.getMessage()
        # Another missing topic has its own warning; an existing one none, and it works.
        with pytest.raises(KafkaTimeoutError):
            await p.send("missing-other", b"v")
        assert (await p.send_and_wait("present", b"v")).topic == "present"
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert sum("missing-other" in m for m in messages) == 1
    assert not any("present" in m for m in messages)
