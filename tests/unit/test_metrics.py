"""Metrics with the Java producer's names: the sensors' windowed statistics (time as an
argument), what the sender records per request and per response (a scripted broker
connection, a fake clock), and ``Producer.metrics()`` on the simulated cluster."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aioproducer import Producer, ProducerConfig
from aioproducer._core.cluster import TopicPartition
from aioproducer._core.metrics import Counters, MetricName, ProducerMetrics, Windows, tally_py
from aioproducer._core.producer_batch import ProducerBatch
from aioproducer._records.reader import BATCH_OVERHEAD
from aioproducer.errors import ConfigError
from aioproducer.metrics import as_dict, value_of
from tests.sim.scenario import run
from tests.sim.script import Answer, Reply, on_request
from tests.sim.world import World

from .sending import PLAIN, sends

# -- sensors ------------------------------------------------------------------------------------


class Sample(Counters):
    FIELDS = ("n", "total")
    MAXES = ("top",)
    __slots__ = FIELDS + MAXES

    n: int
    total: int
    top: float


def record(c: Sample, value: int) -> None:
    c.n += 1
    c.total += value
    if value > c.top:
        c.top = value


def test_windows_give_javas_rate_avg_and_max_over_the_samples_kept() -> None:
    w = Windows(window_ms=1000, samples=2)
    c = Sample()
    w.add(c)
    assert w.increase([0], 1, 0) == (0.0, 0) and w.largest([0], 0, 0) == -math.inf
    record(c, 10)  # before the first window: taken in by it
    w.roll(0)
    record(c, 30)
    total, oldest = w.increase([0], 1, 500)
    # Java's Rate: the span is at least (samples - 1) windows, so 40 over 1 s, not 0.5 s.
    assert (total, oldest) == (40, 0) and total / w.span_s(oldest, 500) == 40.0
    assert w.largest([0], 0, 500) == 30
    assert w.roll_at == 1000
    w.roll(1200)  # the first event after the window's end closes it
    record(c, 5)
    total, oldest = w.increase([0], 1, 1200)
    assert total == 45 and total / w.span_s(oldest, 1200) == pytest.approx(45 / 1.2)
    assert w.increase([0], 0, 1200)[0] == 3 and w.largest([0], 0, 1200) == 30
    # Two windows later the first no longer counts; the counters themselves never reset.
    assert w.increase([0], 1, 2100) == (5, 1200) and w.largest([0], 0, 2100) == 5
    assert w.increase([0], 1, 5000) == (0.0, 5000) and w.largest([0], 0, 5000) == -math.inf
    assert (c.n, c.total) == (3, 45)
    # A counter made later is zero before it was made, in every window.
    late = Sample()
    w.add(late)
    record(late, 7)
    assert w.increase([0, 1], 1, 1300) == (52, 0)
    assert w.increase([0, 1], 1, 2100) == (12, 1200)


def test_an_average_or_max_over_nothing_is_nan_a_rate_zero() -> None:
    m = ProducerMetrics("c", 1000, 2)
    out = m.snapshot(0, [])
    assert math.isnan(value_of(out, "request-latency-avg"))
    assert math.isnan(value_of(out, "batch-size-max"))
    assert value_of(out, "record-send-rate") == 0.0 and value_of(out, "record-send-total") == 0
    m.produce_response(3, 25, 0)
    out = m.snapshot(10, [])
    assert value_of(out, "request-latency-avg") == 25 == value_of(out, "request-latency-max")
    assert value_of(out, "request-latency-max", "producer-node-metrics", node_id="node-3") == 25
    assert value_of(out, "produce-throttle-time-avg") == 0


def test_metric_name_is_group_name_and_tags_like_javas() -> None:
    a = MetricName("producer-metrics", "record-send-rate", {"client-id": "c"}, "doc")
    b = MetricName("producer-metrics", "record-send-rate", {"client-id": "c"})
    assert a == b and hash(a) == hash(b) and {a: 1}[b] == 1  # the description does not count
    assert a != MetricName("producer-metrics", "record-send-rate", {"client-id": "d"})
    assert a.tags == {"client-id": "c"} and "record-send-rate" in repr(a)
    with pytest.raises(AttributeError):
        a.name = "x"


def test_value_of_names_what_it_did_not_find() -> None:
    m = {
        MetricName("producer-topic-metrics", "byte-total", {"client-id": "c", "topic": t}): 1.0
        for t in ("a", "b")
    }
    assert value_of(m, "byte-total", "producer-topic-metrics", topic="b") == 1.0
    with pytest.raises(KeyError, match="2 metrics named 'byte-total'"):
        value_of(m, "byte-total", "producer-topic-metrics")
    with pytest.raises(KeyError, match="known: byte-total"):
        value_of(m, "record-send-rate")


def test_as_dict_is_plain_json_by_group_and_tag() -> None:
    import json

    m = {
        MetricName("producer-metrics", "record-send-total", {"client-id": "c"}): 3.0,
        MetricName("producer-metrics", "request-latency-avg", {"client-id": "c"}): math.nan,
        MetricName("producer-topic-metrics", "byte-total", {"client-id": "c", "topic": "a"}): 7.0,
        MetricName(
            "producer-node-metrics", "request-total", {"client-id": "c", "node-id": "node-1"}
        ): 2.0,
    }
    out = as_dict(m)
    assert out == {
        "producer-metrics": {"record-send-total": 3.0, "request-latency-avg": None},
        "producer-topic-metrics": {"a": {"byte-total": 7.0}},
        "producer-node-metrics": {"node-1": {"request-total": 2.0}},
    }
    assert json.loads(json.dumps(out, allow_nan=False)) == out


def test_metrics_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="metrics_sample_window_ms"):
        ProducerConfig(metrics_sample_window_ms=0)
    with pytest.raises(ConfigError, match="metrics_num_samples"):
        ProducerConfig(metrics_num_samples="2")  # type: ignore[arg-type]


# -- what the sender records (the simulated cluster, one scripted answer) ----------------------


def test_a_request_records_its_batches_once_and_its_latency() -> None:
    r = sends([], [b"v0", b"v1", b"v2"], **PLAIN)
    m = r.metrics
    [req] = r.world.cluster.produce_seen
    assert req.answered_at is not None
    assert value_of(m, "record-send-total") == 3
    assert value_of(m, "records-per-request-avg") == 3
    assert value_of(m, "record-send-total", "producer-topic-metrics", topic="t0") == 3
    size = value_of(m, "byte-total", "producer-topic-metrics", topic="t0")
    assert value_of(m, "batch-size-avg") == value_of(m, "batch-size-max") == size > 61
    assert value_of(m, "compression-rate-avg") == 1.0  # uncompressed
    assert value_of(m, "record-size-avg") == value_of(m, "record-size-max") == (size - 61) / 3
    assert value_of(m, "record-queue-time-max") >= 0
    # The producer waits at least as long as the broker took to answer, plus the links.
    latency = value_of(m, "request-latency-max")
    assert latency == value_of(m, "request-latency-avg") >= (req.answered_at - req.at) * 1000
    node = f"node-{req.broker}"
    assert value_of(m, "request-latency-max", "producer-node-metrics", node_id=node) == latency
    assert value_of(m, "produce-throttle-time-max") == 0
    assert value_of(m, "record-error-total") == value_of(m, "record-retry-total") == 0


def test_retries_and_errors_count_records_per_batch() -> None:
    rules = [
        on_request(0, Reply({("t0", 0): Answer(error=6)})),  # NOT_LEADER_OR_FOLLOWER: retried
        on_request(1, Reply({("t0", 0): Answer(error=87)})),  # INVALID_RECORD: fails
    ]
    r = sends(rules, [b"r0", b"r1"], **{**PLAIN, "linger_ms": 20})
    m = r.metrics
    assert [len(b.values) for q in r.world.cluster.produce_seen for b in q.batches] == [2, 2]
    assert value_of(m, "record-retry-total") == 2
    assert value_of(m, "record-retry-total", "producer-topic-metrics", topic="t0") == 2
    assert value_of(m, "record-error-total") == 2
    assert value_of(m, "record-error-total", "producer-topic-metrics", topic="t0") == 2
    # Sent twice: the retry is sent (and counted) again, as in Java.
    assert value_of(m, "record-send-total") == 4


def test_a_split_is_counted() -> None:
    """The scenario of test_sender's split test: a compressed batch refused as too large."""
    values = [b"%02d" % i + b"x" * 38 for i in range(10)]
    warm_up = [[b"%02d" % i + b"y" * 400] for i in range(30)]
    rule = on_request(30, Reply({("t0", 0): Answer(error=10)}))
    config = dict(batch_size=480, compression_type="gzip", linger_ms=50)
    r = sends([rule], *warm_up, values, **{**PLAIN, **config})
    assert value_of(r.metrics, "batch-split-total") == 1
    assert 0 < value_of(r.metrics, "compression-rate-avg") < 1  # gzip of repeated bytes


