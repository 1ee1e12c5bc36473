"""MockProducer's transactions: the real producer's methods, state table and errors, records
kept uncommitted until the commit, offsets per group, injected errors, fencing (Java's
MockProducer transactions)."""

from __future__ import annotations

from typing import Any

import pytest

from aioproducer import (
    ConsumerGroupMetadata,
    PreparedTxnState,
    ProducerClosedError,
    ProducerRecord,
    TopicPartition,
    TransactionAbortedError,
    TransactionalProducerLike,
    TransactionStateError,
)
from aioproducer._core.transactions import TRANSITIONS, TxnState
from aioproducer.errors import (
    ConcurrentTransactionsError,
    InvalidProducerEpochError,
    KafkaError,
    NotEnoughReplicasError,
    ProducerFencedError,
    RecordTooLargeError,
)
from aioproducer.testing import MockProducer

pytestmark = pytest.mark.asyncio

S = TxnState


def state_of(p: MockProducer) -> TxnState | None:
    """The state now (a call, so that mypy does not narrow it across awaits)."""
    return p.transaction_state


def values(records: list[ProducerRecord]) -> list[Any]:
    return [r.value for r in records]


async def started(**kw: Any) -> MockProducer:
    p = MockProducer(transactional_id="tx", **kw)
    await p.start()
    return p


async def relay(
    producer: TransactionalProducerLike, out: str, source: str, group: str
) -> list[int]:
    """Code under test, typed with the Protocol: consume-transform-produce exactly once. It
    runs on the mock here and on the real producer in
    tests/integration/test_mock_producer_transactions.py; the outcomes must match."""
    offsets = []
    async with producer:
        async with producer.transaction():
            a = await producer.send(out, b"a", partition=0)
            b = await producer.send(out, b"b", partition=1)
            await producer.send_offsets_to_transaction({TopicPartition(source, 0): 5}, group)
        offsets += [(await a).offset, (await b).offset]
        producer.begin_transaction()
        aborted = await producer.send(out, b"aborted", partition=0)
        await producer.send_offsets_to_transaction({TopicPartition(source, 0): 99}, group)
        await producer.flush()  # written, then aborted
        await producer.abort_transaction()
        offsets.append((await aborted).offset)
        try:
            async with producer.transaction():
                boom = await producer.send(out, b"boom", partition=1)
                await producer.flush()
                raise ValueError("the transform failed")
        except ValueError:
            offsets.append((await boom).offset)
        try:
            await producer.send(out, b"outside a transaction")
        except TransactionStateError:
            offsets.append(-1)
        async with producer.transaction():
            md = await producer.send_and_wait(out, b"c", partition=0)
            await producer.send_offsets_to_transaction(
                {TopicPartition(source, 0): (7, "m"), TopicPartition(source, 1): 3}, group
            )
        offsets.append(md.offset)
    return offsets


async def test_relay_on_the_mock() -> None:
    mock = MockProducer(transactional_id="relay", partitions=2)
    # Offsets as Kafka gives them on a fresh topic: every transaction's end takes one in each
    # partition it wrote to (the commit or abort marker).
    assert await relay(mock, "out", "in", "g") == [0, 0, 2, 2, -1, 4]
    assert [(r.partition, r.value) for r in mock.history()] == [
        (0, b"a"),
        (1, b"b"),
        (0, b"c"),
    ]
    assert mock.consumer_group_offsets_history() == [
        {"g": {TopicPartition("in", 0): (5, "")}},
        {"g": {TopicPartition("in", 0): (7, "m"), TopicPartition("in", 1): (3, "")}},
    ]
    assert mock.commit_count == 2 and mock.transaction_committed
    assert mock.state == "closed"


