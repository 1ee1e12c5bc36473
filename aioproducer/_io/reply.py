"""A request whose caller handles the answer itself (the produce path), in place of a future."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("aioproducer")


class Reply:
    """In place of a future for a request whose caller handles the answer itself: the handler
    runs as soon as the answer is read, in ``data_received`` (a future's callbacks run one
    event-loop turn later; on the produce path that turn is latency). A failure (the
    connection lost, timed out, closed) is still handed over on the next turn, as a future's
    callbacks would be, so closing a connection never runs the handler inside the closer."""

    __slots__ = ("_done", "_handler", "_loop")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, handler: Callable[[Any, BaseException | None], None]
    ) -> None:
        self._loop = loop
        self._handler = handler
        self._done = False

    def done(self) -> bool:
        return self._done

    def set_result(self, body: Any) -> None:
        self._done = True
        try:
            self._handler(body, None)
        except Exception:  # the handler's bug must not read as the broker's protocol error
            log.exception("produce response handler failed")

    def set_exception(self, exc: BaseException) -> None:
        self._done = True
        self._loop.call_soon(self._handler, None, exc)


__all__ = ["Reply"]
