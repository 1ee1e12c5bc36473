"""Two-phase commit (KIP-939) in the transaction state machine, the prepared state's value,
the config rules and the InitProducerId version: pure, no broker, no event loop."""

from __future__ import annotations

import pickle

import pytest

from aioproducer import ConfigError, PreparedTxnState, ProducerConfig, TransactionStateError
from aioproducer._broker_errors import TransactionalIdAuthorizationFailedError
from aioproducer._core.cluster import TopicPartition
from aioproducer._core.transactions import TransactionManager, TxnState
from aioproducer._core.txn_errors import init_error
from aioproducer._io.producer_id import init_producer_id_version
from aioproducer._protocol.messages import InitProducerIdRequest, InitProducerIdResponse
from aioproducer.errors import KafkaError, UnsupportedVersion

TP = TopicPartition("t", 0)


def state(txn: TransactionManager) -> TxnState:
    return txn.state


def in_transaction(two_pc: bool = True) -> TransactionManager:
    txn = TransactionManager("tid", 60_000, two_pc)
    txn.begin_init()
    txn.initialized(v2=True)
    txn.begin(now_ms=0)
    txn.saw_partitions([TP])
    return txn


# -- the state value ----------------------------------------------------------------------------


def test_the_state_writes_and_reads_javas_text_form() -> None:
    st = PreparedTxnState(4001, 7)
    assert str(st) == "4001:7" and st.has_transaction
    assert PreparedTxnState.parse("4001:7") == st
    assert PreparedTxnState.parse("") == PreparedTxnState() and str(PreparedTxnState()) == ""
    assert not PreparedTxnState().has_transaction
    assert pickle.loads(pickle.dumps(st)) == st
    assert hash(PreparedTxnState(4001, 7)) == hash(st)


@pytest.mark.parametrize("text", ["4001", "a:b", "4001:7:1", ":7", "-1:5", "5:-1", "1:40000"])
def test_a_malformed_state_is_refused_by_name(text: str) -> None:
    with pytest.raises(ValueError, match=r"PreparedTxnState|prepared transaction state"):
        PreparedTxnState.parse(text)


def test_the_state_checks_its_fields() -> None:
    with pytest.raises(TypeError, match="producer_id must be an int"):
        PreparedTxnState("1", 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="both be >= 0"):
        PreparedTxnState(-1, 3)


# -- the moves ----------------------------------------------------------------------------------


def test_prepare_moves_to_prepared_and_answers_the_id_and_epoch() -> None:
    txn = in_transaction()
    prepared = txn.prepare(4001, 3)
    assert prepared == PreparedTxnState(4001, 3)
    assert state(txn) is TxnState.PREPARED and txn.prepared == prepared
    assert txn.needs_end_txn()  # the coordinator knows the transaction: EndTxn ends it


def test_a_prepared_transaction_takes_no_records_and_no_new_transaction() -> None:
    txn = in_transaction()
    txn.prepare(4001, 3)
    with pytest.raises(TransactionStateError, match=r"prepared .* takes no more records"):
        txn.check_can_send()
    with pytest.raises(TransactionStateError, match="already in progress"):
        txn.begin(now_ms=1)
    with pytest.raises(TransactionStateError, match="already prepared"):
        txn.prepare(4001, 3)
    assert state(txn) is TxnState.PREPARED


@pytest.mark.parametrize(
    ("given", "commit"),
    [
        (PreparedTxnState(4001, 3), True),
        (PreparedTxnState(4001, 2), False),
        (PreparedTxnState(9, 3), False),
        (PreparedTxnState(), False),
    ],
)
def test_complete_commits_only_the_prepared_state(given: PreparedTxnState, commit: bool) -> None:
    txn = in_transaction()
    txn.prepare(4001, 3)
    assert txn.completion_for(given) is commit
    if commit:
        txn.begin_commit()
        assert state(txn) is TxnState.COMMITTING
    else:
        txn.begin_abort()
        assert state(txn) is TxnState.ABORTING
    txn.completed()
    assert state(txn) is TxnState.READY and txn.prepared is None


def test_complete_needs_a_prepared_transaction_and_a_state_value() -> None:
    txn = in_transaction()
    with pytest.raises(TransactionStateError, match="no prepared transaction"):
        txn.completion_for(PreparedTxnState(1, 1))
    txn.prepare(1, 1)
    with pytest.raises(TypeError, match="takes a PreparedTxnState"):
        txn.completion_for("1:1")  # type: ignore[arg-type]