# -- Producer.metrics() -------------------------------------------------------------------------

#: The Java producer's metrics that Producer.metrics() reports, by group.
JAVA_PRODUCER_METRICS = {
    "batch-size-avg",
    "batch-size-max",
    "batch-split-rate",
    "batch-split-total",
    "buffer-available-bytes",
    "buffer-exhausted-total",
    "buffer-total-bytes",
    "bufferpool-wait-time-ns-total",
    "compression-rate-avg",
    "connection-close-rate",
    "connection-close-total",
    "connection-count",
    "connection-creation-rate",
    "connection-creation-total",
    "flush-time-ns-total",
    "metadata-wait-time-ns-total",
    "incoming-byte-rate",
    "incoming-byte-total",
    "metadata-age",
    "outgoing-byte-rate",
    "outgoing-byte-total",
    "produce-throttle-time-avg",
    "produce-throttle-time-max",
    "record-error-rate",
    "record-error-total",
    "record-queue-time-avg",
    "record-queue-time-max",
    "record-retry-rate",
    "record-retry-total",
    "record-send-rate",
    "record-send-total",
    "record-size-avg",
    "record-size-max",
    "records-per-request-avg",
    "request-latency-avg",
    "request-latency-max",
    "request-rate",
    "request-size-avg",
    "request-size-max",
    "request-total",
    "requests-in-flight",
    "response-rate",
    "response-total",
    "waiting-threads",
}
JAVA_TOPIC_METRICS = {
    "byte-rate",
    "byte-total",
    "compression-rate",
    "record-error-rate",
    "record-error-total",
    "record-retry-rate",
    "record-retry-total",
    "record-send-rate",
    "record-send-total",
}
JAVA_NODE_METRICS = {
    "incoming-byte-rate",
    "incoming-byte-total",
    "outgoing-byte-rate",
    "outgoing-byte-total",
    "request-latency-avg",
    "request-latency-max",
    "request-rate",
    "request-size-avg",
    "request-size-max",
    "request-total",
    "response-rate",
    "response-total",
}


