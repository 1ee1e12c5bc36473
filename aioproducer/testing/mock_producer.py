"""``MockProducer``: the producer's API without a network, for unit tests of code that
produces (Java's ``MockProducer``).

Records are kept (:meth:`MockProducer.history`) for assertions. With ``auto_complete=True``
(the default) every ``send`` is acknowledged at once; with ``auto_complete=False`` records
wait until the test completes them in order with :meth:`~MockProducer.complete_next` or fails
them with :meth:`~MockProducer.error_next` (``flush`` and ``close`` complete what is left, as a
real producer delivers it). ``send_error``, ``flush_error`` and ``close_error`` make those
calls raise.

What the real producer checks before enqueueing is checked the same way, with the same errors
(topic name, partition, timestamp, headers, serializers, the closed state), and interceptors
and callbacks run in the same order. Partitions: ``partitions`` per topic (an int for every
topic, or a mapping); a key goes where Java's murmur2 puts it, a record without key to the
topic's partitions in turn, and a configured ``partitioner`` is asked first.

With ``transactional_id``, the real producer's transactions (``_mock_txn.py``): same methods,
same state table and errors; :meth:`~MockProducer.history` holds committed records only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .._core.cluster import BrokerInfo, Cluster, PartitionInfo, TopicInfo
from .._core.metrics import MetricName, catalogue
from .._core.partitioner import BuiltInPartitioner
from .._core.producer_batch import Callback, RecordMetadata
from .._interceptors import Interceptors
from .._producer_like import ProducerState, TransactionalProducerLike
from .._validate import (
    bad_callback,
    check_headers,
    check_partition,
    check_timestamp,
    check_topic,
    no_such_partition,
    not_running,
    serialize,
)
from ..config import ProducerConfig
from ..errors import ProducerClosedError, RecordTooLargeError
from ..producer import ProducerRecord
from ._mock_txn import MockTransactions, Pending

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .._settings import ProducerSettings

log = logging.getLogger("aioproducer")


class MockProducer(MockTransactions, TransactionalProducerLike):
    """A producer that sends nothing: ``await producer.send(...)`` returns an
    :class:`asyncio.Future` that resolves to the record's :class:`RecordMetadata` (offsets
    count from 0 per partition) when the record is completed.

    ``config`` and the keywords are :class:`ProducerConfig`'s (serializers, partitioner,
    interceptors, ``max_request_size`` are used; the rest is accepted and checked). A
    :class:`~aioproducer.ProducerLike`, as :class:`~aioproducer.Producer` is: code annotated
    with it takes either.
    """

    def __init__(
        self,
        config: ProducerConfig | None = None,
        *,
        auto_complete: bool = True,
        partitions: int | Mapping[str, int] = 1,
        **settings: Unpack[ProducerSettings],
    ) -> None:
        if config is None:
            config = ProducerConfig(**settings)
        elif settings:
            config = replace(config, **settings)
        self.config = config
        self.auto_complete = auto_complete
        self._partitions = partitions
        #: Raised by the next calls of send() / flush() / close() while set (Java's
        #: sendException, flushException, closeException).
        self.send_error: BaseException | None = None
        self.flush_error: BaseException | None = None
        self.close_error: BaseException | None = None
        self._interceptors = Interceptors(config.interceptors)
        self._builtin = BuiltInPartitioner(
            config.batch_size, False, 0, config.partitioner_ignore_keys
        )
        self._sent: list[ProducerRecord] = []
        self._pending: deque[Pending] = deque()
        self._offsets: dict[tuple[str, int], int] = {}
        self._round_robin: dict[str, int] = {}
        self._completed = [0, 0]  # records acknowledged, failed
        self._cluster = Cluster({0: BrokerInfo(0, "mock", 0)})
        self._started = False
        self._closed = False
        self.flushed = False
        self._init_transactions()

    # -- what tests look at ----------------------------------------------------------------------

    def history(self) -> list[ProducerRecord]:
        """Every record sent since the start or the last :meth:`clear`, in order (as
        interceptors left them; ``partition`` as given to ``send``). With ``transactional_id``,
        the records of committed transactions only (see :meth:`uncommitted_records`)."""
        return list(self._sent)

    def clear(self) -> None:
        """Forget the history and the committed offsets (records waiting for completion stay
        pending; the transaction in flight keeps its records and offsets)."""
        self._sent.clear()
        self._offsets_history.clear()
        self.flushed = False

    @property
    def pending(self) -> int:
        """Records sent and not completed yet (always 0 with ``auto_complete``)."""
        return len(self._pending)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def state(self) -> ProducerState:
        """As :attr:`Producer.state`: ``"new"``, ``"running"``, ``"failed"`` (fenced) or
        ``"closed"``."""
        if self._closed:
            return "closed"
        if not self._started:
            return "new"
        return "failed" if self._fatal_error is not None else "running"

    def complete_next(self) -> bool:
        """Acknowledge the oldest pending record; False when none is pending."""
        if not self._pending:
            return False
        self._complete(self._pending.popleft(), None)
        return True

    def error_next(self, exception: BaseException) -> bool:
        """Fail the oldest pending record with ``exception``; False when none is pending."""
        if not self._pending:
            return False
        self._complete(self._pending.popleft(), exception)
        self._record_failed(exception)  # a transaction's record: it must abort
        return True

    # -- the producer's API ----------------------------------------------------------------------

    async def start(self) -> None:
        if self._closed:
            raise ProducerClosedError("a closed producer cannot be started again")
        self._start_transactions()
        self._started = True

    async def close(self, timeout: float | None = None) -> None:
        """Complete what is pending (as a real producer delivers it), then refuse sends."""
        if self.close_error is not None:
            raise self.close_error
        if self._closed:
            return
        self._closed = True
        while self.complete_next():
            pass
        self._interceptors.close()

    stop = close

    async def send(
        self,
        topic: str,
        value: Any = None,
        key: Any = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Sequence[tuple[str, bytes | None]] | None = None,
        callback: Callback | None = None,
    ) -> asyncio.Future[RecordMetadata]:
        """Record a send; its future completes now (``auto_complete``) or when the test says."""
        if self._closed or not self._started:
            raise not_running(self._closed)
        self._check_send()
        if self.send_error is not None:
            raise self.send_error
        record = ProducerRecord(topic, value, key, partition, timestamp_ms, headers)
        if self._interceptors.on_send:
            record = self._interceptors.intercept(record)
        if self._interceptors.on_send_callback:
            callback = self._interceptors.chain(record, callback)
        topic, value, key, partition = record.topic, record.value, record.key, record.partition
        check_topic(topic)
        if callback is not None and not callable(callback):
            raise bad_callback(callback, topic)
        hdrs = check_headers(record.headers, topic) if record.headers is not None else None
        count = self._partition_count(topic)
        if partition is not None:
            partition = check_partition(partition, topic)
            if partition >= count:
                raise no_such_partition(partition, count, topic)
        key_bytes = serialize(self.config.key_serializer, key, topic, "key")
        value_bytes = serialize(self.config.value_serializer, value, topic, "value")
        ts = (
            time.time_ns() // 1_000_000
            if record.timestamp_ms is None
            else check_timestamp(record.timestamp_ms, topic)
        )
        size = sum(len(b) for b in (key_bytes, value_bytes) if b is not None)
        size += sum(len(k) + len(v or b"") for k, v in hdrs or ())
        if size > self.config.max_request_size:
            raise RecordTooLargeError(
                f"the record for topic {topic!r} is {size} bytes, over max_request_size="
                f"{self.config.max_request_size}"
            )
        if partition is None:
            partition = self._builtin.choose(
                self.config.partitioner,
                count,
                topic,
                key,
                key_bytes,
                value,
                value_bytes,
                self._cluster,
            )
            if partition < 0:  # no key: the topic's partitions in turn
                n = self._round_robin.get(topic, 0)
                self._round_robin[topic] = n + 1
                partition = n % count
        self._sent_record(record)
        loop = asyncio.get_running_loop()
        pending = Pending(
            record,
            loop.create_future(),
            partition,
            ts,
            -1 if key_bytes is None else len(key_bytes),
            -1 if value_bytes is None else len(value_bytes),
            callback,
        )
        if self.auto_complete:
            self._complete(pending, None)
        else:
            self._pending.append(pending)
        return pending.future

    async def flush(self, timeout: float | None = None) -> None:
        """Complete every pending record (Java's MockProducer does the same)."""
        if self.flush_error is not None:
            raise self.flush_error
        while self.complete_next():
            pass
        self.flushed = True

    async def partitions_for(self, topic: str) -> list[int]:
        if self._closed or not self._started:
            raise ProducerClosedError("the producer is not running")
        return list(range(self._partition_count(topic)))

    def metrics(self) -> dict[MetricName, float]:
        """As the real producer's, the few that mean something here: ``record-send-total``
        (records acknowledged) and ``record-error-total`` (records failed), in
        ``producer-metrics`` tagged with the ``client-id``."""
        tags = {"client-id": self.config.client_id or ""}
        docs = {name: doc for group, name, doc in catalogue() if group == "producer-metrics"}
        sent, failed = self._completed
        return {
            MetricName("producer-metrics", name, tags, docs[name]): float(n)
            for name, n in (("record-send-total", sent), ("record-error-total", failed))
        }

    def __repr__(self) -> str:
        return (
            f"<MockProducer {self.state} sent={len(self._sent)} pending={len(self._pending)} "
            f"uncommitted={len(self._uncommitted)} "
            f"auto_complete={self.auto_complete}>"
        )

    # -- internals -------------------------------------------------------------------------------

    def _partition_count(self, topic: str) -> int:
        parts = self._partitions
        count = parts if isinstance(parts, int) else parts.get(topic, 1)
        if topic not in self._cluster.topics:
            infos = [PartitionInfo(topic, p, 0) for p in range(count)]
            info = TopicInfo(topic, infos, list(range(count)))
            self._cluster = self._cluster.merged(Cluster(self._cluster.brokers, {topic: info}))
        return count

    def _fail_pending(self, exc: BaseException) -> None:
        while self._pending:
            self._complete(self._pending.popleft(), exc)

    def _complete(self, p: Pending, exc: BaseException | None) -> None:
        md: RecordMetadata | None = None
        if exc is None:
            tp = (p.record.topic, p.partition)
            offset = self._offsets.get(tp, 0)
            self._offsets[tp] = offset + 1
            self._written(*tp)
            md = RecordMetadata(
                p.record.topic, p.partition, offset, p.timestamp, p.key_size, p.value_size
            )
        self._completed[exc is not None] += 1
        # As the real producer: interceptors, then the callback; a failing hook is logged.
        if self._interceptors.on_acknowledgement:
            self._interceptors.acknowledged(
                md or RecordMetadata(p.record.topic, p.partition, -1, -1, p.key_size, p.value_size),
                exc,
            )
        if p.callback is not None:
            try:
                p.callback(md, exc)
            except Exception:
                log.exception("record callback failed")
        if p.future.done():  # the test cancelled it
            return
        if exc is None:
            p.future.set_result(md)  # type: ignore[arg-type]
        else:
            p.future.set_exception(exc)
            p.future.exception()  # handed to whoever awaits it; never "never retrieved"


__all__ = ("MockProducer",)
