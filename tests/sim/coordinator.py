"""The simulated cluster's transaction coordinator (KIP-98, KIP-890) and group offsets.

Kafka's rules, as the coordinator applies them (``TransactionCoordinator``,
``TransactionMetadata``):

* one coordinator node for a transactional id: the first live broker from a fixed preferred
  one; a request to another node gets NOT_COORDINATOR (16), and a crash of the coordinator's
  node moves it (FindCoordinator then names the next one);
* InitProducerId with a transactional id: the first one gets a new producer id, later ones
  bump the epoch (fencing the older producer), aborting the transaction it left open (abort
  markers in its partitions);
* a request with an older epoch than the coordinator's: PRODUCER_FENCED (90); AddPartitionsToTxn
  / AddOffsetsToTxn / EndTxn for a transaction in the middle of ending are not modelled;
* EndTxn writes a control record (commit or abort marker) in each partition of the
  transaction, then applies the group offsets the transaction committed; with transactions v2
  (EndTxn v5) the epoch goes up by one and the answer carries it;
* v1: a transactional batch for a partition not added to the transaction is refused with
  INVALID_TXN_STATE (48); v2 (Produce v12): it joins the transaction as it is written.

In the fault window the coordinator may answer COORDINATOR_LOAD_IN_PROGRESS (14) or
CONCURRENT_TRANSACTIONS (51) instead of doing anything: the producer retries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aioproducer._protocol.messages import (
    AddOffsetsToTxnResponse,
    AddPartitionsToTxnResponse,
    EndTxnResponse,
    FindCoordinatorResponse,
    InitProducerIdResponse,
    TxnOffsetCommitResponse,
)

if TYPE_CHECKING:
    from .broker import Broker
    from .log import Partition
    from .net import Link
    from .world import World

#: API keys the coordinator answers (InitProducerId only with a transactional id).
APIS = {10: "FindCoordinator", 24: "AddPartitionsToTxn", 25: "AddOffsetsToTxn", 26: "EndTxn"}
APIS[28] = "TxnOffsetCommit"
MARKER = {"commit": "<commit>", "abort": "<abort>"}


@dataclass
class Txn:
    """One transactional id's state at the coordinator."""

    pid: int
    epoch: int
    ongoing: bool = False
    partitions: set[tuple[str, int]] = field(default_factory=set)
    #: group -> {(topic, partition): offset} committed by TxnOffsetCommit, applied on commit.
    offsets: dict[str, dict[tuple[str, int], int]] = field(default_factory=dict)


