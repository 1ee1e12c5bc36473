"""The producer's lifecycle (a mixin of :class:`~aioproducer.Producer`): ``start`` (the sender
task, the first metadata, the producer id, within ``max_block_ms``), ``close`` (deliver, then
stop, every record resolved and every socket closed when it returns, cancellation included)
and the warning for a producer dropped without ``close()``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import warnings
from collections import deque
from collections.abc import Callable
from typing import Any

from ._core.accumulator import RecordAccumulator
from ._core.cluster import Metadata, TopicPartition
from ._core.memory import MemoryPool
from ._core.metrics import MetricName, ProducerMetrics
from ._core.producer_batch import ProducerBatch
from ._interceptors import Interceptors
from ._io.backend import ops_for, running_loop
from ._io.completion import completions_on
from ._io.sender import Sender, Wakeup
from ._io.telemetry import TelemetrySender
from ._records.codecs import Codec
from .config import ProducerConfig
from .errors import BootstrapResolutionError, KafkaTimeoutError, ProducerClosedError

log = logging.getLogger("aioproducer")


class Lifecycle:
    """``start`` and ``close``; the state they share with the rest of the producer."""

    config: ProducerConfig
    _codec: Codec
    _pool: MemoryPool
    _metadata: Metadata
    _metrics: ProducerMetrics
    _interceptors: Interceptors
    _accumulator: RecordAccumulator | None
    _sender: Sender | None
    _task: asyncio.Task[None] | None
    _loop: asyncio.AbstractEventLoop | None
    _batches: dict[TopicPartition, deque[ProducerBatch]]
    _wakeup: Wakeup | None
    _closed: bool
    _started: bool
    _accepting: bool
    #: TransactionalProducer's: the sender found the transaction failed (not a stub here: a
    #: method of this earlier base would shadow it).
    _txn_abortable: Callable[[], None]

    def _now_ms(self) -> int:
        raise NotImplementedError

    def _sender_ended(self, task: asyncio.Task[None]) -> None:
        raise NotImplementedError

    def _metrics_snapshot(self) -> dict[MetricName, float]:
        """``metrics()``, for the KIP-714 pushes."""
        raise NotImplementedError

    async def start(self) -> None:
        """Start the sender and fetch cluster metadata; raises :class:`KafkaError` on failure,
        :class:`UnsupportedAsyncLibraryError` outside the async libraries the producer runs on.

        Unreachable brokers are tried again with the reconnect backoff until ``max_block_ms``.
        Starting a started producer does nothing; starting a closed one raises
        :class:`ProducerClosedError`. A cancelled ``start()`` closes the producer."""
        if self._closed:
            raise ProducerClosedError("a closed producer cannot be started again")
        if self._started:
            return
        self._loop = loop = running_loop()
        cfg = self.config
        await self._resolve_bootstrap()
        self._accumulator = RecordAccumulator(
            batch_size=max(cfg.batch_size, 1),
            codec=self._codec,
            linger_ms=cfg.linger_ms,
            retry_backoff_ms=cfg.retry_backoff_ms,
            retry_backoff_max_ms=cfg.retry_backoff_max_ms,
            delivery_timeout_ms=cfg.delivery_timeout,
            max_request_size=cfg.max_request_size,
            pool=self._pool,
            new_completion=completions_on(loop),
            rand=random.random,
            incremental=cfg.buffer_memory_allocation_strategy == "incremental",
        )
        self._sender = Sender(
            cfg,
            self._accumulator,
            self._metadata,
            self._now_ms,
            self._interceptors.on_ack if self._interceptors.on_acknowledgement else None,
            self._metrics,
        )
        self._batches = self._accumulator.batches
        self._wakeup = self._sender.wakeup
        self._task = loop.create_task(self._sender.run(), name="aioproducer-sender")
        self._task.add_done_callback(self._sender_ended)
        self._started = True
        # A transactional producer takes records only inside a transaction (begin_transaction).
        self._accepting = self._sender.txn is None
        if not self._accepting:
            self._sender.on_txn_abortable = self._txn_abortable
        # Reach the cluster once, so a wrong bootstrap address fails here, not at first send.
        deadline = self._now_ms() + cfg.max_block_ms
        self._metadata.request_update()
        if cfg.security_protocol.endswith("SSL") and not cfg.ssl_check_hostname:
            log.warning(
                "ssl_check_hostname=False: broker certificates are not checked against "
                "their hostnames (man-in-the-middle possible)"
            )
        # SCRAM and GSSAPI (Kerberos) send no secret in clear; PLAIN and OAUTHBEARER do.
        if cfg.security_protocol == "SASL_PLAINTEXT" and cfg.sasl_mechanism in (
            "PLAIN",
            "OAUTHBEARER",
        ):
            secret = "password" if cfg.sasl_mechanism == "PLAIN" else "token"
            log.warning(
                "SASL/%s over a plaintext connection sends the %s in clear; "
                "use security_protocol='SASL_SSL'",
                cfg.sasl_mechanism,
                secret,
            )
        while not self._metadata.cluster.brokers or self._pid_pending():
            left = deadline - self._now_ms()
            if left <= 0 or self._task.done() or self._sender.connect_error is not None:
                fatal = self._sender.fatal_error or self._sender.connect_error
                await self._abort_start()
                if fatal is not None:
                    raise fatal
                last = self._sender.last_connect_error
                if self._metadata.cluster.brokers:
                    raise KafkaTimeoutError(
                        f"no producer id (InitProducerId) within max_block_ms={cfg.max_block_ms}"
                    )
                raise KafkaTimeoutError(
                    f"could not reach any broker of {cfg.bootstrap_servers!r} within "
                    f"max_block_ms={cfg.max_block_ms}"
                    + (f"; last connection error: {last}" if last is not None else "")
                ) from last
            try:
                await self._sender.metadata_changed(left / 1000)
            except BaseException:
                # Cancelled (a cancel scope's deadline, asyncio.wait_for): stop what was
                # started, so no sender task or socket outlives a start() that did not return.
                await ops_for(loop).shielded(self._abort_start)
                raise
        if self._sender.fatal_error is not None:
            fatal = self._sender.fatal_error
            await self._abort_start()
            raise fatal
        if cfg.enable_metrics_push:
            self._sender.telemetry = TelemetrySender(
                cfg, self._sender.pool, self._now_ms, self._metrics_snapshot
            )
            self._sender.telemetry.start()
        log.info(
            "producer %s started: %d broker(s) reached through %s",
            cfg.client_id,
            len(self._metadata.cluster.brokers),
            cfg.bootstrap_servers,
        )

    async def _resolve_bootstrap(self) -> None:
        """Java 4.4's bootstrap name resolution (``bootstrap_resolve_timeout_ms``); a
        :class:`BootstrapResolutionError` closes the producer."""
        from ._io.bootstrap_dns import needs_dns, resolve_with_retries

        cfg = self.config
        hosts = cfg.bootstrap_list
        if not needs_dns(hosts):
            return
        try:
            await resolve_with_retries(
                self._loop,
                ops_for(self._loop),
                hosts,
                cfg.bootstrap_servers,
                cfg.bootstrap_resolve_timeout_ms,
                cfg.retry_backoff_ms,
                cfg.retry_backoff_max_ms,
            )
        except BootstrapResolutionError:
            self._closed = True
            raise

    def _pid_pending(self) -> bool:
        """True while an idempotent producer waits for its producer id."""
        sender = self._sender
        if sender is None or sender.idem is None or sender.fatal_error is not None:
            return False
        from ._core.idempotence import ProducerIdState

        return sender.idem.state in (ProducerIdState.UNINITIALIZED, ProducerIdState.INITIALIZING)

    async def _abort_start(self) -> None:
        self._closed = True
        self._accepting = False
        if self._sender is not None:
            self._sender.stop(force=True)
        await self._wind_down()

    async def _wind_down(self) -> None:
        """Wait for the sender task and its background tasks to end (it was told to)."""
        if self._task is not None:
            await ops_for(self._loop).wait_quietly([self._task])
        if self._sender is not None:
            await self._sender.wait_background()

    async def close(self, timeout: float | None = None) -> None:
        """Deliver pending records (within ``timeout`` seconds), then stop. Records not
        delivered in time fail with :class:`ProducerClosedError`. Every record's future is
        resolved, and every socket closed, when this returns.

        Without a timeout, the bound is ``delivery_timeout_ms + request_timeout_ms``: every
        record fails or succeeds by then anyway (``async with`` uses this bound)."""
        if self._closed:
            if self._task is not None and not self._task.done():
                await ops_for(self._loop).wait_quietly([self._task])
            return
        self._closed = True
        self._accepting = False
        if not self._started:
            return
        sender, task = self._sender, self._task
        assert sender is not None and task is not None and self._accumulator is not None
        self._accumulator.closed = True
        sender.stop()
        if timeout is None:
            cfg = self.config
            timeout = (cfg.delivery_timeout + cfg.request_timeout_ms) / 1000
        ops = ops_for(self._loop)
        try:
            # Done (delivered, failed, or the sender crashed: it failed every record and
            # logged why), or not within the timeout.
            done = await ops.wait_done(task, timeout)
        except ops.cancelled:
            # Our caller was cancelled: still finish cleanly (shielded), then propagate.
            sender.stop(force=True)
            await ops.shielded(self._wind_down)
            self._interceptors.close()
            raise
        if not done:
            sender.stop(force=True)
            await ops.wait_quietly([task])
        await sender.wait_background()
        self._interceptors.close()
        log.info("producer %s closed", self.config.client_id)

    stop = close  # aiokafka's name

    def __del__(self, _warn: Any = warnings.warn) -> None:
        # A started producer dropped without close(): say so, and close its sockets (its
        # sender task is gone with its loop, or it would still hold this producer).
        if not getattr(self, "_started", False) or self._closed:
            return
        _warn(
            f"unclosed producer {self!r}: call 'await producer.close()' (or use 'async with')",
            ResourceWarning,
            source=self,
        )
        sender = self._sender
        if sender is not None:
            for conn in list(sender.connections.values()):
                try:
                    conn.close()
                except Exception:  # the loop may be closed already
                    pass
