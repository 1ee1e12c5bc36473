"""KIP-714 client metrics against a real Kafka broker: the broker loads the harness's
telemetry sink (a ``ClientTelemetryExporterProvider`` plugin that decodes each push with
Kafka's own OTLP classes and writes it to a file), a client-metrics subscription asks for
the producer's metrics every 500 ms, and the test reads what the broker received."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from aioproducer import Producer
from aioproducer.metrics import value_of
from aioproducer.testing import KafkaCluster
from aioproducer.testing.telemetry_sink import (
    Push,
    broker_config,
    compile_sink,
    read_pushes,
    subscribe,
)
from tests.helpers import wait_until

pytestmark = [pytest.mark.kafka]
PREFIX = "org.apache.kafka.producer."


@pytest.fixture(scope="module")
def telemetry_kafka(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[KafkaCluster, Path]]:
    sink = tmp_path_factory.mktemp("telemetry") / "pushes.tsv"
    with KafkaCluster(1, classpath=[compile_sink()], extra_config=broker_config(sink)) as kafka:
        kafka.create_topic("telemetry", partitions=2)
        subscribe(kafka.bootstrap_servers, "aioproducer-tests", [PREFIX], interval_ms=500)
        yield kafka, sink


def pushes_of(sink: Path, client: str) -> list[Push]:
    return [p for p in read_pushes(sink) if p.client_id == client]


@pytest.mark.asyncio
async def test_the_broker_receives_our_metrics_with_kip_714_names_and_values(
    telemetry_kafka: tuple[KafkaCluster, Path],
) -> None:
    kafka, sink = telemetry_kafka
    async with Producer(
        bootstrap_servers=kafka.bootstrap_servers,
        client_id="telemetry-on",
        compression_type="lz4",
        linger_ms=0,
    ) as p:
        for i in range(40):
            await p.send("telemetry", b"value-%d" % i, partition=i % 2)
        await p.flush()
        # Two pushes after the records were acknowledged: the counters are final in them.
        seen = len(pushes_of(sink, "telemetry-on"))
        await wait_until(
            lambda: len(pushes_of(sink, "telemetry-on")) >= seen + 2, "two pushes", timeout=30
        )
        m = p.metrics()
        assert p._sender is not None and p._sender.telemetry is not None
        instance_id = p._sender.telemetry.state.client_instance_id
    assert instance_id.int != 0
    # Kafka prints a Uuid in URL-safe base64, unpadded.
    instance = base64.urlsafe_b64encode(instance_id.bytes).rstrip(b"=").decode()
    pushes = pushes_of(sink, "telemetry-on")
    assert pushes[-1].terminating and not any(x.terminating for x in pushes[:-1])
    assert {x.instance_id for x in pushes} == {instance}
    last = pushes[-2]
    names = {pt[0] for pt in last.points}
    assert names and all(n.startswith(PREFIX) for n in names)
    # Java's names, KIP-714's form; every metric of ours that the prefix selects is there.
    expected = {
        f"org.apache.kafka.{k.group.replace('-metrics', '').replace('-', '.')}."
        + k.name.replace("-", ".")
        for k in m
        if k.group.startswith("producer-")
    }
    assert names == expected

    # Kafka's brokers ask for delta temporality: each push has the increase since the one
    # before, so the pushes add up to the producer's totals.
    def pushed(name: str, **tags: str) -> float:
        return sum(x.value(PREFIX + name, **tags) for x in pushes)

    assert pushed("record.send.total") == 40 == value_of(m, "record-send-total")
    assert pushed("topic.record.send.total", topic="telemetry") == 40
    assert pushed("topic.byte.total", topic="telemetry") == value_of(
        m, "byte-total", "producer-topic-metrics", topic="telemetry"
    )
    assert pushes[-1].value(PREFIX + "record.send.total") == 0  # nothing since the last
    starts = [pt[4] for x in pushes for pt in x.points if pt[0] == PREFIX + "record.send.total"]
    assert starts == sorted(set(starts)) and len(starts) == len(pushes)  # back to back
    kinds = {pt[0]: (pt[1], pt[3]) for pt in last.points}
    assert kinds[PREFIX + "record.send.total"] == (
        "sum",
        "AGGREGATION_TEMPORALITY_DELTA:monotonic",
    )
    assert kinds[PREFIX + "record.send.rate"] == ("gauge", "-")
    # Gauges: what metrics() said when the push was made.
    assert last.value(PREFIX + "buffer.total.bytes") == 33554432
    assert last.value(PREFIX + "batch.size.max") == value_of(m, "batch-size-max") > 0
    assert last.value(PREFIX + "record.send.rate") > 0
    node = [pt for pt in last.points if pt[0] == PREFIX + "node.request.total"]
    assert node and all(set(pt[5]) == {"node_id"} for pt in node)


@pytest.mark.asyncio
async def test_enable_metrics_push_false_sends_nothing(
    telemetry_kafka: tuple[KafkaCluster, Path],
) -> None:
    kafka, sink = telemetry_kafka
    async with Producer(
        bootstrap_servers=kafka.bootstrap_servers,
        client_id="telemetry-off",
        enable_metrics_push=False,
    ) as off:
        await off.send_and_wait("telemetry", b"quiet")
        # A pushing producer started after it gets its subscription and pushes three times
        # (at 0.25-0.75 s, then every 0.5 s) while this one is open: it would have pushed.
        async with Producer(
            bootstrap_servers=kafka.bootstrap_servers, client_id="telemetry-witness"
        ) as witness:
            await witness.send_and_wait("telemetry", b"loud")
            await wait_until(
                lambda: len(pushes_of(sink, "telemetry-witness")) >= 3, "3 pushes", timeout=30
            )
        assert off._sender is not None and off._sender.telemetry is None
    assert pushes_of(sink, "telemetry-witness")[-1].terminating
    assert pushes_of(sink, "telemetry-off") == []


@pytest.mark.parametrize("backend", ["trio"])
def test_pushes_under_trio(backend: str, telemetry_kafka: tuple[KafkaCluster, Path]) -> None:
    """Under trio the timer and the requests run on the anyio-based shell loop."""
    kafka, sink = telemetry_kafka

    async def main() -> None:
        async with Producer(bootstrap_servers=kafka.bootstrap_servers, client_id="tele-trio") as p:
            for i in range(7):
                await p.send("telemetry", b"%d" % i)
            await p.flush()
            await wait_until(lambda: len(pushes_of(sink, "tele-trio")) >= 2, "pushes", timeout=30)

    anyio.run(main, backend=backend)
    pushes = pushes_of(sink, "tele-trio")
    assert pushes[-1].terminating and len({x.instance_id for x in pushes}) == 1
    assert sum(x.value(PREFIX + "record.send.total") for x in pushes) == 7
