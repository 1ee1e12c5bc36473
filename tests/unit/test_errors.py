"""The text and the types of the errors a failed record carries: the broker's code and name
once, then the detail; copies (one per batch, with its persisted status) and pickles read the
same as the original."""

from __future__ import annotations

import ast
import copy
import importlib
import inspect
import pickle
import pkgutil

import pytest

import aioproducer
from aioproducer import _broker_errors, _error_base, errors
from aioproducer.errors import (
    BROKER_ERRORS,
    BrokerResponseError,
    KafkaError,
    NotLeaderOrFollowerError,
    PersistedStatus,
    RecordTooLargeError,
    UnknownBrokerError,
    UnsupportedVersion,
    UnsupportedVersionError,
    error_class,
    for_code,
)
from tests.sim.script import Answer, on_partition

from .sending import PLAIN, sends


def failed_with(code: int) -> BaseException:
    """The exception of a record whose produce request the broker answered with ``code``."""
    r = sends([on_partition("t0", 0, Answer(error=code))], [b"a"], retries=0, **PLAIN)
    exc = r.futs[0].exception()
    assert exc is not None
    return exc


def test_a_failed_future_names_the_broker_error_once() -> None:
    exc = failed_with(6)
    assert isinstance(exc, NotLeaderOrFollowerError)
    assert str(exc) == "[Error 6] NOT_LEADER_OR_FOLLOWER: t0-0"
    assert exc.persisted_status is PersistedStatus.NOT_PERSISTED


def test_an_unknown_code_on_a_failed_future_is_named_once() -> None:
    exc = failed_with(9999)
    assert isinstance(exc, UnknownBrokerError) and exc.unknown_code == 9999
    assert str(exc) == "unknown error code 9999: t0-0"


@pytest.mark.parametrize("code", [6, 87, 9999])
def test_copies_and_pickles_keep_the_text(code: int) -> None:
    err = for_code(code, "t-0")
    err.persisted_status = PersistedStatus.POSSIBLY_PERSISTED
    for other in (copy.copy(err), pickle.loads(pickle.dumps(err))):
        assert type(other) is type(err)
        assert str(other) == str(err) and str(err).count("t-0") == 1
        assert other.persisted_status is PersistedStatus.POSSIBLY_PERSISTED
        assert other.message == "t-0"


def test_text_without_a_detail_and_of_the_client_side_version_error() -> None:
    assert str(for_code(6)) == "[Error 6] NOT_LEADER_OR_FOLLOWER"
    assert str(UnknownBrokerError(9999)) == "unknown error code 9999"
    err = UnsupportedVersion("the broker does not support Produce at all")
    assert str(err) == str(copy.copy(err)) == "the broker does not support Produce at all"
    assert str(pickle.loads(pickle.dumps(err))) == str(err) and err.message == str(err)
    # A client-side error: not the broker's UNSUPPORTED_VERSION (35), nor any broker error.
    assert isinstance(err, KafkaError) and not err.retriable and not err.fatal
    assert not isinstance(err, (BrokerResponseError, UnsupportedVersionError))
    assert not issubclass(UnsupportedVersionError, UnsupportedVersion)


def test_message_too_large_from_the_broker_is_a_record_too_large_error() -> None:
    exc = failed_with(10)  # one record: nothing to split
    assert isinstance(exc, RecordTooLargeError) and isinstance(exc, BrokerResponseError)
    assert isinstance(exc, ValueError) and not exc.retriable
    text = str(exc)
    assert text.startswith("[Error 10] MESSAGE_TOO_LARGE: t0-0: ") and text.count("[Error") == 1
    assert "the broker refused the batch" in text
    assert "message.max.bytes" in text and "max.message.bytes" in text


def test_record_list_too_large_from_the_broker_is_a_record_too_large_error() -> None:
    exc = failed_with(18)
    assert isinstance(exc, RecordTooLargeError) and not exc.retriable
    text = str(exc)
    assert text.startswith("[Error 18] RECORD_LIST_TOO_LARGE: t0-0: ") and "segment.bytes" in text


def test_the_client_side_limit_names_max_request_size() -> None:
    err = RecordTooLargeError("the record for t-0 is 2000 bytes, more than max_request_size=1000")
    assert not isinstance(err, BrokerResponseError) and "max_request_size" in str(err)


def codes_with(trait: str) -> set[int]:
    """The broker error codes whose class has ``trait`` set."""
    assert getattr(BrokerResponseError, trait) is False  # the default, on the base class
    return {code for code, cls in BROKER_ERRORS.items() if getattr(cls, trait)}


def test_producer_fenced_codes() -> None:
    # INVALID_PRODUCER_EPOCH, PRODUCER_FENCED
    assert codes_with("producer_fenced") == {47, 90}


def test_maybe_persisted_codes() -> None:
    # UNKNOWN_SERVER_ERROR, REQUEST_TIMED_OUT, NETWORK_EXCEPTION, NOT_ENOUGH_REPLICAS_AFTER_APPEND
    assert codes_with("maybe_persisted") == {-1, 7, 13, 20}
    # A code this client does not know is handled as UNKNOWN_SERVER_ERROR.
    assert error_class(9999).maybe_persisted and for_code(9999).maybe_persisted


def test_fatal_for_topic_codes() -> None:
    # INVALID_TOPIC_EXCEPTION, TOPIC_AUTHORIZATION_FAILED
    assert codes_with("fatal_for_topic") == {17, 29}
    assert not error_class(9999).fatal_for_topic and not error_class(9999).producer_fenced


def test_kafkas_own_traits_are_unchanged() -> None:
    assert codes_with("invalid_metadata") == {3, 5, 6, 9, 13, 56, 72, 74, 80, 83, 84, 100, 103}
    assert {3, 5, 6, 7, 13, 19, 20} <= codes_with("retriable")
    assert not {-1, 10, 17, 29, 47, 90} & codes_with("retriable")


def test_the_generated_errors_do_not_import_the_errors_module() -> None:
    """errors imports _broker_errors; the generated module and the base classes it subclasses
    must not import errors back."""
    for module in (_broker_errors, _error_base):
        tree = ast.parse(inspect.getsource(module))
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert not {"errors", "aioproducer.errors"} & imported, module.__name__


def test_every_error_class_is_importable_from_errors() -> None:
    for info in pkgutil.walk_packages(aioproducer.__path__, "aioproducer."):
        if not info.name.startswith("aioproducer.testing"):  # the harness: needs extras
            importlib.import_module(info.name)
    classes, todo = set(), [KafkaError]
    while todo:
        cls = todo.pop()
        if cls.__module__.startswith("aioproducer") and cls not in classes:
            classes.add(cls)
            todo.extend(cls.__subclasses__())
    assert len(classes) > 140
    for cls in classes:
        assert getattr(errors, cls.__name__) is cls and cls.__name__ in errors.__all__
        # The base classes live in _error_base, the broker's in _broker_errors: all say
        # aioproducer.errors, for tracebacks and pickles.
        assert cls.__module__ == "aioproducer.errors"
    assert PersistedStatus.__module__ == "aioproducer.errors"
