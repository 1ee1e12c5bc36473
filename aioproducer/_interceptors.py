"""Interceptors (Java's ``ProducerInterceptor``): ``on_send`` may replace a record before it
is partitioned; ``on_acknowledgement`` sees every record's outcome, before its callback;
``close`` runs when the producer closes. An interceptor subclasses :class:`ProducerInterceptor`
and overrides any of the three; the overridden ones are found once, when the producer is made.
A hook that raises is logged, and the record goes on unchanged: an interceptor's bug never
loses a record.

``on_send_callback`` (ours, not Java's) gives an interceptor the one thing Java's hooks cannot:
the outcome of the very record it saw. Called in the same ``send()`` right after every
``on_send``, it may return a callable, called as ``callback(metadata, exception)`` when that
record completes, before the record's own callback (tracing ends a record's span with it).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._core.producer_batch import Callback, RecordFuture, RecordMetadata

if TYPE_CHECKING:
    from .producer import ProducerRecord

log = logging.getLogger("aioproducer")


class ProducerInterceptor:
    """Java's ``ProducerInterceptor``: subclass it and override what you need.

    ``on_send`` sees each record before it is partitioned and may return a replacement
    (None: unchanged); ``on_acknowledgement`` sees each record's outcome (metadata with offset
    -1 when it failed) before the record's callback, on the event loop; ``close`` runs when the
    producer closes. The defaults do nothing and cost nothing: a hook left as inherited is
    never called.
    """

    def on_send(self, record: ProducerRecord) -> ProducerRecord | None:
        return None

    def on_acknowledgement(self, metadata: RecordMetadata, exception: BaseException | None) -> None:
        return None

    def on_send_callback(self, record: ProducerRecord) -> Callback | None:
        return None

    def close(self) -> None:
        return None


class Interceptors:
    def __init__(self, interceptors: Sequence[ProducerInterceptor]) -> None:
        # Only the hooks a subclass overrides: an inherited no-op is never called.
        base = ProducerInterceptor
        self.on_send = [ic.on_send for ic in interceptors if type(ic).on_send is not base.on_send]
        self.on_acknowledgement = [
            ic.on_acknowledgement
            for ic in interceptors
            if type(ic).on_acknowledgement is not base.on_acknowledgement
        ]
        self.on_send_callback = [
            ic.on_send_callback
            for ic in interceptors
            if type(ic).on_send_callback is not base.on_send_callback
        ]
        self._closers = [ic.close for ic in interceptors if type(ic).close is not base.close]

    def intercept(self, record: Any) -> Any:
        """``record`` (a :class:`ProducerRecord`) through every ``on_send``, in order."""
        for hook in self.on_send:
            try:
                out = hook(record)
                if out is not None:
                    record = out
            except Exception:
                log.exception("interceptor on_send failed; the record goes on unchanged")
        return record

    def chain(self, record: Any, callback: Any) -> Any:
        """``callback`` preceded by what each ``on_send_callback`` returns for ``record``
        (unchanged when there is none, or when ``callback`` is not callable: send() refuses
        it then, and no hook has started anything)."""
        if callback is not None and not callable(callback):
            return callback
        hooks: list[Callback] = []
        for hook in self.on_send_callback:
            try:
                cb = hook(record)
            except Exception:
                log.exception("interceptor on_send_callback failed")
                continue
            if cb is not None:
                hooks.append(cb)
        if not hooks:
            return callback

        def chained(md: RecordMetadata | None, exc: BaseException | None) -> None:
            for cb in hooks:
                try:
                    cb(md, exc)
                except Exception:
                    log.exception("interceptor callback failed")
            if callback is not None:
                callback(md, exc)

        return chained

    def on_ack(
        self, handle: RecordFuture, md: RecordMetadata | None, exc: BaseException | None
    ) -> None:
        """A record's outcome, to every ``on_acknowledgement`` (metadata with offset -1 for a
        record that failed)."""
        if md is None:
            b = handle.batch
            md = RecordMetadata(
                b.tp.topic, b.tp.partition, -1, -1, handle.key_size, handle.value_size
            )
        self.acknowledged(md, exc)

    def acknowledged(self, md: RecordMetadata, exc: BaseException | None) -> None:
        """``md`` and ``exc`` to every ``on_acknowledgement``, each failure logged."""
        for hook in self.on_acknowledgement:
            try:
                hook(md, exc)
            except Exception:
                log.exception("interceptor on_acknowledgement failed")

    def close(self) -> None:
        for closer in self._closers:
            try:
                closer()
            except Exception:
                log.exception("interceptor close() failed")


__all__ = ["Interceptors", "ProducerInterceptor"]
