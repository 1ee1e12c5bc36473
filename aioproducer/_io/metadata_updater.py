"""The metadata updater: one Metadata request at a time, when the cluster view is due.

When to ask and for which topics is the core's (``_core/cluster.py``'s ``Metadata``: the
refresh interval, the backoff after a failure, topics expiring after ``metadata_max_idle_ms``);
this module sends the request on the least loaded connection and tells waiters (``send()`` of
a topic with no metadata yet) that an attempt ended. When no metadata came for
``metadata_recovery_rebootstrap_trigger_ms`` it has the pool rebootstrap (KIP-1102), and at
once when a broker answers Metadata v13+ with REBOOTSTRAP_REQUIRED.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from .._core.cluster import Cluster, Metadata, TopicPartition, cluster_from_metadata
from .._core.connection_rules import metadata_answer_usable
from .._protocol.messages import MetadataRequest, MetadataResponse
from ..errors import KafkaError
from .backend import ops_for, running_loop
from .connection import BrokerConnection
from .connections import ConnectionPool
from .wakeup import FOREVER, Wakeup

log = logging.getLogger("aioproducer.metadata")


class MetadataUpdater:
    def __init__(
        self,
        metadata: Metadata,
        pool: ConnectionPool,
        now_ms: Callable[[], int],
        wakeup: Wakeup,
    ) -> None:
        self.metadata = metadata
        self.pool = pool
        self.now_ms = now_ms
        self.wakeup = wakeup
        self.task: asyncio.Task[None] | None = None
        self._waiters: list[asyncio.Future[None]] = []

    def maybe_refresh(self, now: int) -> int:
        """Send a Metadata request if one is due; ms until the next is due (or FOREVER)."""
        md = self.metadata
        # With no topic of interest yet, one request (for no topic) learns the brokers.
        if self.task is not None or (not md.topics and md.cluster.brokers):
            return FOREVER
        wait = md.time_to_next_update(now)
        if wait > 0:
            return wait
        recovery = self.pool.recovery
        recovery.update_due(now)
        if recovery.stale_for_too_long(now):
            self.pool.rebootstrap(
                now,
                f"no metadata for {recovery.trigger_ms} ms "
                "(metadata_recovery_rebootstrap_trigger_ms)",
            )
        conn, wait = self.pool.any_connection(now)
        if conn is None:
            return wait  # woken when a connection opens, or when a backoff ends
        md.attempt(now)
        topics, partial = md.topics_to_request(now)
        version = conn.version_for(MetadataRequest.API_KEY, 1)
        req = MetadataRequest(
            topics=[MetadataRequest.MetadataRequestTopic(name=t) for t in topics],
            allow_auto_topic_creation=True,
        )
        self.task = running_loop().create_task(
            self._refresh(conn, req, version, topics if partial else None)
        )
        return FOREVER

    async def _refresh(
        self,
        conn: BrokerConnection,
        req: MetadataRequest,
        version: int,
        partial: list[str] | None,
    ) -> None:
        try:
            resp = await conn.request(req, version, MetadataResponse)
            cluster = cluster_from_metadata(resp)
        except KafkaError as exc:
            log.debug("metadata request to broker %d failed: %s", conn.node_id, exc)
            self.metadata.failed(self.now_ms())
        else:
            if not self._usable(conn, resp):
                return
            self.pool.recovery.updated()
            before = self.metadata.cluster
            self.metadata.update(cluster, self.now_ms(), partial)
            if log.isEnabledFor(logging.INFO):
                log_leader_moves(before, cluster, "metadata")
            log.debug(
                "metadata from broker %d: %d broker(s), %d topic(s)%s",
                conn.node_id,
                len(cluster.brokers),
                len(cluster.topics),
                f" (asked for {len(partial)})" if partial is not None else "",
            )
        finally:
            self.task = None
            self.notify_waiters()
            self.wakeup.set()

    def _usable(self, conn: BrokerConnection, resp: MetadataResponse) -> bool:
        """False when the answer's top-level error (v13+, KIP-1102) leaves the view as it was:
        REBOOTSTRAP_REQUIRED rebootstraps at once with strategy "rebootstrap"; an error with no
        broker is a failed update."""
        code, now = resp.error_code, self.now_ms()
        if self.pool.recovery.requested(code):
            self.pool.rebootstrap(now, f"broker {conn.node_id} answered REBOOTSTRAP_REQUIRED")
            return False
        if not metadata_answer_usable(code, len(resp.brokers)):
            log.debug("metadata from broker %d: error %d and no broker", conn.node_id, code)
            self.metadata.failed(now)
            return False
        return True

    def notify_waiters(self) -> None:
        """Wake everyone waiting in :meth:`changed` (an attempt ended, or the producer stops)."""
        waiters, self._waiters = self._waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    async def changed(self, timeout_s: float) -> None:
        """Wait for the next metadata update attempt (success or failure), or the timeout."""
        loop = running_loop()
        fut = loop.create_future()
        self._waiters.append(fut)
        self.wakeup.set()
        try:
            await ops_for(loop).wait_for(fut, timeout_s)
        except asyncio.TimeoutError:
            pass

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self.notify_waiters()


def log_leader_moves(before: Cluster, after: Cluster, source: str) -> None:
    """One INFO line naming the partitions whose leader changed (the first ten)."""
    moves = [
        f"{p.topic}-{p.partition} {old}->{p.leader}"
        for topic in after.topics.values()
        for p in topic.partitions
        if (old := before.leader_for(TopicPartition(p.topic, p.partition))) >= 0 and p.leader != old
    ]
    if moves:
        log.info(
            "leader moved for %d partition(s) (%s): %s%s",
            len(moves),
            source,
            ", ".join(moves[:10]),
            ", ..." if len(moves) > 10 else "",
        )


__all__ = ["MetadataUpdater", "log_leader_moves"]
