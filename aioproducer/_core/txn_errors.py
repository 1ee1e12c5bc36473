"""The transaction coordinator's error codes as values (Java's ``TransactionManager`` handlers):
:func:`classify` says whether to look up the coordinator again, retry after a backoff, abort the
transaction, or stop the producer; the other functions build the error a caller sees."""

from __future__ import annotations

import enum

from .._broker_errors import (
    ClusterAuthorizationFailedError,
    ConcurrentTransactionsError,
    CoordinatorLoadInProgressError,
    CoordinatorNotAvailableError,
    InvalidProducerEpochError,
    InvalidProducerIdMappingError,
    InvalidTransactionTimeoutError,
    NotCoordinatorError,
    OperationNotAttemptedError,
    ProducerFencedError,
    TransactionalIdAuthorizationFailedError,
    TransactionCoordinatorFencedError,
    UnsupportedForMessageFormatError,
    UnsupportedVersionError,
)
from ..errors import (
    BrokerResponseError,
    TransactionAbortedError,
    error_class,
    for_code,
)


class ErrorKind(enum.Enum):
    """What a coordinator's error code asks of the producer."""

    OK = "ok"
    #: The coordinator moved or is unknown: look it up again, then retry (with backoff).
    FIND_COORDINATOR = "find coordinator"
    #: Retry the same request after a backoff (loading, concurrent transactions).
    RETRY = "retry"
    #: The transaction cannot go on: the user must abort it.
    ABORTABLE = "abortable"
    #: The producer cannot go on (fenced, not authorised): close it.
    FATAL = "fatal"


_FIND = frozenset({NotCoordinatorError.code, CoordinatorNotAvailableError.code})
_RETRY = frozenset(
    {
        CoordinatorLoadInProgressError.code,
        ConcurrentTransactionsError.code,
        OperationNotAttemptedError.code,
    }
)
_FATAL = frozenset(
    {
        ProducerFencedError.code,
        InvalidProducerEpochError.code,
        TransactionalIdAuthorizationFailedError.code,
        TransactionCoordinatorFencedError.code,
        ClusterAuthorizationFailedError.code,
        InvalidTransactionTimeoutError.code,
        InvalidProducerIdMappingError.code,
        UnsupportedVersionError.code,
        UnsupportedForMessageFormatError.code,
    }
)
#: Fenced: another producer with this transactional id took over (raised as ProducerFencedError).
_FENCED = frozenset(
    {
        ProducerFencedError.code,
        InvalidProducerEpochError.code,
        TransactionCoordinatorFencedError.code,
    }
)


def classify(code: int) -> ErrorKind:
    """Java's handling of a transactional request's error code, as a value."""
    if code == 0:
        return ErrorKind.OK
    if code in _FIND:
        return ErrorKind.FIND_COORDINATOR
    if code in _RETRY:
        return ErrorKind.RETRY
    if code in _FATAL:
        return ErrorKind.FATAL
    if error_class(code).retriable:  # Java: any RetriableException is retried
        return ErrorKind.RETRY
    return ErrorKind.ABORTABLE


def txn_error(code: int, what: str) -> BrokerResponseError:
    """The error to raise for ``code``: fencing codes all become :class:`ProducerFencedError`
    (Java turns INVALID_PRODUCER_EPOCH on the transactional path into
    ``ProducerFencedException``), with the broker's code named."""
    if code in _FENCED:
        cause = for_code(code)
        return ProducerFencedError(
            f"{what}: the producer was fenced ({type(cause).__name__}, code {code}): another "
            "producer with the same transactional_id took over, or the coordinator aborted "
            "the transaction; close this producer"
        )
    return for_code(code, what)


def init_error(code: int, transactional_id: str, two_pc: bool) -> BaseException:
    """InitProducerId's error; with two-phase commit, an authorization failure is also the
    broker refusing 2PC, so the message names what the broker needs."""
    what = f"InitProducerId for {transactional_id!r}"
    if two_pc and code == TransactionalIdAuthorizationFailedError.code:
        what += (
            " with two-phase commit (the broker needs transaction.two.phase.commit.enable=true,"
            " and with an authorizer the TWO_PHASE_COMMIT ACL on the id)"
        )
    return txn_error(code, what)


def aborted_before_sent(error: BaseException) -> TransactionAbortedError:
    """The error of a record still queued when its transaction aborted (``error``, its
    cause: the abort, or the failure that made the transaction abortable)."""
    exc = TransactionAbortedError(
        f"the transaction was aborted before these records were sent: {error}"
    )
    exc.__cause__ = error
    return exc


def fenced_error(exc: BaseException) -> BaseException:
    """A fencing error of a transactional producer's request, as :class:`ProducerFencedError`
    (the broker's own error is its cause); any other error as it is."""
    code = getattr(exc, "code", None)
    fenced = isinstance(exc, BrokerResponseError) and not isinstance(exc, ProducerFencedError)
    if fenced and isinstance(code, int) and code in _FENCED:
        err = txn_error(code, str(exc))
        err.__cause__ = exc
        return err
    return exc


__all__ = (
    "ErrorKind",
    "aborted_before_sent",
    "classify",
    "fenced_error",
    "init_error",
    "txn_error",
)
