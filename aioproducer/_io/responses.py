"""Produce answers: each batch's partition answer read, the response rules applied.

The rules themselves are values computed in the core (``_core/outcome.py``: Java's
``Sender.completeBatch``/``canRetry`` and the idempotence rules); this part of the sender reads
a Produce answer (or its absence: a broken connection, a partition missing from the answer,
a partition answered twice), follows KIP-951 leader hints and KIP-219 throttle times, and
carries out each batch's :class:`~aioproducer._core.outcome.Decision`. A mixin of
:class:`~aioproducer._io.sender.Sender`, which owns the state named below.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .._core import outcome
from .._core.accumulator import RecordAccumulator
from .._core.cluster import BrokerInfo, Metadata, TopicPartition
from .._core.idempotence import IdempotenceManager
from .._core.in_flight import InFlightBatches
from .._core.metrics import ProducerMetrics
from .._core.producer_batch import ProducerBatch, RecordFuture, RecordMetadata
from .._core.transactions import TransactionManager
from .._protocol.messages import ProduceResponse
from ..config import ProducerConfig
from ..errors import BrokerProtocolError, KafkaTimeoutError
from .wakeup import FOREVER, Wakeup

log = logging.getLogger("aioproducer.sender")
metadata_log = logging.getLogger("aioproducer.metadata")
_PartitionAnswer = ProduceResponse.TopicProduceResponse.PartitionProduceResponse
#: KIP-219: a broker's throttle time is honoured up to a minute (a bogus value must not stall).
_MAX_THROTTLE_MS = 60_000


class ProduceResponses:
    # The sender's state this part reads and changes.
    config: ProducerConfig
    acc: RecordAccumulator
    metadata: Metadata
    idem: IdempotenceManager | None
    in_flight: InFlightBatches
    metrics: ProducerMetrics
    wakeup: Wakeup
    now_ms: Callable[[], int]
    on_ack: Callable[[RecordFuture, RecordMetadata | None, BaseException | None], None] | None
    _throttled_until: dict[int, int]
    _throttle_ms: dict[int, int]
    txn: TransactionManager | None
    on_txn_abortable: Callable[[], None] | None
    running: bool
    force_close: bool

    def _fatal(self, exc: BaseException) -> None:
        raise NotImplementedError

    def _on_produce_response(
        self,
        resp: Any,
        exc: BaseException | None,
        batches: list[ProducerBatch],
        node: int,
        sent_ms: int,
    ) -> None:
        """A produce answer (``resp``) or the request's failure (``exc``); called as soon as
        the answer is read (``reply.Reply``)."""
        now = self.now_ms()
        self.in_flight.remove_all(batches)
        if self.idem is not None:
            for b in batches:
                self.idem.returned(b.tp)
        if exc is not None:
            for b in batches:
                self._fail_or_retry(b, exc, now)
            self.wakeup.set()
            return
        by_tp = {b.tp: b for b in batches}
        if type(resp) is list:  # decode_produce_acks: every partition succeeded, unthrottled
            self.metrics.produce_response(node, now - sent_ms, 0)
            if self._throttle_ms:
                self._throttle_ms.pop(node, None)
            for topic, partition, base_offset, log_append_time in resp:
                batch = by_tp.pop(TopicPartition(topic, partition), None)
                if batch is not None:
                    self._succeeded(batch, base_offset, log_append_time)
            if not by_tp and not self.acc.incomplete and self.running and self.txn is None:
                # Everything sent is answered and nothing waits: no turn for the sender to
                # take (its next deadline, if any, is already set). A send_and_wait of one
                # record at a time wakes it for nothing otherwise, once per record. (A
                # transaction's next step may wait on the last answer: it gets its turn.)
                return
        else:
            self.metrics.produce_response(node, now - sent_ms, resp.throttle_time_ms)
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
        moved = after >= 0 and after != before
        if moved:
            metadata_log.info(
                "leader moved for %s-%d: %d->%d (produce response, KIP-951)",
                tp.topic,
                tp.partition,
                before,
                after,
            )
        return moved

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
        return outcome.Retry(
            cfg.retries, cfg.delivery_timeout, self.force_close, self.txn is not None
        )

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
            self.metrics.batch_retried(batch.tp.topic, batch.record_count)
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
            self.metrics.producer.splits += 1
            log.info(
                "split a batch for %s-%d that was too large into %d",
                batch.tp.topic,
                batch.tp.partition,
                n,
            )
        elif action is not outcome.Action.IGNORE:
            self.metrics.batch_failed(batch.tp.topic, batch.record_count)  # all fail
            batch.complete(-1, -1, d.error, self.on_ack, d.record_errors)
            self.acc.done(batch)
            if self.txn is not None and d.fatal is None and d.error is not None:
                # A record of the transaction failed: it cannot commit (Java's
                # maybeTransitionToErrorState); the user aborts it.
                self.txn.abortable(d.error)
                if self.on_txn_abortable is not None:
                    self.on_txn_abortable()
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


__all__ = ["ProduceResponses"]
