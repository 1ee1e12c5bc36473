"""The connection pool: one connection per broker, opened on demand, with a reconnect backoff.

A failed connection attempt backs off per broker (``reconnect_backoff_ms`` doubling up to
``reconnect_backoff_max_ms``, with jitter, as Java's ``ClusterConnectionStates``); the backoff
belongs to the address that failed, so a broker advertised somewhere else since is tried at
once. Each attempt has a setup timeout that grows the same way per consecutive failure
(``socket_connection_setup_timeout_ms`` to ``socket_connection_setup_timeout_max_ms``).

When every known broker is backing off, the producer rebootstraps (``metadata_recovery_strategy``
"rebootstrap", KIP-899): it forgets the brokers it learned and connects to the bootstrap
addresses; it does too when no metadata came for ``metadata_recovery_rebootstrap_trigger_ms``
(KIP-1102, asked by the metadata updater). A connection without a request in flight and
without traffic for ``connections_max_idle_ms`` is closed (:meth:`ConnectionPool.close_idle`).
The rules are values in ``_core/connection_rules.py``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

from .._core.accumulator import backoff_ms
from .._core.cluster import BrokerInfo, Metadata
from .._core.connection_rules import Recovery, idle_close_in_ms, setup_timeout_ms
from .._core.metrics import ProducerMetrics
from ..config import ProducerConfig
from ..errors import KafkaConnectionError, KafkaError, RebootstrapRequiredError
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
        self.recovery = Recovery(
            config.metadata_recovery_strategy, config.metadata_recovery_rebootstrap_trigger_ms
        )
        #: No connection can close as idle before this time (ms): see :meth:`close_idle`.
        self._idle_check_ms = 0
        #: The connection being closed as idle (its close is no news for the metadata).
        self._closing_idle: BrokerConnection | None = None
        #: Whether the broker last connected to knows ApiVersions v5 (KIP-1242's ids): only
        #: then are they sent, since some brokers (Tansu) drop a connection asking a version
        #: they do not know rather than answering UNSUPPORTED_VERSION (KIP-511).
        self.api_versions_v5 = False

    def _cluster_check_id(self, node: int) -> str | None:
        """The cluster id to send when connecting to ``node`` (KIP-1242), or None: not for a
        bootstrap address, nor with ``metadata_cluster_check_enable`` off or without
        rebootstrapping (``metadata_recovery_strategy="none"``: Java ignores the check then)."""
        cfg = self.config
        if node < 0 or not cfg.metadata_cluster_check_enable or not self.api_versions_v5:
            return None
        if cfg.metadata_recovery_strategy == "none":
            return None
        return self.metadata.cluster.cluster_id

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
        previous = self.reconnect.get(node)
        # Consecutive failures at this address (a broker advertised elsewhere starts afresh).
        failures = (
            0 if previous is None or previous[2] != (broker.host, broker.port) else previous[0]
        )
        timeout = setup_timeout_ms(
            failures,
            cfg.socket_connection_setup_timeout_ms,
            cfg.socket_connection_setup_timeout_max_ms,
            self.rand,
        )
        try:
            conn = await BrokerConnection.open(
                node,
                broker.host,
                broker.port,
                client_id=cfg.client_id,
                request_timeout_ms=cfg.request_timeout_ms,
                setup_timeout_ms=timeout,
                on_close=self._on_closed,
                ssl_context=self._ssl_context,
                sasl=self._sasl,
                cluster_id=self._cluster_check_id(node),
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
            failures += 1
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
            if isinstance(exc.__cause__, RebootstrapRequiredError):
                # KIP-1242: the address is not that node of our cluster any more; sent only
                # when rebootstrapping is on (_cluster_check_id), so rebootstrap, as Java does.
                self.rebootstrap(self.now_ms(), f"broker {node} answered REBOOTSTRAP_REQUIRED")
            self.metadata.request_update()
            self.on_connect_failed()
        else:
            self.reconnect.pop(node, None)
            self.api_versions_v5 = conn.versions.get(18, (0, 0))[1] >= 5
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
            if conn is self._closing_idle:
                log.debug("closed the idle connection to broker %d", conn.node_id)
            elif self.running:
                log.info("connection to broker %d closed: %s", conn.node_id, error)
                self.metadata.request_update()
        self.wakeup.set()

    def close_idle(self, now: int, busy: Callable[[BrokerConnection], int]) -> int:
        """Close the connections idle for ``connections_max_idle_ms`` (``busy(conn)``: its
        requests out); ms until one may next be idle long enough, or FOREVER.

        Traffic only pushes a connection's deadline later, and a connection opened after
        this check or busy now cannot close before ``now + connections_max_idle_ms``: until
        the earliest deadline found, the check is one comparison."""
        max_idle = self.config.connections_max_idle_ms
        if max_idle < 0:
            return FOREVER
        if now < self._idle_check_ms:
            return self._idle_check_ms - now
        next_check = now + max(1, max_idle)
        for conn in list(self.connections.values()):
            left = idle_close_in_ms(int(conn.last_activity * 1000), busy(conn) > 0, max_idle, now)
            if left == 0:
                self._closing_idle = conn
                try:
                    conn.close(
                        KafkaConnectionError(
                            f"connection to broker {conn.node_id} closed: idle for "
                            f"connections_max_idle_ms={max_idle}"
                        )
                    )
                finally:
                    self._closing_idle = None
            elif left > 0:
                next_check = min(next_check, now + left)
        self._idle_check_ms = next_check
        return next_check - now

    def rebootstrap(self, now: int, why: str) -> None:
        """Forget the learned brokers and connect to the bootstrap servers again (their
        names resolved anew); connections to learned brokers are closed."""
        log.info(
            "rebootstrapping (%s): forgetting the %d known broker(s), connecting to "
            "bootstrap_servers %s again",
            why,
            len(self.metadata.cluster.brokers),
            ",".join(f"{b.host}:{b.port}" for b in self.bootstrap),
        )
        self.recovery.rebootstrapped(now)
        self.metadata.rebootstrap()
        for conn in list(self.connections.values()):
            if conn.node_id >= 0:
                conn.close(KafkaConnectionError(f"rebootstrapping: {why}"))

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
        if not self.connecting and self.recovery.when_unreachable(known is not self.bootstrap):
            self.rebootstrap(now, "none of the known brokers can be reached")
            for b in self.bootstrap:
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
