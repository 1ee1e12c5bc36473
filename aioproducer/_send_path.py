"""The slow paths of ``send()``: a topic's metadata, a sticky partition, a new batch.

``Producer.send`` (in ``producer.py``) is the per-record hot path; what it does only once per
topic, per sticky stint or per new batch lives here, as a mixin of :class:`Producer` whose
declared attributes name the state it shares: waiting for a topic's metadata (up to
``max_block_ms``, with a warning as soon as the cluster says the topic does not exist), the
partitioner (a user's, else Java's built-in one: murmur2 for keys, KIP-794 sticky partitions
otherwise), and opening a batch, which waits for buffer memory (``_io/memory.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ._core.accumulator import RecordAccumulator
from ._core.cluster import Metadata, TopicPartition
from ._core.memory import MemoryPool
from ._core.metrics import ProducerMetrics
from ._core.partitioner import BuiltInPartitioner, Partitioner, TopicSticky, load_stats
from ._core.producer_batch import Callback, RecordFuture
from ._io.memory import allocate
from ._io.sender import Sender, Wakeup
from ._records.codecs import Codec
from ._records.reader import BATCH_OVERHEAD
from ._records.record_batch import RecordBatchBuilder
from ._validate import (
    UNKNOWN_TOPIC,
    check_partition,
    check_topic,
    no_such_partition,
    topic_error_text,
)
from .config import ProducerConfig
from .errors import (
    KafkaTimeoutError,
    ProducerClosedError,
    RecordTooLargeError,
    error_class,
    for_code,
)

log = logging.getLogger("aioproducer")


class TopicSend:
    """What ``send`` needs of one topic, valid while ``cluster`` is the current snapshot."""

    __slots__ = ("cluster", "count", "sticky", "tps")

    def __init__(self, tps: list[TopicPartition], cluster: Any, sticky: TopicSticky) -> None:
        self.tps = tps
        self.count = len(tps)
        self.cluster = cluster
        self.sticky = sticky


class SendPath:
    # The producer's state these paths read and change (see Producer.__init__).
    config: ProducerConfig
    _metadata: Metadata
    _sender: Sender | None
    _accumulator: RecordAccumulator | None
    _pool: MemoryPool
    _metrics: ProducerMetrics
    _topic_sends: dict[str, TopicSend]
    _builtin: BuiltInPartitioner
    _partitioner: Partitioner | None
    _closed: bool
    _warned_topics: frozenset[str]
    _small_record: int
    _hard_limit: int
    _codec: Codec
    _sticky_batch_size: int
    _wakeup: Wakeup | None
    #: Why the last ``_put`` returned None: None (the topic's metadata), else the partition
    #: that needs a new batch, the record serialized, and the sticky stint it was put in.
    _slow: (
        tuple[
            TopicPartition, int | None, bytes | None, bytes | None, TopicSticky | None, int | None
        ]
        | None
    )
    #: ``Producer._put``: the hot path, which calls back here when it must wait.
    _put: Callable[..., RecordFuture | None]

    def _now_ms(self) -> int:
        raise NotImplementedError

    def _now_ns(self) -> int:
        """A fine monotonic clock, for the time-spent metrics."""
        raise NotImplementedError

    def _check_loop(self) -> None:
        raise NotImplementedError

    async def _topic_send(self, topic: str, partition: int | None) -> TopicSend:
        """The per-topic send state, (re)built: the topic name checked, its metadata waited for
        (up to ``max_block_ms``) when unknown or when ``partition`` is beyond its count."""
        self._check_loop()
        st = self._topic_sends.get(topic) if type(topic) is str else None
        if st is None:
            check_topic(topic)
        md = self._metadata
        cluster = md.cluster
        count = cluster.partition_count(topic)
        if count is None or (partition is not None and partition >= count):
            count = await self._wait_on_metadata(
                topic, partition, self._now_ms() + self.config.max_block_ms
            )
            cluster = md.cluster
        if st is None or st.count != count:
            tps = [TopicPartition(topic, p) for p in range(count)]
            st = TopicSend(tps, cluster, self._builtin.state(topic))
            self._topic_sends[topic] = st
        st.cluster = cluster
        return st

    def _new_sticky_partition(self, topic: str, cluster: Any) -> int:
        acc = self._accumulator
        assert acc is not None
        st = self._topic_sends.get(topic)
        tps = st.tps if st is not None else None
        return self._builtin.sticky_partition(
            topic,
            cluster,
            lambda: load_stats(
                acc, topic, cluster, self.config.partitioner_availability_timeout_ms, tps
            ),
            self._now_ms(),
        )

    async def _wait_on_metadata(self, topic: str, partition: int | None, deadline: int) -> int:
        start = self._now_ns()  # Java's metadata-wait-time-ns-total
        try:
            return await self._await_metadata(topic, partition, deadline)
        finally:
            self._metrics.producer.metadata_wait_ns += self._now_ns() - start

    async def _await_metadata(self, topic: str, partition: int | None, deadline: int) -> int:
        md = self._metadata
        sender = self._sender
        assert sender is not None
        if not md.add_topic(topic, self._now_ms()):  # a new topic is asked for at once
            md.request_topic(topic)
        while True:
            cluster = md.cluster
            count = cluster.partition_count(topic)
            if count is not None:
                if partition is None or partition < count:
                    return count
                raise no_such_partition(partition, count, topic)
            err = cluster.topic_errors.get(topic)
            if err is not None and error_class(err).fatal_for_topic:
                raise for_code(err, f"topic {topic!r}")
            if (
                err is not None
                and (err == UNKNOWN_TOPIC or not error_class(err).retriable)
                and topic not in self._warned_topics
            ):
                # Once per topic, as soon as the cluster said it, not after max_block_ms of
                # silence (Java logs it at every metadata answer).
                self._warned_topics = self._warned_topics | {topic}
                log.warning(
                    "topic %r: %s (send() waits for it up to max_block_ms=%d)",
                    topic,
                    topic_error_text(err),
                    self.config.max_block_ms,
                )
            if self._closed:
                raise ProducerClosedError("the producer closed while waiting for metadata")
            left = deadline - self._now_ms()
            if left <= 0:
                raise KafkaTimeoutError(
                    f"topic {topic!r} not present in metadata after "
                    f"{self.config.max_block_ms} ms (max_block_ms)"
                    + (f": {topic_error_text(err)}" if err is not None else "")
                )
            md.request_topic(topic)
            await sender.metadata_changed(left / 1000)

    async def _put_new_batch(
        self,
        topic: str,
        headers: list[tuple[str, bytes | None]] | None,
        callback: Callback | None,
    ) -> RecordFuture:
        """The record ``_put`` left in ``self._slow`` in a new batch of its partition, once
        buffer memory is granted (waiting up to ``max_block_ms``), or with incremental
        allocation in its last batch given more memory; then its sticky stint's accounting.
        ``send()`` awaits this directly: one coroutine per new batch."""
        self._check_loop()  # once per new batch: another loop of the same thread, say
        tp, ts, key, value, sticky, chosen = self._slow  # type: ignore[misc]
        acc, sender = self._accumulator, self._sender
        assert acc is not None and sender is not None
        now = self._now_ms()
        self._metadata.topics[topic] = now  # still of interest: keeps its metadata alive
        handle = (
            await self._grow_batch(tp, ts, key, value, headers, callback, now)
            if acc.incremental
            else None
        )
        if handle is None:  # a new batch (inline: a coroutine per batch cost 1 %)
            if (
                headers is None
                and not acc.incremental
                and (0 if key is None else len(key)) + (0 if value is None else len(value))
                <= self._small_record
            ):
                # Within batch_size with room to spare: the exact size changes no decision
                # below (the reservation is batch_size), so skip computing it.
                size = self._small_record
            else:
                size = RecordBatchBuilder.record_size(0, 0, key, value, headers)
            if size > self._hard_limit:
                raise RecordTooLargeError(
                    f"the record for {tp.topic}-{tp.partition} is {size + BATCH_OVERHEAD} "
                    f"bytes when serialized, more than "
                    f"max_request_size={self.config.max_request_size}"
                    + (
                        f" allows with compression_type={self.config.compression_type}"
                        if self._codec.id
                        else ""
                    )
                )
            if size + BATCH_OVERHEAD > self._pool.total:
                raise RecordTooLargeError(
                    f"the record for {tp.topic}-{tp.partition} is {size + BATCH_OVERHEAD} "
                    f"bytes when serialized, more than buffer_memory={self._pool.total}"
                )
            reserve = min(acc.reservation_for(size), self._pool.total)
            waited = not self._pool.try_allocate(reserve)
            if waited:
                await allocate(
                    self._pool,
                    reserve,
                    now + self.config.max_block_ms,
                    self.config.max_block_ms,
                    sender.wakeup.set,
                    f"{tp.topic}-{tp.partition}",
                )
                if self._closed:
                    self._pool.release(reserve)
                    raise ProducerClosedError(
                        "the producer closed while this send waited for memory"
                    )
                now = self._now_ms()
            try:
                handle, give_back = acc.append_new_batch(
                    tp, ts, key, value, headers, callback, now, reserve, waited
                )
            except BaseException:
                self._pool.release(reserve)
                raise
            if give_back:
                self._pool.release(give_back)
            else:
                sender.wakeup.set()  # a new batch: the sender schedules its linger deadline
        full = handle.batch.builder.is_full()
        if full:
            sender.wakeup.set()
        if sticky is not None and sticky.partition == chosen:
            self._stint(sticky, handle.value_size, full)
        return handle

    async def _grow_batch(
        self,
        tp: TopicPartition,
        ts: int | None,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes | None]] | None,
        callback: Callback | None,
        now: int,
    ) -> RecordFuture | None:
        """Incremental allocation: when the partition's open batch refused the record for
        want of buffer memory only (``_need``), give it more chunks (waiting for them up to
        ``max_block_ms``) and append there. None when the batch is full or gone: the caller
        opens a new one (the batch is then closed, ready without its linger)."""
        acc, pool = self._accumulator, self._pool
        assert acc is not None
        refused = True  # by the partition's last batch: the fast path tried it
        while True:
            dq = acc.batches.get(tp)
            if not dq:
                return None
            last = dq[-1]
            if not refused:  # another batch is last now: it may take the record as it is
                handle = last.try_append(ts, key, value, headers, callback)
                if handle is not None:
                    return handle
            need = last.builder._need
            extra = acc.extension_for(last, need) if need else 0
            if extra <= 0:  # full, not short of memory
                last.closed = True
                return None
            if not pool.try_allocate(extra):
                await allocate(
                    pool,
                    extra,
                    now + self.config.max_block_ms,
                    self.config.max_block_ms,
                    self._wakeup.set,  # type: ignore[union-attr]  # set by start()
                    f"{tp.topic}-{tp.partition}",
                )
                if self._closed:
                    pool.release(extra)
                    raise ProducerClosedError(
                        "the producer closed while this send waited for memory"
                    )
                dq = acc.batches.get(tp)
                if not dq or dq[-1] is not last or last.builder._payload is not None:
                    pool.release(extra)  # drained meanwhile: try whatever batch is last now
                    refused = False
                    continue
            acc.give_memory(last, extra)
            handle = last.try_append(ts, key, value, headers, callback)
            if handle is not None:
                return handle
            refused = True  # records came meanwhile: more memory again, or it is full

    async def _put_slow(
        self,
        topic: str,
        value: Any,
        key: Any,
        partition: int | None,
        timestamp_ms: int | None,
        hdrs: list[tuple[str, bytes | None]] | None,
        callback: Callback | None,
    ) -> RecordFuture:
        """What :meth:`_put` could not do without waiting: the topic's metadata (then the
        record is put again), or a new batch for the record (:meth:`_put_new_batch`)."""
        while self._slow is None:
            if partition is not None:
                partition = check_partition(partition, topic)
            await self._topic_send(topic, partition)
            handle = self._put(topic, value, key, partition, timestamp_ms, hdrs, callback)
            if handle is not None:
                return handle
        return await self._put_new_batch(topic, hdrs, callback)

    def _stint(self, sticky: TopicSticky, value_size: int, full: bool) -> None:
        """The sticky stint's accounting: it ends when its batch is full or
        ``sticky_batch_size`` value bytes went to it (Java's
        ``BuiltInPartitioner.updatePartitionInfo``); tests/unit/test_sticky_send.py. The fast
        path (``Producer._put``) has these lines inline: a call per record costs 3 %."""
        if value_size > 0:
            sticky.produced += value_size
        if full or sticky.produced >= self._sticky_batch_size:
            sticky.partition = -1


__all__ = ["SendPath", "TopicSend"]
