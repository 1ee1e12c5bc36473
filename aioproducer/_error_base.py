"""The roots of the error tree, in a module of their own so that the generated broker errors
(``_broker_errors.py``) can subclass them without importing :mod:`aioproducer.errors`, which
imports the generated classes in turn.

Import them from :mod:`aioproducer.errors`, where they belong: each class says so in its
``__module__``, so tracebacks, reprs and pickles name ``aioproducer.errors``.
"""

from __future__ import annotations

import enum
from typing import ClassVar

from ._public import publish

_PUBLIC = "aioproducer.errors"


class PersistedStatus(enum.Enum):
    """For a record that failed: could it be in the log anyway? (librdkafka's message status)"""

    __module__ = _PUBLIC

    #: The broker never had the record: it is certainly not in the log.
    NOT_PERSISTED = "not_persisted"
    #: The record was written to a broker and the outcome is unknown (e.g. the request timed
    #: out or the connection dropped after the write): it may be in the log.
    POSSIBLY_PERSISTED = "possibly_persisted"


class KafkaError(Exception):
    """Root of every error aioproducer raises."""

    __module__ = _PUBLIC

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

    __module__ = _PUBLIC


class BrokerResponseError(KafkaError):
    """An error code a broker returned. Subclasses exist for every known code."""

    __module__ = _PUBLIC

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


# Their annotations are evaluated here, where ClassVar and PersistedStatus are defined:
# typing.get_type_hints would look for them in aioproducer.errors, their __module__.
for _cls in (KafkaError, BrokerResponseError):
    publish(_cls, _PUBLIC, globals())
