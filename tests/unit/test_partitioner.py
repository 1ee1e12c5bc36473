from __future__ import annotations

import dataclasses
import random
from collections import Counter

import pytest

from aioproducer import ConfigError, Producer, ProducerConfig, RoundRobinPartitioner
from aioproducer._core.cluster import Cluster
from aioproducer._core.murmur2 import murmur2
from aioproducer._core.partitioner import BuiltInPartitioner

from .fakes import make_cluster

CLUSTER = make_cluster({"t": [1, 2, 3, 1, 2, 3]})


def end_stint(p: BuiltInPartitioner, topic: str) -> None:
    """What Producer.send does when a stint's batch is full or its bytes are reached."""
    p.state(topic).partition = -1


def test_keys_hash_like_java() -> None:
    p = BuiltInPartitioner(16384)
    for key in (b"21", b"foobar", b"abc", b"k" * 100):
        assert p.keyed(key, 6) == (murmur2(key) & 0x7FFFFFFF) % 6
    assert p.keyed(None, 6) == -1
    assert BuiltInPartitioner(16384, ignore_keys=True).keyed(b"abc", 6) == -1


def test_the_sticky_partition_holds_until_its_stint_ends_and_every_partition_gets_a_turn() -> None:
    p = BuiltInPartitioner(1000, adaptive=False, rand=random.Random(3).randrange)
    first = p.sticky_partition("t", CLUSTER)
    for _ in range(9):
        assert p.sticky_partition("t", CLUSTER) == first
    seen = set()
    for _ in range(200):
        seen.add(p.sticky_partition("t", CLUSTER))
        end_stint(p, "t")
    assert seen == set(range(6))  # uniform: every partition gets its turn


def test_sticky_prefers_available_partitions() -> None:
    cluster = make_cluster({"t": [1, -1, 2, -1]})
    p = BuiltInPartitioner(10, adaptive=False, rand=random.Random(1).randrange)
    for _ in range(100):
        cur = p.sticky_partition("t", cluster)
        assert cur in (0, 2)
        end_stint(p, "t")


def test_adaptive_weights_favour_short_queues() -> None:
    p = BuiltInPartitioner(1, adaptive=True, rand=random.Random(5).randrange)
    p.update_load("t", [0, 1, 2], [9, 0, 9])  # partition 1 has an empty queue
    picks: Counter[int] = Counter()
    for _ in range(3000):
        cur = p.sticky_partition("t", CLUSTER)
        picks[cur] += 1
        end_stint(p, "t")
    assert picks[1] > 0.8 * 3000  # weights 1, 10, 1
    assert picks[0] > 0 and picks[2] > 0


def test_round_robin_cycles_available_partitions() -> None:
    rr = RoundRobinPartitioner()
    cluster = make_cluster({"t": [1, -1, 2]})
    got = [rr.partition("t", None, None, None, None, cluster) for _ in range(6)]
    assert got == [0, 2, 0, 2, 0, 2]


def test_load_is_read_only_when_the_sticky_partition_changes() -> None:
    calls = []

    def load() -> tuple[list[int], list[int]]:
        calls.append(1)
        return [0, 1], [5, 0]

    p = BuiltInPartitioner(100, adaptive=True, rand=random.Random(2).randrange)
    for _ in range(10):
        p.sticky_partition("t", CLUSTER, load)  # one stint: one choice, one load read
    assert len(calls) == 1
    end_stint(p, "t")
    p.sticky_partition("t", CLUSTER, load)
    assert len(calls) == 2


def test_load_stats_are_read_at_most_once_per_interval_per_topic() -> None:
    from aioproducer._core.partitioner import LOAD_STATS_INTERVAL_MS

    p = BuiltInPartitioner(10, rand=random.Random(1).randrange)
    reads: list[int] = []

    def load() -> tuple[list[int], list[int]]:
        reads.append(1)
        return [0, 1, 2, 3, 4, 5], [9, 9, 9, 9, 9, 0]  # partition 5 is the least loaded

    chosen = []
    for now in (0, 1, 2, LOAD_STATS_INTERVAL_MS, LOAD_STATS_INTERVAL_MS + 1):
        chosen.append(p.sticky_partition("t", CLUSTER, load, now_ms=now))
        end_stint(p, "t")  # switch at the next call
    assert len(reads) == 2  # at 0 and at LOAD_STATS_INTERVAL_MS
    # Stale stats still weigh the choice: partition 5 gets 10 of the 15 weight units.
    many: Counter[int] = Counter()
    for _ in range(1000):
        q = p.sticky_partition("t", CLUSTER, load, now_ms=LOAD_STATS_INTERVAL_MS + 2)
        many[q] += 1
        end_stint(p, "t")
    assert len(reads) == 2 and many[5] > 550
    # Without a clock (the old contract) every switch reads them.
    reads.clear()
    p.sticky_partition("t", CLUSTER, load)
    end_stint(p, "t")
    p.sticky_partition("t", CLUSTER, load)
    assert len(reads) == 2


