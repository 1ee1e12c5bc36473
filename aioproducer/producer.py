"""The public facade: configuration, lifecycle, ``send``, ``send_and_wait``, ``flush``, ``close``.

``send`` runs once per record and stays on the hot path's budget: interceptors, metadata (only
waits when the topic is unknown), serializers, partitioner, one append to the open batch, one
light handle. It wakes the sender only when it opens a new batch or fills one.
"""

from __future__ import annotations

import _thread
import asyncio
import logging
import random
import time
import warnings
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, NoReturn

from ._core.accumulator import RecordAccumulator
from ._core.cluster import Metadata, TopicPartition
from ._core.memory import MemoryPool
from ._core.partitioner import UNKNOWN_PARTITION, BuiltInPartitioner, TopicSticky
from ._core.producer_batch import Callback, ProducerBatch, RecordFuture, RecordMetadata
from ._io.sender import Sender, Wakeup
from ._records.codecs import get_codec
from ._records.record_batch import BATCH_OVERHEAD, RecordBatchBuilder, _hard_limit
from .config import ProducerConfig
from .errors import (
    BadRecordError,
    BadRecordTypeError,
    KafkaError,
    KafkaTimeoutError,
    ProducerClosedError,
    RecordTooLargeError,
    SerializationError,
    UnknownTopicOrPartitionError,
    WrongEventLoopError,
    error_class,
    for_code,
)

log = logging.getLogger("aioproducer")
#: The calling thread, for send()'s check that it runs on the producer's loop: ~30 ns, where
#: asyncio.get_running_loop() costs ~120 ns (it calls getpid() each time) — a tenth of a send.
_get_ident = _thread.get_ident
_BYTES = (bytes, bytearray, memoryview)
_UNKNOWN_TOPIC = UnknownTopicOrPartitionError.code


def _topic_error_text(code: int) -> str:
    """What a topic's metadata error means, for its warning and its timeout error."""
    if code == _UNKNOWN_TOPIC:
        return (
            "the cluster answered UNKNOWN_TOPIC_OR_PARTITION: the topic does not exist, and the "
            "cluster does not create topics on first use (auto.create.topics.enable=false?); "
            "create it, or check its name"
        )
    return f"the cluster's last metadata answer for it is {for_code(code)}"


_TOPIC_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def _check_topic(topic: object) -> None:
    """Kafka's topic name rules (``Topic.validate``): 1-249 of ``[a-zA-Z0-9._-]``, not . or .."""
    if not isinstance(topic, str):
        raise BadRecordTypeError(f"topic must be a str, got {_show(topic)}")
    if not topic:
        raise BadRecordError("topic must be a non-empty string, got ''")
    if len(topic) > 249:
        raise BadRecordError(f"topic name of {len(topic)} characters is longer than 249")
    if topic in (".", "..") or not set(topic) <= _TOPIC_CHARS:
        raise BadRecordError(
            f"topic {topic!r} is not a legal name: use ASCII letters, digits, '.', '_', '-'"
        )


def _show(obj: object) -> str:
    """An argument in an error message: its type and a bounded repr."""
    text = repr(obj)
    return f"{type(obj).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


def _int_arg(obj: object, what: str, topic: object) -> int:
    """``obj`` as an int, for an argument that was not exactly an int: an int subclass (an
    IntEnum, say) or an integer type with ``__index__`` (numpy's) is taken; bool is not an int
    here, and neither is a float or a str."""
    if type(obj) is not int:
        index = getattr(type(obj), "__index__", None)
        if isinstance(obj, bool) or index is None:
            raise BadRecordTypeError(
                f"{what} must be an int, got {_show(obj)} (for topic {topic!r})"
            )
        obj = index(obj)
        assert type(obj) is int
    return obj


def _check_partition(partition: object, topic: object) -> int:
    p = _int_arg(partition, "partition", topic)
    if p < 0:
        raise BadRecordError(f"partition={p} for topic {topic!r} must be >= 0")
    return p


