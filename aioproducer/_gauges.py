"""``Producer.metrics()``: the sensors' statistics plus the gauges read from the producer's
parts at the time of the call (buffer memory, connections, requests in flight, metadata age).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._core import metrics as _metrics
from ._core.metrics import MetricName, ProducerMetrics

if TYPE_CHECKING:
    from ._core.accumulator import RecordAccumulator
    from ._core.cluster import Metadata
    from ._core.memory import MemoryPool
    from ._io.sender import Sender

#: Java's gauges in ``producer-metrics``, read at the time of the call.
GAUGES = {
    "buffer-total-bytes": "the buffer memory the producer may use",
    "buffer-available-bytes": "buffer memory not in use",
    "waiting-threads": "sends waiting for buffer memory",
    "bufferpool-wait-time-ns-total": "time sends waited for buffer memory (ns)",
    "buffer-exhausted-total": "sends that timed out waiting for buffer memory",
    "requests-in-flight": "requests sent and not yet answered",
    "connection-count": "open connections to brokers",
    "metadata-age": "age of the cluster metadata in use (s)",
}
#: Ours, not Java's: in a group of their own.
OURS = {
    "batches-queued": "batches in the accumulator",
    "batches-incomplete": "batches not yet completed (queued or in flight)",
    "metadata-version": "successful metadata updates",
}


def catalogue() -> list[tuple[str, str, str]]:
    """(group, name, description) of every metric ``Producer.metrics()`` may report."""
    return [
        *_metrics.catalogue(),
        *(("producer-metrics", n, d) for n, d in GAUGES.items()),
        *(("aioproducer-metrics", n, d) for n, d in OURS.items()),
    ]


def snapshot(
    metrics: ProducerMetrics,
    pool: MemoryPool,
    acc: RecordAccumulator | None,
    sender: Sender | None,
    metadata: Metadata,
    now: int,
) -> dict[MetricName, float]:
    """``{MetricName: value}`` at ``now`` (loop time, ms)."""
    refreshed = metadata.last_refresh_ms
    conns = sender.connections if sender is not None else {}
    values = {
        "buffer-total-bytes": pool.total,
        "buffer-available-bytes": pool.available,
        "waiting-threads": pool.queued,
        "bufferpool-wait-time-ns-total": pool.wait_time_ns_total,
        "buffer-exhausted-total": pool.exhausted_total,
        "requests-in-flight": sum(c.in_flight for c in conns.values()),
        "connection-count": len(conns),
        "metadata-age": (now - refreshed) / 1000 if refreshed >= 0 else 0.0,
    }
    out = metrics.snapshot(now, ((n, v, GAUGES[n]) for n, v in values.items()))
    tags = {"client-id": metrics.client_id}
    ours = {
        "batches-queued": sum(len(d) for d in acc.batches.values()) if acc is not None else 0,
        "batches-incomplete": len(acc.incomplete) if acc is not None else 0,
        "metadata-version": metadata.version,
    }
    for name, value in ours.items():
        out[MetricName("aioproducer-metrics", name, tags, OURS[name])] = float(value)
    return out


__all__ = ["GAUGES", "OURS", "catalogue", "snapshot"]
