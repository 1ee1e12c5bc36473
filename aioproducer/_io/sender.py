"""The sender: one task per producer that moves batches from the accumulator to the brokers.

Each turn of the loop only computes and writes, then sleeps until the next event — a new or
full batch, a linger or backoff deadline, a response, a connection, a metadata update, a
flush or close — with no polling interval. A turn expires batches past their delivery
timeout, refreshes metadata, performs a pending epoch bump, drains the ready batches
(``RecordAccumulator.ready``/``drain``) of every broker below its in-flight limit and writes
one Produce request per broker. Its parts: the connection pool (``connections.py``), the
metadata updater (``metadata_updater.py``), the producer id (``producer_id.py``), the
compression thread (``compression.py``) and the reading of Produce answers
(``responses.py``), whose decisions are the core's (``_core/outcome.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .._core.accumulator import ReadyResult, RecordAccumulator
from .._core.cluster import Metadata
from .._core.idempotence import IdempotenceManager, ProducerIdState
from .._core.in_flight import InFlightBatches
from .._core.metrics import ProducerMetrics
from .._core.producer_batch import ProducerBatch, RecordFuture, RecordMetadata
from .._core.transactions import TransactionManager, TxnState
from .._core.txn_errors import aborted_before_sent, fenced_error
from ..config import ProducerConfig
from ..errors import (
    KafkaError,
    KafkaTimeoutError,
)
from . import backend
from .compression import CompressionOffload
from .connection import BrokerConnection
from .connections import ConnectionPool
from .metadata_updater import MetadataUpdater
from .produce_requests import ProduceRequests
from .producer_id import ProducerIdInit
from .telemetry import TelemetrySender
from .transactions import TransactionCoordinator
from .wakeup import FOREVER, Wakeup

log = logging.getLogger("aioproducer.sender")
idem_log = logging.getLogger("aioproducer.idempotence")


class Sender(ProduceRequests):
    def __init__(
        self,
        config: ProducerConfig,
        accumulator: RecordAccumulator,
        metadata: Metadata,
        now_ms: Callable[[], int],
        on_ack: Callable[[RecordFuture, RecordMetadata | None, BaseException | None], None] | None,
        metrics: ProducerMetrics | None = None,
    ) -> None:
        self.config = config
        #: The producer's counters: added to per request and per response, never per record.
        self.metrics = metrics if metrics is not None else ProducerMetrics(config.client_id or "")
        self.metrics.compressed = bool(accumulator.codec.id)
        #: DEBUG request detail, decided once (a per-request level check costs on the hot path).
        self._debug = log.isEnabledFor(logging.DEBUG)
        self.acc = accumulator
        #: The cluster view, shared by the pool and the metadata updater.
        self.metadata = metadata
        self.now_ms = now_ms
        self.on_ack = on_ack
        self.acks = config.acks_value
        self.wakeup = Wakeup()
        self.pool = ConnectionPool(
            config,
            metadata,
            now_ms,
            self.wakeup,
            lambda: self.updater.notify_waiters(),
            self.metrics,
        )
        #: The pool's: one dict, cleared in place.
        self.connections = self.pool.connections
        self.updater = MetadataUpdater(metadata, self.pool, now_ms, self.wakeup)
        self.offload = CompressionOffload(self._flush_pending)
        #: Batches out of the accumulator and not yet answered (for delivery-timeout expiry,
        #: and per partition for the one-in-flight ordering rule).
        self.in_flight = InFlightBatches(config.max_in_flight_requests_per_connection == 1)

        #: False once the producer takes no more records (close() began); ``force_close``:
        #: close without waiting for delivery. Both set by ``stop()``.
        self.running = True
        self.force_close = False
        self.fatal_error: BaseException | None = None
        self.idem = (
            IdempotenceManager(config.max_in_flight_requests_per_connection)
            if config.idempotence
            else None
        )
        #: A transactional producer's state and coordinator client (None: not transactional).
        self.txn: TransactionManager | None = None
        self.txn_coordinator: TransactionCoordinator | None = None
        #: Called when the transaction turns abortable (the facade stops taking records).
        self.on_txn_abortable: Callable[[], None] | None = None
        #: What gets the producer id: InitProducerId alone, or with the transactional id.
        self.producer_id: ProducerIdInit | TransactionCoordinator | None = None
        if self.idem is not None:
            # Both work with the same parts (the coordinator with the transaction's state too),
            # and call back the same way: when a request ends, and when the producer must stop.
            args = (self.idem, config, accumulator, self.pool, now_ms)
            done = (self._after_producer_id, self._fatal)
            tid = config.transactional_id
            if tid is None:
                self.producer_id = ProducerIdInit(*args, *done)
            else:
                self.txn = TransactionManager(
                    tid, config.transaction_timeout_ms, config.transaction_two_phase_commit_enable
                )
                accumulator.transactional = True
                self.txn_coordinator = TransactionCoordinator(self.txn, *args, *done)
                self.producer_id = self.txn_coordinator
        #: KIP-219: per node, no produce request before this time (ms), and the last throttle
        #: time the broker asked for.
        self._throttled_until: dict[int, int] = {}
        self._throttle_ms: dict[int, int] = {}
        #: KIP-714 client metrics (``enable_metrics_push``), set once started; on its own timer.
        self.telemetry: TelemetrySender | None = None

    def stop(self, force: bool = False) -> None:
        """close(): take no more records, deliver what is queued, then end; ``force``: end
        now, nothing more is retried or sent (the close timeout passed, close() was
        cancelled, start() failed). The connection pool is told too; the loop is woken."""
        self.running = self.pool.running = False
        if force:
            self.force_close = self.pool.force_close = True
        self.wakeup.set()

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
            if self.telemetry is not None and not self.force_close and self.fatal_error is None:
                await self.telemetry.close_push()  # the last push, bounded; never fails
        except backend.CANCELLED:
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

    def turn_now(self, batch: ProducerBatch) -> bool:
        """``send_and_wait``: when nothing is in flight and ``batch`` is the only batch not
        yet complete, run one sender turn here, in the caller's task, so its request is
        written now rather than after the sender task's wake-up. The turn is the sender's own
        (``run_once``, which never awaits): it alone decides what is drained and in which
        order; the wake-up that opening the batch set is covered by this turn (the sender task
        sleeps on, see ``Wakeup.covered``). False when the producer is busy: the caller wakes
        the sender instead."""
        incomplete = self.acc.incomplete
        if self.in_flight or len(incomplete) != 1 or batch not in incomplete or not self.running:
            return False
        self.wakeup.covered(max(0, self.run_once(self.now_ms())) / 1000)
        return True

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
        timeout = min(timeout, self.pool.close_idle(now, self._requests_out))
        timeout = min(timeout, self.updater.maybe_refresh(now))
        idem = self.idem
        if idem is not None:
            # A transactional producer's epoch is the coordinator's: an abort bumps it.
            rewrite = idem.maybe_bump() if self.txn is None else None
            if rewrite is not None:
                acc.reset_sequences(rewrite if idem.state is ProducerIdState.READY else None)
                idem_log.info(
                    "idempotent producer %d bumped its epoch to %d; sequences restart at 0",
                    idem.producer_id,
                    idem.epoch,
                )
            if idem.state is ProducerIdState.UNINITIALIZED:
                timeout = min(timeout, self.producer_id.maybe_init(now))  # type: ignore[union-attr]
            if idem.state is ProducerIdState.DISABLED:
                self.idem = idem = None
        if self.txn_coordinator is not None:
            timeout = min(timeout, self._transaction_turn(now))
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
                (self._can_drain if self.txn is None else self._can_drain_txn)
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
                timeout = min(timeout, self._after_drain(ready, now))
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

    def _can_drain_txn(self, batch: ProducerBatch) -> bool:
        return self.txn.can_drain(batch.tp) and self._can_drain(batch)  # type: ignore[union-attr]

    def _transaction_turn(self, now: int) -> int:
        """A transaction that must abort sends nothing more: its queued records fail (Java's
        ``maybeAbortBatches``); else the partitions new to it are added (v1)."""
        txn, coord = self.txn, self.txn_coordinator
        assert txn is not None and coord is not None
        if txn.state is TxnState.ABORTABLE_ERROR or txn.state is TxnState.FATAL_ERROR:
            if self.acc.has_undrained():
                self.fail_queued(txn.last_error or KafkaError("the transaction failed"))
            return FOREVER
        return coord.maybe_add_partitions(now)

    def fail_queued(self, error: BaseException) -> None:
        """Fail every queued batch (not in flight) with ``error``."""
        exc = aborted_before_sent(error)
        for batch in self.acc.abort_undrained():
            self._complete(batch, -1, -1, exc)

    def _after_drain(self, before: ReadyResult, now: int) -> int:
        """When to turn again after a drain: at once if more is sendable (another request's
        worth), else when what is left is ready — the drain may have taken the batch that made
        a node ready and left a lingering one, whose deadline the turn's first ``ready()`` did
        not report (it looks at a partition's head only)."""
        ready = self.acc.ready_after_drain(before, self.metadata.cluster, now)
        max_in_flight = self.config.max_in_flight_requests_per_connection
        for node in ready.nodes:
            conn = self.connections.get(node)
            if conn is not None and not conn.closed and self._requests_out(conn) < max_in_flight:
                return 0
        return ready.next_ready_ms

    def _after_producer_id(self) -> None:
        """An InitProducerId request ended (granted, refused or failed)."""
        self.updater.notify_waiters()
        self.wakeup.set()

    def _fatal(self, exc: BaseException) -> None:
        """The producer cannot go on: fail everything pending; new sends raise ``exc``."""
        if self.txn is not None:
            exc = fenced_error(exc)  # Java: ProducerFencedException on the transactional path
        if self.fatal_error is None:
            self.fatal_error = exc
            log.error("fatal producer error: %s", exc)
        if self.idem is not None and self.idem.state is not ProducerIdState.FATAL:
            self.idem.transition(ProducerIdState.FATAL)
        if self.txn is not None:
            self.txn.fatal(exc)
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
        if self.telemetry is not None:
            self.telemetry.close()
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
        if self.txn_coordinator is not None:
            tasks.extend(self.txn_coordinator.tasks())
        if self.telemetry is not None and self.telemetry.task is not None:
            tasks.append(self.telemetry.task)
        if tasks:
            await backend.ops_for(backend.running_loop()).wait_quietly(tasks)


__all__ = ["InFlightBatches", "Sender", "Wakeup"]
