"""The oracles of RELIABILITY.md §6.0, and a Fetch-based log reader that sees batch headers.

``History`` records every ``send()`` with a unique payload id; ``check`` reads the log back and
asserts O1 (no acknowledged record lost), O2 (send order per partition), O3 (no duplicate —
on librdkafka's mock after collapsing byte-identical re-sends of one (producer id, epoch, base
sequence), §5.7), O4 (every future resolved) and O5 (every failure typed with a persisted
status; NOT_PERSISTED records are not in the log).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from aioproducer import KafkaError, Producer, RecordFuture
from aioproducer._protocol.messages import FetchRequest, FetchResponse, MetadataRequest
from aioproducer._records.reader import RecordBatch, read_batches
from aioproducer.errors import PersistedStatus
from aioproducer.metrics import value_of

from ..integration.wire import WireClient


@dataclass
class Sent:
    pid: int  # payload id
    partition: int | None
    future: RecordFuture
    sent_at: float


@dataclass
class History:
    topic: str
    sent: list[Sent] = field(default_factory=list)
    _next: int = 0

    async def send(
        self,
        producer: Producer,
        partition: int | None = None,
        key: bytes | None = None,
        size: int = 0,
    ) -> Sent:
        pid = self._next
        self._next += 1
        value = b"payload-%08d" % pid + b"x" * size
        fut = await producer.send(self.topic, value, key=key, partition=partition)
        s = Sent(pid, partition, fut, time.monotonic())
        self.sent.append(s)
        return s

    async def settle(self, timeout: float = 30) -> None:
        """Wait for every future (O4: each resolves, bounded)."""

        async def wait(s: Sent) -> None:
            try:
                await s.future
            except KafkaError:
                pass

        await asyncio.wait_for(asyncio.gather(*(wait(s) for s in self.sent)), timeout)

    def ok(self) -> list[Sent]:
        return [s for s in self.sent if s.future.done() and s.future.exception() is None]

    def failed(self) -> list[Sent]:
        return [s for s in self.sent if s.future.done() and s.future.exception() is not None]


def resolution_bound_s(delivery_timeout_ms: int, request_timeout_ms: int) -> float:
    """O4's bound: the latest a record's future may resolve after send() returned (a request
    sent just before the delivery timeout may run its full request timeout), +10 % + 0.2 s."""
    return (delivery_timeout_ms + request_timeout_ms) / 1000 * 1.1 + 0.2


def payload_id(value: bytes | None) -> int:
    assert value is not None and value.startswith(b"payload-"), value
    return int(value[8:16])


def fetch_log(bootstrap: str, topic: str) -> dict[int, list[RecordBatch]]:
    """Every batch of every partition, read with our own Fetch (batch headers included)."""
    out: dict[int, list[RecordBatch]] = {}
    with WireClient(bootstrap) as c:
        md = c.call(
            MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name=topic)]),
            min(9, c.common_versions(MetadataRequest)[-1]),
        )
        brokers = {b.node_id: f"{b.host}:{b.port}" for b in md.brokers}
        leaders = {p.partition_index: p.leader_id for p in md.topics[0].partitions}
    for partition, leader in leaders.items():
        batches: list[RecordBatch] = []
        with WireClient(brokers[leader]) as c:
            version = min(11, c.common_versions(FetchRequest)[-1])
            offset = 0
            while True:
                req = FetchRequest(
                    max_wait_ms=0,
                    min_bytes=0,
                    topics=[
                        FetchRequest.FetchTopic(
                            topic=topic,
                            partitions=[
                                FetchRequest.FetchTopic.FetchPartition(
                                    partition=partition,
                                    fetch_offset=offset,
                                    partition_max_bytes=4 << 20,
                                )
                            ],
                        )
                    ],
                )
                resp: Any = c.call(req, version)
                assert isinstance(resp, FetchResponse)
                pdata = resp.responses[0].partitions[0]
                assert pdata.error_code == 0, pdata.error_code
                new = [
                    b
                    for b in read_batches(pdata.records or b"", allow_partial=True)
                    if b.base_offset + b.last_offset_delta >= offset
                ]
                if not new:
                    break
                batches += new
                offset = new[-1].base_offset + new[-1].last_offset_delta + 1
                if offset >= pdata.high_watermark:
                    break
        out[partition] = batches
    return out


def collapse(batches: list[RecordBatch]) -> list[RecordBatch]:
    """§5.7: drop byte-identical re-sends of one idempotent batch (the mock keeps them)."""
    seen: set[tuple[Any, ...]] = set()
    kept = []
    for b in batches:
        if b.producer_id >= 0:
            ident = (
                b.producer_id,
                b.producer_epoch,
                b.base_sequence,
                tuple((r.key, r.value) for r in b.records),
            )
            if ident in seen:
                continue
            seen.add(ident)
        kept.append(b)
    return kept


def check(
    bootstrap: str, history: History, *, mock: bool, idempotent: bool = True, order: bool = True
) -> None:
    """Assert O1-O5 for ``history`` against the log."""
    log = fetch_log(bootstrap, history.topic)
    where: dict[int, list[tuple[int, int]]] = {}
    for partition, batches in log.items():
        if mock:
            batches = collapse(batches)
        for b in batches:
            for r in b.records:
                where.setdefault(payload_id(r.value), []).append((partition, r.offset))
    # O4: every future resolved.
    pending = [s.pid for s in history.sent if not s.future.done()]
    assert not pending, f"O4: unresolved futures {pending[:10]}"
    # O1: acknowledged => in the log (at the reported offset when known).
    for s in history.ok():
        md = s.future.result()
        assert s.pid in where, f"O1: acknowledged payload {s.pid} is not in the log"
        if md.offset >= 0 and not mock:
            assert (md.partition, md.offset) in where[s.pid], f"O1: {s.pid} not at {md}"
    # O3: no duplicates (idempotent producers).
    if idempotent:
        dups = {pid: locs for pid, locs in where.items() if len(locs) > 1}
        assert not dups, f"O3: duplicated payloads {dict(list(dups.items())[:5])}"
    # O2: per partition, acknowledged records appear in send order.
    acked = {s.pid for s in history.ok()}
    for partition, batches in log.items() if order else ():
        in_log = [
            payload_id(r.value)
            for b in (collapse(batches) if mock else batches)
            for r in b.records
            if payload_id(r.value) in acked
        ]
        assert in_log == sorted(in_log), f"O2: partition {partition} out of send order"
    # O5: failures are typed, with a persisted status; NOT_PERSISTED ones are not in the log.
    for s in history.failed():
        exc = s.future.exception()
        assert isinstance(exc, KafkaError), f"O5: untyped failure {exc!r}"
        assert exc.persisted_status is not None, f"O5: no persisted status on {exc!r}"
        if exc.persisted_status is PersistedStatus.NOT_PERSISTED:
            assert s.pid not in where, f"O5: payload {s.pid} NOT_PERSISTED but in the log"


async def check_hygiene(producer: Producer) -> None:
    """O6 after close: pool full, no connections, no task of the producer left."""
    m = producer.metrics()
    assert value_of(m, "buffer-available-bytes") == value_of(m, "buffer-total-bytes"), m
    assert value_of(m, "connection-count") == 0, m
    await asyncio.sleep(0)
    mine = [
        t
        for t in asyncio.all_tasks()
        if t is not asyncio.current_task() and "aioproducer" in repr(t.get_coro())
    ]
    assert not mine, f"O6: tasks left: {mine}"
