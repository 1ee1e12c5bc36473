"""The idempotent producer's id: one InitProducerId request at a time, with backoff.

The state machine itself (uninitialized, initializing, ready, disabled, fatal; sequences and
epoch bumps) is the core's (``_core/idempotence.py``); this module asks a broker for the id
and applies the answer. A cluster that cannot grant one (no InitProducerId, or no permission)
makes ``enable_idempotence=True`` fatal, and turns idempotence off when it was only the
default (with a warning), as the Java producer does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from .._core.accumulator import RecordAccumulator, backoff_ms
from .._core.idempotence import IdempotenceManager, ProducerIdState
from .._protocol.messages import InitProducerIdRequest, InitProducerIdResponse
from .._protocol.versions import pick_version
from ..config import ProducerConfig
from ..errors import (
    ClusterAuthorizationFailedError,
    IdempotenceUnavailableError,
    KafkaError,
    UnsupportedVersion,
    for_code,
)
from .backend import running_loop
from .connection import BrokerConnection
from .connections import ConnectionPool
from .wakeup import FOREVER

log = logging.getLogger("aioproducer.idempotence")
#: InitProducerId's highest stable version: v6 (KIP-939's two-phase commit) is marked unstable
#: in Kafka 4.4, and only a producer with two-phase commit asks for it.
INIT_PRODUCER_ID_STABLE = 5


def init_producer_id_version(conn: BrokerConnection, lowest: int = 0, two_pc: bool = False) -> int:
    """The InitProducerId version for ``conn``: v6 exactly with two-phase commit (its
    ``Enable2Pc`` field; a broker without it raises :class:`UnsupportedVersion` naming the
    broker setting), else the highest of ``lowest``..5."""
    key = InitProducerIdRequest.API_KEY
    if not two_pc:
        return pick_version(key, conn.versions, (lowest, INIT_PRODUCER_ID_STABLE))
    try:
        return pick_version(key, conn.versions, (6, 6))
    except UnsupportedVersion as exc:
        raise UnsupportedVersion(
            "transaction_two_phase_commit_enable=True needs InitProducerId v6 (KIP-939), which "
            f"broker {conn.node_id} does not offer ({exc}); Kafka 4.4 offers it only with the "
            "broker setting unstable.api.versions.enable=true"
        ) from None


class ProducerIdInit:
    def __init__(
        self,
        idem: IdempotenceManager,
        config: ProducerConfig,
        acc: RecordAccumulator,
        pool: ConnectionPool,
        now_ms: Callable[[], int],
        on_done: Callable[[], None],
        fatal: Callable[[BaseException], None],
    ) -> None:
        self.idem = idem
        self.config = config
        self.acc = acc
        self.pool = pool
        self.now_ms = now_ms
        #: Called when a request ends, whatever its outcome.
        self.on_done = on_done
        #: Stops the producer.
        self.fatal = fatal
        self.task: asyncio.Task[None] | None = None
        self._retry_at = 0
        self._failures = 0

    def maybe_init(self, now: int) -> int:
        """Ask for a producer id unless a request is out or backing off; ms to wait."""
        if self.task is not None:
            return FOREVER
        if now < self._retry_at:
            return self._retry_at - now
        conn, wait = self.pool.any_connection(now)
        if conn is None:
            return wait  # woken when a connection opens, or when a backoff ends
        if InitProducerIdRequest.API_KEY not in conn.versions:
            self._unavailable(f"broker {conn.node_id} does not support InitProducerId")
            return 0
        version = init_producer_id_version(conn)
        self.idem.transition(ProducerIdState.INITIALIZING)
        self.task = running_loop().create_task(self._init(conn, version))
        return FOREVER

    async def _init(self, conn: BrokerConnection, version: int) -> None:
        idem = self.idem
        req = InitProducerIdRequest(
            transactional_id=None, transaction_timeout_ms=60000, producer_id=-1, producer_epoch=-1
        )
        resp: InitProducerIdResponse | None = None
        error: KafkaError | None
        try:
            resp = await conn.request(req, version, InitProducerIdResponse)
            error = None if resp.error_code == 0 else for_code(resp.error_code, "InitProducerId")
        except KafkaError as exc:
            error = exc
        finally:
            self.task = None
        if error is None:
            assert resp is not None
            idem.set_producer_id(resp.producer_id, resp.producer_epoch)
            self.acc.reset_sequences()
            self._failures = 0
            log.info("producer id %d, epoch %d", resp.producer_id, resp.producer_epoch)
        elif isinstance(error, ClusterAuthorizationFailedError):  # fatal (§1.9)
            idem.transition(ProducerIdState.FATAL)
            self.fatal(
                ClusterAuthorizationFailedError(
                    "InitProducerId needs the IdempotentWrite permission on "
                    "the cluster (or set enable_idempotence=False)",
                )
            )
        elif error.retriable:
            idem.transition(ProducerIdState.UNINITIALIZED)
            self._failures += 1
            self._retry_at = self.now_ms() + backoff_ms(
                self._failures,
                self.config.retry_backoff_ms,
                self.config.retry_backoff_max_ms,
                self.pool.rand,
            )
        else:
            self._unavailable(str(error))
        self.on_done()

    def _unavailable(self, reason: str) -> None:
        idem = self.idem
        if self.config.enable_idempotence:
            idem.transition(ProducerIdState.FATAL)
            self.fatal(
                IdempotenceUnavailableError(
                    f"enable_idempotence=True, but the cluster cannot grant a producer id: {reason}"
                )
            )
        else:
            idem.transition(ProducerIdState.DISABLED)
            log.warning(
                "idempotence is off: the cluster cannot grant a producer id (%s); set "
                "enable_idempotence=False to silence this warning",
                reason,
            )
            self.acc.reset_sequences()

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()


__all__ = ["INIT_PRODUCER_ID_STABLE", "ProducerIdInit", "init_producer_id_version"]
