"""OTLP ``MetricsData`` (opentelemetry-proto ``metrics/v1``) in protobuf, the subset KIP-714's
pushes need: one resource with string attributes, one scope, and gauges and sums of single
double points with string attributes. Written by hand: a few varints and length prefixes
spare a protobuf dependency.

The field numbers are those of ``opentelemetry/proto/metrics/v1/metrics.proto``,
``resource/v1/resource.proto`` and ``common/v1/common.proto``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .._protocol._primitives import write_uvarint

#: ``AggregationTemporality``.
DELTA, CUMULATIVE = 1, 2

_LEN, _I64 = 2, 1  # wire types
_double = struct.Struct("<d").pack
_fixed64 = struct.Struct("<Q").pack


@dataclass(frozen=True, slots=True)
class Point:
    """One metric's one data point: a gauge, or a monotonic sum of ``temporality``."""

    name: str
    value: float
    attributes: Mapping[str, str]
    time_ns: int
    #: Sums only: since when the sum counts (0: unset, as a gauge's).
    start_ns: int = 0
    #: None: a gauge; else a monotonic sum, ``DELTA`` or ``CUMULATIVE``.
    temporality: int | None = None
    description: str = ""


def _varint(n: int) -> bytes:
    out = bytearray()
    write_uvarint(out, n)  # protobuf's varint is Kafka's unsigned one
    return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _nested(field: int, body: bytes) -> bytes:
    """A length-delimited field: a sub-message, a string or bytes."""
    return _key(field, _LEN) + _varint(len(body)) + body


def _string(field: int, text: str) -> bytes:
    return _nested(field, text.encode()) if text else b""


def _attributes(field: int, attrs: Mapping[str, str]) -> bytes:
    """``repeated KeyValue`` (key 1, ``AnyValue`` 2 with its ``string_value`` 1)."""
    return b"".join(
        _nested(field, _string(1, k) + _nested(2, _string(1, v))) for k, v in attrs.items()
    )


def _data_point(p: Point) -> bytes:
    """``NumberDataPoint``: start (2) and time (3) as fixed64, ``as_double`` (4),
    attributes (7)."""
    out = b""
    if p.start_ns:
        out += _key(2, _I64) + _fixed64(p.start_ns)
    out += _key(3, _I64) + _fixed64(p.time_ns)
    out += _key(4, _I64) + _double(p.value)
    return out + _attributes(7, p.attributes)


def _metric(p: Point) -> bytes:
    """``Metric``: name (1), description (2), ``gauge`` (5) or ``sum`` (7, with its
    temporality 2 and ``is_monotonic`` 3)."""
    point = _nested(1, _data_point(p))
    if p.temporality is None:
        data = _nested(5, point)
    else:
        data = _nested(7, point + _key(2, 0) + _varint(p.temporality) + _key(3, 0) + b"\x01")
    return _string(1, p.name) + _string(2, p.description) + data


def metrics_data(
    points: Iterable[Point],
    resource: Mapping[str, str],
    scope: str,
    scope_version: str,
) -> bytes:
    """``MetricsData`` with one ``ResourceMetrics`` (resource 1, scope metrics 2) holding one
    ``ScopeMetrics`` (``InstrumentationScope`` 1 with name 1 and version 2; metrics 2)."""
    metrics = b"".join(_nested(2, _metric(p)) for p in points)
    scope_metrics = _nested(1, _string(1, scope) + _string(2, scope_version)) + metrics
    resource_metrics = _nested(1, _attributes(1, resource)) + _nested(2, scope_metrics)
    return _nested(1, resource_metrics)


__all__ = ["CUMULATIVE", "DELTA", "Point", "metrics_data"]
