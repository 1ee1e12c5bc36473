"""The typed error tree: one root, :class:`KafkaError`.

* :class:`BrokerResponseError` and its subclasses — one per broker error code, generated from
  Kafka's error table (``_broker_errors.py``); each knows its ``code``, whether it is
  ``retriable`` and whether it means our metadata is stale (``invalid_metadata``).
* Client-side errors — what went wrong on our side of the wire, with messages naming the
  topic, partition or setting involved.
"""

from __future__ import annotations

import enum
from typing import ClassVar


class PersistedStatus(enum.Enum):
    """For a record that failed: could it be in the log anyway? (librdkafka's message status)"""

    #: The broker never had the record: it is certainly not in the log.
    NOT_PERSISTED = "not_persisted"
    #: The record was written to a broker and the outcome is unknown (e.g. the request timed
    #: out or the connection dropped after the write): it may be in the log.
    POSSIBLY_PERSISTED = "possibly_persisted"


class KafkaError(Exception):
    """Root of every error aioproducer raises."""

    #: True when the same operation may succeed if retried.
    retriable: ClassVar[bool] = False
    #: True when the error means the client's cluster metadata is stale and must be refreshed.
    invalid_metadata: ClassVar[bool] = False
    #: True when the producer cannot go on (fenced, unsupported, unauthorized cluster-wide).
    fatal: ClassVar[bool] = False
    #: Set on the error a failed record's future raises: NOT_PERSISTED or POSSIBLY_PERSISTED.
    persisted_status: PersistedStatus | None = None


class RecordTooLargeError(KafkaError, ValueError):
    """A record is too large: larger than ``max_request_size`` or ``buffer_memory`` allows
    (raised by ``send()``), or refused by the broker as larger than its limit
    (``MessageTooLargeError``, ``RecordListTooLargeError``: on the record's future)."""


class BrokerResponseError(KafkaError):
    """An error code a broker returned. Subclasses exist for every known code."""

    code: ClassVar[int] = -1
    name: ClassVar[str] = "UNKNOWN"
    #: What the code means for this client, when the name alone does not say it (which
    #: limit refused a batch, say); the text ends with it.
    hint: ClassVar[str] = ""
    # The producer's policy traits (the codes of each are listed in ERROR_TRAITS in
    # tools/gen_protocol.py, which sets them on the generated classes).
    #: Another producer took over this producer id and epoch (INVALID_PRODUCER_EPOCH,
    #: PRODUCER_FENCED): fatal for the producer.
    producer_fenced: ClassVar[bool] = False
    #: The broker may have appended the batch although it answered with this error
    #: (UNKNOWN_SERVER_ERROR, REQUEST_TIMED_OUT, NETWORK_EXCEPTION,
    #: NOT_ENOUGH_REPLICAS_AFTER_APPEND): the batch is possibly persisted.
    maybe_persisted: ClassVar[bool] = False
    #: As a topic's metadata error, fails ``send()`` to the topic at once rather than after
    #: ``max_block_ms`` (INVALID_TOPIC_EXCEPTION, TOPIC_AUTHORIZATION_FAILED).
    fatal_for_topic: ClassVar[bool] = False

    def __init__(self, message: str | None = None) -> None:
        # The args hold the detail alone and the text is made by __str__: copy.copy (one copy
        # per failed batch) and pickle rebuild an error from its args, and a text made here
        # came back with the code and name twice.
        super().__init__(*(() if message is None else (message,)))
        #: The detail: the topic-partition, and the broker's error message when it sent one.
        self.message = message

    def __str__(self) -> str:
        text = f"[Error {self.code}] {self.name}"
        if self.message:
            text = f"{text}: {self.message}"
        return f"{text}: {self.hint}" if self.hint else text


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


from ._broker_errors import *  # noqa: E402, F403
from ._broker_errors import BROKER_ERRORS, UnsupportedVersionError  # noqa: E402


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


class UnsupportedVersion(UnsupportedVersionError):
    """No version of an API is supported by both this client and the broker."""

    def __init__(self, message: str) -> None:
        KafkaError.__init__(self, message)
        self.message: str = message

    def __str__(self) -> str:
        return self.message


class KafkaConnectionError(KafkaError):
    """A broker connection failed or was closed while requests were in flight."""

    retriable = True
    invalid_metadata = True


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
