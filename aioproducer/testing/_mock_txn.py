"""``MockProducer``'s transactions: the real producer's API and state table, no coordinator.

With ``transactional_id`` set, ``start()`` initialises the transactions (Java's
``initTransactions()``), and the moves are the core's (``_core/transactions.py``), so a misuse
raises the :class:`TransactionStateError` the real producer raises. What the coordinator would
do is done here at once: a transaction's records wait in :meth:`uncommitted_records` until the
commit puts them in ``history()``; an abort drops them, and fails those not completed yet with
:class:`TransactionAbortedError`, as the real producer fails the records it had not sent. Each
transaction that wrote to a partition ends with a marker there that takes an offset, as Kafka's
commit and abort markers do, so the offsets the mock answers are the ones a fresh topic would.

Injected errors (``*_error`` attributes) are raised where the broker's would be, and leave the
transaction as the real producer leaves it after that error: a fatal one (fencing, ...) stops
the producer, a retriable one changes nothing (calling again resumes), any other makes the
transaction abortable. :meth:`fence` is another producer taking the transactional id.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from .._broker_errors import ProducerFencedError
from .._core.cluster import TopicPartition
from .._core.producer_batch import Callback, RecordMetadata
from .._core.transactions import PreparedTxnState, TransactionManager, TxnState
from .._core.txn_errors import aborted_before_sent, fenced_error, txn_error
from .._transactions import ConsumerGroupMetadata, checked_offsets, group_metadata
from ..config import ProducerConfig
from ..errors import KafkaError, ProducerClosedError, TransactionStateError
from ..producer import ProducerRecord

#: The states in which leaving ``async with producer.transaction()`` by an exception aborts.
_ABORT_ON_ERROR = frozenset(
    {TxnState.IN_TRANSACTION, TxnState.PREPARED, TxnState.ABORTABLE_ERROR, TxnState.ABORTING}
)

Offsets = dict[str, dict[TopicPartition, tuple[int, str | None]]]


@dataclass(frozen=True, slots=True)
class Pending:
    """A record sent to the mock and not completed yet."""

    record: ProducerRecord
    future: asyncio.Future[RecordMetadata]
    partition: int
    timestamp: int
    key_size: int
    value_size: int
    callback: Callback | None


class MockTransactions:
    """The transaction methods of :class:`~aioproducer.testing.MockProducer` (a mixin)."""

    config: ProducerConfig
    _sent: list[ProducerRecord]
    _offsets: dict[tuple[str, int], int]
    _started: bool
    _closed: bool

    def _complete(self, p: Pending, exc: BaseException | None) -> None:
        raise NotImplementedError

    def _fail_pending(self, exc: BaseException) -> None:
        raise NotImplementedError

    def complete_next(self) -> bool:
        raise NotImplementedError

    def _init_transactions(self) -> None:
        config = self.config
        self._txn: TransactionManager | None = None
        if config.transactional_id is not None:
            self._txn = TransactionManager(
                config.transactional_id,
                config.transaction_timeout_ms,
                config.transaction_two_phase_commit_enable,
            )
        #: Raised where the real producer's request would fail (Java's initTransactionException,
        #: beginTransactionException, commitTransactionException, abortTransactionException,
        #: sendOffsetsToTransactionException), by every such call while set.
        self.init_transactions_error: BaseException | None = None
        self.begin_transaction_error: BaseException | None = None
        self.commit_transaction_error: BaseException | None = None
        self.abort_transaction_error: BaseException | None = None
        self.send_offsets_error: BaseException | None = None
        self._fatal_error: BaseException | None = None
        self._uncommitted: list[ProducerRecord] = []
        self._uncommitted_offsets: Offsets = {}
        self._offsets_history: list[Offsets] = []
        self._commit_count = 0
        self._epoch = 0  # the producer epoch: transactions v2 bumps it at every EndTxn
        self._last_end: TxnState | None = None  # COMMITTING or ABORTING: how the last one ended

    # -- what tests look at ----------------------------------------------------------------------

    @property
    def transaction_state(self) -> TxnState | None:
        """The state in the core's table (None: the mock is not transactional)."""
        return None if self._txn is None else self._txn.state

    @property
    def transaction_initialized(self) -> bool:
        """``start()`` initialised the transactions (Java's ``transactionInitialized()``)."""
        return self._txn is not None and self._txn.state is not TxnState.UNINITIALIZED

    @property
    def transaction_in_flight(self) -> bool:
        """A transaction began and has not ended (committed or aborted)."""
        return self._txn is not None and self._txn.state in _ABORT_ON_ERROR | {TxnState.COMMITTING}

    @property
    def transaction_committed(self) -> bool:
        """The last transaction ended with a commit (False again once the next begins)."""
        return self._last_end is TxnState.COMMITTING

    @property
    def transaction_aborted(self) -> bool:
        """The last transaction ended with an abort (False again once the next begins)."""
        return self._last_end is TxnState.ABORTING

    @property
    def commit_count(self) -> int:
        """Transactions committed since the start (empty ones too)."""
        return self._commit_count

    def uncommitted_records(self) -> list[ProducerRecord]:
        """The records of the transaction in flight, in order (not in ``history()`` yet)."""
        return list(self._uncommitted)

    def uncommitted_offsets(self) -> Offsets:
        """The offsets sent to the transaction in flight: per group id, per partition,
        ``(offset, metadata)`` as :meth:`send_offsets_to_transaction` took them."""
        return {g: dict(tps) for g, tps in self._uncommitted_offsets.items()}

    def consumer_group_offsets_history(self) -> list[Offsets]:
        """Per committed transaction that sent offsets, in order: what it committed, as
        :meth:`uncommitted_offsets` (Java's ``consumerGroupOffsetsHistory()``)."""
        return [{g: dict(tps) for g, tps in o.items()} for o in self._offsets_history]

    def fence(self) -> None:
        """Another producer took the transactional id (Java's ``fenceProducer()``): what is
        pending fails with :class:`ProducerFencedError`, the transaction methods raise it,
        ``send`` raises :class:`ProducerClosedError` from it and ``state`` is ``"failed"``,
        as the real producer once the broker says so. Close the producer."""
        if self._txn is None:
            raise TransactionStateError("fence(): this MockProducer is not transactional")
        self._fatal(txn_error(ProducerFencedError.code, "MockProducer.fence()"))

    # -- the API (Producer's) --------------------------------------------------------------------

    def begin_transaction(self) -> None:
        """Begin a transaction, as :meth:`Producer.begin_transaction`."""
        txn = self._txn_checked()
        if self.begin_transaction_error is not None:
            raise self.begin_transaction_error
        txn.begin(0)
        self._last_end = None

    async def commit_transaction(self) -> None:
        """Complete the transaction's pending records (the real one flushes), then commit:
        its records go to ``history()``, its offsets to :meth:`consumer_group_offsets_history`.
        A record that failed in it makes this raise its error (abort is then the way out)."""
        txn = self._txn_checked()
        txn.begin_commit()
        await self._flush_transaction(txn)
        self._end(txn, self.commit_transaction_error)
        self._sent.extend(self._uncommitted)
        if self._uncommitted_offsets:
            self._offsets_history.append(self._uncommitted_offsets)
        self._commit_count += 1
        self._ended(txn, TxnState.COMMITTING)

    async def abort_transaction(self) -> None:
        """Abort the transaction: its records and offsets are dropped; those not completed
        yet fail with :class:`TransactionAbortedError` (completed ones keep their metadata:
        the real producer had written them, and the abort marker hides them)."""
        txn = self._txn_checked()
        txn.begin_abort()
        self._fail_pending(aborted_before_sent(KafkaError("abort_transaction() was called")))
        self._end(txn, self.abort_transaction_error)
        self._ended(txn, TxnState.ABORTING)

    async def prepare_transaction(self) -> PreparedTxnState:
        """As :meth:`Producer.prepare_transaction` (needs
        ``transaction_two_phase_commit_enable=True``); the state's producer id is 0 and its
        epoch the number of transactions ended with the coordinator before (transactions v2
        bumps it at every EndTxn)."""
        txn = self._txn_checked()
        txn.check_prepare()
        await self._flush_transaction(txn)
        return txn.prepare(0, self._epoch)

    async def complete_transaction(self, prepared: PreparedTxnState) -> None:
        """Commit the prepared transaction if ``prepared`` is its state, abort it otherwise."""
        commit = self._txn_checked().completion_for(prepared)
        await (self.commit_transaction() if commit else self.abort_transaction())

    async def send_offsets_to_transaction(
        self,
        offsets: Mapping[TopicPartition, int | tuple[int, str | None]],
        group_id: str | ConsumerGroupMetadata | Any,
    ) -> None:
        """Keep a group's offsets with the transaction (checked as the real producer checks
        them; a group generation the broker would refuse is not known here)."""
        txn = self._txn_checked()
        if txn.state is not TxnState.IN_TRANSACTION:
            txn.check_can_send()
        group = group_metadata(group_id)
        checked = checked_offsets(offsets)
        if self.send_offsets_error is not None:
            self._request_failed(txn, self.send_offsets_error)
        txn.offsets_added = True
        self._uncommitted_offsets.setdefault(group.group_id, {}).update(checked)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """``async with producer.transaction():`` begin; commit at the end; abort (and
        re-raise) when the block raises."""
        self.begin_transaction()
        try:
            yield
        except BaseException:
            if self._txn is not None and self._txn.state in _ABORT_ON_ERROR:
                await self.abort_transaction()
            raise
        await self.commit_transaction()

    # -- hooks of MockProducer -------------------------------------------------------------------

    def _start_transactions(self) -> None:
        """``start()``: InitProducerId (Java's ``initTransactions()``)."""
        txn = self._txn
        if txn is None or txn.state is not TxnState.UNINITIALIZED:
            return
        if self.init_transactions_error is not None:
            raise self.init_transactions_error
        txn.begin_init()
        txn.initialized(v2=True)

    def _check_send(self) -> None:
        """A record may be sent now, or the real producer's error is raised."""
        if self._fatal_error is not None:
            raise ProducerClosedError(
                f"the producer hit a fatal error and takes no more records: {self._fatal_error}"
            ) from self._fatal_error
        if self._txn is not None:
            self._txn.check_can_send()

    def _sent_record(self, record: ProducerRecord) -> None:
        (self._uncommitted if self._txn is not None else self._sent).append(record)

    def _written(self, topic: str, partition: int) -> None:
        """A record of the transaction was acknowledged: its partition gets a marker."""
        if self._txn is not None:
            self._txn.saw_partitions([TopicPartition(topic, partition)])

    def _record_failed(self, exc: BaseException) -> None:
        """A record of the transaction failed: it must abort, and the records queued after
        it fail without being sent (Java's ``maybeAbortBatches``)."""
        txn = self._txn
        if txn is not None and txn.state in (TxnState.IN_TRANSACTION, TxnState.COMMITTING):
            txn.abortable(exc)
            self._fail_pending(aborted_before_sent(exc))

    # -- internals -------------------------------------------------------------------------------

    def _txn_checked(self) -> TransactionManager:
        txn = self._txn
        if txn is None:
            raise TransactionStateError(
                "this producer is not transactional: set transactional_id to use transactions"
            )
        if not self._started:
            raise TransactionStateError("call start() before using transactions")
        if self._closed:
            raise ProducerClosedError("the producer is closed")
        if self._fatal_error is not None:
            raise self._fatal_error
        return txn

    async def _flush_transaction(self, txn: TransactionManager) -> None:
        while self.complete_next():
            pass
        if txn.state is TxnState.ABORTABLE_ERROR or txn.state is TxnState.FATAL_ERROR:
            raise txn.last_error or TransactionStateError("the transaction must be aborted")

    def _end(self, txn: TransactionManager, injected: BaseException | None) -> None:
        """EndTxn: ``injected`` is its error (None: it succeeds)."""
        if not txn.needs_end_txn():
            return  # nothing reached the broker: it ends locally, as the real one's
        if injected is not None:
            self._request_failed(txn, injected)
        self._epoch = (self._epoch + 1) % 32768
        for tp in txn.partitions:  # the marker takes an offset
            key = (tp.topic, tp.partition)
            self._offsets[key] = self._offsets.get(key, 0) + 1

    def _ended(self, txn: TransactionManager, how: TxnState) -> None:
        txn.completed()
        self._uncommitted = []
        self._uncommitted_offsets = {}
        self._last_end = how

    def _request_failed(self, txn: TransactionManager, exc: BaseException) -> None:
        if txn.request_failed(exc):
            self._fatal(exc)
            raise self._fatal_error or exc
        raise exc

    def _fatal(self, exc: BaseException) -> None:
        exc = fenced_error(exc)
        if self._fatal_error is None:
            self._fatal_error = exc
        if self._txn is not None:
            self._txn.fatal(exc)
        self._fail_pending(exc)


__all__ = ("MockTransactions", "Pending")