def test_producer_metrics_have_javas_names_groups_and_tags() -> None:
    seen: dict[str, Any] = {}

    async def body(p: Producer, w: World) -> None:
        for i in range(50):
            await p.send("t0", b"%d" % i, partition=i % 3)
        await p.flush()
        seen["m"] = p.metrics()
        seen["client"] = p.config.client_id

    run(body)
    m: dict[MetricName, float] = seen["m"]
    client = seen["client"]
    groups: dict[str, set[str]] = {}
    for k in m:
        groups.setdefault(k.group, set()).add(k.name)
        assert k.tags["client-id"] == client
        if k.group == "producer-topic-metrics":
            assert set(k.tags) == {"client-id", "topic"}
        if k.group == "producer-node-metrics":
            assert set(k.tags) == {"client-id", "node-id"} and k.tags["node-id"].startswith("node-")
    assert groups["producer-metrics"] == JAVA_PRODUCER_METRICS
    assert groups["producer-topic-metrics"] == JAVA_TOPIC_METRICS
    assert groups["producer-node-metrics"] == JAVA_NODE_METRICS
    assert groups["aioproducer-metrics"] == {
        "batches-queued",
        "batches-incomplete",
        "metadata-version",
    }
    assert value_of(m, "record-send-total") == 50
    assert value_of(m, "record-send-total", "producer-topic-metrics", topic="t0") == 50
    assert value_of(m, "connection-count") >= 1
    assert value_of(m, "connection-creation-total") >= value_of(m, "connection-count")
    # Every byte the brokers answered is counted, per node and in all.
    nodes = [k for k in m if k.group == "producer-node-metrics" and k.name == "incoming-byte-total"]
    assert value_of(m, "incoming-byte-total") == sum(m[k] for k in nodes) > 0
    assert value_of(m, "outgoing-byte-total") > 0 and value_of(m, "request-total") >= 3
    assert value_of(m, "response-total") >= value_of(m, "request-total") - value_of(
        m, "requests-in-flight"
    )
    assert 0 <= value_of(m, "metadata-age") < 300
    assert value_of(m, "flush-time-ns-total") > 0  # flush() waited for the batches
    assert value_of(m, "metadata-wait-time-ns-total") > 0  # the first send asked for t0
    assert value_of(m, "batches-incomplete", "aioproducer-metrics") == 0


