"""The transactional producer's API (KIP-98): aiokafka's names, Java's semantics.

``start()`` does Java's ``initTransactions()`` (the sender finds the coordinator and gets the
producer id with the transactional id, fencing older producers of the id). Then::

    async with producer.transaction():      # begin; commit on exit; abort on an exception
        await producer.send("topic", b"v")
        await producer.send_offsets_to_transaction({tp: offset}, group_metadata)

A send outside a transaction, or a second ``begin_transaction()``, raises
:class:`TransactionStateError` at once. ``commit_transaction()`` first flushes every record of
the transaction; if any failed, it raises that error and the transaction must be aborted (as in
Java). With ``transaction_two_phase_commit_enable`` (KIP-939), an external transaction
manager decides: ``state = await producer.prepare_transaction()`` flushes and answers the
prepared transaction's :class:`PreparedTxnState`; ``await producer.complete_transaction(state)``
commits it when ``state`` is that one, aborts it otherwise. A fenced producer (another one took
its transactional id) raises :class:`ProducerFencedError` and must be closed. The rules are the
core's (``_core/transactions.py``); the requests are ``_io/transactions.py``'s.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

from ._core.accumulator import RecordAccumulator
from ._core.cluster import TopicPartition
from ._core.transactions import (
    PreparedTxnState,
    TransactionManager,
    TxnState,
)
from ._io.sender import Sender
from ._io.transactions import ConsumerGroupMetadata, TransactionCoordinator
from .config import ProducerConfig
from .errors import KafkaError, ProducerClosedError, TransactionStateError


class TransactionalProducer:
    """The transaction methods of :class:`~aioproducer.Producer` (a mixin)."""

    config: ProducerConfig
    _sender: Sender | None
    _accumulator: RecordAccumulator | None
    _accepting: bool
    _closed: bool
    _task: asyncio.Task[None] | None

    def _now_ms(self) -> int:
        raise NotImplementedError

    async def flush(self, timeout: float | None = None) -> None:
        raise NotImplementedError

    # -- the API --------------------------------------------------------------------------------

    def begin_transaction(self) -> None:
        """Begin a transaction (Java's ``beginTransaction``). Raises
        :class:`TransactionStateError` if one is in progress, the last one failed and was not
        aborted, or the producer is not transactional or not started."""
        txn, _ = self._txn_parts()
        txn.begin(self._now_ms())
        self._accepting = True

    async def commit_transaction(self) -> None:
        """Flush the transaction's records, then commit it: they become visible to
        ``read_committed`` consumers, with the offsets sent by
        :meth:`send_offsets_to_transaction`. If a record failed, raises its error and the
        transaction must be aborted. Raises :class:`KafkaTimeoutError` after ``max_block_ms``
        (calling it again resumes), :class:`ProducerFencedError` if fenced."""
        txn, coord = self._txn_parts()
        txn.begin_commit()
        await self._flush_transaction(txn)
        await self._end(txn, coord, commit=True)

    async def _flush_transaction(self, txn: TransactionManager) -> None:
        """Take no more records in this transaction and flush it; a failed record's error
        (the transaction must then be aborted) or a fatal one is raised."""
        self._accepting = False
        await self.flush()
        if txn.state is TxnState.ABORTABLE_ERROR or txn.state is TxnState.FATAL_ERROR:
            raise _error(txn)

    async def abort_transaction(self) -> None:
        """Abort the transaction: records not yet sent fail with
        :class:`TransactionAbortedError`, the rest are marked aborted in the log (no
        ``read_committed`` consumer sees them). Then a new transaction may begin."""
        txn, coord = self._txn_parts()
        txn.begin_abort()
        self._accepting = False
        sender = self._sender
        assert sender is not None
        sender.fail_queued(KafkaError("abort_transaction() was called"))
        await self.flush()  # what is in flight comes back (succeeds or fails) first
        if txn.state is TxnState.FATAL_ERROR:
            raise _error(txn)
        await self._end(txn, coord, commit=False)

    async def prepare_transaction(self) -> PreparedTxnState:
        """Two-phase commit's first phase (KIP-939, needs
        ``transaction_two_phase_commit_enable=True``): flush the transaction's records and
        offsets, then take no more records in it. Answers its :class:`PreparedTxnState`, for
        the external transaction manager to keep; end the transaction with
        :meth:`complete_transaction` (or commit/abort). If a record failed, raises its error
        and the transaction must be aborted."""
        txn, coord = self._txn_parts()
        txn.check_prepare()
        await self._flush_transaction(txn)
        return txn.prepare(coord.idem.producer_id, coord.idem.epoch)

    async def complete_transaction(self, prepared: PreparedTxnState) -> None:
        """Two-phase commit's second phase: commit the prepared transaction if ``prepared``
        is its state (:meth:`prepare_transaction`'s answer, or
        :meth:`PreparedTxnState.parse` of its ``str``), abort it otherwise."""
        txn, _ = self._txn_parts()
        if txn.completion_for(prepared):
            await self.commit_transaction()
        else:
            await self.abort_transaction()

    async def send_offsets_to_transaction(
        self,
        offsets: Mapping[TopicPartition, int | tuple[int, str | None]],
        group_id: str | ConsumerGroupMetadata | Any,
    ) -> None:
        """Commit a consumer group's offsets as part of the transaction (consume-transform-
        produce exactly once). ``offsets``: the next offset to read, per partition (or
        ``(offset, metadata)``). ``group_id``: the group's id, or its metadata — a
        :class:`ConsumerGroupMetadata` or any object with ``group_id``, ``generation_id``,
        ``member_id`` and ``group_instance_id`` — with which the group coordinator refuses a
        consumer fenced out of the group (KIP-447)."""
        txn, coord = self._txn_parts()
        if txn.state is not TxnState.IN_TRANSACTION:
            txn.check_can_send()  # raises the state's TransactionStateError
        group = group_metadata(group_id)
        checked = checked_offsets(offsets)
        try:
            await coord.send_offsets(checked, group, self._now_ms() + self.config.max_block_ms)
        except KafkaError as exc:
            self._txn_failed(txn, exc)
            raise

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """``async with producer.transaction():`` begins a transaction, commits it when the
        block ends, and aborts it (then re-raises) when the block raises."""
        self.begin_transaction()
        try:
            yield
        except BaseException:
            txn = self._sender.txn if self._sender is not None else None
            if txn is not None and txn.state in (
                TxnState.IN_TRANSACTION,
                TxnState.PREPARED,
                TxnState.ABORTABLE_ERROR,
                TxnState.ABORTING,
            ):
                await self.abort_transaction()
            raise
        await self.commit_transaction()

    # -- internals ------------------------------------------------------------------------------

    def _txn_parts(self) -> tuple[TransactionManager, TransactionCoordinator]:
        sender = self._sender
        if self.config.transactional_id is None:
            raise TransactionStateError(
                "this producer is not transactional: set transactional_id to use transactions"
            )
        if sender is None or sender.txn is None or sender.txn_coordinator is None:
            raise TransactionStateError("call start() before using transactions")
        if self._closed:
            raise ProducerClosedError("the producer is closed")
        if sender.fatal_error is not None:
            raise sender.fatal_error
        return sender.txn, sender.txn_coordinator

    async def _end(
        self, txn: TransactionManager, coord: TransactionCoordinator, commit: bool
    ) -> None:
        deadline = self._now_ms() + self.config.max_block_ms
        try:
            if txn.needs_end_txn():
                await coord.end_txn(commit, deadline)
            idem = coord.idem
            if not commit and not txn.v2 and idem.bump_pending:
                # A sequence gap in the aborted transaction: the coordinator bumps the epoch
                # (KIP-360), and every partition restarts at sequence 0.
                pid, epoch, _ = await coord.init_producer_id(idem.producer_id, idem.epoch, deadline)
                coord.new_epoch(pid, epoch)
        except KafkaError as exc:
            self._txn_failed(txn, exc)
            raise
        txn.completed()

    def _txn_failed(self, txn: TransactionManager, exc: KafkaError) -> None:
        """A transactional request failed: fatal errors stop the producer; a timeout leaves
        the state as it is (calling again resumes); others make the transaction abortable."""
        if txn.request_failed(exc):
            sender = self._sender
            assert sender is not None
            sender._fatal(exc)

    def _txn_abortable(self) -> None:
        """The sender found the transaction failed: take no more records in it."""
        self._accepting = False


def _error(txn: TransactionManager) -> BaseException:
    err = txn.last_error
    if err is None:
        return TransactionStateError("the transaction failed and must be aborted")
    return err


def checked_offsets(
    offsets: Mapping[TopicPartition, int | tuple[int, str | None]],
) -> dict[TopicPartition, tuple[int, str | None]]:
    """``send_offsets_to_transaction``'s offsets, checked: ``(offset, metadata)`` per partition."""
    checked: dict[TopicPartition, tuple[int, str | None]] = {}
    for tp, value in offsets.items():
        if not isinstance(tp, TopicPartition):
            raise TypeError(f"offsets keys must be TopicPartition, got {tp!r}")
        offset, meta = value if isinstance(value, tuple) else (value, "")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise ValueError(f"offset for {tp.topic}-{tp.partition} must be an int >= 0")
        checked[tp] = (offset, meta)
    return checked


def group_metadata(group: Any) -> ConsumerGroupMetadata:
    """``send_offsets_to_transaction``'s ``group_id``, as a :class:`ConsumerGroupMetadata`."""
    if isinstance(group, ConsumerGroupMetadata):
        return group
    if isinstance(group, str):
        if not group:
            raise ValueError("group_id must not be empty")
        return ConsumerGroupMetadata(group)
    try:
        return ConsumerGroupMetadata(
            str(group.group_id),
            int(getattr(group, "generation_id", -1)),
            str(getattr(group, "member_id", "")),
            getattr(group, "group_instance_id", None),
        )
    except AttributeError:
        raise TypeError(
            "group_id must be a str, a ConsumerGroupMetadata or an object with group_id, "
            f"generation_id, member_id and group_instance_id; got {group!r}"
        ) from None


__all__ = [
    "ConsumerGroupMetadata",
    "PreparedTxnState",
    "TransactionalProducer",
    "checked_offsets",
    "group_metadata",
]
