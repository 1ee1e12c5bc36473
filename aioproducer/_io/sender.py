"""The sender: one task per producer that moves batches from the accumulator to the brokers.

Each turn of the loop only computes and writes, then sleeps until the next event — a new or
full batch, a linger or backoff deadline, a response, a connection, a metadata update, a
flush or close — with no polling interval. Response handling decides per partition: complete,
retry (back at the head of the partition's deque, after backoff), split (MESSAGE_TOO_LARGE) or
fail; the decision rules mirror Java's ``Sender.completeBatch``/``canRetry``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from .._core import outcome
from .._core.accumulator import RecordAccumulator
from .._core.cluster import BrokerInfo, Metadata, TopicPartition
from .._core.idempotence import IdempotenceManager, ProducerIdState
from .._core.in_flight import InFlightBatches
from .._core.producer_batch import ProducerBatch, RecordFuture, RecordMetadata
from .._protocol.messages import ProduceRequest, ProduceResponse
from .._protocol.produce import decode_produce_acks, encode_produce_request
from ..config import ProducerConfig
from ..errors import (
    BrokerProtocolError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
)
from .compression import CompressionOffload, needs_offload
from .connection import BrokerConnection
from .connections import ConnectionPool
from .metadata_updater import MetadataUpdater
from .producer_id import ProducerIdInit
from .wakeup import FOREVER, Wakeup

log = logging.getLogger("aioproducer")
_PartitionAnswer = ProduceResponse.TopicProduceResponse.PartitionProduceResponse
#: KIP-219: a broker's throttle time is honoured up to a minute (a bogus value must not stall).
_MAX_THROTTLE_MS = 60_000
#: Produce v3 is the first version that carries RecordBatch v2, the only format we write.
_PRODUCE_MIN_VERSION = 3


class Sender:
    def __init__(
        self,
        config: ProducerConfig,
        accumulator: RecordAccumulator,
        metadata: Metadata,
        now_ms: Callable[[], int],
        on_ack: Callable[[RecordFuture, RecordMetadata | None, BaseException | None], None] | None,
    ) -> None:
        self.config = config
        self.acc = accumulator
        self.metadata = metadata
        self.now_ms = now_ms
        self.on_ack = on_ack
        self.acks = config.acks_value
        self.wakeup = Wakeup()
        self.pool = ConnectionPool(
            config, metadata, now_ms, self.wakeup, lambda: self.updater.notify_waiters()
        )
        #: The pool's: one dict, cleared in place.
        self.connections = self.pool.connections
        self.updater = MetadataUpdater(metadata, self.pool, now_ms, self.wakeup)
        self.offload = CompressionOffload(self._flush_pending)
        #: Batches out of the accumulator and not yet answered (for delivery-timeout expiry,
        #: and per partition for the one-in-flight ordering rule).
        self.in_flight = InFlightBatches(config.max_in_flight_requests_per_connection == 1)

        self._running = True
        self._force_close = False
        self.fatal_error: BaseException | None = None
        self.idem = (
            IdempotenceManager(config.max_in_flight_requests_per_connection)
            if config.idempotence
            else None
        )
        self.producer_id = (
            ProducerIdInit(
                self.idem,
                config,
                accumulator,
                self.pool,
                now_ms,
                self._after_producer_id,
                self._fatal,
            )
            if self.idem is not None
            else None
        )
        #: KIP-219: per node, no produce request before this time (ms), and the last throttle
        #: time the broker asked for.
        self._throttled_until: dict[int, int] = {}
        self._throttle_ms: dict[int, int] = {}

    @property
    def running(self) -> bool:
        """False once the producer takes no more records (close() began)."""
        return self._running

    @running.setter
    def running(self, value: bool) -> None:
        self._running = self.pool.running = value

    @property
    def force_close(self) -> bool:
        """Close without waiting for delivery: nothing more is retried or sent."""
        return self._force_close

    @force_close.setter
    def force_close(self, value: bool) -> None:
        self._force_close = self.pool.force_close = value

    @property
    def connect_error(self) -> KafkaError | None:
        """The last connection failure that no retry can fix (authentication, TLS)."""
        return self.pool.connect_error

    @property
    def last_connect_error(self) -> KafkaError | None:
        """The last connection failure of any kind (named when start() gives up)."""
        return self.pool.last_connect_error

    async def metadata_changed(self, timeout_s: float) -> None:
        """Wait for the next metadata update attempt (success or failure), or the timeout."""
        await self.updater.changed(timeout_s)

    # -- the loop --------------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            while self._keep_going():
                timeout_ms = self.run_once(self.now_ms())
                # The turn may have completed the last records (expired them, say): end now
                # rather than sleep until a wake-up that nothing will send.
                if not self._keep_going():
                    break
                await self.wakeup.wait(max(0, timeout_ms) / 1000)
        except asyncio.CancelledError:
            if self.fatal_error is None and not self.force_close:
                # Cancelled by someone else than close(): never a silent hang (§6 #48).
                from ..errors import ProducerClosedError

                self.fatal_error = ProducerClosedError(
                    "the producer's internal sender task was cancelled; pending records fail "
                    "and the producer takes no more"
                )
            raise
        except BaseException as exc:  # a bug here must not strand any future
            log.exception("the sender crashed; failing every pending record")
            self.fatal_error = exc
            raise
        finally:
            self._shutdown()

    def _keep_going(self) -> bool:
        return self.running or (
            not self.force_close and (self.acc.has_undrained() or bool(self.in_flight))
        )

    def run_once(self, now: int) -> int:
        """One turn: expire, refresh metadata, drain and send. Returns ms until next turn."""
        acc = self.acc
        timeout = FOREVER
        for batch in acc.expire(now):
            self._fail(
                batch,
                KafkaTimeoutError(
                    f"expiring {batch.record_count} record(s) for {batch.tp.topic}-"
                    f"{batch.tp.partition}: {now - batch.created_ms} ms has passed since batch "
                    f"creation (delivery_timeout_ms={acc.delivery_timeout_ms})"
                ),
            )
        timeout = min(timeout, self._expire_in_flight(now))
        timeout = min(timeout, self.updater.maybe_refresh(now))
        idem = self.idem
        if idem is not None:
            rewrite = idem.maybe_bump()
            if rewrite is not None:
                acc.reset_sequences(rewrite if idem.state is ProducerIdState.READY else None)
                log.info(
                    "idempotent producer %d bumped its epoch to %d; sequences restart at 0",
                    idem.producer_id,
                    idem.epoch,
                )
            if idem.state is ProducerIdState.UNINITIALIZED:
                timeout = min(timeout, self.producer_id.maybe_init(now))  # type: ignore[union-attr]
            if idem.state is ProducerIdState.DISABLED:
                self.idem = idem = None
        cluster = self.metadata.cluster
        if self._all_saturated(cluster):
            # Every broker has max_in_flight requests out: nothing can be sent, and a response
            # wakes this loop. Skip the pass over every partition's queue (with 1,000
            # partitions and a slow broker, hundreds of queues a turn).
            return min(timeout, acc.next_expiry_ms(now))
        ready = acc.ready(cluster, now)
        if ready.unknown_leader_topics:
            self.metadata.request_update()
            timeout = min(timeout, self.updater.maybe_refresh(now))
        timeout = min(timeout, ready.next_ready_ms, acc.next_expiry_ms(now))
        sendable: set[int] = set()
        max_in_flight = self.config.max_in_flight_requests_per_connection
        throttled = self._throttled_until
        for node in ready.nodes:
            conn = self.connections.get(node)
            if conn is None or conn.closed:
                wait = self.pool.connect(node, now)
                if wait > 0:
                    timeout = min(timeout, wait)
                continue
            if throttled and node in throttled:
                until = throttled[node]
                if now < until:
                    timeout = min(timeout, until - now)
                    continue
                del throttled[node]
            if self._requests_out(conn) < max_in_flight:
                sendable.add(node)
        if sendable:
            # Without idempotence, one request in flight per connection promises order, so a
            # partition with a batch in flight is muted, whatever connection carries it (after
            # a leader change the next batch would go out on another one), as in Java.
            can_drain = (
                self._can_drain
                if idem is not None
                else (self._not_in_flight if max_in_flight == 1 else None)
            )
            drained = acc.drain(cluster, sendable, now, can_drain)
            for node, batches in drained.items():
                self._send_produce(self.connections[node], batches, now)
            # More may be ready right away (another request's worth). Only a turn that sent
            # something turns again at once: a partition held back by the idempotence rules
            # waits for its response's wake-up instead of spinning the loop.
            if drained and acc.has_undrained():
                timeout = min(timeout, self._after_drain(now))
        return timeout

    def _all_saturated(self, cluster: Any) -> bool:
        """Whether every broker of the cluster has an open connection at its in-flight limit."""
        conns = self.connections
        if len(conns) < len(cluster.brokers):
            return False
        limit = self.config.max_in_flight_requests_per_connection
        for node in cluster.brokers:
            conn = conns.get(node)
            if conn is None or conn.closed or self._requests_out(conn) < limit:
                return False
        return True

    def _requests_out(self, conn: BrokerConnection) -> int:
        """Produce requests of ``conn`` in flight, counting those still being compressed:
        ``max_in_flight_requests_per_connection`` bounds both."""
        queued = self.offload.pending.get(conn.node_id)
        if queued:
            return conn.in_flight + len(queued)
        return conn.in_flight

    def _not_in_flight(self, batch: ProducerBatch) -> bool:
        return batch.tp not in self.in_flight.per_partition

    def _can_drain(self, batch: ProducerBatch) -> bool:
        idem = self.idem
        return idem is None or idem.can_send(
            batch.tp, batch.base_sequence >= 0, self.metadata.cluster.leader_for(batch.tp)
        )

    def _after_drain(self, now: int) -> int:
        """When to turn again after a drain: at once if more is sendable (another request's
        worth), else when what is left is ready — the drain may have taken the batch that made
        a node ready and left a lingering one, whose deadline the turn's first ``ready()`` did
        not report (it looks at a partition's head only)."""
        ready = self.acc.ready(self.metadata.cluster, now)
        max_in_flight = self.config.max_in_flight_requests_per_connection
        for node in ready.nodes:
            conn = self.connections.get(node)
            if conn is not None and not conn.closed and self._requests_out(conn) < max_in_flight:
                return 0
        return ready.next_ready_ms

    # -- produce ---------------------------------------------------------------------------------

    def _send_produce(self, conn: BrokerConnection, batches: list[ProducerBatch], now: int) -> None:
        """Stamp, seal (compress) and write one produce request.

        Compressing a big batch would stall the event loop for milliseconds, so batches of
        ``_OFFLOAD_BYTES`` or more are compressed in a worker thread (zstandard, lz4 and zlib
        release the GIL). Requests to one connection keep their order: while any of them is
        being compressed, later ones queue behind it (sequence numbers are already assigned).
        """
        idem = self.idem
        for b in batches:
            if idem is not None:
                if b.base_sequence < 0:
                    b.base_sequence = idem.assign(b.tp, -1, b.record_count, conn.node_id)
                    b.producer_id, b.producer_epoch = idem.producer_id, idem.epoch
                else:  # a retry keeps the producer epoch and sequence it was written with
                    idem.assign(b.tp, b.base_sequence, b.record_count, conn.node_id)
        node = conn.node_id
        if not self.offload.queued(node) and not needs_offload(batches):
            for b in batches:
                b.builder.seal()
                self.acc.observe_ratio(b)
            self._write_produce(conn, batches, now)
            return
        self.offload.submit(node, batches)
        self.in_flight.add(batches)  # out of the accumulator, not yet written

    def _flush_pending(self, node: int) -> None:
        """Write the requests for ``node`` whose compression ended, in order."""
        for batches, error in self.offload.pop_done(node):
            self.in_flight.remove_all(batches)
            if self.idem is not None:
                # Failed while compressing (expired, or a fatal error): no longer in flight,
                # and never written — its buffers are already released.
                for b in batches:
                    if b.final:
                        self.idem.returned(b.tp)
            batches = [b for b in batches if not b.final]
            if not batches:
                continue
            now = self.now_ms()
            conn = self.pool.open_connection(node)
            if error is None and conn is None:
                error = KafkaConnectionError(f"connection to broker {node} closed")
            if error is not None:
                for b in batches:
                    if self.idem is not None:
                        self.idem.returned(b.tp)
                    self._fail_or_retry(b, error, now, written=False)
                continue
            assert conn is not None
            for b in batches:
                self.acc.observe_ratio(b)
            self._write_produce(conn, batches, now)
        self.wakeup.set()

    def _write_produce(
        self, conn: BrokerConnection, batches: list[ProducerBatch], now: int
    ) -> None:
        by_topic: dict[str, list[tuple[int, tuple[bytes, Any]]]] = {}
        idem = self.idem
        for b in batches:
            parts = b.builder.build_parts(b.producer_id, b.producer_epoch, b.base_sequence)
            tp = b.tp
            entry = by_topic.get(tp.topic)
            if entry is None:
                by_topic[tp.topic] = [(tp.partition, parts)]
            else:
                entry.append((tp.partition, parts))
        acks, timeout_ms = self.acks, self.config.request_timeout_ms
        try:
            version = conn.version_for(ProduceRequest.API_KEY, _PRODUCE_MIN_VERSION)
            fut = conn.send_encoded(
                ProduceRequest.API_KEY,
                version,
                lambda cid, client_id: encode_produce_request(
                    version, cid, client_id, None, acks, timeout_ms, list(by_topic.items())
                ),
                expect_response=acks != 0,
                decode=decode_produce_acks,
            )
        except KafkaError as exc:
            for b in batches:
                if idem is not None:
                    idem.returned(b.tp)
                self._fail_or_retry(b, exc, now, written=False)
            return
        if fut is None:  # acks=0: done once written
            for b in batches:
                self._complete(b, -1, -1, None)
            return
        self.in_flight.add(batches)
        node = conn.node_id
        fut.add_done_callback(lambda f: self._on_produce_response(f, batches, node))

    def _on_produce_response(
        self, fut: asyncio.Future[Any], batches: list[ProducerBatch], node: int
    ) -> None:
        now = self.now_ms()
        self.in_flight.remove_all(batches)
        if self.idem is not None:
            for b in batches:
                self.idem.returned(b.tp)
        try:
            exc = fut.exception()
        except asyncio.CancelledError:
            exc = KafkaConnectionError("produce request cancelled")
        if exc is not None:
            for b in batches:
                self._fail_or_retry(b, exc, now)
            self.wakeup.set()
            return
        resp = fut.result()
        by_tp = {b.tp: b for b in batches}
        if type(resp) is list:  # decode_produce_acks: every partition succeeded, unthrottled
            if self._throttle_ms:
                self._throttle_ms.pop(node, None)
            for topic, partition, base_offset, log_append_time in resp:
                batch = by_tp.pop(TopicPartition(topic, partition), None)
                if batch is not None:
                    self._succeeded(batch, base_offset, log_append_time)
        else:
            self._on_partition_responses(resp, by_tp, now, node)
        for batch in by_tp.values():
            # Sent, and the broker may have written it, but we did not read its outcome:
            # possibly persisted, and retried like a lost answer (with its sequence, so an
            # idempotent broker dedupes it).
            self._fail_or_retry(
                batch,
                BrokerProtocolError(
                    f"produce response from broker {node} has no result for "
                    f"{batch.tp.topic}-{batch.tp.partition}"
                ),
                now,
            )
        self.wakeup.set()

    def _on_partition_responses(
        self, resp: ProduceResponse, by_tp: dict[TopicPartition, ProducerBatch], now: int, node: int
    ) -> None:
        """A produce response read by the generic codec (it holds an error, or a field the
        fast path does not read): complete, retry or fail each batch it answers, and pop it."""
        endpoints = {e.node_id: e for e in resp.node_endpoints}
        self._note_throttle(resp, node)
        seen: dict[TopicPartition, int] = {}
        for topic in resp.responses:
            for p in topic.partition_responses:
                tp = TopicPartition(topic.name, p.index)
                seen[tp] = seen.get(tp, 0) + 1
        for topic in resp.responses:
            for p in topic.partition_responses:
                tp = TopicPartition(topic.name, p.index)
                batch = by_tp.pop(tp, None)
                if batch is None:
                    if tp not in seen or seen[tp] == 1:
                        log.warning(
                            "produce response from broker %d answers %s-%d, which was not in "
                            "the request; ignored",
                            node,
                            tp.topic,
                            tp.partition,
                        )
                    continue
                if seen[tp] > 1:
                    # Two answers for one partition (success and NOT_LEADER, say): the
                    # outcome is unknown, so possibly persisted, and retried.
                    self._fail_or_retry(
                        batch,
                        BrokerProtocolError(
                            f"produce response from broker {node} answers "
                            f"{tp.topic}-{tp.partition} {seen[tp]} times"
                        ),
                        now,
                    )
                    continue
                if p.error_code == 0:
                    self._succeeded(batch, p.base_offset, p.log_append_time_ms)
                    continue
                leader = p.current_leader
                moved = False
                if leader.leader_id >= 0:
                    moved = self._apply_leader_hint(
                        tp, leader.leader_id, leader.leader_epoch, endpoints
                    )
                self._handle_partition_error(batch, p, now, moved)

    def _note_throttle(self, resp: ProduceResponse, node: int) -> None:
        """KIP-219: the broker answered at once but asks us to send nothing more to it for
        ``throttle_time_ms`` (capped at a minute: a bogus value must not stall a broker)."""
        ms = resp.throttle_time_ms
        self._throttle_ms[node] = ms
        if ms > 0:
            self._throttled_until[node] = self.now_ms() + min(ms, _MAX_THROTTLE_MS)

    def throttle_time_ms(self, node: int) -> int:
        """The throttle time of the last produce response from ``node`` (0: not throttled)."""
        return self._throttle_ms.get(node, 0)

    def max_throttle_time_ms(self) -> int:
        """The largest throttle time of the brokers' last produce responses."""
        return max(self._throttle_ms.values(), default=0)

    def _succeeded(self, batch: ProducerBatch, base_offset: int, log_append_time: int) -> None:
        """The broker wrote ``batch`` at ``base_offset``: advance its sequence, complete it."""
        if self.idem is not None and batch.base_sequence >= 0:
            self.idem.acked(batch.tp, batch.base_sequence, batch.record_count, batch.producer_epoch)
        self._complete(batch, base_offset, log_append_time, None)

    def _apply_leader_hint(
        self, tp: TopicPartition, leader: int, epoch: int, endpoints: dict[int, Any]
    ) -> bool:
        """KIP-951: follow the new leader named in the response, without a metadata round trip.
        True when the partition now has another leader than before."""
        e = endpoints.get(leader)
        broker = BrokerInfo(e.node_id, e.host, e.port, e.rack) if e is not None else None
        before = self.metadata.cluster.leader_for(tp)
        self.metadata.cluster = self.metadata.cluster.with_leader(tp, leader, epoch, broker)
        after = self.metadata.cluster.leader_for(tp)
        return after >= 0 and after != before

    def _handle_partition_error(
        self, batch: ProducerBatch, p: _PartitionAnswer, now: int, leader_moved: bool = False
    ) -> None:
        record_errors = p.record_errors
        self._apply(
            batch,
            outcome.partition_error(
                batch,
                p.error_code,
                p.error_message,
                [(e.batch_index, e.batch_index_error_message) for e in record_errors]
                if record_errors
                else None,
                self._retry_policy(),
                now,
                self.idem,
                leader_moved=leader_moved,
            ),
            now,
        )

    def _retry_policy(self) -> outcome.Retry:
        cfg = self.config
        return outcome.Retry(cfg.retries, cfg.delivery_timeout, self.force_close)

    def _fail_or_retry(
        self,
        batch: ProducerBatch,
        exc: BaseException,
        now: int,
        *,
        written: bool = True,
    ) -> None:
        self._apply(
            batch,
            outcome.failed_attempt(
                batch, exc, self._retry_policy(), now, self.idem, written=written
            ),
            now,
        )

    def _complete(
        self,
        batch: ProducerBatch,
        base_offset: int,
        log_append_time: int,
        error: BaseException | None,
    ) -> None:
        if error is not None:
            self._apply(batch, outcome.failure(batch, error, self.idem), self.now_ms())
            return
        batch.complete(base_offset, log_append_time, None, self.on_ack, None)
        self.acc.done(batch)

    def _apply(self, batch: ProducerBatch, d: outcome.Decision, now: int) -> None:
        """Carry out what the response rules (``_core/outcome.py``) decided for ``batch``."""
        batch.maybe_written = d.maybe_written
        idem = self.idem
        if d.forget_sequences:
            batch.base_sequence = -1
            self.acc.forget_sequences(batch.tp)
        if idem is not None:
            if d.ack_sequence:
                idem.acked(batch.tp, batch.base_sequence, batch.record_count, batch.producer_epoch)
            if d.bump is not None:
                idem.request_bump(batch.tp, *d.bump)
        if d.refresh_metadata:
            self.metadata.request_update()
        action = d.action
        if action is outcome.Action.RETRY:
            log.debug(
                "retrying %s-%d (attempt %d): %s",
                batch.tp.topic,
                batch.tp.partition,
                batch.attempts + 1,
                d.error,
            )
            if d.failed_attempt and idem is not None:
                idem.failed_attempt(batch.tp)
            self.acc.reenqueue(batch, now, skip_backoff=d.skip_backoff)
        elif action is outcome.Action.SPLIT:
            n = self.acc.split_and_reenqueue(batch, now)
            log.info(
                "split a batch for %s-%d that was too large into %d",
                batch.tp.topic,
                batch.tp.partition,
                n,
            )
        elif action is not outcome.Action.IGNORE:
            batch.complete(-1, -1, d.error, self.on_ack, d.record_errors)
            self.acc.done(batch)
        if d.fatal is not None:
            self._fatal(d.fatal)

    def _fail(self, batch: ProducerBatch, exc: BaseException) -> None:
        self.in_flight.remove(batch)
        self._complete(batch, -1, -1, exc)

    def _expire_in_flight(self, now: int) -> int:
        if not self.in_flight:
            return FOREVER
        if now < self.acc.expiry_floor_ms:  # nothing can have expired (see the accumulator)
            return self.acc.expiry_floor_ms - now
        timeout = self.config.delivery_timeout
        nxt = FOREVER
        for batch in list(self.in_flight):
            deadline = batch.created_ms + timeout
            if deadline <= now:
                batch.maybe_written = True  # its sequence is unresolved: _complete bumps
                self._fail(
                    batch,
                    KafkaTimeoutError(
                        f"expiring {batch.record_count} record(s) for {batch.tp.topic}-"
                        f"{batch.tp.partition}: {now - batch.created_ms} ms has passed since batch "
                        f"creation, in flight (delivery_timeout_ms={timeout}); the records may "
                        "have been written"
                    ),
                )
            else:
                nxt = min(nxt, deadline - now)
        return nxt

    def _after_producer_id(self) -> None:
        """An InitProducerId request ended (granted, refused or failed)."""
        self.updater.notify_waiters()
        self.wakeup.set()

    def _fatal(self, exc: BaseException) -> None:
        """The producer cannot go on: fail everything pending; new sends raise ``exc``."""
        if self.fatal_error is None:
            self.fatal_error = exc
            log.error("fatal producer error: %s", exc)
        if self.idem is not None and self.idem.state is not ProducerIdState.FATAL:
            self.idem.transition(ProducerIdState.FATAL)
        for batch in self.acc.abort_undrained():
            self._complete(batch, -1, -1, exc)
        self._fail_in_flight(exc)
        self.updater.notify_waiters()
        self.wakeup.set()

    def _fail_in_flight(self, exc: BaseException) -> None:
        """Fail every batch out of the accumulator. One that was written and not answered may
        be in the log (POSSIBLY_PERSISTED); one still being compressed was never written."""
        compressing = self.offload.compressing()
        for batch in list(self.in_flight):
            if batch not in compressing:
                batch.maybe_written = True
            self._fail(batch, exc)

    # -- shutdown --------------------------------------------------------------------------------

    def _shutdown(self) -> None:
        """Fail whatever is left and close every connection (the loop has ended)."""
        error: BaseException = self.fatal_error or KafkaError(
            "the producer was closed before these records were delivered"
        )
        if self.force_close and self.fatal_error is None:
            from ..errors import ProducerClosedError

            error = ProducerClosedError(
                "the producer was closed before these records were delivered (close timeout)"
            )
        for batch in self.acc.abort_undrained():
            self._complete(batch, -1, -1, error)
        self._fail_in_flight(error)
        for batch in list(self.acc.incomplete):  # e.g. split leftovers
            self._complete(batch, -1, -1, error)
        if self.producer_id is not None:
            self.producer_id.close()
        self.pool.close()
        self.offload.close()
        self.updater.close()

    async def wait_background(self) -> None:
        """Let cancelled connection and metadata tasks finish (so none outlives close)."""
        tasks = [*self.pool.connecting.values()]
        if self.updater.task is not None:
            tasks.append(self.updater.task)
        if self.producer_id is not None and self.producer_id.task is not None:
            tasks.append(self.producer_id.task)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


__all__ = ["InFlightBatches", "Sender", "Wakeup"]
