"""Partitioners: where a record goes.

Order of precedence (Java ``KafkaProducer.partition``): an explicit partition, then a custom
partitioner, then the built-in one. The built-in partitioner hashes a key with Java's murmur2
(same partition as the Java client), and spreads records without key with the uniform sticky
strategy of KIP-480/KIP-794: stick to one partition until ``batch_size`` bytes went to it, then
pick the next one — weighted by the inverse of each partition's queue length when adaptive
partitioning is on, skipping partitions whose leader has accepted nothing for
``partitioner_availability_timeout_ms``. With a rack (KIP-1123: ``client_rack`` and
``partitioner_rack_aware``), the choice is among the partitions whose leader is in that rack
when there is one, among all otherwise. Randomness is injected, so tests are deterministic.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..errors import BadRecordError
from .cluster import Cluster, TopicPartition
from .murmur2 import murmur2, to_positive

if TYPE_CHECKING:
    from .accumulator import RecordAccumulator

_HASH_CACHE_SIZE = 1 << 16
#: Returned by a custom partitioner to defer to the built-in one (Java's UNKNOWN_PARTITION).
UNKNOWN_PARTITION = -1


@runtime_checkable
class Partitioner(Protocol):
    """A custom partitioner, as Java's ``Partitioner`` interface."""

    def partition(
        self,
        topic: str,
        key: Any,
        key_bytes: bytes | None,
        value: Any,
        value_bytes: bytes | None,
        cluster: Cluster,
    ) -> int: ...


class RoundRobinPartitioner:
    """Every record to the next partition in turn, available partitions first (Java's
    ``RoundRobinPartitioner``), keys ignored."""

    def __init__(self) -> None:
        self._counters: dict[str, int] = {}

    def partition(
        self,
        topic: str,
        key: Any,
        key_bytes: bytes | None,
        value: Any,
        value_bytes: bytes | None,
        cluster: Cluster,
    ) -> int:
        n = self._counters.get(topic, 0)
        self._counters[topic] = n + 1
        available = cluster.available_partitions_for_topic(topic)
        if available:
            return available[n % len(available)]
        count = cluster.partition_count(topic) or 1
        return n % count


#: How stale the KIP-794 queue sizes may get before a sticky switch reads them again.
LOAD_STATS_INTERVAL_MS = 5


def load_stats(
    acc: RecordAccumulator,
    topic: str,
    cluster: Cluster,
    availability_timeout_ms: int,
    tps: Sequence[TopicPartition] | None = None,
) -> tuple[list[int], list[int]]:
    """KIP-794 input: the topic's partitions with a usable leader, and their queue lengths
    in ``acc``.

    With ``availability_timeout_ms`` > 0, a partition whose leader has had batches ready
    but none drained for longer than that is left out (Java's ``NodeLatencyStats``: the
    accumulator's ``node_ready_ms`` and ``node_drain_ms``). ``tps`` (the topic's partition
    keys, by partition id) saves building them: this runs once per sticky switch, over every
    partition of the topic.
    """
    parts = cluster.partitions_for_topic(topic) or []
    if tps is None or len(tps) < len(parts):
        tps = [TopicPartition(topic, p.partition) for p in parts]
    get = acc.batches.get
    if availability_timeout_ms <= 0:
        ids = [p.partition for p in parts if p.leader >= 0]
        return ids, [len(get(tps[i], ())) for i in ids]
    ids, sizes = [], []
    for p in parts:
        if p.leader < 0:
            continue
        ready = acc.node_ready_ms.get(p.leader, 0)
        drained = acc.node_drain_ms.get(p.leader, ready)
        if ready - drained > availability_timeout_ms:
            continue
        ids.append(p.partition)
        sizes.append(len(get(tps[p.partition], ())))
    return ids, sizes


class TopicSticky:
    """Sticky state of one topic: the current partition and the value bytes produced to it.

    A stint ends when its owner sets ``partition`` to -1: ``Producer.send`` does, when the
    stint's batch is full or ``sticky_batch_size`` value bytes went to it (Java's
    ``BuiltInPartitioner.updatePartitionInfo``); the next :meth:`BuiltInPartitioner.
    sticky_partition` call chooses again."""

    __slots__ = (
        "cumulative",
        "loaded_ms",
        "partition",
        "partition_ids",
        "produced",
        "rack_cumulative",
        "rack_partition_ids",
    )

    def __init__(self) -> None:
        self.partition = -1
        self.produced = 0
        self.loaded_ms = -(1 << 62)  # when the load stats were last read
        # Load stats (KIP-794): cumulative weights and the partitions they belong to.
        self.cumulative: list[int] = []
        self.partition_ids: list[int] = []
        # The same, over the partitions whose leader is in the client's rack (KIP-1123).
        self.rack_cumulative: list[int] = []
        self.rack_partition_ids: list[int] = []


