"""Interceptors (Java's ``ProducerInterceptor``): ``on_send`` may replace a record before it
is partitioned; ``on_acknowledgement`` sees every record's outcome, before its callback;
``close`` runs when the producer closes. An interceptor subclasses :class:`ProducerInterceptor`
and overrides any of the three; the overridden ones are found once, when the producer is made.
A hook that raises is logged, and the record goes on unchanged: an interceptor's bug never
loses a record.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._core.producer_batch import RecordFuture, RecordMetadata

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
