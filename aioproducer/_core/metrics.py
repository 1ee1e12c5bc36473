"""The producer's metrics, with the Java client's names: plain counters, windowed when read.

Rules:

* What happens is counted in plain attributes of slotted objects (:class:`ProducerCounters`,
  one :class:`TopicCounters` per topic, one :class:`NodeCounters` per broker): a sum, a
  count, and the largest value of the current window. Recording is an addition, once per
  request, response or batch, never per record, and reads no clock.
* Java's windowed statistics come from the sample windows every counter of a producer shares
  (``metric_windows.py``); what each metric reports of which counter is the tables below.
* The producer's byte, request, response and latency figures are its nodes' summed (each is
  counted once); the windows being shared, the sums are exact.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from .._records.reader import BATCH_OVERHEAD
from .metric_windows import NAN, Counters, Windows

if TYPE_CHECKING:
    from .producer_batch import ProducerBatch


class MetricName:
    """A metric's identity, as Java's ``MetricName``: ``group``, ``name`` and ``tags`` (equal
    and hashed on those three; ``description`` is documentation)."""

    __slots__ = ("_key", "description", "group", "name", "tags")

    group: str
    name: str
    tags: Mapping[str, str]
    description: str
    _key: tuple[str, str, tuple[tuple[str, str], ...]]

    def __init__(
        self,
        group: str,
        name: str,
        tags: Mapping[str, str] | None = None,
        description: str = "",
    ) -> None:
        items = tuple(sorted((tags or {}).items()))
        object.__setattr__(self, "group", group)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "tags", dict(items))
        object.__setattr__(self, "description", description)
        object.__setattr__(self, "_key", (group, name, items))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("MetricName is immutable")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MetricName) and self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        return f"MetricName(group={self.group!r}, name={self.name!r}, tags={self.tags!r})"


class ProducerCounters(Counters):
    """Counted by the sender: per produce request, its batches; per outcome, its records."""

    FIELDS = (
        "produce_requests",
        "records",
        "batches",
        "batch_bytes",
        "queue_ms",
        "ratio_sum",
        "record_size_sum",
        "sized_batches",
        "errors",
        "retries",
        "splits",
        "throttle_ms",
        "throttle_n",
        "conn_created",
        "conn_closed",
        "flush_ns",
        "metadata_wait_ns",
    )
    MAXES = ("batch_bytes_max", "queue_ms_max", "record_size_max", "throttle_max")
    __slots__ = FIELDS + MAXES

    produce_requests: int
    records: int
    batches: int
    batch_bytes: int
    queue_ms: int
    ratio_sum: float
    record_size_sum: float
    sized_batches: int
    errors: int
    retries: int
    splits: int
    throttle_ms: int
    throttle_n: int
    conn_created: int
    conn_closed: int
    flush_ns: int
    metadata_wait_ns: int
    batch_bytes_max: float
    queue_ms_max: float
    record_size_max: float
    throttle_max: float


class TopicCounters(Counters):
    FIELDS = ("records", "bytes", "ratio_sum", "batches", "errors", "retries")
    __slots__ = FIELDS

    records: int
    bytes: int
    ratio_sum: float
    batches: int
    errors: int
    retries: int


class NodeCounters(Counters):
    """Counted by a broker's connection (every request and response) and by the sender
    (produce latency)."""

    FIELDS = ("bytes_out", "requests", "bytes_in", "responses", "latency_ms", "latency_n")
    MAXES = ("request_max", "latency_max")
    __slots__ = FIELDS + MAXES

    bytes_out: int
    requests: int
    bytes_in: int
    responses: int
    latency_ms: int
    latency_n: int
    request_max: float
    latency_max: float


def tally_py(batches: list[ProducerBatch], now_ms: int, compressed: bool, overhead: int) -> _Tally:
    """A produce request's batch figures (``_speedups.tally_batches``' pure twin): records,
    bytes, summed queue time, the largest batch, queue time and mean record size, the summed
    compression ratios and mean record sizes, the batches with records, and per run of
    consecutive batches of one topic ``(topic, records, bytes, ratio sum, batches)``."""
    records = nbytes = queue = sized = 0
    bmax = qmax = -(1 << 63)
    ratios = sizes = 0.0
    rmax = -math.inf
    runs: list[tuple[str, int, int, float, int]] = []
    topic = None
    t_records = t_bytes = t_batches = 0
    t_ratios = 0.0
    for b in batches:
        builder = b.builder
        count = len(b.handles)  # not final: its handles are its records
        size = builder.estimated_size()  # sealed: the real size
        q = now_ms - b.created_ms
        records += count
        nbytes += size
        queue += q
        if size > bmax:
            bmax = size
        if q > qmax:
            qmax = q
        if compressed:
            ratio = builder.compression_ratio
            raw = builder.uncompressed_size
        else:
            ratio, raw = 1.0, size
        ratios += ratio
        if count:
            mean = (raw - overhead) / count
            sizes += mean
            sized += 1
            if mean > rmax:
                rmax = mean
        if b.tp.topic != topic:
            if topic is not None:
                runs.append((topic, t_records, t_bytes, t_ratios, t_batches))
            topic = b.tp.topic
            t_records = t_bytes = t_batches = 0
            t_ratios = 0.0
        t_records += count
        t_bytes += size
        t_ratios += ratio
        t_batches += 1
    if topic is not None:
        runs.append((topic, t_records, t_bytes, t_ratios, t_batches))
    return records, nbytes, queue, bmax, qmax, rmax, ratios, sizes, sized, runs


def _choose_tally() -> Callable[[list[ProducerBatch], int, bool, int], _Tally]:
    """The compiled tally when the compiled record buffer is in use, else the pure one."""
    from .._records.record_batch import CRecordBatchBuilder, RecordBatchBuilder

    if CRecordBatchBuilder is not None and RecordBatchBuilder is CRecordBatchBuilder:
        from .._records import _speedups

        return _speedups.tally_batches  # type: ignore[no-any-return]
    return tally_py


#: records, bytes, queue ms, largest batch, largest queue ms, largest mean record size, ratio
#: sum, mean record size sum, batches with records, per-topic runs.
_Tally = tuple[
    int, int, int, int, int, float, float, float, int, list[tuple[str, int, int, float, int]]
]
_tally = _choose_tally()


# -- what is reported ---------------------------------------------------------------------------

#: (metric name, statistic, fields, description). Statistics: ``rate`` (the field's increase
#: per second), ``total`` (its value), ``avg`` (increase of the first field over that of the
#: second), ``max`` (the largest of a maximum, NaN when the count field did not increase).
_Spec = tuple[str, str, tuple[str, ...], str]


def _meter(prefix: str, field: str, what: str) -> tuple[_Spec, _Spec]:
    return (
        (f"{prefix}-rate", "rate", (field,), f"{what} per second"),
        (f"{prefix}-total", "total", (field,), f"{what}, in total"),
    )


def _avg_max(prefix: str, total: str, count: str, largest: str, what: str) -> tuple[_Spec, _Spec]:
    return (
        (f"{prefix}-avg", "avg", (total, count), f"the average {what}"),
        (f"{prefix}-max", "max", (largest, count), f"the largest {what}"),
    )


#: ``producer-metrics`` from the producer's counters.
_PRODUCER: tuple[_Spec, ...] = (
    *_meter("record-send", "records", "records sent"),
    ("records-per-request-avg", "avg", ("records", "produce_requests"), "records per request"),
    *_meter("record-error", "errors", "records that failed"),
    *_meter("record-retry", "retries", "records retried"),
    *_meter("batch-split", "splits", "batches split (too large for the broker)"),
    *_avg_max("batch-size", "batch_bytes", "batches", "batch_bytes_max", "batch size in bytes"),
    (
        "compression-rate-avg",
        "avg",
        ("ratio_sum", "batches"),
        "the average compressed/uncompressed size of batches",
    ),
    *_avg_max(
        "record-queue-time",
        "queue_ms",
        "batches",
        "queue_ms_max",
        "time a batch waited in the accumulator (ms)",
    ),
    *_avg_max(
        "record-size",
        "record_size_sum",
        "sized_batches",
        "record_size_max",
        "record size (a batch's mean, in bytes)",
    ),
    *_avg_max(
        "produce-throttle-time",
        "throttle_ms",
        "throttle_n",
        "throttle_max",
        "throttle time brokers asked for (ms)",
    ),
    *_meter("connection-creation", "conn_created", "connections opened"),
    *_meter("connection-close", "conn_closed", "connections closed"),
    ("flush-time-ns-total", "total", ("flush_ns",), "time spent in flush() (ns)"),
    (
        "metadata-wait-time-ns-total",
        "total",
        ("metadata_wait_ns",),
        "time send() waited for a topic's metadata (ns)",
    ),
)
#: ``producer-node-metrics``, and in ``producer-metrics`` summed over the nodes.
_NODE: tuple[_Spec, ...] = (
    *_meter("outgoing-byte", "bytes_out", "bytes sent"),
    *_meter("request", "requests", "requests sent"),
    *_avg_max("request-size", "bytes_out", "requests", "request_max", "request size in bytes"),
    *_meter("incoming-byte", "bytes_in", "bytes received"),
    *_meter("response", "responses", "responses received"),
    *_avg_max(
        "request-latency", "latency_ms", "latency_n", "latency_max", "produce request latency (ms)"
    ),
)
_TOPIC: tuple[_Spec, ...] = (
    *_meter("record-send", "records", "records sent"),
    *_meter("byte", "bytes", "bytes sent"),
    ("compression-rate", "avg", ("ratio_sum", "batches"), "the average compression rate"),
    *_meter("record-retry", "retries", "records retried"),
    *_meter("record-error", "errors", "records that failed"),
)


def catalogue() -> list[tuple[str, str, str]]:
    """(group, name, description) of every metric the counters report."""
    return [
        *(("producer-metrics", name, doc) for name, _, _, doc in _PRODUCER + _NODE),
        *(("producer-topic-metrics", name, doc) for name, _, _, doc in _TOPIC),
        *(("producer-node-metrics", name, doc) for name, _, _, doc in _NODE),
    ]


class ProducerMetrics:
    """Every counter of one producer, and the snapshot ``Producer.metrics()`` returns."""

    def __init__(self, client_id: str, window_ms: int = 30_000, samples: int = 2) -> None:
        self.client_id = client_id
        self.windows = Windows(window_ms, samples)
        self.producer = ProducerCounters()
        self.windows.add(self.producer)
        self.topics: dict[str, TopicCounters] = {}
        self.nodes: dict[int, NodeCounters] = {}
        #: The index in ``windows.members`` of each topic's and node's counters.
        self._index: dict[int, int] = {}
        #: Compression on: a sealed batch's ratio is read (else it is 1).
        self.compressed = False

    def _add(self, c: Counters) -> None:
        self._index[id(c)] = len(self.windows.members)
        self.windows.add(c)

    def topic(self, topic: str) -> TopicCounters:
        t = self.topics.get(topic)
        if t is None:
            t = self.topics[topic] = TopicCounters()
            self._add(t)
        return t

    def node(self, node_id: int) -> NodeCounters:
        n = self.nodes.get(node_id)
        if n is None:
            n = self.nodes[node_id] = NodeCounters()
            self._add(n)
        return n

    # -- what the sender counts ------------------------------------------------------------------

    def request_sent(self, batches: list[ProducerBatch], now_ms: int) -> None:
        """A produce request with ``batches`` is written (Java's
        ``Sender.updateProduceRequestMetrics``): one pass over its batches (compiled:
        ``tally_batches``; a Python loop cost 2 % of fire-and-forget's instructions with 1 KiB
        records), then the sums added once per request and per run of one topic."""
        if now_ms >= self.windows.roll_at:
            self.windows.roll(now_ms)
        if not batches:
            return
        records, nbytes, queue, bmax, qmax, rmax, ratios, sizes, sized, runs = _tally(
            batches, now_ms, self.compressed, BATCH_OVERHEAD
        )
        p = self.producer
        p.produce_requests += 1
        p.records += records
        p.batches += len(batches)
        p.batch_bytes += nbytes
        p.queue_ms += queue
        p.ratio_sum += ratios
        p.record_size_sum += sizes
        p.sized_batches += sized
        if bmax > p.batch_bytes_max:
            p.batch_bytes_max = bmax
        if qmax > p.queue_ms_max:
            p.queue_ms_max = qmax
        if rmax > p.record_size_max:
            p.record_size_max = rmax
        topics = self.topics
        for topic, t_records, t_bytes, t_ratios, t_batches in runs:
            t = topics.get(topic)
            if t is None:
                t = self.topic(topic)
            t.records += t_records
            t.bytes += t_bytes
            t.ratio_sum += t_ratios
            t.batches += t_batches

    def produce_response(self, node: int, latency_ms: int, throttle_ms: int) -> None:
        n = self.nodes.get(node) or self.node(node)
        n.latency_ms += latency_ms
        n.latency_n += 1
        if latency_ms > n.latency_max:
            n.latency_max = latency_ms
        p = self.producer
        p.throttle_n += 1
        if throttle_ms:
            p.throttle_ms += throttle_ms
        if throttle_ms > p.throttle_max:
            p.throttle_max = throttle_ms

    def batch_retried(self, topic: str, records: int) -> None:
        self.producer.retries += records
        self.topic(topic).retries += records

    def batch_failed(self, topic: str, records: int) -> None:
        self.producer.errors += records
        self.topic(topic).errors += records

    # -- the snapshot ----------------------------------------------------------------------------

    def snapshot(
        self, now_ms: int, gauges: Iterable[tuple[str, float, str]]
    ) -> dict[MetricName, float]:
        """``{MetricName: value}`` for every metric, ``gauges`` (name, value, description) in
        ``producer-metrics`` beside the counters' statistics."""
        if now_ms >= self.windows.roll_at:
            self.windows.roll(now_ms)
        out: dict[MetricName, float] = {}
        base = {"client-id": self.client_id}
        me = [0]  # the producer's counters are the first member
        nodes = [self._index[id(n)] for n in self.nodes.values()]
        self._report(out, "producer-metrics", base, ProducerCounters, me, _PRODUCER, now_ms)
        self._report(out, "producer-metrics", base, NodeCounters, nodes, _NODE, now_ms)
        for name, value, doc in gauges:
            out[MetricName("producer-metrics", name, base, doc)] = float(value)
        for topic, t in list(self.topics.items()):
            tags = {**base, "topic": topic}
            idx = [self._index[id(t)]]
            self._report(out, "producer-topic-metrics", tags, TopicCounters, idx, _TOPIC, now_ms)
        for node_id, n in list(self.nodes.items()):
            tags = {**base, "node-id": f"node-{node_id}"}
            idx = [self._index[id(n)]]
            self._report(out, "producer-node-metrics", tags, NodeCounters, idx, _NODE, now_ms)
        return out

    def _report(
        self,
        out: dict[MetricName, float],
        group: str,
        tags: Mapping[str, str],
        kind: type[Counters],
        members: list[int],
        specs: tuple[_Spec, ...],
        now_ms: int,
    ) -> None:
        w = self.windows
        fields = kind.FIELDS
        for name, stat, args, doc in specs:
            if stat == "total":
                i = fields.index(args[0])
                value = float(sum(w.members[m].values()[i] for m in members))
            elif stat == "rate":
                grew, oldest = w.increase(members, fields.index(args[0]), now_ms)
                value = grew / w.span_s(oldest, now_ms)
            else:
                n, _ = w.increase(members, fields.index(args[1]), now_ms)
                if not n:
                    value = NAN
                elif stat == "avg":
                    value = w.increase(members, fields.index(args[0]), now_ms)[0] / n
                else:
                    value = w.largest(members, kind.MAXES.index(args[0]), now_ms)
            out[MetricName(group, name, tags, doc)] = value


__all__ = [
    "Counters",
    "MetricName",
    "NodeCounters",
    "ProducerCounters",
    "ProducerMetrics",
    "TopicCounters",
    "Windows",
    "catalogue",
]
