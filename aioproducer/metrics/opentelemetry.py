"""Producers' metrics as OpenTelemetry observable instruments (``pip install aioproducer[otel]``).

::

    from aioproducer.metrics.opentelemetry import ProducerInstruments

    instruments = ProducerInstruments(producer)  # the global MeterProvider, or meter_provider=

Every metric of ``producer.metrics()`` is an instrument of the meter ``aioproducer``, named
like the Prometheus export with dots: ``kafka.producer.record_send_rate``,
``kafka.producer.topic.byte_total``, ``kafka.producer.node.request_latency_avg``,
``aioproducer.batches_queued``. Java's ``-total`` metrics are observable counters, the rest
observable gauges; tags are attributes (``client-id``, ``topic``, ``node-id``). An average or
maximum over an empty window (NaN in ``metrics()``) is not observed. The values are read once
per collection, whatever the number of instruments.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any

from .._core.metrics import MetricName
from .._gauges import catalogue
from .._version import __version__
from ._export import Producers, exported_name, is_counter
from ._otel import CallbackOptions, MeterProvider, Observation
from ._otel import metrics as otel_metrics

if TYPE_CHECKING:
    from ..producer import Producer


class ProducerInstruments(Producers):
    """Registers the instruments on creation; :meth:`add` and :meth:`remove` producers."""

    def __init__(
        self,
        producers: Producer | Iterable[Producer] = (),
        meter_provider: MeterProvider | None = None,
    ) -> None:
        super().__init__(producers)
        meter = otel_metrics.get_meter("aioproducer", __version__, meter_provider)
        # One snapshot per collection: taken by the first instrument that asks, reused until
        # an instrument asks a second time (the next collection).
        self._values: dict[tuple[str, str], list[tuple[dict[str, str], float]]] = {}
        self._served: set[tuple[str, str]] = set()
        self.instruments: list[Any] = []
        for group, name, doc in catalogue():
            key = MetricName(group, name)
            create = (
                meter.create_observable_counter
                if is_counter(key)
                else meter.create_observable_gauge
            )
            self.instruments.append(
                create(
                    exported_name(key, "."),
                    callbacks=[partial(self._observe, (group, name))],
                    description=doc,
                )
            )

    def _observe(self, which: tuple[str, str], options: CallbackOptions) -> Iterator[Observation]:
        if which in self._served or not self._served:
            values: dict[tuple[str, str], list[tuple[dict[str, str], float]]] = {}
            for k, v in self.snapshot():
                values.setdefault((k.group, k.name), []).append((dict(k.tags), v))
            self._values = values
            self._served = set()
        self._served.add(which)
        for tags, value in self._values.get(which, ()):
            if value == value:  # not NaN
                yield Observation(value, tags)


__all__ = ("ProducerInstruments",)
