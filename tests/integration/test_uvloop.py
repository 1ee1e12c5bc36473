"""The producer on uvloop, the event loop uvicorn (FastAPI) uses when it is installed: its
transports are not subclasses of asyncio.Transport, and an isinstance assertion once left
every connection dead there (a 60 s start-up timeout)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import uvloop

from aioproducer import Producer
from aioproducer.testing import KafkaCluster, TansuBroker, read_topic

Broker = KafkaCluster | TansuBroker


@pytest.fixture(params=["kafka", "tansu"])
def broker(request: pytest.FixtureRequest) -> Broker:
    b: Broker = request.getfixturevalue(request.param)
    return b


def test_the_producer_runs_on_uvloop(broker: Broker, new_topic: Callable[..., str]) -> None:
    topic = new_topic(broker, partitions=3)
    sent = [(b"k%d" % (i % 7), b"v%d" % i) for i in range(2_000)]

    async def main() -> list[int]:
        async with Producer(bootstrap_servers=broker.bootstrap_servers, max_block_ms=20_000) as p:
            handles = [await p.send(topic, v, key=k, headers=[("i", v)]) for k, v in sent]
            await p.flush()
            md = await p.send_and_wait(topic, b"last", key=b"k0")
            return [(await h).offset for h in handles] + [md.offset]

    offsets = uvloop.run(main())
    assert len(offsets) == len(sent) + 1 and min(offsets) >= 0
    got = read_topic(broker.bootstrap_servers, topic)
    assert sorted((r.key, r.value, r.headers) for r in got) == sorted(
        [(k, v, (("i", v),)) for k, v in sent] + [(b"k0", b"last", ())]
    )
