"""What the exporters share: the producers they read, each metric's exported name, and the
error naming the extra to install when an optional dependency is missing.

A Java metric ``record-send-rate`` of group ``producer-metrics`` is exported as
``kafka_producer_record_send_rate``; ``producer-topic-metrics`` as ``kafka_producer_topic_*``,
``producer-node-metrics`` as ``kafka_producer_node_*``, ours (``aioproducer-metrics``) as
``aioproducer_*``. Tags become labels (``client-id`` -> ``client_id``). A metric whose Java
name ends in ``-total`` is a counter (it never goes down); every other one is a gauge.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from .._core.metrics import MetricName

if TYPE_CHECKING:
    from ..producer import Producer

GROUP_PREFIX = {
    "producer-metrics": ("kafka", "producer"),
    "producer-topic-metrics": ("kafka", "producer", "topic"),
    "producer-node-metrics": ("kafka", "producer", "node"),
    "aioproducer-metrics": ("aioproducer",),
}


def exported_name(key: MetricName, sep: str = "_") -> str:
    """``kafka_producer_record_send_rate`` for ``producer-metrics`` / ``record-send-rate``
    (``kafka.producer.record_send_rate`` with ``sep="."``)."""
    prefix = GROUP_PREFIX.get(key.group) or (key.group.replace("-", "_"),)
    return sep.join((*prefix, key.name.replace("-", "_")))


def is_counter(key: MetricName) -> bool:
    return key.name.endswith("-total")


def label(tag: str) -> str:
    return tag.replace("-", "_")


def missing_extra(module: str, package: str, extra: str) -> ImportError:
    """The error of an optional module imported without its dependency, naming the extra
    that installs it (raise it ``from`` the original ImportError)."""
    return ImportError(f"{module}: {package} is not installed (pip install 'aioproducer[{extra}]')")


class Producers:
    """The producers an exporter reads: added and removed at any time (a closed producer
    still reports its last values until removed)."""

    def __init__(self, producers: Producer | Iterable[Producer] = ()) -> None:
        from ..producer import Producer

        self._producers: list[Producer] = (
            [producers] if isinstance(producers, Producer) else list(producers)
        )

    def add(self, producer: Producer) -> None:
        if producer not in self._producers:
            self._producers.append(producer)

    def remove(self, producer: Producer) -> None:
        self._producers.remove(producer)

    def snapshot(self) -> Iterator[tuple[MetricName, float]]:
        for p in list(self._producers):
            yield from p.metrics().items()


__all__ = ["GROUP_PREFIX", "Producers", "exported_name", "is_counter", "label", "missing_extra"]
