"""The batches out of the accumulator and not yet answered."""

from __future__ import annotations

from collections.abc import Iterable

from .cluster import TopicPartition
from .producer_batch import ProducerBatch


class InFlightBatches(dict[ProducerBatch, None]):
    """Batches out of the accumulator and not yet answered, in the order they left it (a dict,
    so iterating is deterministic for a given run; truth, length and membership stay C-level
    operations on the hot path). With ``counting``, also a count per partition (for the
    one-in-flight ordering rule without idempotence)."""

    __slots__ = ("counting", "per_partition")

    def __init__(self, counting: bool) -> None:
        super().__init__()
        self.counting = counting
        self.per_partition: dict[TopicPartition, int] = {}

    def add(self, batches: Iterable[ProducerBatch]) -> None:
        if not self.counting:
            self.update(dict.fromkeys(batches))
            return
        counts = self.per_partition
        for b in batches:
            if b not in self:
                self[b] = None
                counts[b.tp] = counts.get(b.tp, 0) + 1

    def remove(self, batch: ProducerBatch) -> None:
        if self.pop(batch, 0) is None and self.counting:
            counts = self.per_partition
            n = counts[batch.tp] - 1
            if n:
                counts[batch.tp] = n
            else:
                del counts[batch.tp]

    def remove_all(self, batches: Iterable[ProducerBatch]) -> None:
        if not self.counting:
            pop = self.pop
            for b in batches:
                pop(b, None)
            return
        for b in batches:
            self.remove(b)


__all__ = ["InFlightBatches"]
