"""KIP-714 client metrics (``enable_metrics_push``): GetTelemetrySubscriptions and
PushTelemetry on an open broker connection, when the state machine says
(``_core/telemetry.py``).

Telemetry never holds up the producer: it runs on a timer and a task of its own, never in
the sender's turn; it uses a connection already open (it opens none); every failure is
logged at DEBUG (WARNING when telemetry turns off for good) and never reaches the records.
``close()`` of the producer sends a last push (``terminating``) within a short bound.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

from .._core.metrics import MetricName
from .._core.telemetry import OFF, State, TelemetryState, compression_for, subscription_from
from .._protocol.messages import (
    GetTelemetrySubscriptionsRequest,
    GetTelemetrySubscriptionsResponse,
    PushTelemetryRequest,
    PushTelemetryResponse,
)
from .._records.codecs import CODEC_IDS, CODEC_NAMES, get_codec
from ..config import ProducerConfig
from .backend import ops_for, running_loop
from .connection import BrokerConnection
from .connections import ConnectionPool

log = logging.getLogger("aioproducer.telemetry")
#: How long ``close()`` waits for the terminating push at most (s).
CLOSE_PUSH_S = 5.0
#: With no connection open, look again after this long (ms).
NO_CONNECTION_MS = 1000


def _codecs() -> tuple[int, ...]:
    """The compression ids this installation can write (snappy needs its extra)."""
    out = []
    for name, codec_id in CODEC_IDS.items():
        try:
            get_codec(name)
        except Exception:  # snappy without cramjam
            continue
        out.append(codec_id)
    return tuple(out)


class TelemetrySender:
    """Asks for the subscription and pushes the metrics it selects, on its own timer."""

    def __init__(
        self,
        config: ProducerConfig,
        pool: ConnectionPool,
        now_ms: Callable[[], int],
        collect: Callable[[], Mapping[MetricName, float]],
    ) -> None:
        self.pool = pool
        self.now_ms = now_ms
        #: ``Producer.metrics()``.
        self.collect = collect
        self.state = TelemetryState(random.Random().random(), int(time.time() * 1000))
        self.resource = (
            {"transactional_id": config.transactional_id} if config.transactional_id else {}
        )
        self.task: asyncio.Task[None] | None = None
        self._timer: Any = None
        self._codecs: tuple[int, ...] | None = None
        self._closed = False

    def start(self) -> None:
        """Begin: the first request as soon as a connection is open."""
        self._schedule()

    def _schedule(self, wait_ms: int | None = None) -> None:
        if self._closed or self.task is not None:
            return
        if wait_ms is None:
            wait_ms = self.state.wait_ms(self.now_ms())
        if wait_ms >= OFF:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = running_loop().call_later(wait_ms / 1000, self._due)

    def _due(self) -> None:
        self._timer = None
        if self._closed or self.task is not None:
            return
        conn = self._connection()
        if conn is None:
            self._schedule(NO_CONNECTION_MS)
            return
        now = self.now_ms()
        if GetTelemetrySubscriptionsRequest.API_KEY not in conn.versions:
            log.debug("broker %d has no client telemetry APIs: telemetry is off", conn.node_id)
            self.state.on_failure(now, unsupported=True)
            return
        kind = self.state.begin(now)
        if kind is None:
            self._schedule()
            return
        self.task = running_loop().create_task(self._request(conn, kind))

    def _connection(self) -> BrokerConnection | None:
        live = [c for c in self.pool.connections.values() if not c.closed and c.versions]
        return min(live, key=lambda c: c.in_flight) if live else None

    async def _request(self, conn: BrokerConnection, kind: State) -> None:
        try:
            if kind is State.SUBSCRIPTION_IN_PROGRESS:
                await self._subscribe(conn)
            else:
                await self._push(conn, kind is State.TERMINATING_PUSH_IN_PROGRESS)
        except Exception as exc:  # never the producer's problem
            log.debug("client telemetry request to broker %d failed: %s", conn.node_id, exc)
            self.state.on_failure(self.now_ms(), unsupported=False)
        finally:
            self.task = None
        if not self.state.enabled:
            log.warning("client telemetry (KIP-714) is off for this producer: broker refused it")
        self._schedule()

    async def _subscribe(self, conn: BrokerConnection) -> None:
        key = GetTelemetrySubscriptionsRequest.API_KEY
        req = GetTelemetrySubscriptionsRequest(client_instance_id=self.state.client_instance_id)
        resp = await conn.request(req, conn.version_for(key), GetTelemetrySubscriptionsResponse)
        sub = None
        if not resp.error_code:
            sub = subscription_from(
                resp.client_instance_id,
                resp.subscription_id,
                resp.push_interval_ms,
                resp.accepted_compression_types,
                resp.delta_temporality,
                resp.requested_metrics,
                resp.telemetry_max_bytes,
            )
        self.state.on_subscription(self.now_ms(), resp.error_code, sub)
        log.debug(
            "client telemetry subscription: error %d, %s", resp.error_code, self.state.subscription
        )

    async def _push(self, conn: BrokerConnection, terminating: bool) -> None:
        sub = self.state.subscription
        assert sub is not None
        data = self.state.payload(self.collect(), int(time.time() * 1000), self.resource)
        if self._codecs is None:
            self._codecs = _codecs()
        codec = compression_for(sub.accepted_compression, self._codecs)
        if codec:
            data = get_codec(CODEC_NAMES[codec]).compress(data)
        req = PushTelemetryRequest(
            client_instance_id=sub.client_instance_id,
            subscription_id=sub.subscription_id,
            terminating=terminating,
            compression_type=codec,
            metrics=data,
        )
        key = PushTelemetryRequest.API_KEY
        resp = await conn.request(req, conn.version_for(key), PushTelemetryResponse)
        self.state.on_push(self.now_ms(), resp.error_code)
        log.debug("client telemetry push (%d bytes): error %d", len(data), resp.error_code)

    async def close_push(self) -> None:
        """The producer closes: the last push (``terminating``) if a subscription is held,
        within ``CLOSE_PUSH_S``; then nothing more."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        ops = ops_for(running_loop())
        if self.task is not None:  # a request out: its answer no longer matters
            self.task.cancel()
            await ops.wait_quietly([self.task])
        if not self.state.close():
            self._closed = True
            return
        conn = self._connection()
        kind = self.state.begin(self.now_ms())
        self._closed = True
        if conn is None or kind is not State.TERMINATING_PUSH_IN_PROGRESS:
            return
        try:
            await ops.wait_for(self._push(conn, terminating=True), CLOSE_PUSH_S)
        except Exception as exc:
            log.debug("client telemetry: the terminating push failed: %s", exc)

    def close(self) -> None:
        """Stop the timer and any request out (the producer is shutting down)."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.task is not None:
            self.task.cancel()


__all__ = ["TelemetrySender"]