def _check_timestamp(timestamp_ms: object, topic: object) -> int:
    ts = _int_arg(timestamp_ms, "timestamp_ms", topic)
    if not 0 <= ts < 1 << 63:
        raise BadRecordError(
            f"timestamp_ms={ts} for topic {topic!r} must be in [0, 2**63) "
            "(milliseconds since the epoch)"
        )
    return ts


def _check_headers(headers: object, topic: object) -> list[tuple[str, bytes | None]] | None:
    """The headers as (str, bytes | None) tuples for the record builder, None when empty.
    A list or tuple of pairs, or another iterable of them; not a str, bytes or mapping."""
    if type(headers) is not list and type(headers) is not tuple:
        if isinstance(headers, (str, *_BYTES, Mapping)) or not hasattr(headers, "__iter__"):
            raise BadRecordTypeError(
                f"headers for topic {topic!r} must be a list of (str, bytes | None) pairs, "
                f"got {_show(headers)}"
            )
        headers = list(headers)
    assert isinstance(headers, (list, tuple))
    out: list[tuple[str, bytes | None]] = []
    for h in headers:
        # The common header, (ASCII str, bytes or None), is taken as it is.
        if type(h) is tuple and len(h) == 2:
            k, v = h
            if type(k) is str and k.isascii() and (v is None or type(v) is bytes):
                out.append(h)
                continue
        out.append(_check_header(h, len(out), topic))
    return out or None


def _check_header(h: object, i: int, topic: object) -> tuple[str, bytes | None]:
    """``headers[i]`` as a (str, bytes | None) tuple, or the error naming what is wrong."""
    if not isinstance(h, (tuple, list)) or len(h) != 2:
        raise BadRecordTypeError(
            f"headers[{i}] for topic {topic!r} must be a (str, bytes | None) pair, got {_show(h)}"
        )
    k, v = h
    if not isinstance(k, str):
        raise BadRecordTypeError(
            f"headers[{i}] for topic {topic!r} must be a (str, bytes | None) pair: its header "
            f"key is {_show(k)}, not a str"
        )
    if not k.isascii():
        try:
            k.encode()  # Kafka's header keys are UTF-8: a lone surrogate has no encoding
        except UnicodeEncodeError as exc:
            raise BadRecordError(
                f"headers[{i}] for topic {topic!r}: the header key {k!r} cannot be encoded as "
                f"UTF-8 ({exc.reason} at position {exc.start})"
            ) from None
    if v is not None and type(v) is not bytes:
        if not isinstance(v, _BYTES):
            raise BadRecordTypeError(
                f"headers[{i}] for topic {topic!r} must be a (str, bytes | None) pair: its "
                f"header value is {_show(v)}, not bytes-like or None"
            )
        v = bytes(v)
    return (k, v)


@dataclass(frozen=True, slots=True)
class ProducerRecord:
    """What interceptors see and may replace in ``on_send``."""

    topic: str
    value: Any
    key: Any = None
    partition: int | None = None
    timestamp_ms: int | None = None
    headers: Sequence[tuple[str, bytes | None]] | None = None


class _Completion:
    """Per batch: hands out one private future per ``await`` of one of its records."""

    __slots__ = ("_loop", "_waiters")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._waiters: list[asyncio.Future[None]] | None = None

    def wait(self) -> asyncio.Future[None]:
        fut = self._loop.create_future()
        if self._waiters is None:
            self._waiters = [fut]
        else:
            self._waiters.append(fut)
        return fut

    def fire(self) -> None:
        waiters, self._waiters = self._waiters, None
        if waiters:
            for f in waiters:
                if not f.done():
                    f.set_result(None)


class _TopicSend:
    """What ``send`` needs of one topic, valid while ``cluster`` is the current snapshot."""

    __slots__ = ("cluster", "count", "sticky", "tps")

    def __init__(self, tps: list[TopicPartition], cluster: Any, sticky: TopicSticky) -> None:
        self.tps = tps
        self.count = len(tps)
        self.cluster = cluster
        self.sticky = sticky