def racked_cluster(leaders: list[int], racks: dict[int, str | None]) -> Cluster:
    """Topic "t" with these leaders; broker ``i``'s rack from ``racks`` (Metadata's field)."""
    base = make_cluster({"t": leaders}, brokers=len(racks))
    brokers = {i: dataclasses.replace(base.brokers[i], rack=r) for i, r in racks.items()}
    return Cluster(brokers, base.topics)


# Partitions 0 and 3 led by broker 1 (rack "a"), 1 and 4 by 2 ("b"), 2 by 3 (no rack), 5 none.
RACKED = racked_cluster([1, 2, 3, 1, 2, -1], {1: "a", 2: "b", 3: None})


def sticky_picks(p: BuiltInPartitioner, cluster: Cluster, n: int = 400) -> Counter[int]:
    picks: Counter[int] = Counter()
    for _ in range(n):
        picks[p.sticky_partition("t", cluster)] += 1
        end_stint(p, "t")
    return picks


def test_rack_aware_sticky_chooses_among_partitions_led_in_the_clients_rack() -> None:
    p = BuiltInPartitioner(10, adaptive=False, rand=random.Random(1).randrange, rack="a")
    assert set(sticky_picks(p, RACKED)) == {0, 3}  # both get turns, nothing else does
    p = BuiltInPartitioner(10, adaptive=False, rand=random.Random(1).randrange, rack="b")
    assert set(sticky_picks(p, RACKED)) == {1, 4}
    # No rack: every available partition, as before.
    p = BuiltInPartitioner(10, adaptive=False, rand=random.Random(1).randrange)
    assert set(sticky_picks(p, RACKED)) == {0, 1, 2, 3, 4}


def test_rack_aware_falls_back_to_every_partition_when_none_is_led_in_the_rack() -> None:
    for rack in ("z", ""):  # "" is off, as Java's blank client.rack
        p = BuiltInPartitioner(10, adaptive=False, rand=random.Random(1).randrange, rack=rack)
        assert set(sticky_picks(p, RACKED)) == {0, 1, 2, 3, 4}
    # Nothing available at all: any partition (no rack filter, as Java).
    leaderless = racked_cluster([-1, -1, -1], {1: "a"})
    p = BuiltInPartitioner(10, adaptive=False, rand=random.Random(1).randrange, rack="a")
    assert set(sticky_picks(p, leaderless)) == {0, 1, 2}


def test_rack_aware_adaptive_weighs_the_racks_partitions_among_themselves() -> None:
    p = BuiltInPartitioner(1, adaptive=True, rand=random.Random(5).randrange, rack="a")
    # Partition 1 (rack "b") has the shortest queue but is in another rack: never chosen.
    # In rack "a", 3's queue (0) beats 0's (8): weights 1 and 9.
    p.update_load("t", [0, 1, 2, 3, 4], [8, 0, 9, 0, 9], cluster=RACKED)
    picks: Counter[int] = Counter()
    for _ in range(2000):
        picks[p.sticky_partition("t", RACKED)] += 1
        end_stint(p, "t")
    assert set(picks) == {0, 3}
    assert picks[3] > 0.8 * 2000 and picks[0] > 0
    # No partition of the load stats led in the rack: the stats over all of them are used.
    p.update_load("t", [1, 2, 4], [9, 0, 9], cluster=RACKED)
    assert set(sticky_picks(p, RACKED, 200)) == {1, 2, 4}


def test_rack_aware_sticky_reads_the_racks_from_the_load_callback_path() -> None:
    """Through sticky_partition's load callback, as Producer.send calls it."""
    p = BuiltInPartitioner(10, adaptive=True, rand=random.Random(2).randrange, rack="b")
    picks: Counter[int] = Counter()
    load = ([0, 1, 2, 3, 4], [0, 5, 0, 0, 0])
    for i in range(300):
        picks[p.sticky_partition("t", RACKED, lambda: load, i * 10)] += 1
        end_stint(p, "t")
    assert set(picks) == {1, 4} and picks[4] > picks[1]


def test_keyed_records_ignore_the_rack() -> None:
    p = BuiltInPartitioner(10, rack="a")
    for key in (b"21", b"foobar", b"abc"):
        assert p.keyed(key, 6) == (murmur2(key) & 0x7FFFFFFF) % 6


def test_rack_aware_partitioning_needs_a_client_rack_and_reaches_the_partitioner() -> None:
    with pytest.raises(ConfigError, match="client_rack must be set when partitioner_rack_aware"):
        ProducerConfig(partitioner_rack_aware=True)
    with pytest.raises(ConfigError, match="client_rack must be set"):
        ProducerConfig.from_properties({"partitioner.rack.aware": "true", "client.rack": " "})
    c = ProducerConfig.from_properties({"partitioner.rack.aware": "true", "client.rack": "az1"})
    assert (c.partitioner_rack_aware, c.client_rack) == (True, "az1")
    assert Producer(c)._builtin.rack == "az1"
    # client_rack alone (Java uses it for fetching from followers) does not move records.
    assert Producer(client_rack="az1")._builtin.rack is None