class BuiltInPartitioner:
    """Java's built-in partitioner (``BuiltInPartitioner`` + the keyed path).

    ``rack``: the client's rack when rack-aware partitioning is on (KIP-1123), else None. Only
    records without key (or with keys ignored) are affected: a key's partition never moves."""

    def __init__(
        self,
        sticky_batch_size: int,
        adaptive: bool = True,
        availability_timeout_ms: int = 0,
        ignore_keys: bool = False,
        rand: Callable[[int], int] | None = None,
        rack: str | None = None,
    ) -> None:
        self.sticky_batch_size = max(1, sticky_batch_size)
        self.adaptive = adaptive
        self.availability_timeout_ms = availability_timeout_ms
        self.ignore_keys = ignore_keys
        self.rack = rack or None
        self._rand = rand or (lambda n: random.randrange(n))
        self._topics: dict[str, TopicSticky] = {}
        self._hashes: dict[bytes, int] = {}

    def choose(
        self,
        partitioner: Partitioner | None,
        count: int,
        topic: str,
        key: Any,
        key_bytes: bytes | None,
        value: Any,
        value_bytes: bytes | None,
        cluster: Cluster,
    ) -> int:
        """The partition of a record without one among ``count``: a custom ``partitioner``'s
        answer, else the key's (:meth:`keyed`); -1 when neither chooses, for the caller's
        choice of a partition without key (sticky in the producer, in turn in the mock).
        Raises :class:`BadRecordError` when the partitioner answers out of range."""
        if partitioner is not None:
            p = partitioner.partition(topic, key, key_bytes, value, value_bytes, cluster)
            if p is not None and p != UNKNOWN_PARTITION:
                if not isinstance(p, int) or not 0 <= p < count:
                    raise BadRecordError(
                        f"partitioner returned {p!r} for topic {topic!r} with {count} partitions"
                    )
                return p
        return self.keyed(key_bytes, count)

    def keyed(self, key_bytes: bytes | None, num_partitions: int) -> int:
        """The partition for a key, or -1 when the record should go sticky."""
        if key_bytes is None or self.ignore_keys:
            return UNKNOWN_PARTITION
        # Keys repeat (user ids, order ids): a bounded cache of the hash saves the pure-Python
        # murmur2 loop (~2 us for a 10-byte key) for every repeat; measured +15 % keyed sends.
        cache = self._hashes
        h = cache.get(key_bytes)
        if h is None:
            if len(cache) >= _HASH_CACHE_SIZE:
                cache.clear()
            h = cache[key_bytes] = to_positive(murmur2(key_bytes))
        return h % num_partitions

    def sticky_partition(
        self,
        topic: str,
        cluster: Cluster,
        load: Callable[[], tuple[list[int], list[int]]] | None = None,
        now_ms: int | None = None,
    ) -> int:
        """The topic's sticky partition; a new one is chosen only when the last one is done,
        and only then are the queue sizes (``load() -> (partition ids, queue sizes)``) read —
        so a record costs no per-partition work.

        Given ``now_ms``, the queue sizes are read at most once per
        :data:`LOAD_STATS_INTERVAL_MS` per topic (Java reads them once per sender loop): reading
        them is a pass over every partition of the topic, and with 1,000 partitions a pass per
        switch cost ~1 us per record (measured, scaling runs of ``make bench``)."""
        state = self._topics.get(topic) or self.state(topic)  # a call only the first time
        if state.partition < 0:
            if (
                load is not None
                and self.adaptive
                and (now_ms is None or now_ms - state.loaded_ms >= LOAD_STATS_INTERVAL_MS)
            ):
                if now_ms is not None:
                    state.loaded_ms = now_ms
                self.update_load(topic, *load(), cluster=cluster)
            state.partition = self._next_partition(topic, state, cluster)
            state.produced = 0
        return state.partition

    def state(self, topic: str) -> TopicSticky:
        """The topic's sticky state (created on first use); the producer keeps it per topic so
        an unkeyed send reads its partition without a call."""
        state = self._topics.get(topic)
        if state is None:
            state = self._topics[topic] = TopicSticky()
        return state

    def update_load(
        self,
        topic: str,
        partition_ids: list[int],
        queue_sizes: list[int],
        cluster: Cluster | None = None,
    ) -> None:
        """KIP-794 load stats: weight each partition by (max queue + 1 - its queue). Rack-aware
        (and given the ``cluster`` that says where leaders are), the same is kept for the
        partitions led in the client's rack, weighed among themselves (Java's
        ``createPartitionLoadStatsForThisRackIfNeeded``)."""
        state = self.state(topic)
        if self.rack is not None:
            state.rack_cumulative, state.rack_partition_ids = [], []
        if not self.adaptive or not partition_ids:
            state.cumulative, state.partition_ids = [], []
            return
        top = max(queue_sizes) + 1
        state.cumulative = list(itertools.accumulate([top - q for q in queue_sizes]))
        state.partition_ids = list(partition_ids)
        if self.rack is not None and cluster is not None:
            near = [i for i, p in enumerate(partition_ids) if self._in_rack(cluster, topic, p)]
            if near:
                top = max(queue_sizes[i] for i in near) + 1
                state.rack_cumulative = list(
                    itertools.accumulate([top - queue_sizes[i] for i in near])
                )
                state.rack_partition_ids = [partition_ids[i] for i in near]

    def _in_rack(self, cluster: Cluster, topic: str, partition: int) -> bool:
        """Whether the partition's leader is in the client's rack (Metadata's broker rack)."""
        broker = cluster.broker(cluster.leader_for(TopicPartition(topic, partition)))
        return broker is not None and broker.rack is not None and broker.rack == self.rack

    def _next_partition(self, topic: str, state: TopicSticky, cluster: Cluster) -> int:
        cumulative, ids = state.cumulative, state.partition_ids
        if state.rack_cumulative:
            cumulative, ids = state.rack_cumulative, state.rack_partition_ids
        if cumulative and cumulative[-1] > 0:
            return ids[bisect.bisect_right(cumulative, self._rand(cumulative[-1]))]
        available = cluster.available_partitions_for_topic(topic)
        if available:
            if self.rack is not None:
                near = [p for p in available if self._in_rack(cluster, topic, p)]
                available = near or available
            return available[self._rand(len(available))]
        return self._rand(cluster.partition_count(topic) or 1)
