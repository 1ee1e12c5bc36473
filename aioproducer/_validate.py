"""The checks ``send()`` makes of its arguments, and the messages that name what is wrong.

The hot path tests the common case inline (None, or exactly the expected type); these
functions handle the rest: an argument of another type is converted when that is safe (an
``IntEnum`` partition, a ``bytearray`` header value) or refused with a typed error that names
it (:class:`BadRecordTypeError`, a ``TypeError``; :class:`BadRecordError`, a ``ValueError``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import (
    BadRecordError,
    BadRecordTypeError,
    ProducerClosedError,
    SerializationError,
    UnknownTopicOrPartitionError,
    for_code,
)

_BYTES = (bytes, bytearray, memoryview)
UNKNOWN_TOPIC = UnknownTopicOrPartitionError.code


def topic_error_text(code: int) -> str:
    """What a topic's metadata error means, for its warning and its timeout error."""
    if code == UNKNOWN_TOPIC:
        return (
            "the cluster answered UNKNOWN_TOPIC_OR_PARTITION: the topic does not exist, and the "
            "cluster does not create topics on first use (auto.create.topics.enable=false?); "
            "create it, or check its name"
        )
    return f"the cluster's last metadata answer for it is {for_code(code)}"


_TOPIC_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def check_topic(topic: object) -> None:
    """Kafka's topic name rules (``Topic.validate``): 1-249 of ``[a-zA-Z0-9._-]``, not . or .."""
    if not isinstance(topic, str):
        raise BadRecordTypeError(f"topic must be a str, got {show(topic)}")
    if not topic:
        raise BadRecordError("topic must be a non-empty string, got ''")
    if len(topic) > 249:
        raise BadRecordError(f"topic name of {len(topic)} characters is longer than 249")
    if topic in (".", "..") or not set(topic) <= _TOPIC_CHARS:
        raise BadRecordError(
            f"topic {topic!r} is not a legal name: use ASCII letters, digits, '.', '_', '-'"
        )


def not_running(closed: bool) -> ProducerClosedError:
    """Why a producer that is not started, or closed, refuses ``send()``."""
    return ProducerClosedError("the producer is closed" if closed else "call start() before send()")


def bad_callback(callback: object, topic: object) -> BadRecordTypeError:
    """``send()``'s ``callback`` is not callable."""
    return BadRecordTypeError(
        f"callback for topic {topic!r} must be callable as callback(metadata, exception), "
        f"got {show(callback)}"
    )


def no_such_partition(partition: int, count: int, topic: object) -> BadRecordError:
    """``send()``'s ``partition`` is beyond the topic's ``count`` partitions."""
    return BadRecordError(
        f"partition {partition} is not in the range [0...{count}) of topic {topic!r}"
    )


def show(obj: object) -> str:
    """An argument in an error message: its type and a bounded repr."""
    text = repr(obj)
    return f"{type(obj).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


def _int_arg(obj: object, what: str, topic: object) -> int:
    """``obj`` as an int, for an argument that was not exactly an int: an int subclass (an
    IntEnum, say) or an integer type with ``__index__`` (numpy's) is taken; bool is not an int
    here, and neither is a float or a str."""
    if type(obj) is not int:
        index = getattr(type(obj), "__index__", None)
        if isinstance(obj, bool) or index is None:
            raise BadRecordTypeError(
                f"{what} must be an int, got {show(obj)} (for topic {topic!r})"
            )
        obj = index(obj)
        assert type(obj) is int
    return obj


def check_partition(partition: object, topic: object) -> int:
    p = _int_arg(partition, "partition", topic)
    if p < 0:
        raise BadRecordError(f"partition={p} for topic {topic!r} must be >= 0")
    return p


def check_timestamp(timestamp_ms: object, topic: object) -> int:
    ts = _int_arg(timestamp_ms, "timestamp_ms", topic)
    if not 0 <= ts < 1 << 63:
        raise BadRecordError(
            f"timestamp_ms={ts} for topic {topic!r} must be in [0, 2**63) "
            "(milliseconds since the epoch)"
        )
    return ts


def check_headers(headers: object, topic: object) -> list[tuple[str, bytes | None]] | None:
    """The headers as (str, bytes | None) tuples for the record builder, None when empty.
    A list or tuple of pairs, or another iterable of them; not a str, bytes or mapping."""
    if type(headers) is not list and type(headers) is not tuple:
        if isinstance(headers, (str, *_BYTES, Mapping)) or not hasattr(headers, "__iter__"):
            raise BadRecordTypeError(
                f"headers for topic {topic!r} must be a list of (str, bytes | None) pairs, "
                f"got {show(headers)}"
            )
        headers = list(headers)
    assert isinstance(headers, (list, tuple))
    out: list[tuple[str, bytes | None]] = []
    for h in headers:
        # The common header, (ASCII str, bytes or None), is taken as it is.
        if type(h) is tuple and len(h) == 2:
            k, v = h
            if type(k) is str and k.isascii() and (v is None or type(v) is bytes):
                out.append(h)
                continue
        out.append(_check_header(h, len(out), topic))
    return out or None


def _check_header(h: object, i: int, topic: object) -> tuple[str, bytes | None]:
    """``headers[i]`` as a (str, bytes | None) tuple, or the error naming what is wrong."""
    if not isinstance(h, (tuple, list)) or len(h) != 2:
        raise BadRecordTypeError(
            f"headers[{i}] for topic {topic!r} must be a (str, bytes | None) pair, got {show(h)}"
        )
    k, v = h
    if not isinstance(k, str):
        raise BadRecordTypeError(
            f"headers[{i}] for topic {topic!r} must be a (str, bytes | None) pair: its header "
            f"key is {show(k)}, not a str"
        )
    if not k.isascii():
        try:
            k.encode()  # Kafka's header keys are UTF-8: a lone surrogate has no encoding
        except UnicodeEncodeError as exc:
            raise BadRecordError(
                f"headers[{i}] for topic {topic!r}: the header key {k!r} cannot be encoded as "
                f"UTF-8 ({exc.reason} at position {exc.start})"
            ) from None
    if v is not None and type(v) is not bytes:
        if not isinstance(v, _BYTES):
            raise BadRecordTypeError(
                f"headers[{i}] for topic {topic!r} must be a (str, bytes | None) pair: its "
                f"header value is {show(v)}, not bytes-like or None"
            )
        v = bytes(v)
    return (k, v)


def serialize(serializer: Any, obj: Any, topic: str, what: str) -> bytes | None:
    """``obj`` as bytes (or None) through ``serializer``, for the record's ``what``."""
    if serializer is not None:
        try:
            data = serializer(obj)
        except Exception as exc:
            raise SerializationError(
                f"cannot serialize the {what} for topic {topic!r}: {exc!r}"
            ) from exc
        obj = data
    if obj is None or isinstance(obj, bytes):
        return obj
    if isinstance(obj, _BYTES):
        return bytes(obj)
    raise SerializationError(
        f"the {what} for topic {topic!r} must be bytes-like or None, got "
        f"{type(obj).__name__} (set {what}_serializer to send other types)"
    )


__all__ = [
    "UNKNOWN_TOPIC",
    "check_headers",
    "check_partition",
    "check_timestamp",
    "check_topic",
    "serialize",
    "show",
    "topic_error_text",
]