class Producer:
    """An asyncio Kafka producer. Keyword arguments are :class:`ProducerConfig` fields.

    Use ``async with Producer(...) as producer:`` or ``await producer.start()`` /
    ``await producer.close()``.
    """

    def __init__(self, config: ProducerConfig | None = None, **settings: Any) -> None:
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
        self._metadata = Metadata(
            config.metadata_max_age_ms, config.metadata_max_idle_ms, config.retry_backoff_ms
        )
        self._partitioner = config.partitioner
        self._builtin = BuiltInPartitioner(
            config.batch_size,
            config.partitioner_adaptive_partitioning_enable,
            config.partitioner_availability_timeout_ms,
            config.partitioner_ignore_keys,
        )
        self._sticky_batch_size = self._builtin.sticky_batch_size
        self._interceptors = list(config.interceptors)
        self._on_send = [ic.on_send for ic in self._interceptors if hasattr(ic, "on_send")]
        self._on_ack_hooks = [
            ic.on_acknowledgement for ic in self._interceptors if hasattr(ic, "on_acknowledgement")
        ]
        self._accumulator: RecordAccumulator | None = None
        self._sender: Sender | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._started = False
        self._topic_sends: dict[str, _TopicSend] = {}
        self._ignore_keys = config.partitioner_ignore_keys
        # Set by start(): the accumulator's partition queues and the sender's wake-up event.
        self._batches: dict[TopicPartition, deque[ProducerBatch]] = {}
        self._wakeup: Wakeup | None = None
        self._key_ser = config.key_serializer is not None
        self._value_ser = config.value_serializer is not None
        self._closing = False
        self._accepting = False  # started, not closed, sender task alive

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the sender and fetch cluster metadata; raises :class:`KafkaError` on failure.

        Unreachable brokers are tried again with the reconnect backoff until ``max_block_ms``.
        Starting a started producer does nothing; starting a closed one raises
        :class:`ProducerClosedError`."""
        if self._closed:
            raise ProducerClosedError("a closed producer cannot be started again")
        if self._started:
            return
        self._loop = loop = asyncio.get_running_loop()
        cfg = self.config
        self._accumulator = RecordAccumulator(
            batch_size=max(cfg.batch_size, 1),
            codec=self._codec,
            linger_ms=cfg.linger_ms,
            retry_backoff_ms=cfg.retry_backoff_ms,
            retry_backoff_max_ms=cfg.retry_backoff_max_ms,
            delivery_timeout_ms=cfg.delivery_timeout,
            max_request_size=cfg.max_request_size,
            pool=self._pool,
            new_completion=lambda: _Completion(loop),
            rand=random.random,
        )
        self._sender = Sender(
            cfg,
            self._accumulator,
            self._metadata,
            self._now_ms,
            self._on_ack if self._on_ack_hooks else None,
        )
        self._batches = self._accumulator.batches
        self._wakeup = self._sender.wakeup
        self._task = loop.create_task(self._sender.run(), name="aioproducer-sender")
        self._task.add_done_callback(self._sender_ended)
        self._started = True
        self._accepting = True
        # Reach the cluster once, so a wrong bootstrap address fails here, not at first send.
        deadline = self._now_ms() + cfg.max_block_ms
        self._metadata.request_update()
        if cfg.security_protocol.endswith("SSL") and not cfg.ssl_check_hostname:
            log.warning(
                "ssl_check_hostname=False: broker certificates are not checked against "
                "their hostnames (man-in-the-middle possible)"
            )
        if cfg.security_protocol == "SASL_PLAINTEXT":
            log.warning(
                "SASL/PLAIN over a plaintext connection sends the password in clear; "
                "use security_protocol='SASL_SSL'"
            )
        while not self._metadata.cluster.brokers or self._pid_pending():
            left = deadline - self._now_ms()
            if left <= 0 or self._task.done() or self._sender.connect_error is not None:
                fatal = self._sender.fatal_error or self._sender.connect_error
                await self._abort_start()
                if fatal is not None:
                    raise fatal
                last = self._sender.last_connect_error
                if self._metadata.cluster.brokers:
                    raise KafkaTimeoutError(
                        f"no producer id (InitProducerId) within max_block_ms={cfg.max_block_ms}"
                    )
                raise KafkaTimeoutError(
                    f"could not reach any broker of {cfg.bootstrap_servers!r} within "
                    f"max_block_ms={cfg.max_block_ms}"
                    + (f"; last connection error: {last}" if last is not None else "")
                ) from last
            await self._sender.metadata_changed(left / 1000)
        if self._sender.fatal_error is not None:
            fatal = self._sender.fatal_error
            await self._abort_start()
            raise fatal

    def _pid_pending(self) -> bool:
        """True while an idempotent producer waits for its producer id."""
        sender = self._sender
        if sender is None or sender.idem is None or sender.fatal_error is not None:
            return False
        from ._core.idempotence import ProducerIdState

        return sender.idem.state in (ProducerIdState.UNINITIALIZED, ProducerIdState.INITIALIZING)

    async def _abort_start(self) -> None:
        self._closed = True
        self._accepting = False
        if self._sender is not None:
            self._sender.running = False
            self._sender.force_close = True
            self._sender.wakeup.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        if self._sender is not None:
            await self._sender.wait_background()

    async def close(self, timeout: float | None = None) -> None:
        """Deliver pending records (within ``timeout`` seconds), then stop. Records not
        delivered in time fail with :class:`ProducerClosedError`. Every record's future is
        resolved, and every socket closed, when this returns.

        Without a timeout, the bound is ``delivery_timeout_ms + request_timeout_ms``: every
        record fails or succeeds by then anyway (``async with`` uses this bound)."""
        if self._closed:
            if self._task is not None and not self._task.done():
                await asyncio.gather(self._task, return_exceptions=True)
            return
        self._closed = True
        self._accepting = False
        if not self._started:
            return
        sender, task = self._sender, self._task
        assert sender is not None and task is not None and self._accumulator is not None
        self._accumulator.closed = True
        sender.running = False
        sender.wakeup.set()
        if timeout is None:
            cfg = self.config
            timeout = (cfg.delivery_timeout + cfg.request_timeout_ms) / 1000
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        except asyncio.TimeoutError:
            sender.force_close = True
            sender.wakeup.set()
            await asyncio.gather(task, return_exceptions=True)
        except asyncio.CancelledError:
            if task.cancelled():
                pass  # the sender task itself was cancelled by someone else: close normally
            else:
                # Our caller was cancelled: still finish cleanly, then propagate.
                sender.force_close = True
                sender.wakeup.set()
                await asyncio.gather(task, return_exceptions=True)
                await sender.wait_background()
                self._close_interceptors()
                raise
        except Exception:
            pass  # a sender crash already failed every record; it is logged
        await sender.wait_background()
        self._close_interceptors()

    stop = close  # aiokafka's name

    def __del__(self, _warn: Any = warnings.warn) -> None:
        # A started producer dropped without close(): say so, and close its sockets (its
        # sender task is gone with its loop, or it would still hold this producer).
        if not getattr(self, "_started", False) or self._closed:
            return
        _warn(
            f"unclosed producer {self!r}: call 'await producer.close()' (or use 'async with')",
            ResourceWarning,
            source=self,
        )
        sender = self._sender
        if sender is not None:
            for conn in list(sender.connections.values()):
                try:
                    conn.close()
                except Exception:  # the loop may be closed already
                    pass

    def _close_interceptors(self) -> None:
        for ic in self._interceptors:
            closer = getattr(ic, "close", None)
            if callable(closer):
                try:
                    closer()
                except Exception:
                    log.exception("interceptor close() failed")

    async def __aenter__(self) -> Producer:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- sending ---------------------------------------------------------------------------------

    #: The thread whose event loop is the producer's, once a send() on that loop has seen it.
    _owner_thread: int = 0
    #: Topics whose metadata error has been logged (one WARNING per topic).
    _warned_topics: frozenset[str] = frozenset()

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
            rec = self._intercept(
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
        # The arguments are checked before anything is enqueued, where the common case (None,
        # or exactly an int in range) is tested anyway: partition with the topic's partition
        # count, timestamp_ms where it defaults. bool is not an int here.
        if callback is not None and not callable(callback):
            raise BadRecordTypeError(
                f"callback for topic {topic!r} must be callable as callback(metadata, "
                f"exception), got {_show(callback)}"
            )
        hdrs = _check_headers(headers, topic) if headers is not None else None
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
            if partition is not None:
                partition = _check_partition(partition, topic)
            st = await self._topic_send(topic, partition)
            cluster = st.cluster
        # Serializers: the common case (bytes or None, no serializer) costs two type checks.
        key_bytes = (
            key
            if (key is None or type(key) is bytes) and not self._key_ser
            else (self._serialize(self.config.key_serializer, key, topic, "key"))
        )
        value_bytes = (
            value
            if (value is None or type(value) is bytes) and not self._value_ser
            else self._serialize(self.config.value_serializer, value, topic, "value")
        )
        if timestamp_ms is None:
            timestamp_ms = time.time_ns() // 1_000_000
        elif type(timestamp_ms) is not int or not 0 <= timestamp_ms < 1 << 63:
            timestamp_ms = _check_timestamp(timestamp_ms, topic)
        sticky = st.sticky if partition is None else None
        if sticky is not None:
            if (key_bytes is None or self._ignore_keys) and self._partitioner is None:
                partition = sticky.partition  # the common unkeyed case: no call at all
                if partition < 0:
                    partition = self._new_sticky_partition(topic, cluster)
            else:
                partition, is_sticky = self._choose_partition(
                    topic, key, key_bytes, value, value_bytes, cluster, st.count
                )
                if not is_sticky:
                    sticky = None
        tp = st.tps[partition]  # type: ignore[index]  # a given partition, or chosen above
        dq = self._batches.get(tp)
        handle = (
            dq[-1].try_append(timestamp_ms, key_bytes, value_bytes, hdrs, callback) if dq else None
        )
        if handle is None and dq:
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
                    if handle is None:
                        dq[-1].closed = True
        if handle is None:
            now = self._now_ms()
            self._metadata.topics[topic] = now  # still of interest: keeps its metadata alive
            handle = await self._append_new_batch(
                tp,
                timestamp_ms,
                key_bytes,
                value_bytes,
                hdrs,
                callback,
                now + self.config.max_block_ms,
            )
        full = handle.batch.builder.is_full()
        if full:
            self._wakeup.set()  # type: ignore[union-attr]  # set by start()
        if sticky is not None and sticky.partition == partition:
            # BuiltInPartitioner.record_appended_to, inline: it runs for every unkeyed record.
            vs = handle.value_size
            if vs > 0:
                sticky.produced += vs
            if full or sticky.produced >= self._sticky_batch_size:
                sticky.partition = -1
        return handle

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
        if not handle.batch.send_now:
            handle.batch.send_now = True
            assert self._sender is not None
            self._sender.wakeup.set()
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
        try:
            _, not_done = await asyncio.wait(pending, timeout=timeout)
            if not_done:
                raise KafkaTimeoutError(
                    f"flush timed out after {timeout} s with {len(not_done)} batch(es) pending"
                )
        finally:
            acc.flushes_in_progress -= 1

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

    def metrics(self) -> dict[str, Any]:
        """A snapshot of the producer's internal state."""
        acc = self._accumulator
        return {
            "buffer_total_bytes": self._pool.total,
            "buffer_available_bytes": self._pool.available,
            "waiting_threads": self._pool.queued,
            "batches_queued": sum(len(d) for d in acc.batches.values()) if acc else 0,
            "batches_incomplete": len(acc.incomplete) if acc else 0,
            "requests_in_flight": sum(c.in_flight for c in self._sender.connections.values())
            if self._sender
            else 0,
            "connections": len(self._sender.connections) if self._sender else 0,
            "metadata_version": self._metadata.version,
            # KIP-219: the largest throttle time of the brokers' last produce answers (ms).
            "produce_throttle_time_ms": self._sender.max_throttle_time_ms() if self._sender else 0,
        }

    # -- internals -------------------------------------------------------------------------------

    def _now_ms(self) -> int:
        assert self._loop is not None
        return int(self._loop.time() * 1000)

    def _intercept(self, record: ProducerRecord) -> ProducerRecord:
        for hook in self._on_send:
            try:
                out = hook(record)
                if out is not None:
                    record = out
            except Exception:
                log.exception("interceptor on_send failed; the record goes on unchanged")
        return record

    def _on_ack(
        self, handle: RecordFuture, md: RecordMetadata | None, exc: BaseException | None
    ) -> None:
        if md is None:
            b = handle.batch
            md = RecordMetadata(
                b.tp.topic, b.tp.partition, -1, -1, handle.key_size, handle.value_size
            )
        for hook in self._on_ack_hooks:
            try:
                hook(md, exc)
            except Exception:
                log.exception("interceptor on_acknowledgement failed")

    @staticmethod
    def _serialize(serializer: Any, obj: Any, topic: str, what: str) -> bytes | None:
        if serializer is not None:
            try:
                data = serializer(obj)
            except Exception as exc:
                raise SerializationError(
                    f"cannot serialize the {what} for topic {topic!r}: {exc!r}"
                ) from exc
            obj = data
        if obj is None or isinstance(obj, bytes):
            return obj
        if isinstance(obj, _BYTES):
            return bytes(obj)
        raise SerializationError(
            f"the {what} for topic {topic!r} must be bytes-like or None, got "
            f"{type(obj).__name__} (set {what}_serializer to send other types)"
        )

    def _choose_partition(
        self,
        topic: str,
        key: Any,
        key_bytes: bytes | None,
        value: Any,
        value_bytes: bytes | None,
        cluster: Any,
        count: int,
    ) -> tuple[int, bool]:
        """``(partition, sticky)``: sticky is True when the built-in sticky path chose it."""
        if self._partitioner is not None:
            p = self._partitioner.partition(topic, key, key_bytes, value, value_bytes, cluster)
            if p is None or p == UNKNOWN_PARTITION:
                pass
            elif not isinstance(p, int) or not 0 <= p < count:
                raise BadRecordError(
                    f"partitioner returned {p!r} for topic {topic!r} with {count} partitions"
                )
            else:
                return p, False
        p = self._builtin.keyed(key_bytes, count)
        if p >= 0:
            return p, False
        return self._new_sticky_partition(topic, cluster), True

    def _sender_ended(self, task: asyncio.Task[None]) -> None:
        self._accepting = False

    def _check_loop(self) -> None:
        """Raise :class:`WrongEventLoopError` unless running on the producer's event loop."""
        if self._loop is None:
            return  # not started: send() refuses for that
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
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
            raise ProducerClosedError(
                "the producer is closed" if self._closed else "call start() before send()"
            )
        self._check_loop()  # the sender task ended with its loop: used from the next loop
        fatal = self._sender.fatal_error if self._sender is not None else None
        raise ProducerClosedError(
            f"the producer hit a fatal error and takes no more records: {fatal}"
        ) from fatal

    async def _topic_send(self, topic: str, partition: int | None) -> _TopicSend:
        """The per-topic send state, (re)built: the topic name checked, its metadata waited for
        (up to ``max_block_ms``) when unknown or when ``partition`` is beyond its count."""
        self._check_loop()
        st = self._topic_sends.get(topic) if type(topic) is str else None
        if st is None:
            _check_topic(topic)
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
            st = _TopicSend(tps, cluster, self._builtin.state(topic))
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
            lambda: acc.load_stats(
                topic, cluster, self.config.partitioner_availability_timeout_ms, tps
            ),
            self._now_ms(),
        )

    async def _wait_on_metadata(self, topic: str, partition: int | None, deadline: int) -> int:
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
                raise BadRecordError(
                    f"partition {partition} is not in the range [0...{count}) of topic {topic!r}"
                )
            err = cluster.topic_errors.get(topic)
            if err is not None and error_class(err).fatal_for_topic:
                raise for_code(err, f"topic {topic!r}")
            if (
                err is not None
                and (err == _UNKNOWN_TOPIC or not error_class(err).retriable)
                and topic not in self._warned_topics
            ):
                # Once per topic, as soon as the cluster said it, not after max_block_ms of
                # silence (Java logs it at every metadata answer).
                self._warned_topics = self._warned_topics | {topic}
                log.warning(
                    "topic %r: %s (send() waits for it up to max_block_ms=%d)",
                    topic,
                    _topic_error_text(err),
                    self.config.max_block_ms,
                )
            if self._closed:
                raise ProducerClosedError("the producer closed while waiting for metadata")
            left = deadline - self._now_ms()
            if left <= 0:
                raise KafkaTimeoutError(
                    f"topic {topic!r} not present in metadata after "
                    f"{self.config.max_block_ms} ms (max_block_ms)"
                    + (f": {_topic_error_text(err)}" if err is not None else "")
                )
            md.request_topic(topic)
            await sender.metadata_changed(left / 1000)

    async def _append_new_batch(
        self,
        tp: TopicPartition,
        ts: int,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes | None]] | None,
        callback: Callback | None,
        deadline: int,
    ) -> RecordFuture:
        self._check_loop()  # once per new batch: another loop of the same thread, say
        acc, sender = self._accumulator, self._sender
        assert acc is not None and sender is not None
        if (
            headers is None
            and (0 if key is None else len(key)) + (0 if value is None else len(value))
            <= self._small_record
        ):
            # Within batch_size with room to spare: the exact size changes no decision below
            # (the reservation is batch_size), so skip computing it.
            size = self._small_record
        else:
            size = RecordBatchBuilder.record_size(0, 0, key, value, headers)
        if size > self._hard_limit:
            raise RecordTooLargeError(
                f"the record for {tp.topic}-{tp.partition} is {size + BATCH_OVERHEAD} bytes "
                f"when serialized, more than max_request_size={self.config.max_request_size}"
                + (
                    f" allows with compression_type={self.config.compression_type}"
                    if self._codec.id
                    else ""
                )
            )
        if size + BATCH_OVERHEAD > self._pool.total:
            raise RecordTooLargeError(
                f"the record for {tp.topic}-{tp.partition} is {size + BATCH_OVERHEAD} bytes "
                f"when serialized, more than buffer_memory={self._pool.total}"
            )
        reserve = min(acc.reservation_for(size), self._pool.total)
        waited = not self._pool.try_allocate(reserve)
        if waited:
            await self._allocate(reserve, deadline, tp)
            if self._closed:
                self._pool.release(reserve)
                raise ProducerClosedError("the producer closed while this send waited for memory")
        try:
            handle, give_back = acc.append_new_batch(
                tp, ts, key, value, headers, callback, self._now_ms(), reserve, waited
            )
        except BaseException:
            self._pool.release(reserve)
            raise
        if give_back:
            self._pool.release(give_back)
        else:
            sender.wakeup.set()  # a new batch: the sender schedules its linger deadline
        return handle

    async def _allocate(self, size: int, deadline: int, tp: TopicPartition) -> None:
        pool = self._pool
        if pool.try_allocate(size):
            return
        assert self._loop is not None and self._sender is not None
        waiter = self._loop.create_future()
        pool.enqueue(size, waiter)
        if waiter.done():
            return
        self._sender.wakeup.set()  # memory is exhausted: everything queued becomes sendable
        timed_out = False

        def on_timeout() -> None:
            nonlocal timed_out
            if not waiter.done():
                timed_out = True
                waiter.cancel()

        handle = self._loop.call_at(deadline / 1000, on_timeout)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.cancelled():
                pool.withdraw(waiter)
            else:  # granted, but our task was cancelled: give the bytes back
                pool.release(size)
            if timed_out:
                raise KafkaTimeoutError(
                    f"failed to allocate {size} bytes for {tp.topic}-{tp.partition} within "
                    f"max_block_ms={self.config.max_block_ms} (buffer_memory="
                    f"{self.config.buffer_memory} is in use)"
                ) from None
            raise
        finally:
            handle.cancel()


__all__ = ["KafkaError", "Producer", "ProducerRecord"]
