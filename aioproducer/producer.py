"""The public facade: configuration, lifecycle, ``send``, ``send_and_wait``, ``flush``, ``close``.

``send`` runs once per record and stays on the hot path's budget: interceptors, metadata (only
waits when the topic is unknown), serializers, partitioner, one append to the open batch, one
light handle. It wakes the sender only when it opens a new batch or fills one.
"""

from __future__ import annotations

import _thread
import asyncio
import logging
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, NoReturn

from ._core.accumulator import RecordAccumulator
from ._core.cluster import Metadata, TopicPartition
from ._core.memory import MemoryPool
from ._core.metrics import MetricName, ProducerMetrics
from ._core.partitioner import BuiltInPartitioner
from ._core.producer_batch import Callback, ProducerBatch, RecordFuture, RecordMetadata
from ._gauges import snapshot
from ._interceptors import Interceptors
from ._io.backend import ops_for, running_loop_or_none
from ._io.sender import Sender, Wakeup
from ._lifecycle import Lifecycle
from ._producer_like import ProducerState, TransactionalProducerLike, records_of
from ._put import put as _put_fast
from ._records.codecs import get_codec
from ._records.reader import BATCH_OVERHEAD
from ._records.record_batch import CLOCKED_BUFFER, _hard_limit
from ._send_path import SendPath, TopicSend
from ._transactions import TransactionalProducer
from ._validate import (
    bad_callback,
    check_headers,
    check_timestamp,
    not_running,
    serialize,
)
from .config import ProducerConfig
from .errors import (
    KafkaTimeoutError,
    ProducerClosedError,
    WrongEventLoopError,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._settings import ProducerSettings

#: The running asyncio loop or None (asyncio's C function: no Python frame per new batch).
_asyncio_loop = asyncio._get_running_loop

log = logging.getLogger("aioproducer")
#: The calling thread, for send()'s check that it runs on the producer's loop: ~30 ns, where
#: asyncio.get_running_loop() costs ~120 ns (it calls getpid() each time) — a tenth of a send.
_get_ident = _thread.get_ident


@dataclass(frozen=True, slots=True)
class ProducerRecord:
    """What interceptors see and may replace in ``on_send``."""

    topic: str
    value: Any
    key: Any = None
    partition: int | None = None
    timestamp_ms: int | None = None
    headers: Sequence[tuple[str, bytes | None]] | None = None


class Producer(Lifecycle, SendPath, TransactionalProducer, TransactionalProducerLike):
    """An asyncio Kafka producer. Keyword arguments are :class:`ProducerConfig` fields (typed:
    :class:`ProducerSettings`); an unknown one raises :class:`ConfigError`.

    Use ``async with Producer(...) as producer:`` or ``await producer.start()`` /
    ``await producer.close()``.
    """

    def __init__(
        self, config: ProducerConfig | None = None, **settings: Unpack[ProducerSettings]
    ) -> None:
        if config is None:
            config = ProducerConfig(**settings)
        elif settings:
            config = replace(config, **settings)
        self.config = config
        self._codec = get_codec(config.compression, config.compression_level())
        self._hard_limit = _hard_limit(self._codec, config.max_request_size)
        #: Key + value bytes (no headers) below which a record's exact encoded size is not
        #: needed to open a batch: 64 bytes cover its varints and attributes with room.
        self._small_record = max(
            0,
            min(
                config.batch_size - BATCH_OVERHEAD,
                config.buffer_memory - BATCH_OVERHEAD,
                self._hard_limit,
            )
            - 64,
        )
        self._pool = MemoryPool(config.buffer_memory)
        self._metrics = ProducerMetrics(
            config.client_id or "", config.metrics_sample_window_ms, config.metrics_num_samples
        )
        self._metadata = Metadata(
            config.metadata_max_age_ms, config.metadata_max_idle_ms, config.retry_backoff_ms
        )
        self._partitioner = config.partitioner
        self._builtin = BuiltInPartitioner(
            config.batch_size,
            config.partitioner_adaptive_partitioning_enable,
            config.partitioner_availability_timeout_ms,
            config.partitioner_ignore_keys,
            rack=config.client_rack if config.partitioner_rack_aware else None,
        )
        self._sticky_batch_size = self._builtin.sticky_batch_size
        self._interceptors = Interceptors(config.interceptors)
        self._on_send = bool(self._interceptors.on_send or self._interceptors.on_send_callback)
        self._accumulator: RecordAccumulator | None = None
        self._sender: Sender | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._started = False
        self._topic_sends: dict[str, TopicSend] = {}
        self._ignore_keys = config.partitioner_ignore_keys
        # Set by start(): the accumulator's partition queues and the sender's wake-up event.
        self._batches: dict[TopicPartition, deque[ProducerBatch]] = {}
        self._wakeup: Wakeup | None = None
        self._key_ser = config.key_serializer is not None
        self._value_ser = config.value_serializer is not None
        self._accepting = False  # started, not closed, sender task alive

    # -- sending ---------------------------------------------------------------------------------

    #: The thread whose event loop is the producer's, once a send() on that loop has seen it.
    _owner_thread: int = 0
    #: Topics whose metadata error has been logged (one WARNING per topic).
    _warned_topics: frozenset[str] = frozenset()
    #: send()'s fast path as a plain method (generated into _put.py by tools/gen_put.py).
    _put = _put_fast

    async def send(
        self,
        topic: str,
        value: Any = None,
        key: Any = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Sequence[tuple[str, bytes | None]] | None = None,
        callback: Callback | None = None,
    ) -> RecordFuture:
        """Buffer a record; wait only for metadata of a new topic or for buffer memory.

        Returns the record's future: ``await`` it for its :class:`RecordMetadata`. ``callback``
        is called as ``callback(metadata, exception)`` when the record is acknowledged or fails.

        Raises :class:`ProducerClosedError`, :class:`KafkaTimeoutError` (``max_block_ms``),
        :class:`SerializationError`, :class:`RecordTooLargeError`; a bad argument raises
        :class:`BadRecordTypeError` (a ``TypeError``) or :class:`BadRecordError` (a
        ``ValueError``) naming it, before anything is enqueued.
        """
        # One flag, kept by start(), close() and the sender task's end, plus the sender's fatal
        # error (fenced): the checks every record pays.
        if not self._accepting or self._sender.fatal_error is not None:  # type: ignore[union-attr]
            self._refuse()
        # Another thread's loop (a worker's asyncio.run) must not touch the batches: one call
        # and a compare per record; the loop itself is checked the first time, and on the
        # slow paths (a new batch, metadata), which catch another loop of the same thread.
        if _get_ident() != self._owner_thread:
            self._check_loop()
        if self._on_send:
            rec = self._interceptors.intercept(
                ProducerRecord(topic, value, key, partition, timestamp_ms, headers)
            )
            topic, value, key, partition, timestamp_ms, headers = (
                rec.topic,
                rec.value,
                rec.key,
                rec.partition,
                rec.timestamp_ms,
                rec.headers,
            )
            if self._interceptors.on_send_callback:
                callback = self._interceptors.chain(rec, callback)
        # The arguments are checked before anything is enqueued, where the common case (None,
        # or exactly an int in range) is tested anyway: partition with the topic's partition
        # count, timestamp_ms where it defaults. bool is not an int here.
        if callback is not None and not callable(callback):
            raise bad_callback(callback, topic)
        # After the next line, to the end: the fast path, which tools/gen_put.py copies into
        # aioproducer/_put.py as Producer._put (send_many's per-record step) with its
        # ``return await self._put_slow(...)`` and ``return await self._put_new_batch(...)``
        # made ``return None``. A call from here to a
        # shared function cost 2-4 % of send()'s instructions, so the code is generated
        # instead (tests/unit/test_generated_put.py keeps the copy current).
        hdrs = check_headers(headers, topic) if headers is not None else None
        # Per topic, the state a send needs (partition keys, count, sticky state), valid while
        # the metadata snapshot is the same object: one dict lookup and one identity check per
        # record, whatever the number of topics.
        cluster = self._metadata.cluster
        st = self._topic_sends.get(topic) if type(topic) is str else None
        if (
            st is None
            or st.cluster is not cluster
            or (
                partition is not None
                and (type(partition) is not int or not 0 <= partition < st.count)
            )
        ):
            self._slow = None
            return await self._put_slow(topic, value, key, partition, timestamp_ms, hdrs, callback)
        # Serializers: the common case (bytes or None, no serializer) costs two type checks.
        key_bytes = (
            key
            if (key is None or type(key) is bytes) and not self._key_ser
            else (serialize(self.config.key_serializer, key, topic, "key"))
        )
        value_bytes = (
            value
            if (value is None or type(value) is bytes) and not self._value_ser
            else serialize(self.config.value_serializer, value, topic, "value")
        )
        if timestamp_ms is None:
            # Now: the compiled record buffer reads the clock as it appends the record (this
            # line's two ints and division cost ~5 % of a 100 B record's CPU time, measured).
            if not CLOCKED_BUFFER:
                timestamp_ms = time.time_ns() // 1_000_000
        elif type(timestamp_ms) is not int or not 0 <= timestamp_ms < 1 << 63:
            timestamp_ms = check_timestamp(timestamp_ms, topic)
        sticky = st.sticky if partition is None else None
        if sticky is not None:
            if (key_bytes is None or self._ignore_keys) and self._partitioner is None:
                partition = sticky.partition  # the common unkeyed case: no call at all
                if partition < 0:
                    partition = self._new_sticky_partition(topic, cluster)
            else:
                partition = self._builtin.choose(
                    self._partitioner, st.count, topic, key, key_bytes, value, value_bytes, cluster
                )
                if partition < 0:
                    partition = self._new_sticky_partition(topic, cluster)
                else:
                    sticky = None
        tp = st.tps[partition]  # type: ignore[index]  # a given partition, or chosen above
        dq = self._batches.get(tp)
        handle = (
            dq[-1].try_append(timestamp_ms, key_bytes, value_bytes, hdrs, callback) if dq else None
        )
        if handle is None and dq and not dq[-1].builder._need:
            # (_need: with incremental allocation, the batch needs more buffer memory, not a
            # successor: the slow path below gives it more.)
            dq[-1].closed = True  # ready now, without its linger
            self._wakeup.set()  # type: ignore[union-attr]  # set by start()
            if sticky is not None and sticky.partition == partition:
                # The stint on the sticky partition ends with its batch (this record does not
                # fit): the record goes to the next partition, instead of opening a runt batch
                # for the rest of the stint's batch_size bytes (148 + 16 records of 100 B: a
                # fifth of the batches were runts, measured). Java's KIP-794 partitioner
                # avoids runts the other way, by filling a second batch before it switches.
                sticky.partition = -1
                partition = self._new_sticky_partition(topic, cluster)
                tp = st.tps[partition]
                dq = self._batches.get(tp)
                if dq:
                    handle = dq[-1].try_append(timestamp_ms, key_bytes, value_bytes, hdrs, callback)
                    if handle is None and not dq[-1].builder._need:
                        dq[-1].closed = True
        if handle is None:
            self._slow = (tp, timestamp_ms, key_bytes, value_bytes, sticky, partition)
            return await self._put_new_batch(topic, hdrs, callback)
        full = handle.batch.builder.is_full()
        if full:
            self._wakeup.set()  # type: ignore[union-attr]  # set by start()
        if sticky is not None and sticky.partition == partition:
            # SendPath._stint(), inlined: a call per unkeyed record cost 3 % of send()'s
            # instructions (callgrind, benchmarks/instructions.py).
            vs = handle.value_size
            if vs > 0:
                sticky.produced += vs
            if full or sticky.produced >= self._sticky_batch_size:
                sticky.partition = -1
        return handle

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
    ) -> list[RecordFuture]:
        """Buffer many records for one topic in one call: one per item of ``values``, with the
        key at the same place in ``keys`` (same length) or none; ``partition``,
        ``timestamp_ms``, ``headers`` and ``callback`` apply to every record. Returns one
        future per record, in order; each record goes where :meth:`send` would put it, and
        interceptors see each one.

        The same records as a loop of ``send()``, with the per-call work (state, loop and
        argument checks) done once. If a record cannot be enqueued (a bad value, its
        serializer, ``max_block_ms``), the error is raised and carries ``enqueued``: the
        futures of the records before it, which are on their way.
        """
        if not self._accepting or self._sender.fatal_error is not None:  # type: ignore[union-attr]
            self._refuse()
        if _get_ident() != self._owner_thread:
            self._check_loop()
        records = records_of(topic, values, keys)
        enqueued: list[RecordFuture] = []
        try:
            if self._on_send:  # an interceptor may change any record: send() each one
                for value, key in records:
                    enqueued.append(
                        await self.send(
                            topic, value, key, partition, timestamp_ms, headers, callback
                        )
                    )
                return enqueued
            if callback is not None and not callable(callback):
                raise bad_callback(callback, topic)
            hdrs = check_headers(headers, topic) if headers is not None else None
            put, append = self._put, enqueued.append
            for value, key in records:
                handle = put(topic, value, key, partition, timestamp_ms, hdrs, callback)
                if handle is None:
                    handle = await self._put_slow(
                        topic, value, key, partition, timestamp_ms, hdrs, callback
                    )
                    append(handle)
                    if not self._accepting or self._sender.fatal_error is not None:  # type: ignore[union-attr]
                        self._refuse()  # closed (or fenced) while this call waited
                else:
                    append(handle)
        except Exception as exc:
            exc.enqueued = enqueued  # type: ignore[attr-defined]
            raise
        return enqueued

    async def send_and_wait(
        self,
        topic: str,
        value: Any = None,
        key: Any = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Sequence[tuple[str, bytes | None]] | None = None,
    ) -> RecordMetadata:
        """Send one record and wait for its acknowledgement, without paying the linger."""
        handle = await self.send(topic, value, key, partition, timestamp_ms, headers)
        batch = handle.batch
        if not batch.send_now:
            batch.send_now = True
            sender = self._sender
            assert sender is not None
            if not sender.turn_now(batch):
                sender.wakeup.set()
        return await handle

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until every record sent before this call is acknowledged or failed; linger is
        ignored meanwhile. Raises :class:`KafkaTimeoutError` after ``timeout`` seconds."""
        acc, sender = self._accumulator, self._sender
        if acc is None or sender is None:
            return
        pending = [b.completion.wait() for b in list(acc.incomplete) if not b.final]
        if not pending:
            return
        acc.flushes_in_progress += 1
        sender.wakeup.set()
        start = self._now_ns()  # Java's flush-time-ns-total
        try:
            not_done = await ops_for(self._loop).wait_many(pending, timeout)
            if not_done:
                raise KafkaTimeoutError(
                    f"flush timed out after {timeout} s with {not_done} batch(es) pending"
                )
        finally:
            acc.flushes_in_progress -= 1
            self._metrics.producer.flush_ns += self._now_ns() - start

    async def partitions_for(self, topic: str) -> list[int]:
        """The topic's partition ids (waits for its metadata up to ``max_block_ms``)."""
        if self._closed or not self._started:
            raise ProducerClosedError("the producer is not running")
        count = self._metadata.cluster.partition_count(topic)
        if count is None:
            count = await self._wait_on_metadata(
                topic, None, self._now_ms() + self.config.max_block_ms
            )
        return list(range(count))

    @property
    def state(self) -> ProducerState:
        """Where the producer is in its life: ``"new"`` (not started), ``"running"``,
        ``"failed"`` (a fatal error, or its sender task ended: it takes no more records until
        closed), ``"closing"`` (``close()`` is delivering what is pending), ``"closed"``.
        What a health check reports."""
        if not self._started:
            return "closed" if self._closed else "new"
        if self._closed:
            return "closed" if self._task is None or self._task.done() else "closing"
        if not self._accepting or self._sender is None or self._sender.fatal_error is not None:
            return "failed"
        return "running"

    def metrics(self) -> dict[MetricName, float]:
        """Every metric now, keyed by :class:`~aioproducer.metrics.MetricName` (group, name,
        tags), with the Java producer's names: ``producer-metrics`` (tag ``client-id``),
        ``producer-topic-metrics`` (and ``topic``), ``producer-node-metrics`` (and
        ``node-id``), plus a few of our own in ``aioproducer-metrics``. Rates are per second
        over ``metrics_num_samples`` windows of ``metrics_sample_window_ms``; an average or a
        maximum over nothing is NaN, as in Java. See :mod:`aioproducer.metrics`."""
        loop = self._loop
        now = int((loop.time() if loop is not None else time.monotonic()) * 1000)
        return snapshot(
            self._metrics, self._pool, self._accumulator, self._sender, self._metadata, now
        )

    _metrics_snapshot = metrics

    def __repr__(self) -> str:
        # Never a secret: the bootstrap addresses and the client id only.
        config = getattr(self, "config", None)
        if config is None:
            return "<Producer (not initialised)>"
        acc = getattr(self, "_accumulator", None)
        queued = sum(b.record_count for b in list(acc.incomplete)) if acc is not None else 0
        return (
            f"<Producer bootstrap={config.bootstrap_servers!r} client_id={config.client_id!r} "
            f"state={self.state if hasattr(self, '_accepting') else 'new'} "
            f"queued_records={queued}>"
        )

    # -- internals -------------------------------------------------------------------------------

    def _now_ms(self) -> int:
        assert self._loop is not None
        return int(self._loop.time() * 1000)

    _now_ns = staticmethod(time.perf_counter_ns)

    def _sender_ended(self, task: asyncio.Task[None]) -> None:
        self._accepting = False

    def _check_loop(self) -> None:
        """Raise :class:`WrongEventLoopError` unless running on the producer's event loop."""
        if self._loop is None:
            return  # not started: send() refuses for that
        loop = _asyncio_loop()  # the common case, in C; else the backend's (trio's shell loop)
        if loop is not self._loop:
            loop = running_loop_or_none()
        if loop is not self._loop:
            raise WrongEventLoopError(
                f"this producer was started on event loop {self._loop!r} and cannot be used "
                f"from {'no event loop' if loop is None else f'another event loop, {loop!r}'} "
                f"(thread {_thread.get_ident()}): a producer belongs to one loop. Create one "
                "producer per loop, or hand records to the producer's loop with "
                "asyncio.run_coroutine_threadsafe(producer.send(...), producer_loop)"
            )
        self._owner_thread = _get_ident()

    def _refuse(self) -> NoReturn:
        if self._closed or not self._started:
            raise not_running(self._closed)
        self._check_loop()  # the sender task ended with its loop: used from the next loop
        sender = self._sender
        alive = self._task is not None and not self._task.done()
        if sender is not None and sender.txn is not None and sender.fatal_error is None and alive:
            sender.txn.check_can_send()  # raises TransactionStateError, saying why
        fatal = self._sender.fatal_error if self._sender is not None else None
        raise ProducerClosedError(
            f"the producer hit a fatal error and takes no more records: {fatal}"
        ) from fatal


__all__ = ("Producer", "ProducerRecord")
