"""``ProducerLike``: the API :class:`~aioproducer.Producer` and
:class:`~aioproducer.testing.MockProducer` share, as one type (Java's ``Producer`` interface,
which ``KafkaProducer`` and ``MockProducer`` implement).

Annotate the code under test with it and pass either::

    async def publish_order(producer: ProducerLike, order: Order) -> None:
        await producer.send("orders", order.json(), key=order.id)

Both classes subclass it, so ``mypy --strict`` checks each against it where it is defined,
and a test compares their signatures parameter by parameter (tests/unit/test_producer_like.py).
The defaults below (``async with``, ``send_and_wait``, ``send_many``) are the ones a class
inherits unless it has a faster way; the real producer's ``send_and_wait`` skips the linger,
its ``send_many`` does the per-call work once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping, Sequence
from itertools import repeat
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from ._core.cluster import TopicPartition
from ._core.metrics import MetricName
from ._core.producer_batch import Callback, RecordFuture, RecordMetadata
from ._core.transactions import PreparedTxnState
from .errors import BadRecordError

if TYPE_CHECKING:
    from typing_extensions import Self

    from ._io.transactions import ConsumerGroupMetadata

#: What ``Producer.state`` may be (``MockProducer`` is never ``"closing"``, and ``"failed"``
#: only once fenced).
ProducerState = Literal["new", "running", "failed", "closing", "closed"]


@runtime_checkable
class ProducerLike(Protocol):
    """What code that produces needs of a producer: the lifecycle (``start``/``close`` or
    ``async with``), ``send``, ``send_and_wait``, ``send_many``, ``flush``, ``partitions_for``,
    ``state`` and ``metrics()``. :class:`~aioproducer.Producer` and
    :class:`~aioproducer.testing.MockProducer` implement it; the transaction methods are the
    real producer's only.

    ``send`` returns the record's future: a :class:`RecordFuture` from the real producer, an
    :class:`asyncio.Future` from the mock. Both implement the asyncio Future protocol
    (``await``, ``done()``, ``result()``, ``add_done_callback()``, ``cancel()``).
    """

    @property
    def state(self) -> ProducerState:
        """``"new"``, ``"running"``, ``"failed"``, ``"closing"`` or ``"closed"``."""
        ...

    async def start(self) -> None:
        """Connect (the real producer) and accept records."""
        ...

    async def close(self, timeout: float | None = None) -> None:
        """Deliver or fail every pending record, then refuse sends."""
        ...

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def send(
        self,
        topic: str,
        value: Any = None,
        key: Any = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Sequence[tuple[str, bytes | None]] | None = None,
        callback: Callback | None = None,
    ) -> RecordFuture | asyncio.Future[RecordMetadata]:
        """Buffer a record; returns its future, which resolves to its :class:`RecordMetadata`.
        ``callback(metadata, exception)`` is called when the record is acknowledged or fails."""
        ...

    async def send_and_wait(
        self,
        topic: str,
        value: Any = None,
        key: Any = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Sequence[tuple[str, bytes | None]] | None = None,
    ) -> RecordMetadata:
        """Send one record and wait for its acknowledgement."""
        return await (await self.send(topic, value, key, partition, timestamp_ms, headers))

    async def send_many(
        self,
        topic: str,
        values: Iterable[Any],
        keys: Iterable[Any] | None = None,
        *,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Sequence[tuple[str, bytes | None]] | None = None,
        callback: Callback | None = None,
    ) -> list[RecordFuture] | list[asyncio.Future[RecordMetadata]]:
        """Buffer one record per item of ``values`` (the key at the same place in ``keys``, or
        none); the other arguments apply to every record. One future per record, in order. An
        error raised part-way carries ``enqueued``: the futures of the records before it."""
        enqueued: list[Any] = []
        try:
            for value, key in records_of(topic, values, keys):
                enqueued.append(
                    await self.send(topic, value, key, partition, timestamp_ms, headers, callback)
                )
        except Exception as exc:
            exc.enqueued = enqueued  # type: ignore[attr-defined]
            raise
        return enqueued

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until every record sent before this call is acknowledged or failed."""
        ...

    async def partitions_for(self, topic: str) -> list[int]:
        """The topic's partition ids."""
        ...

    def metrics(self) -> dict[MetricName, float]:
        """Every metric now, keyed by :class:`~aioproducer.metrics.MetricName`."""
        ...


@runtime_checkable
class TransactionalProducerLike(ProducerLike, Protocol):
    """:class:`ProducerLike` and the transaction methods (KIP-98, KIP-939), which
    :class:`~aioproducer.Producer` and :class:`~aioproducer.testing.MockProducer` both have:
    annotate code that produces in transactions with it, and pass either (a producer with
    ``transactional_id`` set, or the methods raise :class:`TransactionStateError`)."""

    def begin_transaction(self) -> None:
        """Begin a transaction."""
        ...

    async def commit_transaction(self) -> None:
        """Flush the transaction's records, then commit them with its offsets."""
        ...

    async def abort_transaction(self) -> None:
        """Abort the transaction: its records are never visible to ``read_committed``."""
        ...

    async def prepare_transaction(self) -> PreparedTxnState:
        """Two-phase commit's first phase (KIP-939): flush, answer the prepared state."""
        ...

    async def complete_transaction(self, prepared: PreparedTxnState) -> None:
        """Two-phase commit's second phase: commit if ``prepared`` is the state, else abort."""
        ...

    async def send_offsets_to_transaction(
        self,
        offsets: Mapping[TopicPartition, int | tuple[int, str | None]],
        group_id: str | ConsumerGroupMetadata | Any,
    ) -> None:
        """Commit a consumer group's offsets as part of the transaction."""
        ...

    def transaction(self) -> contextlib.AbstractAsyncContextManager[None]:
        """``async with producer.transaction():`` begin; commit on exit; abort on an error."""
        ...


def records_of(
    topic: str, values: Iterable[Any], keys: Iterable[Any] | None
) -> Iterable[tuple[Any, Any]]:
    """``send_many``'s (value, key) pairs; keys, when given, must be as many as values."""
    if keys is None:
        return zip(values, repeat(None))
    values, keys = list(values), list(keys)
    if len(values) != len(keys):
        raise BadRecordError(
            f"send_many: {len(values)} values but {len(keys)} keys for topic {topic!r}"
        )
    return zip(values, keys, strict=True)


__all__ = ("ProducerLike", "ProducerState", "TransactionalProducerLike")