class Coordinator:
    def __init__(self, world: World, v2: bool) -> None:
        self.world = world
        #: Transactions v2 offered (finalized transaction.version=2, EndTxn v5, Produce v12).
        self.v2 = v2
        self.txns: dict[str, Txn] = {}
        #: group -> committed offsets (what a consumer of the group would resume from).
        self.group_offsets: dict[str, dict[tuple[str, int], int]] = {}
        #: Per transactional id: ("commit" | "abort", pid, epoch, partitions) in order.
        self.ended: list[tuple[str, str, int, int, tuple[tuple[str, int], ...]]] = []
        #: The node each FindCoordinator answer named, in order.
        self.found: list[int] = []

    # -- who answers -----------------------------------------------------------------------------

    def node(self) -> int:
        """The coordinator node: the first live broker from broker 1 (0 if there is one)."""
        brokers = self.world.cluster.brokers
        order = sorted(brokers, key=lambda n: (n - 1) % len(brokers))
        for n in order:
            if brokers[n].up:
                return n
        return -1

    def handles(self, api_key: int, request: Any) -> bool:
        if api_key == 22:
            return bool(getattr(request, "transactional_id", None))
        return api_key in APIS

    def on_request(
        self, broker: Broker, link: Link, api_key: int, version: int, cid: int, request: Any
    ) -> None:
        w = self.world
        name = "InitProducerId" if api_key == 22 else APIS[api_key]
        flexible = request.is_flexible(version)
        if api_key == 10:
            body, note = self._find(request, version)
        elif broker.node_id != self.node():
            body, note = self._error(api_key, request, version, 16), "16 (not the coordinator)"
        elif w.in_fault_window() and w.frng.random() < w.params.p_coordinator_error:
            code = w.frng.choice((14, 51))
            body, note = self._error(api_key, request, version, code), f"{code} (injected)"
        elif api_key == 22:
            body, note = self._init(request, version)
        elif api_key == 24:
            body, note = self._add_partitions(request, version)
        elif api_key == 25:
            code = self._check(
                request.transactional_id, request.producer_id, request.producer_epoch
            )
            if code == 0:
                self.txns[request.transactional_id].ongoing = True
            body, note = AddOffsetsToTxnResponse(error_code=code).encode(version), str(code)
        elif api_key == 26:
            body, note = self._end(request, version)
        else:
            body, note = self._offset_commit(request, version)
        broker._reply(link, cid, body, flexible, f"{name} v{version}", note)

    # -- APIs ------------------------------------------------------------------------------------

    def _find(self, request: Any, version: int) -> tuple[bytes, str]:
        node = self.node()
        self.found.append(node)
        b = self.world.cluster.brokers[node]
        host, port = self.world.cluster.endpoint(b)
        if version >= 4:
            coord = FindCoordinatorResponse.Coordinator(
                key=request.coordinator_keys[0], node_id=node, host=host, port=port
            )
            return FindCoordinatorResponse(coordinators=[coord]).encode(version), f"node {node}"
        return (
            FindCoordinatorResponse(node_id=node, host=host, port=port).encode(version),
            f"node {node}",
        )

    def _error(self, api_key: int, request: Any, version: int, code: int) -> bytes:
        if api_key == 22:
            return InitProducerIdResponse(error_code=code).encode(version)
        if api_key == 24:
            return self._add_answer(request, version, code)
        if api_key == 25:
            return AddOffsetsToTxnResponse(error_code=code).encode(version)
        if api_key == 26:
            return EndTxnResponse(error_code=code).encode(version)
        T = TxnOffsetCommitResponse.TxnOffsetCommitResponseTopic
        P = T.TxnOffsetCommitResponsePartition
        topics = [
            T(
                name=t.name,
                partitions=[
                    P(partition_index=p.partition_index, error_code=code) for p in t.partitions
                ],
            )
            for t in request.topics
        ]
        return TxnOffsetCommitResponse(topics=topics).encode(version)

    def _init(self, request: Any, version: int) -> tuple[bytes, str]:
        c = self.world.cluster
        tid = request.transactional_id
        txn = self.txns.get(tid)
        if txn is None:
            pid, epoch = c.init_producer_id(-1, -1)
            txn = self.txns[tid] = Txn(pid, epoch)
        else:
            if txn.ongoing:  # the older producer's open transaction is aborted
                self._write_markers(tid, txn, "abort")
            txn.epoch += 1
            c.pids[txn.pid] = txn.epoch
        note = f"pid={txn.pid} epoch={txn.epoch}"
        resp = InitProducerIdResponse(producer_id=txn.pid, producer_epoch=txn.epoch)
        return resp.encode(version), note

    def _check(self, tid: str, pid: int, epoch: int) -> int:
        txn = self.txns.get(tid)
        if txn is None or txn.pid != pid:
            return 49  # INVALID_PRODUCER_ID_MAPPING
        if epoch < txn.epoch:
            return 90  # PRODUCER_FENCED
        if epoch > txn.epoch:
            return 47
        return 0

    def _add_answer(self, request: Any, version: int, code: int) -> bytes:
        R = AddPartitionsToTxnResponse.AddPartitionsToTxnTopicResult
        P = R.AddPartitionsToTxnPartitionResult
        results = [
            R(
                name=t.name,
                results_by_partition=[
                    P(partition_index=i, partition_error_code=code) for i in t.partitions
                ],
            )
            for t in request.v3_and_below_topics
        ]
        return AddPartitionsToTxnResponse(results_by_topic_v3_and_below=results).encode(version)

    def _add_partitions(self, request: Any, version: int) -> tuple[bytes, str]:
        tid = request.v3_and_below_transactional_id
        code = self._check(
            tid, request.v3_and_below_producer_id, request.v3_and_below_producer_epoch
        )
        if code == 0:
            txn = self.txns[tid]
            txn.ongoing = True
            for t in request.v3_and_below_topics:
                txn.partitions.update((t.name, i) for i in t.partitions)
        return self._add_answer(request, version, code), str(code)

    def _offset_commit(self, request: Any, version: int) -> tuple[bytes, str]:
        code = self._check(request.transactional_id, request.producer_id, request.producer_epoch)
        if code == 0:
            txn = self.txns[request.transactional_id]
            pending = txn.offsets.setdefault(request.group_id, {})
            for t in request.topics:
                for p in t.partitions:
                    pending[(t.name, p.partition_index)] = p.committed_offset
        return self._error(28, request, version, code), str(code)

    def _end(self, request: Any, version: int) -> tuple[bytes, str]:
        tid = request.transactional_id
        code = self._check(tid, request.producer_id, request.producer_epoch)
        if code != 0:
            return EndTxnResponse(error_code=code).encode(version), str(code)
        txn = self.txns[tid]
        result = "commit" if request.committed else "abort"
        self._write_markers(tid, txn, result)
        if version >= 5:  # KIP-890: every end of a transaction bumps the epoch
            txn.epoch += 1
            self.world.cluster.pids[txn.pid] = txn.epoch
        resp = EndTxnResponse(producer_id=txn.pid, producer_epoch=txn.epoch)
        return resp.encode(version), f"{result} -> epoch {txn.epoch}"

    def _write_markers(self, tid: str, txn: Txn, result: str) -> None:
        from .log import Entry

        c = self.world.cluster
        for key in sorted(txn.partitions):
            part = c.partitions[key]
            part.log.append(
                Entry(len(part.log), txn.pid, txn.epoch, -1, None, None, (), "?", MARKER[result])
            )
            part.hw = len(part.log)
        if result == "commit":
            for group, offsets in txn.offsets.items():
                self.group_offsets.setdefault(group, {}).update(offsets)
        self.ended.append((tid, result, txn.pid, txn.epoch, tuple(sorted(txn.partitions))))
        self.world.trace("txn", f"{tid} {result} pid={txn.pid} e={txn.epoch} {txn.partitions}")
        txn.ongoing = False
        txn.partitions = set()
        txn.offsets = {}

    # -- the produce path ------------------------------------------------------------------------

    def check_batch(self, part: Partition, batch: Any) -> int:
        """A transactional batch: v1 needs its partition in the transaction (else 48); v2
        adds it. 0: may be appended."""
        for tid, txn in self.txns.items():
            if txn.pid != batch.producer_id:
                continue
            key = (part.topic, part.index)
            if batch.producer_epoch < txn.epoch:
                return 47
            if key in txn.partitions:
                return 0
            if self.v2:
                txn.ongoing = True
                txn.partitions.add(key)
                return 0
            self.world.trace("txn", f"{tid}: batch for {part.name}, not in the transaction")
            return 48
        return 0


def committed_view(part: Partition) -> list[Any]:
    """What a ``read_committed`` consumer reads of the partition: records of transactions
    whose marker is a commit, in offset order (a transaction still open shows nothing)."""
    pending: dict[int, list[Any]] = {}
    out: list[Any] = []
    for e in part.log:
        if e.control is not None:
            records = pending.pop(e.pid, [])
            if e.control == MARKER["commit"]:
                out.extend(records)
            continue
        if e.txn:
            pending.setdefault(e.pid, []).append(e)
        else:
            out.append(e)
    return sorted(out, key=lambda e: e.offset)


__all__ = ["APIS", "Coordinator", "Txn", "committed_view"]