def test_repr_shows_bootstrap_client_state_and_queued_records_never_a_secret() -> None:
    p = Producer(
        bootstrap_servers="127.0.0.1:9092",
        client_id="svc",
        security_protocol="SASL_SSL",
        sasl_plain_username="user",
        sasl_plain_password="s3cret-pw",
    )
    assert value_of(p.metrics(), "connection-count") == 0  # before start() too
    r = repr(p)
    assert r == "<Producer bootstrap='127.0.0.1:9092' client_id='svc' state=new queued_records=0>"
    assert "s3cret" not in r
    seen: list[str] = []

    async def body(p: Producer, w: World) -> None:
        for i in range(7):
            await p.send("t0", b"%d" % i, partition=0)
        seen.append(repr(p))

    w = run(body, linger_ms=60_000)
    assert "state=running queued_records=7" in seen[0]
    assert "state=closed queued_records=0" in repr(w.producer)


def test_every_recording_level_records_every_metric_as_java_does() -> None:
    """Java 4.x records every producer sensor (``producer-node-metrics`` too) at INFO: the
    level chosen changes nothing that is reported; a level Java lacks is refused."""
    seen: dict[str, dict[MetricName, float]] = {}

    for level in ("INFO", "DEBUG", "TRACE"):

        async def body(p: Producer, w: World, level: str = level) -> None:
            for i in range(6):
                await p.send("t0", b"%d" % i, partition=i % 3)
            await p.flush()
            seen[level] = p.metrics()

        run(body, metrics_recording_level=level)

    # The tags but the client id (sorted first), which differs per producer.
    def named(m: dict[MetricName, float]) -> set[tuple[object, ...]]:
        return {(k.group, k.name, *sorted(k.tags.items())[1:]) for k in m}

    names = {lv: named(m) for lv, m in seen.items()}
    assert names["INFO"] == names["DEBUG"] == names["TRACE"]
    for m in seen.values():
        assert value_of(m, "record-send-total") == 6
        nodes = [k for k in m if k.group == "producer-node-metrics" and k.name == "request-total"]
        assert nodes and sum(m[k] for k in nodes) == value_of(m, "request-total") >= 1
    with pytest.raises(ConfigError, match="metrics_recording_level"):
        ProducerConfig(metrics_recording_level="WARN")  # type: ignore[arg-type]
    props = ProducerConfig.from_properties({"metrics.recording.level": "DEBUG"})
    assert props.metrics_recording_level == "DEBUG"


_TOPICS = st.sampled_from(["a", "b", "é-topic"])


@settings(max_examples=60, deadline=None)
@given(
    codec=st.sampled_from(["none", "gzip", "lz4"]),
    shapes=st.lists(
        st.tuples(_TOPICS, st.lists(st.binary(max_size=300), max_size=12), st.booleans()),
        min_size=1,
        max_size=8,
    ),
    now=st.integers(0, 10_000),
)
def test_the_compiled_tally_counts_a_request_as_the_python_one(
    codec: str, shapes: list[tuple[str, list[bytes], bool]], now: int
) -> None:
    """ProducerMetrics.request_sent's per-batch pass is compiled (``tally_batches``): it gives
    exactly what its pure twin gives, sealed or not, compressed or not, over runs of topics and
    empty batches; both builders (compiled and pure) are read."""
    from aioproducer._records import record_batch

    if record_batch.CRecordBatchBuilder is None:
        pytest.fail("the compiled record buffer (aioproducer/_records/_speedups.c) is not built")
    from aioproducer._records import _speedups

    completion: Any = None  # never fired here
    for cls in (record_batch.CRecordBatchBuilder, record_batch.PyRecordBatchBuilder):
        batches = []
        for i, (topic, values, sealed) in enumerate(shapes):
            builder: Any = cls(codec, 16384, 1 << 20)
            pb = ProducerBatch(TopicPartition(topic, i), builder, completion, i, 0)
            for v in values:
                pb.try_append(5, None, v, None, None)
            if sealed and values:
                pb.builder.seal()
            batches.append(pb)
        compressed = codec != "none"
        assert _speedups.tally_batches(batches, now, compressed, BATCH_OVERHEAD) == tally_py(
            batches, now, compressed, BATCH_OVERHEAD
        )
