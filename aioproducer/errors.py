"""The typed error tree: one root, :class:`KafkaError`. Every error aioproducer raises is
importable from here, the errors' canonical home: each class's ``__module__`` is
``aioproducer.errors``, so tracebacks, reprs and pickles name this module. (The package root,
:mod:`aioproducer`, re-exports the client-side errors and the roots for convenience.)

* :class:`BrokerResponseError` and its subclasses — one per broker error code, generated from
  Kafka's error table (``_broker_errors.py``); each knows its ``code``, whether it is
  ``retriable``, whether it means our metadata is stale (``invalid_metadata``), and the
  producer's policy for it (``producer_fenced``, ``maybe_persisted``, ``fatal_for_topic``).
* Client-side errors — what went wrong on our side of the wire, with messages naming the
  topic, partition or setting involved.
"""

from __future__ import annotations

from . import _broker_errors
from ._broker_errors import *  # noqa: F403
from ._broker_errors import BROKER_ERRORS
from ._error_base import BrokerResponseError, KafkaError, PersistedStatus, RecordTooLargeError

__all__: tuple[str, ...] = (
    "AuthenticationError",
    "BadRecordError",
    "BadRecordTypeError",
    "BootstrapResolutionError",
    "BrokerProtocolError",
    "BrokerResponseError",
    "ConfigError",
    "IdempotenceUnavailableError",
    "KafkaConnectionError",
    "KafkaError",
    "KafkaTimeoutError",
    "PersistedStatus",
    "ProducerClosedError",
    "ProtocolError",
    "RecordTooLargeError",
    "SaslAuthenticationError",
    "SecurityProtocolMismatchError",
    "SerializationError",
    "SslAuthenticationError",
    "TransactionAbortedError",
    "TransactionStateError",
    "UnknownBrokerError",
    "UnsupportedAsyncLibraryError",
    "UnsupportedVersion",
    "WrongEventLoopError",
    "error_class",
    "for_code",
)
__all__ += _broker_errors.__all__  # BROKER_ERRORS and one class per broker error code


class UnknownBrokerError(BrokerResponseError):
    """A broker error code this client does not know (handled as UNKNOWN_SERVER_ERROR, -1:
    not retriable, and the batch may have been written)."""

    maybe_persisted = True

    def __init__(self, code: int, message: str | None = None) -> None:
        KafkaError.__init__(self, code, *(() if message is None else (message,)))
        self.unknown_code = code
        self.message = message

    def __str__(self) -> str:
        text = f"unknown error code {self.unknown_code}"
        return f"{text}: {self.message}" if self.message else text


def for_code(code: int, message: str | None = None) -> BrokerResponseError:
    """An instance of the error class for broker error ``code`` (never for 0, ``NONE``)."""
    cls = BROKER_ERRORS.get(code)
    if cls is None:
        return UnknownBrokerError(code, message)
    return cls(message)


def error_class(code: int) -> type[BrokerResponseError]:
    return BROKER_ERRORS.get(code, UnknownBrokerError)


# -- client-side errors --------------------------------------------------------------------------


class ProtocolError(KafkaError):
    """The bytes on the wire were malformed: truncated, oversized, or otherwise invalid."""


class UnsupportedVersion(KafkaError):
    """No version of an API is supported by both this client and the broker: found by the
    client before it sends anything. (A broker's own refusal of a version is the broker error
    :class:`UnsupportedVersionError`, code 35; the two are unrelated classes.)"""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message: str = message

    def __str__(self) -> str:
        return self.message


class KafkaConnectionError(KafkaError):
    """A broker connection failed or was closed while requests were in flight."""

    retriable = True
    invalid_metadata = True


class BootstrapResolutionError(KafkaConnectionError):
    """No bootstrap server's name resolved within ``bootstrap_resolve_timeout_ms`` (Java's
    ``BootstrapResolutionException``): the producer is closed; make a new one once DNS or
    ``bootstrap_servers`` is fixed."""

    retriable = False
    fatal = True


class BrokerProtocolError(KafkaConnectionError, ProtocolError):
    """A broker's bytes broke the protocol (bad frame, bad body, wrong correlation id). The
    connection is closed and its in-flight requests are retried on a new one."""


class AuthenticationError(KafkaError):
    """TLS or SASL authentication failed (bad certificate, hostname, credentials or mechanism).
    Not retriable: the configuration or the cluster must change."""

    fatal = True


class SslAuthenticationError(AuthenticationError):
    """The TLS handshake failed: untrusted certificate, wrong hostname, protocol mismatch."""


class SaslAuthenticationError(AuthenticationError):
    """SASL authentication failed: unsupported mechanism or rejected credentials."""


class SecurityProtocolMismatchError(KafkaError):
    """The broker speaks TLS and the client does not (or the reverse): check
    ``security_protocol``."""

    fatal = True


class KafkaTimeoutError(KafkaError, TimeoutError):
    """A deadline passed: ``max_block_ms``, ``request_timeout_ms`` or ``delivery_timeout_ms``."""

    retriable = True


class SerializationError(KafkaError, TypeError):
    """A key or value could not be serialized into bytes."""


class ProducerClosedError(KafkaError):
    """The producer is closed (or closing) and takes no more records."""


class IdempotenceUnavailableError(KafkaError):
    """``enable_idempotence=True`` was asked for, but the cluster cannot grant a producer id."""

    fatal = True


class ConfigError(KafkaError, ValueError):
    """A configuration setting is invalid; the message names the setting and allowed values."""


class BadRecordError(KafkaError, ValueError):
    """An argument of ``send()`` has a wrong value (a negative partition or timestamp, an
    illegal topic name, a header key with no UTF-8 encoding); the message names it."""


class BadRecordTypeError(BadRecordError, TypeError):
    """An argument of ``send()`` has the wrong type (a ``str`` partition, a ``bool`` timestamp,
    headers that are not (str, bytes | None) pairs, a callback that is not callable); the
    message names the argument. A ``TypeError``, and a :class:`BadRecordError` so that one
    ``except`` catches every refused record."""


class WrongEventLoopError(KafkaError, RuntimeError):
    """The producer was used from another event loop than the one that started it (a worker
    thread's ``asyncio.run``, say). A producer belongs to one loop: create one per loop, or
    hand records to its loop with ``asyncio.run_coroutine_threadsafe``."""


class UnsupportedAsyncLibraryError(KafkaError, RuntimeError):
    """The producer was started outside the async libraries it runs on: it needs asyncio (any
    asyncio loop: the default one, uvloop, anyio's asyncio backend). The message names the
    library found and the supported ones."""


class TransactionStateError(KafkaError, RuntimeError):
    """A transactional call in the wrong state (Java's ``IllegalStateException``): a send
    outside a transaction, a second ``begin_transaction()``, a commit of a failed transaction.
    Nothing was changed; the message names the state and what to do."""


class TransactionAbortedError(KafkaError):
    """The record's transaction was aborted before the record was sent (Java's
    ``TransactionAbortedException``): it is not in the log, and no reader sees it."""
