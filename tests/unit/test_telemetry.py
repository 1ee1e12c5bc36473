"""KIP-714 client metrics, the sans-IO parts: the OTLP encoder (read back with the
opentelemetry-proto classes, protobuf's own decoder), KIP-714's names, the payload a
subscription selects, and the subscription state machine with time as an argument."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from opentelemetry.proto.metrics.v1 import metrics_pb2

from aioproducer._core.metrics import MetricName
from aioproducer._core.otlp import CUMULATIVE, DELTA, Point, metrics_data
from aioproducer._core.telemetry import (
    DEFAULT_INTERVAL_MS,
    OFF,
    State,
    Subscription,
    TelemetryState,
    compression_for,
    subscription_from,
    telemetry_name,
)

ID = uuid.UUID("12345678-1234-5678-1234-567812345678")


def decode(data: bytes) -> metrics_pb2.MetricsData:
    out = metrics_pb2.MetricsData()
    out.ParseFromString(data)
    return out


def attrs(kvs: object) -> dict[str, str]:
    return {kv.key: kv.value.string_value for kv in kvs}  # type: ignore[attr-defined]


# -- the encoder --------------------------------------------------------------------------------


def test_gauges_and_sums_read_back_with_protobufs_own_decoder() -> None:
    t = 1_700_000_000_123_000_000
    points = [
        Point("a.gauge", 2.5, {"topic": "t0", "node_id": "node-1"}, t, description="a gauge"),
        Point("a.sum", 1e12 + 0.5, {}, t, t - 5_000_000_000, CUMULATIVE),
        Point("d.sum", -0.0, {"x": "ü"}, t, 17, DELTA),
        Point("nan", float("nan"), {}, 1),
    ]
    md = decode(metrics_data(points, {"transactional_id": "tx-1"}, "aioproducer", "9.9"))
    assert len(md.resource_metrics) == 1
    rm = md.resource_metrics[0]
    assert attrs(rm.resource.attributes) == {"transactional_id": "tx-1"}
    (sm,) = rm.scope_metrics
    assert (sm.scope.name, sm.scope.version) == ("aioproducer", "9.9")
    g, s, d, n = sm.metrics
    assert g.WhichOneof("data") == "gauge" and g.name == "a.gauge" and g.description == "a gauge"
    (gp,) = g.gauge.data_points
    assert gp.as_double == 2.5 and gp.time_unix_nano == t and gp.start_time_unix_nano == 0
    assert attrs(gp.attributes) == {"topic": "t0", "node_id": "node-1"}
    assert s.WhichOneof("data") == "sum" and s.sum.is_monotonic
    assert s.sum.aggregation_temporality == metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
    (sp,) = s.sum.data_points
    assert sp.as_double == 1e12 + 0.5 and sp.start_time_unix_nano == t - 5_000_000_000
    assert d.sum.aggregation_temporality == metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
    assert d.sum.data_points[0].start_time_unix_nano == 17
    assert attrs(d.sum.data_points[0].attributes) == {"x": "ü"}
    assert n.gauge.data_points[0].as_double != n.gauge.data_points[0].as_double  # NaN


def test_an_empty_payload_is_valid_metrics_data() -> None:
    md = decode(metrics_data([], {}, "aioproducer", ""))
    assert len(md.resource_metrics) == 1 and not md.resource_metrics[0].scope_metrics[0].metrics


# -- names and the payload ----------------------------------------------------------------------


def test_kip_714_names() -> None:
    assert telemetry_name("producer-metrics", "record-send-rate") == (
        "org.apache.kafka.producer.record.send.rate"
    )
    assert telemetry_name("producer-topic-metrics", "byte-total") == (
        "org.apache.kafka.producer.topic.byte.total"
    )
    assert telemetry_name("producer-node-metrics", "request-latency-avg") == (
        "org.apache.kafka.producer.node.request.latency.avg"
    )


def sub(requested: tuple[str, ...] = ("",), delta: bool = False, **kw: object) -> Subscription:
    args: dict[str, object] = dict(
        instance_id=ID,
        subscription_id=7,
        interval_ms=1000,
        accepted=(4, 1),
        delta=delta,
        requested=requested,
        max_bytes=1 << 20,
    )
    args.update(kw)
    return subscription_from(**args)  # type: ignore[arg-type]


def snapshot(records: float, gauge: float) -> dict[MetricName, float]:
    base = {"client-id": "c1"}
    return {
        MetricName("producer-metrics", "record-send-total", base): records,
        MetricName("producer-metrics", "record-send-rate", base): gauge,
        MetricName("producer-topic-metrics", "byte-total", {**base, "topic": "t"}): 3 * records,
        MetricName("producer-node-metrics", "request-total", {**base, "node-id": "node-2"}): 1,
        MetricName("aioproducer-metrics", "batches-queued", base): 4,
    }


Seen = tuple[str, float, dict[str, str], int]


def points(state: TelemetryState, metrics: dict[MetricName, float], now: int) -> dict[str, Seen]:
    md = decode(state.payload(metrics, now, {}))
    out: dict[str, Seen] = {}
    for m in md.resource_metrics[0].scope_metrics[0].metrics:
        kind = m.WhichOneof("data")
        (p,) = getattr(m, kind).data_points
        out[m.name] = (kind, p.as_double, attrs(p.attributes), p.start_time_unix_nano)
    return out


def test_the_payload_holds_javas_metrics_the_subscription_selects() -> None:
    s = TelemetryState(0.5, start_ms=1000)
    prefixes = ("org.apache.kafka.producer.record", "org.apache.kafka.producer.n")
    s.on_subscription(0, 0, sub(prefixes))
    got = points(s, snapshot(10, 2.5), 5000)
    assert got == {
        "org.apache.kafka.producer.record.send.total": ("sum", 10.0, {}, 1_000_000_000),
        "org.apache.kafka.producer.record.send.rate": ("gauge", 2.5, {}, 0),
        "org.apache.kafka.producer.node.request.total": (
            "sum",
            1.0,
            {"node_id": "node-2"},
            1_000_000_000,
        ),
    }
    s.on_subscription(0, 0, sub())  # everything Java names; never our own group
    got = points(s, snapshot(10, 2.5), 5000)
    assert len(got) == 4 and got["org.apache.kafka.producer.topic.byte.total"] == (
        "sum",
        30.0,
        {"topic": "t"},
        1_000_000_000,
    )


def test_delta_temporality_pushes_the_increase_since_the_last_push() -> None:
    s = TelemetryState(0.5, start_ms=1000)
    s.on_subscription(0, 0, sub(("org.apache.kafka.producer.record.send",), delta=True))
    name = "org.apache.kafka.producer.record.send.total"
    assert points(s, snapshot(10, 1), 5000)[name] == ("sum", 10.0, {}, 1_000_000_000)
    assert points(s, snapshot(25, 1), 9000)[name] == ("sum", 15.0, {}, 5_000_000_000)
    # Back to cumulative, then delta again: the deltas start over from the whole value.
    s.on_subscription(0, 0, sub(("org.apache.kafka.producer.record.send",)))
    assert points(s, snapshot(30, 1), 9500)[name] == ("sum", 30.0, {}, 1_000_000_000)
    s.on_subscription(0, 0, sub(("org.apache.kafka.producer.record.send",), delta=True))
    assert points(s, snapshot(31, 1), 9600)[name][1] == 31.0


def test_the_brokers_preferred_codec_among_ours() -> None:
    assert compression_for([4, 1], [0, 1, 3, 4]) == 4
    assert compression_for([2, 3], [0, 1, 3, 4]) == 3  # snappy not installed
    assert compression_for([], [0, 1]) == 0


# -- the state machine --------------------------------------------------------------------------


def test_subscribe_then_push_at_the_jittered_then_the_plain_interval() -> None:
    s = TelemetryState(0.25)
    assert s.wait_ms(0) == 0 and s.client_instance_id.int == 0
    assert s.begin(0) is State.SUBSCRIPTION_IN_PROGRESS
    assert s.wait_ms(10) == OFF and s.begin(10) is None  # one request at a time
    s.on_subscription(100, 0, sub(interval_ms=10_000))
    assert s.client_instance_id == ID and s.state is State.PUSH_NEEDED
    assert s.wait_ms(100) == 7500  # 0.75 of the interval: Java's 0.5-1.5 jitter
    assert s.begin(7599) is None and s.begin(7600) is State.PUSH_IN_PROGRESS
    s.on_push(7700, 0)
    assert s.state is State.PUSH_NEEDED and s.wait_ms(7700) == 10_000


def test_unknown_subscription_id_refetches_at_once_with_our_instance_id() -> None:
    s = TelemetryState(0.5)
    s.begin(0)
    s.on_subscription(0, 0, sub())
    s.begin(1000)
    s.on_push(1100, 117)  # UNKNOWN_SUBSCRIPTION_ID
    assert s.state is State.SUBSCRIPTION_NEEDED and s.wait_ms(1100) == 0
    assert s.begin(1100) is State.SUBSCRIPTION_IN_PROGRESS and s.client_instance_id == ID
    # A later answer without an id keeps the one assigned.
    s.on_subscription(1200, 0, sub(instance_id=uuid.UUID(int=0), subscription_id=8))
    assert s.client_instance_id == ID and s.subscription and s.subscription.subscription_id == 8


@pytest.mark.parametrize("code", [42, 87, 35, 3])  # invalid request/record, version, other
def test_errors_that_a_retry_cannot_fix_turn_telemetry_off(code: int) -> None:
    s = TelemetryState(0.5)
    s.begin(0)
    s.on_subscription(0, 0, sub())
    s.begin(1000)
    s.on_push(1000, code)
    assert not s.enabled and s.wait_ms(10**9) == OFF and s.begin(10**9) is None


def test_too_large_or_throttled_retries_after_the_interval() -> None:
    for code in (118, 89):
        s = TelemetryState(0.5)
        s.begin(0)
        s.on_subscription(0, 0, sub(interval_ms=2000))
        s.begin(2000)
        s.on_push(2000, code)
        assert s.enabled and s.state is State.SUBSCRIPTION_NEEDED and s.wait_ms(2000) == 2000
    s = TelemetryState(0.5)
    s.begin(0)
    s.on_subscription(0, 89, None)  # no subscription yet: Java's default interval
    assert s.wait_ms(0) == DEFAULT_INTERVAL_MS


def test_no_metrics_asked_for_asks_again_after_the_interval() -> None:
    s = TelemetryState(0.5)
    s.begin(0)
    s.on_subscription(50, 0, sub(requested=(), interval_ms=3000))
    assert s.state is State.SUBSCRIPTION_NEEDED and s.wait_ms(50) == 3000
    assert not s.close()  # nothing subscribed: no terminating push
    assert s.state.name == "TERMINATED" and s.wait_ms(10**9) == OFF


def test_failures_retry_after_five_minutes_and_a_broker_without_the_api_stops_it() -> None:
    s = TelemetryState(0.5)
    s.begin(0)
    s.on_failure(10, unsupported=False)
    assert s.enabled and s.state is State.SUBSCRIPTION_NEEDED
    assert s.wait_ms(10) == DEFAULT_INTERVAL_MS
    s.on_failure(20, unsupported=True)
    assert not s.enabled and s.wait_ms(10**9) == OFF


def test_close_asks_for_one_terminating_push_and_ignores_late_answers() -> None:
    s = TelemetryState(0.5)
    s.begin(0)
    s.on_subscription(0, 0, sub())
    s.begin(1000)  # a push out when the producer closes
    assert s.close() and s.state is State.TERMINATING_PUSH_NEEDED and s.wait_ms(1000) == 0
    assert not s.close()  # once
    assert s.begin(1000) is State.TERMINATING_PUSH_IN_PROGRESS
    s.on_subscription(1001, 0, sub())  # late: ignored
    assert s.state.name == "TERMINATING_PUSH_IN_PROGRESS"
    s.on_push(1002, 0)
    assert s.state.name == "TERMINATED" and s.wait_ms(10**9) == OFF
    never = TelemetryState(0.5)
    assert not never.close() and never.state is State.TERMINATED


def test_the_sink_reader_skips_a_line_still_being_written(tmp_path: Path) -> None:
    """The broker plugin appends to the file while a test polls it: a half-written last line
    is read next time, not parsed now (it raised IndexError once in CI)."""
    from aioproducer.testing.telemetry_sink import read_pushes

    path = tmp_path / "pushes.tsv"
    path.write_text(
        "push\tc1\tsub\tfalse\n"
        "point\t0\torg.apache.kafka.producer.record.send.total\tsum\t3.0\tcumulative\t1\t\n"
        "point\t0\torg.apache.kafka.prod"
    )
    [push] = read_pushes(path)
    assert push.client_id == "c1" and len(push.points) == 1
