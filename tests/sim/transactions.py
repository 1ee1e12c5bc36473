"""A transactional workload on the simulated cluster, and its oracles.

The producer (``transactional_id``) runs transactions of a few records each, sometimes with a
group's offsets, and commits or aborts them; faults (crashes that move the coordinator,
coordinator errors, lost requests and answers, retriable produce errors) come from the seed.
A commit or abort that fails is resolved as a user would: called again if it timed out,
aborted if the transaction failed.

Oracles, over what a ``read_committed`` consumer reads (``coordinator.committed_view``):

* T1 no record is twice in the committed view;
* T2 a transaction whose commit returned is whole in it: every record sent in it, once;
* T3 a transaction that was aborted (abort returned) has no record in it;
* T4 a transaction whose end is unknown (the producer failed) is all or nothing;
* T5 the group offsets are those of the last committed transaction that sent offsets;
* T6 liveness: every transaction ends (committed or aborted) unless the producer hit a fatal
  error (the workload injects none), since the faults heal.

The base oracles O1-O7 (``oracles.py``) hold as well.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from aioproducer import KafkaError, Producer, TopicPartition
from aioproducer._core.transactions import TxnState
from aioproducer.errors import ProducerFencedError

from .coordinator import Coordinator, committed_view
from .schedule import RETRIABLE_CODES, Crash, Params
from .world import Rec, World, run_world

GROUP = "sim-group"


@dataclass
class TxnRun:
    index: int
    recs: list[Rec] = field(default_factory=list)
    #: "committed", "aborted", or "unknown" (the producer could not end it).
    outcome: str = "unknown"
    offsets: dict[tuple[str, int], int] | None = None


class TxnWorld(World):
    def __init__(self, params: Params, trace: bool = False, out: Any = None) -> None:
        super().__init__(params, trace, out)
        self.cluster.coordinator = self.coordinator = Coordinator(self, params.txn_v2)
        self.runs: list[TxnRun] = []

    def producer_config(self) -> dict[str, Any]:
        cfg = super().producer_config()
        cfg.update(transactional_id="sim-txn", enable_idempotence=None, acks="all")
        return cfg

    async def main(self) -> None:
        p = self.params
        self._schedule_faults()
        producer = self.producer = Producer(**self.producer_config())
        ok, res = await self._bounded(producer.start(), p.max_block_ms / 1000 + 1, "start()")
        if not ok or isinstance(res, BaseException):
            self.start_error = res if ok else TimeoutError("start() hung")
            await self._close(producer)
            return
        rng = self.wrng
        topics = [t for t, _, _ in p.topics]
        counts = {t: n for t, n, _ in p.topics}
        per_txn = max(1, p.n_records // max(1, p.n_transactions))
        for t in range(p.n_transactions):
            run = TxnRun(t)
            try:
                producer.begin_transaction()
            except KafkaError as exc:
                self.trace("work", f"begin_transaction() raised {exc!r}")
                break
            self.runs.append(run)
            for i in range(rng.randint(1, per_txn)):
                topic = rng.choice(topics)
                part = rng.randrange(counts[topic]) if rng.random() < 0.3 else None
                rec = await self._send(
                    producer, topic, f"x{t}-{i}", f"x{t}-{i}:".encode(), None, part, None, "send"
                )
                run.recs.append(rec)
                if rec.raised is not None:
                    break
            if rng.random() < 0.4:
                offsets = {(topics[0], 0): t + 1}
                ok, res = await self._bounded(
                    producer.send_offsets_to_transaction(
                        {TopicPartition(k[0], k[1]): v for k, v in offsets.items()}, GROUP
                    ),
                    p.max_block_ms / 1000 + 1,
                    "send_offsets_to_transaction()",
                )
                if ok and res is None:
                    run.offsets = offsets
            run.outcome = await self._end(producer, rng.random() < p.p_commit)
            self.trace("work", f"transaction {t}: {run.outcome}")
            if run.outcome == "unknown":
                break
        await self._close(producer)

    async def _end(self, producer: Producer, commit: bool) -> str:
        """Commit (or abort) the transaction as a user would: again after a timeout, abort
        after a failure. Returns the outcome."""
        txn = producer._sender.txn if producer._sender is not None else None
        assert txn is not None
        bound = self.record_bound_s() + self.params.max_block_ms / 1000 + 1
        for _ in range(4):
            state = txn.state
            if state is TxnState.FATAL_ERROR:
                return "unknown"
            do_commit = commit and state in (TxnState.IN_TRANSACTION, TxnState.COMMITTING)
            call = producer.commit_transaction() if do_commit else producer.abort_transaction()
            what = "commit_transaction()" if do_commit else "abort_transaction()"
            ok, res = await self._bounded(call, bound, what)
            if not ok:
                return "unknown"
            if res is None:
                return "committed" if do_commit else "aborted"
            self.trace("work", f"{what} raised {res!r}")
            if isinstance(res, ProducerFencedError):
                return "unknown"
        return "unknown"


def check_transactions(w: TxnWorld) -> None:
    views = {key: committed_view(part) for key, part in w.cluster.partitions.items()}
    where: dict[str, list[tuple[str, int]]] = {}
    counts: Counter[str] = Counter()
    for key, entries in views.items():
        for e in entries:
            counts[e.payload] += 1
            where.setdefault(e.payload, []).append(key)
    for payload, n in counts.items():
        if n > 1:
            w.fail("T1", f"{payload} is {n} times in the committed view: {where[payload]}")
    last_offsets: dict[tuple[str, int], int] = {}
    for run in w.runs:
        sent = [r for r in run.recs if r.raised is None and r.handle is not None]
        seen = [r for r in sent if counts[r.payload]]
        if run.outcome == "committed":
            missing = [r.payload for r in sent if not counts[r.payload]]
            if missing:
                w.fail("T2", f"transaction {run.index} committed without {missing}")
            for r in sent:
                if not r.ok:
                    w.fail("T2", f"{r.payload} of committed transaction {run.index} failed")
            if run.offsets:
                last_offsets.update(run.offsets)
        elif run.outcome == "aborted":
            if seen:
                w.fail("T3", f"aborted transaction {run.index} is visible: {seen[0].payload}")
        elif seen and len(seen) != len(sent):
            w.fail("T4", f"transaction {run.index} is partly visible: {len(seen)}/{len(sent)}")
        if run.outcome == "unknown":
            sender = w.producer._sender if w.producer is not None else None
            fatal = sender.fatal_error if sender is not None else None
            if fatal is None:
                w.fail("T6", f"transaction {run.index} never ended, and no fatal error")
    unknown_offsets = any(r.outcome == "unknown" and r.offsets for r in w.runs)
    got = w.coordinator.group_offsets.get(GROUP, {})
    if got != last_offsets and not unknown_offsets:
        w.fail("T5", f"group offsets {got}, expected {last_offsets}")


def txn_params_from_seed(seed: int) -> Params:
    """A transactional run: the cluster and faults drawn as for the base simulator, without
    the faults that are not the transaction's (fencing, producer-state expiry, non-retriable
    produce errors: each has its own tests)."""
    r = random.Random(f"txn-params-{seed}")
    p = Params(seed=seed)
    p.n_brokers = r.choice([1, 3, 3, 4])
    p.topics = [
        (f"t{i}", r.choice([1, 2, 3]), min(3, p.n_brokers)) for i in range(r.choice([1, 2]))
    ]
    p.bootstrap = [0]
    p.txn_v2 = r.random() < 0.5
    p.transactional = True
    p.n_transactions = r.choice([3, 8, 15])
    p.n_records = p.n_transactions * r.choice([2, 5, 20])
    p.p_commit = r.choice([0.5, 0.8, 1.0])
    p.linger_ms = r.choice([0, 5, 20])
    p.max_gap_ms = r.choice([0, 2])
    p.request_timeout_ms = r.choice([1000, 3000])
    p.delivery_timeout_ms = p.linger_ms + p.request_timeout_ms + r.choice([2000, 10000])
    p.max_block_ms = r.choice([10000, 30000])
    p.retry_backoff_ms = r.choice([10, 50])
    p.fault_start_ms = r.choice([0, 100])
    p.heal_ms = p.fault_start_ms + r.choice([500, 2000, 5000])
    intensity = r.choice([0.0, 0.02, 0.1])
    p.p_drop_request = 0.2 * intensity
    p.p_drop_response = 0.2 * intensity
    p.p_reset_after = 0.2 * intensity
    p.p_error = intensity
    p.error_codes = list(RETRIABLE_CODES)
    p.p_coordinator_error = r.choice([0.0, 0.1, 0.3])
    window = p.heal_ms - p.fault_start_ms
    for _ in range(r.choice([0, 1, 2])):
        p.crashes.append(
            Crash(
                r.randrange(p.n_brokers),
                p.fault_start_ms + r.randrange(window),
                r.choice([200, 1500]),
                "refuse",
            )
        )
    return p


def run_txn(params: Params, trace: bool = False, out: Any = None) -> TxnWorld:
    w = TxnWorld(params, trace=trace, out=out)
    run_world(w)
    check_transactions(w)
    return w


def run_txn_seed(seed: int, trace: bool = False, out: Any = None, **changes: Any) -> TxnWorld:
    return run_txn(replace(txn_params_from_seed(seed), **changes), trace, out)


__all__ = ["TxnRun", "TxnWorld", "check_transactions", "run_txn", "run_txn_seed"]