def test_prepare_needs_two_phase_commit_and_an_open_transaction() -> None:
    with pytest.raises(TransactionStateError, match="transaction_two_phase_commit_enable"):
        in_transaction(two_pc=False).check_prepare()
    txn = TransactionManager("tid", 60_000, True)
    txn.begin_init()
    txn.initialized(v2=True)
    with pytest.raises(TransactionStateError, match="no transaction to prepare"):
        txn.check_prepare()
    txn = in_transaction()
    txn.abortable(KafkaError("record failed"))
    with pytest.raises(TransactionStateError, match="cannot prepare a failed transaction"):
        txn.check_prepare()
    assert state(txn) is TxnState.ABORTABLE_ERROR


def test_a_two_phase_transaction_gets_no_timeout_hint() -> None:
    assert in_transaction(two_pc=True).timeout_hint(now_ms=10**9) == ""
    assert "transaction_timeout_ms" in in_transaction(two_pc=False).timeout_hint(now_ms=10**9)


# -- config ---------------------------------------------------------------------------------------


def test_the_setting_is_off_by_default_and_needs_a_transactional_id() -> None:
    assert ProducerConfig().transaction_two_phase_commit_enable is False
    with pytest.raises(ConfigError, match="needs transactional_id"):
        ProducerConfig(transaction_two_phase_commit_enable=True)
    cfg = ProducerConfig(transactional_id="t", transaction_two_phase_commit_enable=True)
    assert cfg.transaction_two_phase_commit_enable is True


def test_a_transaction_timeout_cannot_be_set_with_two_phase_commit() -> None:
    with pytest.raises(ConfigError, match="transaction_timeout_ms=5000 cannot be set"):
        ProducerConfig(
            transactional_id="t",
            transaction_two_phase_commit_enable=True,
            transaction_timeout_ms=5000,
        )


def test_the_java_name_reads_into_the_setting() -> None:
    cfg = ProducerConfig.from_properties(
        {"transactional.id": "t", "transaction.two.phase.commit.enable": "true"}
    )
    assert cfg.transaction_two_phase_commit_enable is True
    with pytest.raises(
        ConfigError, match=r"transaction_two_phase_commit_enable=.yes. must be a bool"
    ):
        ProducerConfig(transactional_id="t", transaction_two_phase_commit_enable="yes")  # type: ignore[arg-type]


# -- InitProducerId v6 ----------------------------------------------------------------------------


class Conn:
    def __init__(self, hi: int) -> None:
        self.node_id = 1
        self.versions = {InitProducerIdRequest.API_KEY: (0, hi)}


def test_v6_is_sent_only_with_two_phase_commit() -> None:
    assert init_producer_id_version(Conn(6)) == 5  # type: ignore[arg-type]
    assert init_producer_id_version(Conn(6), 3) == 5  # type: ignore[arg-type]
    assert init_producer_id_version(Conn(6), two_pc=True) == 6  # type: ignore[arg-type]
    with pytest.raises(UnsupportedVersion, match=r"unstable\.api\.versions\.enable=true"):
        init_producer_id_version(Conn(5), two_pc=True)  # type: ignore[arg-type]


def test_v6_writes_the_two_phase_flags_and_reads_the_ongoing_transaction() -> None:
    req = InitProducerIdRequest(
        transactional_id="t", transaction_timeout_ms=60000, enable2_pc=True, keep_prepared_txn=False
    )
    v6 = req.encode(6)
    assert InitProducerIdRequest.decode(v6, 6) == req
    assert len(v6) == len(req.encode(5)) + 2  # two bools
    resp = InitProducerIdResponse(
        producer_id=5, producer_epoch=1, ongoing_txn_producer_id=4, ongoing_txn_producer_epoch=0
    )
    assert InitProducerIdResponse.decode(resp.encode(6), 6) == resp


def test_a_refused_two_phase_init_names_the_broker_setting() -> None:
    code = TransactionalIdAuthorizationFailedError.code
    err = init_error(code, "tid", two_pc=True)
    assert isinstance(err, TransactionalIdAuthorizationFailedError)
    assert "transaction.two.phase.commit.enable=true" in str(err)
    assert "TWO_PHASE_COMMIT" in str(err)
    assert "two.phase" not in str(init_error(code, "tid", two_pc=False))
