"""Rack-aware partitioning (KIP-1123) against the 3-node cluster, each node in its own rack
(``broker.rack`` rack-1..rack-3): records without key go to partitions led in the client's rack,
read back with librdkafka."""

from __future__ import annotations

import collections
from collections.abc import Callable

import pytest

from aioproducer import Producer
from aioproducer._core.murmur2 import murmur2
from aioproducer.testing import KafkaCluster, read_topic

pytestmark = [pytest.mark.asyncio, pytest.mark.kafka]


async def test_records_without_key_go_to_partitions_led_in_the_clients_rack(
    kafka_cluster: KafkaCluster, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(kafka_cluster, partitions=9, replication_factor=1)
    leaders = {p: kafka_cluster.leader(topic, p) for p in range(9)}
    # The client's rack: a node that leads some partitions but not all (Kafka places leaders
    # at random; 9 over 3 nodes always gives one with 3 to 8 unless one node leads them all).
    counts = collections.Counter(leaders.values())
    node = next((n for n, c in counts.most_common() if 2 <= c < 9), None)
    assert node is not None, leaders
    rack = f"rack-{node}"  # node N is in rack-N
    near = {p for p, leader in leaders.items() if leader == node}
    n = 3000
    # Small batches: the sticky partition changes every ~5 records, so every choice is tested.
    async with Producer(
        bootstrap_servers=kafka_cluster.bootstrap_servers,
        client_rack=rack,
        partitioner_rack_aware=True,
        batch_size=1000,
        linger_ms=1,
    ) as p:
        for i in range(n):
            await p.send(topic, b"r%05d" % i + b"." * 190)
        for i in range(90):  # keyed records keep their key's partition
            await p.send(topic, b"keyed", key=b"k%d" % i)
        await p.flush()
    records = read_topic(kafka_cluster.bootstrap_servers, topic, timeout=120, expected=n + 90)
    unkeyed = collections.Counter(r.partition for r in records if r.key is None)
    assert sum(unkeyed.values()) == n
    assert set(unkeyed) == near, (unkeyed, leaders)  # every partition led in the rack, no other
    for r in records:
        if r.key is not None:
            assert r.partition == (murmur2(r.key) & 0x7FFFFFFF) % 9
    assert {r.partition for r in records if r.key is not None} - near  # keys went elsewhere too

    # The same without rack awareness: other racks' partitions get records (the check above
    # could fail).
    topic2 = new_topic(kafka_cluster, partitions=9, replication_factor=1)
    async with Producer(
        bootstrap_servers=kafka_cluster.bootstrap_servers,
        client_rack=rack,
        batch_size=1000,
        linger_ms=1,
    ) as p:
        for i in range(600):
            await p.send(topic2, b"r%05d" % i + b"." * 190)
    leaders2 = {q: kafka_cluster.leader(topic2, q) for q in range(9)}
    spread = {r.partition for r in read_topic(kafka_cluster.bootstrap_servers, topic2, timeout=120)}
    assert {leaders2[q] for q in spread} == set(leaders2.values())  # every leader got some