async def test_every_move_of_the_state_table() -> None:
    """The mock moves through the core's table (``transition()`` refuses any other move):
    every move of it is made here but INITIALIZING -> UNINITIALIZED (a failed init is raised
    before initializing) and ABORTABLE_ERROR -> ABORTABLE_ERROR (the records queued after a
    failed one fail at once, so no second failure comes)."""
    seen: set[tuple[TxnState, TxnState]] = set()

    def recording(p: MockProducer) -> MockProducer:
        txn = p._txn
        assert txn is not None
        move = txn.transition

        def transition(new: TxnState, error: BaseException | None = None) -> None:
            old = txn.state
            move(new, error)
            seen.add((old, new))

        txn.transition = transition  # type: ignore[method-assign]
        return p

    p = recording(MockProducer(transactional_id="tx", auto_complete=False))
    assert state_of(p) is S.UNINITIALIZED and not p.transaction_initialized
    await p.start()  # -> INITIALIZING -> READY
    assert p.transaction_initialized and not p.transaction_in_flight
    p.begin_transaction()  # READY -> IN_TRANSACTION
    assert p.transaction_in_flight
    await p.send("t", b"1")
    await p.commit_transaction()  # -> COMMITTING -> READY
    p.begin_transaction()
    await p.abort_transaction()  # -> ABORTING -> READY
    p.begin_transaction()
    await p.send("t", b"2")
    p.error_next(NotEnoughReplicasError("x"))  # -> ABORTABLE_ERROR
    await p.abort_transaction()  # -> ABORTING -> READY
    p.begin_transaction()
    p.commit_transaction_error = RuntimeError("commit refused")
    await p.send("t", b"3")
    with pytest.raises(RuntimeError):
        await p.commit_transaction()  # -> COMMITTING -> ABORTABLE_ERROR
    p.commit_transaction_error = None
    await p.abort_transaction()
    p.fence()  # READY -> FATAL_ERROR
    two_pc = recording(
        MockProducer(transactional_id="tx2", transaction_two_phase_commit_enable=True)
    )
    await two_pc.start()
    for commit in (True, False):
        two_pc.begin_transaction()
        prepared = await two_pc.prepare_transaction()  # IN_TRANSACTION -> PREPARED
        assert two_pc.transaction_state is S.PREPARED
        # PREPARED -> COMMITTING or ABORTING -> READY
        await two_pc.complete_transaction(prepared if commit else PreparedTxnState())
        assert two_pc.transaction_committed is commit
    two_pc.begin_transaction()
    two_pc.fence()  # IN_TRANSACTION -> FATAL_ERROR
    expected = {
        (old, new)
        for old, moves in TRANSITIONS.items()
        for new in moves
        if new is not S.FATAL_ERROR and new is not old
    } - {(S.INITIALIZING, S.UNINITIALIZED)}
    assert seen - expected == {(S.READY, S.FATAL_ERROR), (S.IN_TRANSACTION, S.FATAL_ERROR)}
    assert expected <= seen


async def test_records_are_uncommitted_until_the_commit_and_dropped_by_an_abort() -> None:
    p = await started(auto_complete=False)
    p.begin_transaction()
    f1 = await p.send("t", b"1")
    f2 = await p.send("t", b"2")
    assert values(p.uncommitted_records()) == [b"1", b"2"] and p.history() == []
    assert not f1.done()
    await p.commit_transaction()  # completes them first, as the real one flushes
    assert (await f1).offset == 0 and (await f2).offset == 1
    assert values(p.history()) == [b"1", b"2"] and p.uncommitted_records() == []
    assert p.transaction_committed and not p.transaction_aborted and p.commit_count == 1

    p.begin_transaction()
    assert not p.transaction_committed
    written = await p.send("t", b"3")
    p.complete_next()  # acknowledged (written), then aborted: keeps its metadata
    seen: list[BaseException | None] = []
    queued = await p.send("t", b"4", callback=lambda md, exc: seen.append(exc))
    await p.abort_transaction()
    assert (await written).offset == 3  # 2 is the commit marker
    with pytest.raises(TransactionAbortedError, match="abort_transaction\\(\\) was called"):
        await queued
    assert len(seen) == 1 and isinstance(seen[0], TransactionAbortedError)
    assert values(p.history()) == [b"1", b"2"] and p.uncommitted_records() == []
    assert p.transaction_aborted and p.commit_count == 1
    # An empty transaction commits (no marker: nothing was written).
    async with p.transaction():
        pass
    assert p.commit_count == 2
    # close() delivers what is pending (as the real one writes it), never committed.
    p.begin_transaction()
    last = await p.send("t", b"5")
    await p.close()
    assert (await last).offset == 5 and values(p.uncommitted_records()) == [b"5"]
    assert values(p.history()) == [b"1", b"2"]


