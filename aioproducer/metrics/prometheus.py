"""A Prometheus collector of producers' metrics (``pip install aioproducer[prometheus]``).

::

    from prometheus_client import REGISTRY
    from aioproducer.metrics.prometheus import ProducerCollector

    collector = ProducerCollector(producer)  # or ProducerCollector() then .add(producer)
    REGISTRY.register(collector)

Each scrape reads ``producer.metrics()``: ``kafka_producer_record_send_rate{client_id="..."}``,
``kafka_producer_topic_record_send_total{client_id="...",topic="..."}``,
``kafka_producer_node_request_latency_avg{client_id="...",node_id="node-1"}``, ... (names in
:mod:`aioproducer.metrics._export`). Java's ``-total`` metrics are counters; the rest gauges.
One collector serves any number of producers (their ``client_id`` tells them apart): register
one collector, not one per producer, or the registry sees the same names twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from ._export import Producers, exported_name, is_counter, label, missing_extra

try:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
    from prometheus_client.registry import Collector
except ImportError as exc:  # pragma: no cover - the message is the point
    raise missing_extra(__name__, "prometheus-client", "prometheus") from exc

if TYPE_CHECKING:
    from ..producer import Producer


class ProducerCollector(Producers, Collector):
    """Exposes the metrics of the producers it is given (see the module's docstring)."""

    def __init__(self, producers: Producer | Iterable[Producer] = ()) -> None:
        Producers.__init__(self, producers)

    def describe(self) -> Iterable[Metric]:
        # Nothing up front: the names depend on the topics and brokers seen, so the registry
        # must not collect (and freeze them) at registration.
        return []

    def collect(self) -> Iterator[Metric]:
        families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {}
        for key, value in self.snapshot():
            name = exported_name(key)
            labels = sorted(key.tags)
            fam = families.get(name)
            if fam is None:
                doc = key.description or key.name
                names = [label(t) for t in labels]
                if is_counter(key):
                    fam = CounterMetricFamily(name.removesuffix("_total"), doc, labels=names)
                else:
                    fam = GaugeMetricFamily(name, doc, labels=names)
                families[name] = fam
            fam.add_metric([key.tags[t] for t in labels], value)
        yield from families.values()


__all__ = ("ProducerCollector",)
