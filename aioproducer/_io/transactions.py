"""The transaction coordinator's side of a transactional producer: the requests.

The state and every rule are the core's (``_core/transactions.py``); this module sends
InitProducerId, AddPartitionsToTxn, EndTxn, AddOffsetsToTxn and TxnOffsetCommit and applies
the answers. Finding the coordinators and retrying while one moved, is loading or is busy is
``coordinators.py``'s (``CoordinatorRequests.call``).

Transactions v2 (KIP-890) is used when the coordinator offers it: ApiVersions finalizes
``transaction.version`` >= 2 and the broker speaks EndTxn v5 and Produce v12. Then partitions
join the transaction when their first batch is written, and EndTxn answers a new epoch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._core.accumulator import RecordAccumulator
from .._core.cluster import TopicPartition
from .._core.idempotence import IdempotenceManager, ProducerIdState
from .._core.transactions import TransactionManager
from .._core.txn_errors import ErrorKind, classify, init_error, txn_error
from .._protocol._schema import Message
from .._protocol.messages import (
    AddOffsetsToTxnRequest,
    AddOffsetsToTxnResponse,
    AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse,
    EndTxnRequest,
    EndTxnResponse,
    InitProducerIdRequest,
    InitProducerIdResponse,
    TxnOffsetCommitRequest,
    TxnOffsetCommitResponse,
)
from .._protocol.versions import pick_version
from ..config import ProducerConfig
from ..errors import KafkaError
from .backend import CANCELLED, running_loop
from .connection import BrokerConnection
from .connections import ConnectionPool
from .coordinators import GROUP, TRANSACTION, CoordinatorRequests, latest
from .producer_id import init_producer_id_version
from .wakeup import FOREVER

log = logging.getLogger("aioproducer")
_OPERATION_NOT_ATTEMPTED = 55
#: The last versions written by clients (higher ones are broker-to-broker or KIP-890 forms).
_ADD_PARTITIONS_CLIENT_MAX = 3
_END_TXN_V1_MAX = 4


@dataclass(frozen=True, slots=True)
class ConsumerGroupMetadata:
    """A consumer's group membership, for :meth:`Producer.send_offsets_to_transaction`
    (Java's ``ConsumerGroupMetadata``): with the generation and member id, the group
    coordinator refuses offsets from a consumer that was fenced out of the group (KIP-447)."""

    group_id: str
    generation_id: int = -1
    member_id: str = ""
    group_instance_id: str | None = None


class TransactionCoordinator(CoordinatorRequests):
    """Talks to the transaction (and group) coordinators for one transactional producer."""

    def __init__(
        self,
        txn: TransactionManager,
        idem: IdempotenceManager,
        config: ProducerConfig,
        acc: RecordAccumulator,
        pool: ConnectionPool,
        now_ms: Callable[[], int],
        wake: Callable[[], None],
        fatal: Callable[[BaseException], None],
    ) -> None:
        self.txn = txn
        self.idem = idem
        self.config = config
        self.acc = acc
        self.pool = pool
        self.now_ms = now_ms
        #: Wakes the sender (and start()'s wait for the producer id).
        self.wake = wake
        #: Stops the producer (fenced, not authorised).
        self.fatal = fatal
        assert config.transactional_id is not None
        self.transactional_id: str = config.transactional_id
        #: (key type, key) -> coordinator node id.
        self.coordinators: dict[tuple[int, str], int] = {}
        #: The InitProducerId task of start() (the sender's ``producer_id`` slot).
        self.task: asyncio.Task[None] | None = None
        #: The AddPartitionsToTxn request in flight (v1).
        self.add_task: asyncio.Task[None] | None = None
        self.closed = False

    # -- the sender's hooks ------------------------------------------------------------------

    def maybe_init(self, now: int) -> int:
        """start(): find the coordinator and get the producer id (Java's initTransactions)."""
        if self.task is None and self.txn.state.value == "uninitialized":
            self.idem.transition(ProducerIdState.INITIALIZING)
            self.txn.begin_init()
            self.task = running_loop().create_task(self._init())
        return FOREVER

    def maybe_add_partitions(self, now: int) -> int:
        """v1: one AddPartitionsToTxn for the partitions seen since the last one."""
        txn = self.txn
        for tp, dq in self.acc.batches.items():
            if dq and tp not in txn.partitions:
                txn.saw_partitions((tp,))
        if self.add_task is not None or txn.v2:
            return FOREVER
        tps = txn.take_pending()
        if tps:
            self.add_task = running_loop().create_task(self._add_partitions(tps))
        return FOREVER

    def close(self) -> None:
        self.closed = True
        for task in (self.task, self.add_task):
            if task is not None:
                task.cancel()

    def tasks(self) -> list[asyncio.Task[None]]:
        return [t for t in (self.task, self.add_task) if t is not None]

    # -- requests -------------------------------------------------------------------------------

    async def _init(self) -> None:
        try:
            pid, epoch, v2 = await self.init_producer_id(-1, -1, deadline=None)
        except CANCELLED:
            raise
        except BaseException as exc:
            self.txn.fatal(exc)
            self.fatal(exc)
        else:
            self.idem.set_producer_id(pid, epoch)
            self.acc.reset_sequences()
            self.txn.initialized(v2)
            log.info(
                "transactional producer %r: producer id %d epoch %d, transactions %s",
                self.transactional_id,
                pid,
                epoch,
                "v2 (KIP-890)" if v2 else "v1",
            )
        finally:
            self.task = None
            self.wake()

    async def init_producer_id(
        self, pid: int, epoch: int, deadline: int | None
    ) -> tuple[int, int, bool]:
        """InitProducerId with the transactional id: fences older producers of the id and
        ends the transaction they left open. With ``pid``/``epoch`` (KIP-360): bump the epoch
        of this producer after an abort that left a sequence gap."""
        cfg = self.config
        two_pc = cfg.transaction_two_phase_commit_enable
        req = InitProducerIdRequest(
            transactional_id=self.transactional_id,
            transaction_timeout_ms=cfg.transaction_timeout_ms,
            producer_id=pid,
            producer_epoch=epoch,
            enable2_pc=two_pc,
        )
        resp, conn = await self.call(
            TRANSACTION,
            self.transactional_id,
            lambda c: (req, init_producer_id_version(c, 3 if pid >= 0 else 0, two_pc)),
            InitProducerIdResponse,
            lambda r: r.error_code,
            deadline,
        )
        if resp.error_code:
            raise init_error(resp.error_code, self.transactional_id, two_pc)
        return resp.producer_id, resp.producer_epoch, _offers_v2(conn)

    async def _add_partitions(self, tps: list[TopicPartition]) -> None:
        txn = self.txn
        by_topic: dict[str, list[int]] = {}
        for tp in tps:
            by_topic.setdefault(tp.topic, []).append(tp.partition)
        req = AddPartitionsToTxnRequest(
            v3_and_below_transactional_id=self.transactional_id,
            v3_and_below_producer_id=self.idem.producer_id,
            v3_and_below_producer_epoch=self.idem.epoch,
            v3_and_below_topics=[
                AddPartitionsToTxnRequest.AddPartitionsToTxnTopic(name=t, partitions=ps)
                for t, ps in by_topic.items()
            ],
        )

        def version(c: BrokerConnection) -> tuple[Message, int]:
            ours = (0, _ADD_PARTITIONS_CLIENT_MAX)
            return req, pick_version(AddPartitionsToTxnRequest.API_KEY, c.versions, ours)

        try:
            resp, _ = await self.call(
                TRANSACTION,
                self.transactional_id,
                version,
                AddPartitionsToTxnResponse,
                _add_partitions_error,
                self.now_ms() + self.config.delivery_timeout,
            )
        except CANCELLED:
            txn.adding_failed()
            raise
        except BaseException as exc:
            txn.adding_failed()
            self._failed(exc, "AddPartitionsToTxn")
        else:
            results = {
                TopicPartition(t.name, p.partition_index): p.partition_error_code
                for t in resp.results_by_topic_v3_and_below
                for p in t.results_by_partition
            }
            kind = txn.partitions_added(results)
            bad = [(tp, c) for tp, c in results.items() if c not in (0, _OPERATION_NOT_ATTEMPTED)]
            if kind in (ErrorKind.ABORTABLE, ErrorKind.FATAL) and bad:
                tp, code = bad[0]
                what = f"AddPartitionsToTxn of {tp.topic}-{tp.partition}"
                self._failed(txn_error(code, what + txn.timeout_hint(self.now_ms())), what)
        finally:
            self.add_task = None
            self.wake()

    def _failed(self, exc: BaseException, what: str) -> None:
        """A request of the transaction failed for good: abortable, or fatal if fenced."""
        if isinstance(exc, KafkaError) and classify(getattr(exc, "code", -1)) is ErrorKind.FATAL:
            self.txn.fatal(exc)
            self.fatal(exc)
        else:
            log.warning("%s failed; the transaction must be aborted: %s", what, exc)
            self.txn.abortable(exc)

    async def end_txn(self, commit: bool, deadline: int) -> None:
        """EndTxn: commit or abort on the coordinator (v2: the answer carries a new epoch)."""
        txn, idem = self.txn, self.idem
        v2 = txn.v2

        def version(c: BrokerConnection) -> tuple[Message, int]:
            req = EndTxnRequest(
                transactional_id=self.transactional_id,
                producer_id=idem.producer_id,
                producer_epoch=idem.epoch,
                committed=commit,
            )
            ours = (0, 5 if v2 else _END_TXN_V1_MAX)
            return req, pick_version(EndTxnRequest.API_KEY, c.versions, ours)

        resp, _ = await self.call(
            TRANSACTION, self.transactional_id, version, EndTxnResponse, _code, deadline
        )
        if resp.error_code:
            what = "EndTxn (" + ("commit" if commit else "abort") + ")"
            raise txn_error(resp.error_code, what + txn.timeout_hint(self.now_ms()))
        if v2 and resp.producer_id >= 0:
            self.new_epoch(resp.producer_id, resp.producer_epoch)

    def new_epoch(self, pid: int, epoch: int) -> None:
        """A new producer epoch (v2 after every EndTxn; v1 after a bump): sequences restart."""
        idem = self.idem
        idem.set_producer_id(pid, epoch)
        idem.bump_pending = False
        idem.rewrite.clear()
        self.acc.reset_sequences()

    async def send_offsets(
        self,
        offsets: dict[TopicPartition, tuple[int, str | None]],
        group: ConsumerGroupMetadata,
        deadline: int,
    ) -> None:
        """AddOffsetsToTxn (the group's offsets partition joins the transaction), then
        TxnOffsetCommit to the group coordinator (KIP-447: with the consumer's generation)."""
        txn, idem = self.txn, self.idem
        add = AddOffsetsToTxnRequest(
            transactional_id=self.transactional_id,
            producer_id=idem.producer_id,
            producer_epoch=idem.epoch,
            group_id=group.group_id,
        )
        resp, _ = await self.call(
            TRANSACTION,
            self.transactional_id,
            latest(add),
            AddOffsetsToTxnResponse,
            _code,
            deadline,
        )
        if resp.error_code:
            raise txn_error(resp.error_code, f"AddOffsetsToTxn for group {group.group_id!r}")
        txn.offsets_added = True
        part = TxnOffsetCommitRequest.TxnOffsetCommitRequestTopic.TxnOffsetCommitRequestPartition
        by_topic: dict[str, list[Any]] = {}
        for tp, (offset, meta) in offsets.items():
            by_topic.setdefault(tp.topic, []).append(
                part(partition_index=tp.partition, committed_offset=offset, committed_metadata=meta)
            )
        commit = TxnOffsetCommitRequest(
            transactional_id=self.transactional_id,
            group_id=group.group_id,
            producer_id=idem.producer_id,
            producer_epoch=idem.epoch,
            generation_id=group.generation_id,
            member_id=group.member_id,
            group_instance_id=group.group_instance_id,
            topics=[
                TxnOffsetCommitRequest.TxnOffsetCommitRequestTopic(name=t, partitions=ps)
                for t, ps in by_topic.items()
            ],
        )
        answer, _ = await self.call(
            GROUP,
            group.group_id,
            latest(commit),
            TxnOffsetCommitResponse,
            _offset_commit_error,
            deadline,
        )
        code = _offset_commit_error(answer)
        if code:
            raise txn_error(code, f"TxnOffsetCommit for group {group.group_id!r}")


def _offers_v2(conn: BrokerConnection) -> bool:
    """KIP-890 transactions v2: finalized by the cluster, and spoken by this broker."""
    level = conn.features.get("transaction.version", 0)
    versions = conn.versions
    return (
        level >= 2
        and versions.get(EndTxnRequest.API_KEY, (0, 0))[1] >= 5
        and versions.get(0, (0, 0))[1] >= 12
    )


def _code(resp: Any) -> int:
    return int(resp.error_code)


def _add_partitions_error(resp: AddPartitionsToTxnResponse) -> int:
    """The request's error: the first partition's code other than OPERATION_NOT_ATTEMPTED
    (which only says another partition failed)."""
    codes = [
        p.partition_error_code
        for t in resp.results_by_topic_v3_and_below
        for p in t.results_by_partition
        if p.partition_error_code != 0
    ]
    real = [c for c in codes if c != _OPERATION_NOT_ATTEMPTED]
    return real[0] if real else (codes[0] if codes else 0)


def _offset_commit_error(resp: TxnOffsetCommitResponse) -> int:
    for t in resp.topics:
        for p in t.partitions:
            if p.error_code:
                return int(p.error_code)
    return 0


__all__ = ["ConsumerGroupMetadata", "TransactionCoordinator"]
