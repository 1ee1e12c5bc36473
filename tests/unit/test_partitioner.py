from __future__ import annotations

import random
from collections import Counter

from aioproducer import RoundRobinPartitioner
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