async def test_offsets_are_kept_per_group_and_committed_with_the_transaction() -> None:
    p = await started()
    tp0, tp1 = TopicPartition("in", 0), TopicPartition("in", 1)
    p.begin_transaction()
    await p.send_offsets_to_transaction({tp0: 1}, "g1")
    await p.send_offsets_to_transaction({tp0: 2, tp1: (4, "meta")}, "g1")
    await p.send_offsets_to_transaction(
        {tp1: 9}, ConsumerGroupMetadata("g2", generation_id=3, member_id="m")
    )
    assert p.uncommitted_offsets() == {
        "g1": {tp0: (2, ""), tp1: (4, "meta")},
        "g2": {tp1: (9, "")},
    }
    assert p.consumer_group_offsets_history() == []
    await p.commit_transaction()
    assert p.consumer_group_offsets_history() == [
        {"g1": {tp0: (2, ""), tp1: (4, "meta")}, "g2": {tp1: (9, "")}}
    ]
    async with p.transaction():  # no offsets: nothing added to the history
        await p.send("t", b"x")
    p.begin_transaction()
    await p.send_offsets_to_transaction({tp0: 50}, "g1")
    await p.abort_transaction()
    assert len(p.consumer_group_offsets_history()) == 1 and p.uncommitted_offsets() == {}
    # Checked as the real producer checks them.
    p.begin_transaction()
    with pytest.raises(TypeError, match="TopicPartition"):
        await p.send_offsets_to_transaction({("in", 0): 1}, "g")  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="int >= 0"):
        await p.send_offsets_to_transaction({tp0: -1}, "g")
    with pytest.raises(ValueError, match="must not be empty"):
        await p.send_offsets_to_transaction({tp0: 1}, "")
    await p.abort_transaction()
    with pytest.raises(TransactionStateError, match="only inside a transaction"):
        await p.send_offsets_to_transaction({tp0: 1}, "g")
    p.clear()
    assert p.history() == [] and p.consumer_group_offsets_history() == []


async def test_misuse_raises_the_real_producers_errors() -> None:
    plain = MockProducer()
    await plain.start()
    with pytest.raises(TransactionStateError, match="not transactional"):
        plain.begin_transaction()
    with pytest.raises(TransactionStateError, match="not transactional"):
        await plain.commit_transaction()
    assert plain.transaction_state is None and not plain.transaction_in_flight
    new = MockProducer(transactional_id="tx")
    with pytest.raises(TransactionStateError, match="call start"):
        new.begin_transaction()
    p = await started()
    with pytest.raises(TransactionStateError, match="only inside a transaction"):
        await p.send("t", b"outside")
    with pytest.raises(TransactionStateError, match="no transaction to commit"):
        await p.commit_transaction()
    with pytest.raises(TransactionStateError, match="no transaction to abort"):
        await p.abort_transaction()
    with pytest.raises(TransactionStateError, match="needs two-phase commit"):
        await p.prepare_transaction()
    p.begin_transaction()
    with pytest.raises(TransactionStateError, match="already in progress"):
        p.begin_transaction()
    await p.send("t", b"inside")
    await p.commit_transaction()
    with pytest.raises(TransactionStateError, match="only inside a transaction"):
        await p.send("t", b"after commit")
    assert values(p.history()) == [b"inside"]
    await p.close()
    with pytest.raises(ProducerClosedError):
        p.begin_transaction()


async def test_a_failed_record_makes_commit_raise_it_and_abort_recovers() -> None:
    p = await started(auto_complete=False)
    p.begin_transaction()
    ok = await p.send("t", b"ok")
    bad = await p.send("t", b"too big")
    after = await p.send("t", b"queued after it")
    p.complete_next()
    p.error_next(RecordTooLargeError("injected"))
    # The records queued after the failed one fail without being sent.
    with pytest.raises(TransactionAbortedError) as info:
        await after
    assert isinstance(info.value.__cause__, RecordTooLargeError)
    with pytest.raises(TransactionStateError, match="must be aborted"):
        await p.send("t", b"refused")
    with pytest.raises(TransactionStateError, match="cannot commit a failed") as refused:
        await p.commit_transaction()
    assert isinstance(refused.value.__cause__, RecordTooLargeError)
    with pytest.raises(RecordTooLargeError):
        await bad
    await p.abort_transaction()
    assert (await ok).offset == 0
    async with p.transaction():
        nxt = await p.send("t", b"next")
    assert (await nxt).offset == 2  # 1: the abort marker
    assert values(p.history()) == [b"next"]


