"""Requests to a coordinator, retried: find the broker that coordinates a key (FindCoordinator,
key type 1 for a transactional id, 0 for a consumer group), connect to it, send, and ask again
after the retry backoff while the coordinator moved, is loading, is busy with the previous
transaction (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, CONCURRENT_TRANSACTIONS) or the
connection broke, up to a deadline. Which errors are retried is the core's rule
(``_core/transactions.py``: ``classify()``); the requests themselves are ``transactions.py``'s.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from .._core.accumulator import backoff_ms
from .._core.txn_errors import ErrorKind, classify
from .._protocol._schema import Message
from .._protocol.messages import FindCoordinatorRequest, FindCoordinatorResponse
from ..config import ProducerConfig
from ..errors import KafkaConnectionError, KafkaError, KafkaTimeoutError, for_code
from .backend import ops_for, running_loop
from .connection import BrokerConnection
from .connections import ConnectionPool
from .wakeup import FOREVER

log = logging.getLogger("aioproducer")
_R = TypeVar("_R", bound=Message)
#: FindCoordinator key types.
GROUP, TRANSACTION = 0, 1
#: What ``call`` sends on a connection: the request and its version.
Build = Callable[[BrokerConnection], tuple[Message, int]]


class CoordinatorRequests:
    """Sending to the coordinator of a key with retries (a mixin of the transaction
    coordinator's client, ``transactions.TransactionCoordinator``)."""

    config: ProducerConfig
    pool: ConnectionPool
    now_ms: Callable[[], int]
    #: Wakes the sender (a coordinator missing from the metadata asks for an update).
    wake: Callable[[], None]
    #: (key type, key) -> coordinator node id.
    coordinators: dict[tuple[int, str], int]
    closed: bool

    async def call(
        self,
        key_type: int,
        key: str,
        build: Build,
        response: type[_R],
        error_of: Callable[[_R], int],
        deadline: int | None,
    ) -> tuple[_R, BrokerConnection]:
        """Send to the coordinator of ``key`` until an answer that is not retried: on a
        coordinator that moved or is loading, a busy transaction or a broken connection, look
        the coordinator up again after the retry backoff. Past ``deadline`` (ms; None: until
        closed): :class:`KafkaTimeoutError`."""
        cfg = self.config
        failures = 0
        last: BaseException | None = None
        while True:
            if failures:
                wait = backoff_ms(
                    failures, cfg.retry_backoff_ms, cfg.retry_backoff_max_ms, self.pool.rand
                )
                if deadline is not None and self.now_ms() + wait > deadline:
                    raise KafkaTimeoutError(
                        f"{response.__name__.removesuffix('Response')} to the coordinator of "
                        f"{key!r} did not succeed in time; last error: {last}"
                    ) from last
                await _sleep(wait)
            failures += 1
            if self.closed:
                raise KafkaError("the producer was closed")
            try:
                node = await self._coordinator(key_type, key, deadline)
                conn = await self._connection(node, deadline)
                req, version = build(conn)
                resp = await conn.request(req, version, response)
            except (KafkaConnectionError, KafkaTimeoutError) as exc:
                if deadline is not None and self.now_ms() >= deadline:
                    raise
                self.coordinators.pop((key_type, key), None)
                last = exc
                continue
            code = error_of(resp)
            kind = classify(code)
            if kind is ErrorKind.FIND_COORDINATOR:
                self.coordinators.pop((key_type, key), None)
            if kind in (ErrorKind.FIND_COORDINATOR, ErrorKind.RETRY):
                last = for_code(code)
                log.debug("%s: %s; retrying", type(req).__name__, last)
                continue
            return resp, conn

    async def _coordinator(self, key_type: int, key: str, deadline: int | None) -> int:
        node = self.coordinators.get((key_type, key))
        if node is not None:
            return node
        conn = await self._any_connection(deadline)
        version = conn.version_for(FindCoordinatorRequest.API_KEY)
        if version >= 4:
            req = FindCoordinatorRequest(key_type=key_type, coordinator_keys=[key])
        else:
            req = FindCoordinatorRequest(key=key, key_type=key_type)
        resp = await conn.request(req, version, FindCoordinatorResponse)
        if version >= 4:
            c: Any = resp.coordinators[0] if resp.coordinators else None
            if c is None:
                raise KafkaConnectionError("FindCoordinator answered no coordinator")
        else:
            c = resp
        if c.error_code:
            err = for_code(c.error_code, f"FindCoordinator for {key!r}")
            if err.retriable or classify(c.error_code) is not ErrorKind.FATAL:
                raise KafkaConnectionError(f"no coordinator for {key!r} yet: {err}") from err
            raise err
        self.coordinators[(key_type, key)] = c.node_id
        return int(c.node_id)

    async def _any_connection(self, deadline: int | None) -> BrokerConnection:
        while True:
            conn, wait = self.pool.any_connection(self.now_ms())
            if conn is not None:
                return conn
            await self._wait_connecting(wait, deadline)

    async def _connection(self, node: int, deadline: int | None) -> BrokerConnection:
        """The connection to the coordinator ``node``; after one failed attempt a
        :class:`KafkaConnectionError`, so that the caller looks the coordinator up again (a
        dead coordinator's successor is elsewhere)."""
        failures = self.pool.reconnect.get(node, (0,))[0]
        while True:
            conn = self.pool.open_connection(node)
            if conn is not None:
                return conn
            if self.pool.reconnect.get(node, (0,))[0] > failures:
                raise KafkaConnectionError(f"cannot connect to the coordinator, broker {node}")
            if self.pool.metadata.cluster.broker(node) is None:
                # Not in our metadata: its node died (the coordinator moves: look it up
                # again), or it came back since our last update (the sender refreshes it).
                self.pool.metadata.request_update()
                self.wake()
                raise KafkaConnectionError(
                    f"the coordinator, broker {node}, is not in the metadata"
                )
            wait = self.pool.connect(node, self.now_ms())
            await self._wait_connecting(wait, deadline)

    async def _wait_connecting(self, wait: int, deadline: int | None) -> None:
        """Wait for a connection attempt under way, or the backoff (``wait`` ms) to pass."""
        if self.closed:
            raise KafkaError("the producer was closed")
        now = self.now_ms()
        if deadline is not None and now >= deadline:
            raise KafkaTimeoutError("no connection to the coordinator in time")
        pending: list[Any] = list(self.pool.connecting.values())
        limit = min(wait if 0 < wait < FOREVER else self.config.retry_backoff_ms, 1000)
        if deadline is not None:
            limit = min(limit, deadline - now)
        if pending:
            await ops_for(running_loop()).wait_many(pending, max(limit, 1) / 1000)
        else:
            await _sleep(max(limit, 1))


def latest(request: Message) -> Build:
    """``request`` at the highest version both sides speak."""
    return lambda c: (request, c.version_for(request.API_KEY))


async def _sleep(ms: int) -> None:
    """Wait ``ms`` milliseconds on whichever async library runs the producer (backend.py)."""
    loop = running_loop()
    await ops_for(loop).wait_done(loop.create_future(), ms / 1000)


__all__ = ["GROUP", "TRANSACTION", "Build", "CoordinatorRequests", "latest"]
