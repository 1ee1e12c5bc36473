"""Our encoders and decoders against real brokers, at every version they accept; what we write
is read back by confluent-kafka and compared field by field."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from aioproducer._protocol.messages import (
    ApiVersionsRequest,
    CreateTopicsRequest,
    DeleteTopicsRequest,
    InitProducerIdRequest,
    MetadataRequest,
    ProduceRequest,
)
from aioproducer._records.codecs import CODEC_IDS
from aioproducer._records.record_batch import RecordBatchBuilder
from aioproducer.testing import KafkaCluster, TansuBroker, read_topic

from ..helpers import wait_until_sync
from .wire import WireClient

Broker = KafkaCluster | TansuBroker
#: Produce answers of a broker that does not lead a new partition yet: LEADER_NOT_AVAILABLE,
#: NOT_LEADER_OR_FOLLOWER. Nothing was appended; the same request is sent again.
_NOT_LED_YET = (5, 6)
#: One record as sent and as read back: key, value, headers, timestamp.
Sent = tuple[bytes | None, bytes | None, tuple[tuple[str, bytes | None], ...], int]


@pytest.fixture(params=["kafka", "tansu"])
def broker(request: pytest.FixtureRequest) -> Broker:
    b: Broker = request.getfixturevalue(request.param)
    return b


def test_api_versions_every_version(broker: Broker) -> None:
    with WireClient(broker.bootstrap_servers) as c:
        versions = list(c.common_versions(ApiVersionsRequest))
        assert versions[-1] >= 3
        for v in versions:
            resp = c.call(
                ApiVersionsRequest(
                    client_software_name="aioproducer", client_software_version="0.1"
                ),
                v,
            )
            assert resp.error_code == 0
            assert {a.api_key for a in resp.api_keys} >= {0, 3, 18}


def test_metadata_every_version(broker: Broker, new_topic: Callable[..., str]) -> None:
    topic = new_topic(broker, partitions=3)
    port = int(broker.bootstrap_servers.split(",")[0].rsplit(":", 1)[1])
    with WireClient(broker.bootstrap_servers) as c:
        versions = list(c.common_versions(MetadataRequest))
        # Kafka 4.4 answers v13, the top-level error code of KIP-1102 (REBOOTSTRAP_REQUIRED).
        assert versions[-1] == 13 or isinstance(broker, TansuBroker)
        for v in versions:
            req = MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name=topic)])
            resp = c.call(req, v)
            assert resp.error_code == 0
            assert [b.port for b in resp.brokers] == [port]
            [t] = resp.topics
            assert (t.name, t.error_code) == (topic, 0)
            assert sorted(p.partition_index for p in t.partitions) == [0, 1, 2]
            assert all(p.leader_id == resp.brokers[0].node_id for p in t.partitions)


@pytest.mark.kafka
def test_create_and_delete_topics_every_version(kafka: KafkaCluster) -> None:
    with WireClient(kafka.bootstrap_servers) as c:
        create = list(c.common_versions(CreateTopicsRequest))
        delete = list(c.common_versions(DeleteTopicsRequest))
        assert len(create) >= 4 and len(delete) >= 4
        for v in create:
            name = f"interop-create-v{v}"
            topic = CreateTopicsRequest.CreatableTopic(
                name=name, num_partitions=2, replication_factor=1
            )
            resp = c.call(CreateTopicsRequest(topics=[topic], timeout_ms=30000), v)
            [result] = resp.topics
            assert (result.name, result.error_code) == (name, 0), result
            if v >= 5:
                assert result.num_partitions == 2
            again = c.call(CreateTopicsRequest(topics=[topic], timeout_ms=30000), v)
            assert again.topics[0].error_code == 36  # TOPIC_ALREADY_EXISTS
        for i, v in enumerate(delete):
            name = f"interop-create-v{create[i % len(create)]}"
            if v >= 6:
                req = DeleteTopicsRequest(
                    topics=[DeleteTopicsRequest.DeleteTopicState(name=name)], timeout_ms=30000
                )
            else:
                req = DeleteTopicsRequest(topic_names=[name], timeout_ms=30000)
            resp = c.call(req, v)
            assert [(r.name, r.error_code) for r in resp.responses] == [(name, 0)]


@pytest.mark.kafka
def test_init_producer_id_every_version(kafka: KafkaCluster) -> None:
    with WireClient(kafka.bootstrap_servers) as c:
        versions = list(c.common_versions(InitProducerIdRequest))
        assert versions[-1] >= 5
        ids = set()
        for v in versions:
            resp = _init_producer_id(c, v)
            assert resp.error_code == 0 and resp.producer_id >= 0 and resp.producer_epoch >= 0
            ids.add(resp.producer_id)
        assert len(ids) == len(versions)  # a new producer id each time


def _init_producer_id(c: WireClient, version: int) -> Any:
    # Right after start-up the broker may answer COORDINATOR_LOAD_IN_PROGRESS (retriable).
    deadline = time.monotonic() + 30
    while True:
        resp = c.call(
            InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=60000), version
        )
        if resp.error_code not in (14, 15) or time.monotonic() > deadline:
            return resp
        time.sleep(0.2)


def _batch(codec: str, n: int, tag: str, pid: int = -1, seq: int = -1) -> tuple[bytes, list[Sent]]:
    b = RecordBatchBuilder(codec, batch_size=1 << 20)
    sent: list[Sent] = []
    for i in range(n):
        key = None if i % 5 == 0 else f"{tag}-k{i}".encode()
        value = None if i % 7 == 3 else bytes([i % 251]) * (i * 13)
        headers: list[tuple[str, bytes | None]] = (
            [("idx", str(i).encode()), ("null", None)] if i % 2 else []
        )
        ts = 1_700_000_000_000 + i * 1000 - (500 if i % 3 == 0 else 0)
        b.append(ts, key, value, headers)
        sent.append((key, value, tuple(headers), ts))
    return b.build(pid, 0 if pid >= 0 else -1, seq), sent


def _produce(
    c: WireClient, version: int, topic: str, partition: int, batch: bytes, acks: int = -1
) -> tuple[int, int]:
    req = ProduceRequest(
        acks=acks,
        timeout_ms=30000,
        topic_data=[
            ProduceRequest.TopicProduceData(
                name=topic,
                partition_data=[
                    ProduceRequest.TopicProduceData.PartitionProduceData(
                        index=partition, records=batch
                    )
                ],
            )
        ],
    )
    errors: list[int] = []

    def attempt() -> tuple[int, int] | None:
        resp = c.call(req, version)
        [t] = resp.responses
        [p] = t.partition_responses
        if p.error_code in _NOT_LED_YET:
            errors.append(p.error_code)
            return None
        return p.error_code, p.base_offset

    # new_topic waits until the metadata names a leader for every partition; the leader
    # itself may take a moment more to load the new partition, and answers NOT_LEADER
    # (nothing appended) meanwhile.
    return wait_until_sync(
        attempt,
        f"the leader of {topic}-{partition} to take a Produce",
        timeout=30,
        interval=0.1,
        state=lambda: errors[-1:],
    )


def test_produce_every_version_read_back(broker: Broker, new_topic: Callable[..., str]) -> None:
    topic = new_topic(broker, partitions=1)
    expected: list[Sent] = []
    with WireClient(broker.bootstrap_servers) as c:
        # Produce v0-2 carry message format v0/v1 only; RecordBatch v2 needs v3+.
        versions = [v for v in c.common_versions(ProduceRequest) if v >= 3]
        assert versions and versions[-1] >= 9
        for v in versions:
            data, sent = _batch("none", 20, f"v{v}")
            err, base = _produce(c, v, topic, 0, data)
            assert (err, base) == (0, len(expected))
            expected += sent
    got = read_topic(broker.bootstrap_servers, topic)
    assert [(r.key, r.value, r.headers, r.timestamp) for r in got] == expected


@pytest.mark.parametrize("codec", list(CODEC_IDS))
def test_produce_every_codec_read_back(
    broker: Broker, new_topic: Callable[..., str], codec: str
) -> None:
    topic = new_topic(broker, partitions=2)
    with WireClient(broker.bootstrap_servers) as c:
        version = c.common_versions(ProduceRequest)[-1]
        expected: dict[int, list[Sent]] = {}
        for partition in (0, 1):
            data, sent = _batch(codec, 300, f"{codec}-{partition}")
            assert _produce(c, version, topic, partition, data) == (0, 0)
            expected[partition] = sent
    got = read_topic(broker.bootstrap_servers, topic)
    for partition in (0, 1):
        mine = [(r.key, r.value, r.headers, r.timestamp) for r in got if r.partition == partition]
        assert mine == expected[partition]


@pytest.mark.kafka
def test_idempotent_produce_dedupes_on_kafka(
    kafka: KafkaCluster, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(kafka, partitions=1)
    with WireClient(kafka.bootstrap_servers) as c:
        pid = _init_producer_id(c, 5).producer_id
        version = c.common_versions(ProduceRequest)[-1]
        data, sent = _batch("lz4", 10, "idem", pid=pid, seq=0)
        assert _produce(c, version, topic, 0, data) == (0, 0)
        # The same batch again (a retry) is acknowledged at the same offset, not written twice.
        err, base = _produce(c, version, topic, 0, data)
        assert err in (0, 46) and base in (0, -1)
        data2, sent2 = _batch("lz4", 5, "idem2", pid=pid, seq=10)
        assert _produce(c, version, topic, 0, data2) == (0, 10)
        # A gap in the sequence is refused.
        data3, _ = _batch("lz4", 1, "gap", pid=pid, seq=99)
        assert _produce(c, version, topic, 0, data3)[0] == 45  # OUT_OF_ORDER_SEQUENCE_NUMBER
    got = read_topic(kafka.bootstrap_servers, topic)
    assert [(r.key, r.value) for r in got] == [(k, v) for k, v, _, _ in sent + sent2]