async def test_injected_errors_leave_the_transaction_as_the_real_producer_does() -> None:
    p = await started()
    # begin: raised, nothing changes.
    p.begin_transaction_error = KafkaError("begin refused")
    with pytest.raises(KafkaError, match="begin refused"):
        p.begin_transaction()
    assert state_of(p) is S.READY
    p.begin_transaction_error = None
    # An empty transaction ends without the coordinator: no EndTxn, no error.
    p.commit_transaction_error = KafkaError("never raised")
    async with p.transaction():
        pass
    assert p.commit_count == 1
    # Offsets alone reach the coordinator: the commit's EndTxn fails.
    p.begin_transaction()
    await p.send_offsets_to_transaction({TopicPartition("in", 0): 1}, "g")
    with pytest.raises(KafkaError, match="never raised"):
        await p.commit_transaction()
    assert state_of(p) is S.ABORTABLE_ERROR
    p.commit_transaction_error = None
    await p.abort_transaction()
    # commit, retriable: the state stays COMMITTING; calling again resumes.
    p.begin_transaction()
    await p.send("t", b"1")
    p.commit_transaction_error = ConcurrentTransactionsError("busy")
    with pytest.raises(ConcurrentTransactionsError):
        await p.commit_transaction()
    assert state_of(p) is S.COMMITTING and p.history() == []
    p.commit_transaction_error = None
    await p.commit_transaction()
    assert values(p.history()) == [b"1"]
    # send_offsets, not retriable: the transaction must abort.
    p.begin_transaction()
    await p.send("t", b"aborted")
    p.send_offsets_error = KafkaError("offsets refused")
    with pytest.raises(KafkaError, match="offsets refused"):
        await p.send_offsets_to_transaction({TopicPartition("in", 0): 1}, "g")
    assert state_of(p) is S.ABORTABLE_ERROR and p.uncommitted_offsets() == {}
    p.send_offsets_error = None
    # abort: stays ABORTING; calling again resumes.
    p.abort_transaction_error = KafkaError("abort failed")
    with pytest.raises(KafkaError, match="abort failed"):
        await p.abort_transaction()
    assert state_of(p) is S.ABORTING
    p.abort_transaction_error = None
    await p.abort_transaction()
    assert p.transaction_aborted
    # A fatal code stops the producer: the fencing one becomes ProducerFencedError.
    p.begin_transaction()
    await p.send("t", b"2")
    p.commit_transaction_error = InvalidProducerEpochError("epoch")
    with pytest.raises(ProducerFencedError) as fenced:
        await p.commit_transaction()
    assert isinstance(fenced.value.__cause__, InvalidProducerEpochError)
    assert p.state == "failed" and p.transaction_state is S.FATAL_ERROR
    with pytest.raises(ProducerFencedError):
        await p.abort_transaction()
    # init: start() raises it.
    q = MockProducer(transactional_id="tx")
    q.init_transactions_error = KafkaError("no coordinator")
    with pytest.raises(KafkaError, match="no coordinator"):
        await q.start()
    assert q.state == "new" and not q.transaction_initialized


async def test_fence_fails_pending_records_and_every_next_call() -> None:
    p = await started(auto_complete=False)
    p.begin_transaction()
    pending = await p.send("t", b"zombie")
    p.fence()
    with pytest.raises(ProducerFencedError):
        await pending
    with pytest.raises(ProducerClosedError, match="fatal error") as info:
        await p.send("t", b"zombie 2")
    assert isinstance(info.value.__cause__, ProducerFencedError)
    for call in (p.commit_transaction, p.abort_transaction):
        with pytest.raises(ProducerFencedError, match="fenced"):
            await call()
    with pytest.raises(ProducerFencedError):
        p.begin_transaction()
    with pytest.raises(ProducerFencedError):
        await p.send_offsets_to_transaction({TopicPartition("in", 0): 1}, "g")
    assert p.state == "failed" and p.history() == []
    await p.close()
    assert str(p.state) == "closed"
    with pytest.raises(TransactionStateError, match="not transactional"):
        MockProducer().fence()


async def test_the_context_manager_aborts_on_an_exception() -> None:
    p = await started(auto_complete=False)
    with pytest.raises(ZeroDivisionError):
        async with p.transaction():
            queued = await p.send("t", b"never")
            1 / 0  # noqa: B018
    with pytest.raises(TransactionAbortedError):
        await queued
    assert p.transaction_aborted and p.history() == []
    async with p.transaction():
        await p.send("t", b"kept")
    assert values(p.history()) == [b"kept"]


async def test_two_phase_commit_completes_or_aborts_by_the_state() -> None:
    p = await started(transaction_two_phase_commit_enable=True)
    p.begin_transaction()
    await p.send("t", b"1")
    state = await p.prepare_transaction()
    assert state == PreparedTxnState(0, 0)
    with pytest.raises(TransactionStateError, match="prepared"):
        await p.send("t", b"no more")
    await p.complete_transaction(PreparedTxnState.parse(str(state)))
    assert values(p.history()) == [b"1"] and p.transaction_committed
    p.begin_transaction()
    await p.send("t", b"2")
    other = await p.prepare_transaction()
    assert other == PreparedTxnState(0, 1)  # the commit bumped the epoch (v2)
    await p.complete_transaction(PreparedTxnState(0, 0))  # not this one: abort
    assert p.transaction_aborted and values(p.history()) == [b"1"]
    with pytest.raises(TransactionStateError, match="no prepared transaction"):
        await p.complete_transaction(other)
