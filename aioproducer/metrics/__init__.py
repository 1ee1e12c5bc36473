"""The producer's metrics, named as the Java producer names them.

``producer.metrics()`` returns ``{MetricName: float}``. A :class:`MetricName` is Java's:
a ``group`` (``producer-metrics``, ``producer-topic-metrics``, ``producer-node-metrics``, and
``aioproducer-metrics`` for the few of our own), a ``name`` (``record-send-rate``,
``request-latency-avg``, ...) and ``tags`` (``client-id``, and ``topic`` or ``node-id``)::

    from aioproducer.metrics import value_of

    m = producer.metrics()
    value_of(m, "record-send-total")
    value_of(m, "record-send-rate", "producer-topic-metrics", topic="events")

Exporters: :mod:`aioproducer.metrics.prometheus` (extra ``prometheus``) and
:mod:`aioproducer.metrics.opentelemetry` (extra ``otel``); tracing:
:mod:`aioproducer.metrics.tracing` (extra ``otel``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._core.metrics import MetricName
from .._public import publish as _publish


def value_of(
    metrics: Mapping[MetricName, float],
    name: str,
    group: str = "producer-metrics",
    **tags: str,
) -> float:
    """The value of the one metric called ``name`` in ``group`` whose tags include ``tags``
    (a keyword's ``_`` stands for ``-``: ``node_id="node-1"``). Raises :class:`KeyError`
    naming what matched when none or several do."""
    want = {k.replace("_", "-"): v for k, v in tags.items()}
    found = [
        v
        for k, v in metrics.items()
        if k.name == name
        and k.group == group
        and all(k.tags.get(t) == value for t, value in want.items())
    ]
    if len(found) != 1:
        raise KeyError(
            f"{len(found)} metrics named {name!r} in group {group!r} with tags {want}"
            + ("" if found else "; known: " + ", ".join(sorted({k.name for k in metrics})))
        )
    return found[0]


def as_dict(metrics: Mapping[MetricName, float]) -> dict[str, Any]:
    """``metrics`` as plain JSON (a health endpoint's): ``{group: {name: value}}``, with the
    per-topic and per-node groups one level deeper, by topic or node id
    (``{"producer-topic-metrics": {"events": {"record-send-rate": 12.5, ...}}}``); the
    ``client-id`` tag is left out, and NaN (an average over nothing) is None."""
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        group = out.setdefault(key.group, {})
        rest = sorted((k, v) for k, v in key.tags.items() if k != "client-id")
        for _, tag in rest:
            group = group.setdefault(tag, {})
        group[key.name] = None if value != value else value
    return out


_publish(MetricName, __name__)

__all__ = ("MetricName", "as_dict", "value_of")
