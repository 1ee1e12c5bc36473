"""The connection pool: one connection per broker, opened on demand, with a reconnect backoff.

A failed connection attempt backs off per broker (``reconnect_backoff_ms`` doubling up to
``reconnect_backoff_max_ms``, with jitter, as Java's ``ClusterConnectionStates``); the backoff
belongs to the address that failed, so a broker advertised somewhere else since is tried at
once. When every known broker is backing off, the bootstrap addresses are tried.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

from .._core.accumulator import backoff_ms
from .._core.cluster import BrokerInfo, Metadata
from .._core.metrics import ProducerMetrics
from ..config import ProducerConfig
from ..errors import KafkaConnectionError, KafkaError
from .backend import running_loop
from .connection import BrokerConnection
from .sasl import SaslAuthenticator
from .wakeup import FOREVER, Wakeup

log = logging.getLogger("aioproducer.connection")


class ConnectionPool:
    def __init__(
        self,
        config: ProducerConfig,
        metadata: Metadata,
        now_ms: Callable[[], int],
        wakeup: Wakeup,
        on_connect_failed: Callable[[], None],
        metrics: ProducerMetrics | None = None,
    ) -> None:
        self.config = config
        self.metrics = metrics if metrics is not None else ProducerMetrics(config.client_id or "")
        self.metadata = metadata
        self.now_ms = now_ms
        self.wakeup = wakeup
        #: Called after a failed attempt (the metadata waiters learn that nothing is coming).
        self.on_connect_failed = on_connect_failed
        self.connections: dict[int, BrokerConnection] = {}
        self.connecting: dict[int, asyncio.Task[None]] = {}
        #: node -> (failures, not before ms, the address that failed).
        self.reconnect: dict[int, tuple[int, int, tuple[str, int]]] = {}
        self.bootstrap = [
            BrokerInfo(-1 - i, host, port) for i, (host, port) in enumerate(config.bootstrap_list)
        ]
        #: False once the producer stops taking records; with ``force_close`` too, a
        #: connection that opens late is closed at once.
        self.running = True
        self.force_close = False
        self.rand = random.random
        self._ssl_context = config.make_ssl_context()
        self._sasl = SaslAuthenticator.from_config(config)
        #: The last connection failure that no retry can fix (authentication, TLS mismatch).
        self.connect_error: KafkaError | None = None
        #: The last connection failure of any kind (named when start() gives up).
        self.last_connect_error: KafkaError | None = None

    def open_connection(self, node: int) -> BrokerConnection | None:
        """The open connection to ``node``, if any."""
        conn = self.connections.get(node)
        return conn if conn is not None and not conn.closed else None

    def connect(self, node: int, now: int) -> int:
        """Start connecting to ``node`` unless under way or backing off; ms to wait, or 0."""
        if node in self.connecting:
            return 0
        broker = self.metadata.cluster.broker(node) or next(
            (b for b in self.bootstrap if b.node_id == node), None
        )
        backoff = self.reconnect.get(node)
        if (
            backoff is not None
            and now < backoff[1]
            and (broker is None or backoff[2] == (broker.host, broker.port))
        ):
            return backoff[1] - now
        if broker is None:
            self.metadata.request_update()
            return 0
        task = running_loop().create_task(self._open(broker))
        self.connecting[node] = task
        return 0

    async def _open(self, broker: BrokerInfo) -> None:
        node = broker.node_id
        cfg = self.config
        try:
            conn = await BrokerConnection.open(
                node,
                broker.host,
                broker.port,
                client_id=cfg.client_id,
                request_timeout_ms=cfg.request_timeout_ms,
                setup_timeout_ms=cfg.socket_connection_setup_timeout_ms,
                on_close=self._on_closed,
                ssl_context=self._ssl_context,
                sasl=self._sasl,
            )
        except Exception as exc:
            if not isinstance(exc, KafkaError):
                # BrokerConnection.open types what it knows; anything else (a bad advertised
                # address, say) still goes through the backoff, never a tight retry loop.
                err = KafkaConnectionError(
                    f"cannot connect to broker {node} at {broker.host}:{broker.port}: {exc!r}"
                )
                err.__cause__ = exc
                exc = err
            if exc.fatal:
                self.connect_error = exc
            self.last_connect_error = exc
            previous = self.reconnect.get(node)
            failures = 1 if previous is None else previous[0] + 1
            wait = backoff_ms(
                failures, cfg.reconnect_backoff_ms, cfg.reconnect_backoff_max_ms, self.rand
            )
            self.reconnect[node] = (failures, self.now_ms() + wait, (broker.host, broker.port))
            # Once per outage at WARNING; the retries that follow at DEBUG (no log storm).
            log.log(
                logging.WARNING if failures == 1 else logging.DEBUG,
                "%s (retrying in %d ms)",
                exc,
                wait,
            )
            self.metadata.request_update()
            self.on_connect_failed()
        else:
            self.reconnect.pop(node, None)
            self.metrics.producer.conn_created += 1
            conn.metrics = self.metrics.node(node)
            log.info("connected to broker %d at %s:%d", node, broker.host, broker.port)
            if not self.running and self.force_close:
                conn.close()
            else:
                _set_socket_buffers(conn, cfg.send_buffer_bytes, cfg.receive_buffer_bytes)
                self.connections[node] = conn
        finally:
            self.connecting.pop(node, None)
            self.wakeup.set()

    def _on_closed(self, conn: BrokerConnection, error: BaseException | None) -> None:
        if conn.metrics is not None:  # it was open (counted as created)
            self.metrics.producer.conn_closed += 1
        if self.connections.get(conn.node_id) is conn:
            del self.connections[conn.node_id]
            if self.running:
                log.info("connection to broker %d closed: %s", conn.node_id, error)
                self.metadata.request_update()
        self.wakeup.set()

    def any_connection(self, now: int) -> tuple[BrokerConnection | None, int]:
        """The least loaded open connection, connecting to a known broker when none is open.

        Without one, also returns how long to wait: 0 when a connection attempt is under way
        (its end wakes the sender), else the shortest reconnect backoff left, so a broker that
        refused us is tried again when its backoff ends (never a sleep without a deadline)."""
        live = [c for c in self.connections.values() if not c.closed]
        if live:
            return min(live, key=lambda c: c.in_flight), FOREVER
        known = list(self.metadata.cluster.brokers.values()) or self.bootstrap
        candidates = [b for b in known if b.node_id not in self.connecting]
        random.shuffle(candidates)
        wait = FOREVER
        for b in candidates:
            w = self.connect(b.node_id, now)
            if w == 0:
                return None, FOREVER
            wait = min(wait, w)
        if not self.connecting and known is not self.bootstrap:
            for b in self.bootstrap:  # every known broker is backing off: try bootstrap
                w = self.connect(b.node_id, now)
                if w == 0:
                    return None, FOREVER
                wait = min(wait, w)
        return None, (FOREVER if self.connecting else wait)

    def close(self) -> None:
        """Cancel connection attempts (``connecting`` keeps them until they end, for the
        caller to await) and close every connection."""
        for task in list(self.connecting.values()):
            task.cancel()
        for conn in list(self.connections.values()):
            conn.close()
        self.connections.clear()
        if self._sasl is not None:
            self._sasl.close()


def _set_socket_buffers(conn: BrokerConnection, send: int, receive: int) -> None:
    """``send_buffer_bytes`` / ``receive_buffer_bytes`` on the connection's socket (-1: the
    system's, which Linux tunes per connection)."""
    transport = conn._transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        return
    import socket

    for option, size in ((socket.SO_SNDBUF, send), (socket.SO_RCVBUF, receive)):
        if size >= 0:
            try:
                sock.setsockopt(socket.SOL_SOCKET, option, size)
            except OSError:
                log.warning("could not set the socket's buffer size to %d bytes", size)


__all__ = ["ConnectionPool"]
