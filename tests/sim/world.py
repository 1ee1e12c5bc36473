"""One simulation run: the world (loop, network, cluster, fault schedule), the workload that
drives the real :class:`aioproducer.Producer`, and the bookkeeping the oracles read.

A run is a pure function of its :class:`~tests.sim.schedule.Params` (and so of its seed): the
module-level ``random`` (the producer's jitter, shuffles and sticky partitioner) is seeded at
the start, the world draws from its own ``random.Random`` streams, record timestamps are passed
explicitly (virtual time; ``time.time_ns`` is never consulted) and the client id is fixed.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from aioproducer import Producer
from aioproducer.errors import KafkaError

from .cluster import Cluster
from .net import Network
from .schedule import Params
from .vloop import SimFailure, SimLoop

#: Virtual epoch of record timestamps (ms); only there so timestamps look like wall time.
TS_BASE = 1_700_000_000_000
RECONNECT_BACKOFF_MAX_S = 1.0  # the producer's default reconnect_backoff_max_ms


@dataclass
class Rec:
    """One record the workload tried to send."""

    payload: str
    topic: str
    kind: str  # "send", "wait" (send_and_wait), "cancel", "probe"
    index: int  # order of send() calls, across the run
    partition: int | None = None  # known once send() returned
    sent_at: float | None = None  # virtual time send() returned
    raised: BaseException | None = None  # send() itself raised: no future
    cancelled: bool = False  # the send() call was cancelled before returning
    handle: Any = None
    resolutions: list[tuple[float, Any, BaseException | None]] = field(default_factory=list)

    def on_done(self, md: Any, exc: BaseException | None) -> None:
        self.resolutions.append((_now(), md, exc))

    @property
    def ok(self) -> bool:
        return len(self.resolutions) == 1 and self.resolutions[0][2] is None

    @property
    def error(self) -> BaseException | None:
        return self.resolutions[0][2] if self.resolutions else None


_current: World | None = None


def _now() -> float:
    return _current.loop.time() if _current is not None else -1.0


class _LogCollector(logging.Handler):
    def __init__(self, world: World) -> None:
        super().__init__(logging.DEBUG)
        self.world = world

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if record.levelno >= logging.ERROR:
            self.world.error_logs.append(msg)
        self.world.trace("log", f"{record.levelname} {msg}")


class World:
    def __init__(self, params: Params, trace: bool = False, out: Any = None) -> None:
        self.params = params
        seed = params.seed
        self.frng = random.Random(f"faults-{seed}")
        self.nrng = random.Random(f"net-{seed}")
        self.wrng = random.Random(f"work-{seed}")
        self.tracing = trace
        self.out = out
        self.trace_lines: list[str] = []
        self.loop = SimLoop(
            executor_delay=lambda: self.nrng.uniform(0, params.executor_delay_ms / 1000)
        )
        self.net = Network(self)
        self.loop.network = self.net
        if trace:
            self.loop.trace = self.trace
        self.cluster = Cluster(self, params.n_brokers, params.topics)
        for b in self.cluster.brokers.values():
            b.produce_max = params.produce_max_version
        self.fenced = False
        self.recs: list[Rec] = []
        self.failures: list[tuple[str, str]] = []
        self.error_logs: list[str] = []
        self.producer: Producer | None = None
        self.start_error: BaseException | None = None
        self.closed_at: float | None = None
        self.close_returned = False
        self.probe_phase = False
        self.leftover_tasks: list[str] = []
        self.leaked_links: list[str] = []
        self.pool_state: tuple[int, int] | None = None
        self.unresolved_at_close: list[Rec] = []
        self.wall_s = 0.0
        #: The run was cut short (deadlock, busy loop): the teardown cancelled the producer's
        #: tasks, so only O1-O3 (what the logs hold) are still meaningful.
        self.aborted = False

    # -- helpers used by the network and the brokers --------------------------------------------

    def trace(self, kind: str, msg: str) -> None:
        if not self.tracing:
            return
        line = f"{self.loop.time() * 1000:11.3f}ms {kind:<10} {msg}"
        if self.out is not None:
            print(line, file=self.out)
        else:
            self.trace_lines.append(line)

    def in_fault_window(self) -> bool:
        now = self.loop.time() * 1000
        return self.params.fault_start_ms <= now < self.params.heal_ms

    def latency(self) -> float:
        lo, hi = self.params.latency_ms
        return self.nrng.uniform(lo, hi) / 1000

    def chunks(self, data: bytes) -> list[bytes]:
        if len(data) < 2 or self.nrng.random() >= self.params.p_partial:
            return [data]
        cuts = sorted({self.nrng.randrange(1, len(data)) for _ in range(self.nrng.randint(1, 3))})
        out, prev = [], 0
        for c in cuts:
            out.append(data[prev:c])
            prev = c
        out.append(data[prev:])
        return out

    def may_fence(self) -> bool:
        if self.params.fence and not self.fenced:
            self.fenced = True
            return True
        return False

    def fail(self, oracle: str, msg: str) -> None:
        self.failures.append((oracle, msg))
        self.trace("FAIL", f"{oracle}: {msg}")

    # -- the fault schedule -----------------------------------------------------------------

    def _schedule_faults(self) -> None:
        p, c, loop = self.params, self.cluster, self.loop
        for cr in p.crashes:
            loop.call_at(cr.at_ms / 1000, c.crash, cr.broker, cr.mode)
            if cr.at_ms + cr.down_ms < p.heal_ms:
                loop.call_at((cr.at_ms + cr.down_ms) / 1000, c.restart, cr.broker)
        for at in p.leader_moves_ms:
            loop.call_at(at / 1000, self._move_some_leader)
        for at in p.expiries_ms:
            loop.call_at(at / 1000, self._expire_some)
        if p.late_bootstrap_ms:
            for b in p.bootstrap:
                c.brokers[b].listen_from = p.late_bootstrap_ms / 1000
        if p.bad_port_ms is not None:
            node = self.frng.randrange(p.n_brokers)
            loop.call_at(p.bad_port_ms[0] / 1000, self._set_bad_port, node)
            loop.call_at(p.bad_port_ms[1] / 1000, self._set_bad_port, None)
        loop.call_at(p.heal_ms / 1000, self._heal)

    def _move_some_leader(self) -> None:
        parts = list(self.cluster.partitions.values())
        self.cluster.move_leader(self.frng.choice(parts))

    def _expire_some(self) -> None:
        parts = list(self.cluster.partitions.values())
        self.cluster.expire_producer_state(self.frng.choice(parts))

    def _set_bad_port(self, node: int | None) -> None:
        self.trace(
            "fault",
            f"metadata advertises broker {node} at port 70000"
            if node is not None
            else "advertised ports fixed",
        )
        self.cluster.bad_port = node
        self.cluster.changed()

    def _heal(self) -> None:
        self.trace("fault", "faults heal: every broker up, no new faults")
        self.cluster.bad_port = None
        for link in sorted(self.net.links, key=lambda lk: lk.id):
            if link.stalled and not link.client_closed:
                # A black-holed connection does not come back by itself: when the network
                # heals, the peer that forgot it answers the retransmission with a reset.
                link.stalled = False
                link.reset("stale connection after the network healed")
        for n, b in self.cluster.brokers.items():
            if not b.up:
                self.cluster.restart(n)
        self.cluster.changed()

    # -- the workload -----------------------------------------------------------------------

    def producer_config(self) -> dict[str, Any]:
        p = self.params
        cfg: dict[str, Any] = dict(
            bootstrap_servers=self.cluster.bootstrap_servers(p.bootstrap),
            client_id="sim",
            acks=p.acks,
            enable_idempotence=p.enable_idempotence,
            max_in_flight_requests_per_connection=p.max_in_flight,
            linger_ms=p.linger_ms,
            batch_size=p.batch_size,
            compression_type=p.compression,
            buffer_memory=p.buffer_memory,
            buffer_memory_allocation_strategy=p.allocation,
            request_timeout_ms=p.request_timeout_ms,
            retry_backoff_ms=p.retry_backoff_ms,
            retry_backoff_max_ms=p.retry_backoff_max_ms,
            max_block_ms=p.max_block_ms,
        )
        if p.delivery_timeout_ms is not None:
            cfg["delivery_timeout_ms"] = p.delivery_timeout_ms
        return cfg

    def record_bound_s(self) -> float:
        """O4: a future resolves at most this long after send() returned."""
        assert self.producer is not None
        cfg = self.producer.config
        return (cfg.delivery_timeout + cfg.request_timeout_ms) / 1000 * 1.1 + 0.2

    async def _bounded(self, aw: Awaitable[Any], bound: float, what: str) -> tuple[bool, Any]:
        task = asyncio.ensure_future(aw)
        done, _ = await asyncio.wait({task}, timeout=bound)
        if not done:
            self.fail("O4", f"{what} did not finish within {bound:.1f}s (virtual)")
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return False, None
        if task.cancelled():
            return True, asyncio.CancelledError()
        exc = task.exception()
        return True, exc if exc is not None else task.result()

    async def main(self) -> None:
        p = self.params
        loop = self.loop
        self._schedule_faults()
        producer = self.producer = Producer(**self.producer_config())
        ok, res = await self._bounded(producer.start(), p.max_block_ms / 1000 + 1, "start()")
        if isinstance(res, BaseException) or not ok:
            self.start_error = res if ok else TimeoutError("start() hung")
            cfg = producer.config
            # When start() must succeed: a bootstrap broker listens and faults healed early
            # enough to leave time for backoffs, a connection set-up timeout and a request.
            ready_by = max(p.late_bootstrap_ms, p.heal_ms if self._faulty_start() else 0)
            need = ready_by + RECONNECT_BACKOFF_MAX_S * 1000 + 2 * cfg.request_timeout_ms + 1000
            if any(c.mode == "blackhole" for c in p.crashes):
                need += cfg.socket_connection_setup_timeout_max_ms  # grown by failures
            if p.max_block_ms > need:
                self.fail(
                    "O7",
                    f"start() failed though a bootstrap broker listens by t={ready_by}ms "
                    f"(max_block_ms={p.max_block_ms}): {res!r}",
                )
            await self._close(producer)
            return
        rng = self.wrng
        close_at = None
        if p.close_mode == "mid_fault":
            close_at = (p.fault_start_ms + rng.random() * (p.heal_ms - p.fault_start_ms)) / 1000
            if p.crashes and rng.random() < 0.7:  # right after a broker went away
                close_at = (rng.choice(p.crashes).at_ms + rng.choice([5, 50, 300])) / 1000
        topics = [t for t, _, _ in p.topics]
        counts = {t: n for t, n, _ in p.topics}
        max_value = max(64, min(p.buffer_memory // 2, 1_000_000) - 200)
        for i in range(p.n_records):
            if close_at is not None and loop.time() >= close_at:
                break
            if p.max_gap_ms and rng.random() < 0.7:
                await asyncio.sleep(rng.uniform(0, p.max_gap_ms) / 1000)
            topic = rng.choice(topics)
            payload = f"r{i}"
            if rng.random() < p.large_ratio:
                size = rng.randint(10_000, max_value)
            else:
                size = rng.randint(0, 200)
            value = (
                payload.encode()
                + b":"
                + bytes(rng.getrandbits(8) for _ in range(min(size, 64)))
                + b"x" * max(0, size - 64)
            )
            key = f"k{rng.randrange(16)}".encode() if rng.random() < p.keyed_ratio else None
            part = rng.randrange(counts[topic]) if rng.random() < p.p_explicit_partition else None
            headers = [("h", b"v")] if rng.random() < 0.1 else None
            x = rng.random()
            if x < p.p_send_and_wait:
                await self._send_and_wait(producer, topic, payload, value, key, part)
            elif x < p.p_send_and_wait + p.p_cancel:
                await self._cancelled_send(producer, topic, payload, value, key, part)
            else:
                await self._send(producer, topic, payload, value, key, part, headers, "send")
            if rng.random() < p.p_flush:
                self.trace("work", "flush()")
                await self._bounded(producer.flush(), self.record_bound_s(), "flush()")
        if close_at is not None:
            if loop.time() < close_at:
                await asyncio.sleep(close_at - loop.time())
        else:
            await self._probe(producer)
        await self._close(producer)

    def _faulty_start(self) -> bool:
        p = self.params
        return bool(
            p.crashes
            or p.p_drop_request
            or p.p_reset_before
            or p.p_init_error
            or p.p_stale_metadata
            or p.bad_port_ms
            or p.p_drop_response
            or p.p_reset_after
        )

    async def _send(
        self,
        producer: Producer,
        topic: str,
        payload: str,
        value: bytes,
        key: bytes | None,
        part: int | None,
        headers: Any,
        kind: str,
    ) -> Rec:
        rec = Rec(payload, topic, kind, len(self.recs))
        self.recs.append(rec)
        ts = TS_BASE + int(self.loop.time() * 1000)
        try:
            handle = await producer.send(
                topic,
                value,
                key=key,
                partition=part,
                timestamp_ms=ts,
                headers=headers,
                callback=rec.on_done,
            )
        except KafkaError as exc:
            rec.raised = exc
            self.trace("work", f"send {payload} to {topic} raised {exc!r}")
            return rec
        rec.sent_at = self.loop.time()
        rec.handle = handle
        rec.partition = handle.batch.tp.partition
        self.trace("work", f"send {payload} -> {topic}-{rec.partition} ({len(value)}B key={key!r})")
        return rec

    async def _send_and_wait(
        self,
        producer: Producer,
        topic: str,
        payload: str,
        value: bytes,
        key: bytes | None,
        part: int | None,
    ) -> None:
        rec = Rec(payload, topic, "wait", len(self.recs))
        self.recs.append(rec)
        ts = TS_BASE + int(self.loop.time() * 1000)
        started = self.loop.time()
        bound = self.params.max_block_ms / 1000 + self.record_bound_s()
        ok, res = await self._bounded(
            producer.send_and_wait(topic, value, key=key, partition=part, timestamp_ms=ts),
            bound,
            f"send_and_wait({payload})",
        )
        rec.sent_at = started
        if not ok:
            return
        if isinstance(res, BaseException):
            if isinstance(res, KafkaError) and res.persisted_status is None:
                rec.raised = res  # send() raised before a future existed
            else:
                rec.resolutions.append((self.loop.time(), None, res))
        else:
            rec.partition = res.partition
            rec.resolutions.append((self.loop.time(), res, None))
        self.trace("work", f"send_and_wait {payload} -> {res!r}")

    async def _cancelled_send(
        self,
        producer: Producer,
        topic: str,
        payload: str,
        value: bytes,
        key: bytes | None,
        part: int | None,
    ) -> None:
        task = self.loop.create_task(
            self._send(producer, topic, payload, value, key, part, None, "cancel")
        )
        await asyncio.sleep(self.wrng.choice([0, 0, 0.001, 0.01]))
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        rec = next(r for r in reversed(self.recs) if r.payload == payload)
        if task.cancelled() and rec.handle is None:
            rec.cancelled = True
            self.trace("work", f"send {payload} cancelled before it returned")

    async def _probe(self, producer: Producer) -> None:
        """O7: once the faults healed and the producer had time to notice, one new record per
        partition is delivered within a bounded time."""
        p = self.params
        cfg = producer.config
        settle = (
            (cfg.request_timeout_ms + cfg.retry_backoff_max_ms) / 1000
            + RECONNECT_BACKOFF_MAX_S
            + 0.5
        )
        start = max(self.loop.time(), p.heal_ms / 1000 + settle)
        if start > self.loop.time():
            await asyncio.sleep(start - self.loop.time())
        self.probe_phase = True
        self.trace("work", "probe phase: the world is healthy")
        bound = (
            2 * (cfg.request_timeout_ms + cfg.retry_backoff_max_ms) / 1000
            + RECONNECT_BACKOFF_MAX_S
            + cfg.linger_ms / 1000
            + 2.0
        )
        probes = []
        for topic, n, _ in p.topics:
            for i in range(n):
                rec = await self._send(
                    producer,
                    topic,
                    f"probe-{topic}-{i}",
                    f"probe-{topic}-{i}:".encode(),
                    None,
                    i,
                    None,
                    "probe",
                )
                probes.append(rec)
        waiters = [r.handle for r in probes if r.handle is not None]
        if waiters:
            await asyncio.wait([asyncio.ensure_future(_await(h)) for h in waiters], timeout=bound)
        fatal = producer._sender.fatal_error if producer._sender is not None else None
        for r in probes:
            if fatal is not None and self.fenced:
                continue  # fenced by an injected PRODUCER_FENCED: a fatal error, exempt
            where = f"{r.topic}-{r.partition if r.partition is not None else '?'}"
            if r.raised is not None:
                self.fail("O7", f"probe to {where} after heal: send() raised {r.raised!r}")
            elif not r.resolutions:
                self.fail("O7", f"probe to {where} after heal not delivered within {bound:.1f}s")
            elif r.error is not None:
                self.fail("O7", f"probe to {where} after heal failed: {r.error!r}")

    async def _close(self, producer: Producer) -> None:
        p = self.params
        cfg = producer.config
        self.closed_at = self.loop.time()
        self.trace("work", f"close(timeout={p.close_timeout_s})")
        if p.close_timeout_s is None:
            bound = (cfg.delivery_timeout + cfg.request_timeout_ms) / 1000 * 1.1 + 1.0
        else:
            bound = p.close_timeout_s * 1.1 + 1.0
        ok, res = await self._bounded(
            producer.close(p.close_timeout_s), bound, f"close(timeout={p.close_timeout_s})"
        )
        self.close_returned = ok
        if ok:
            self.trace("work", f"close returned {res!r}")
            self.unresolved_at_close = [
                r for r in self.recs if r.handle is not None and not r.handle.done()
            ]
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        me = asyncio.current_task()
        self.leftover_tasks = [repr(t) for t in asyncio.all_tasks() if t is not me and not t.done()]
        self.leaked_links = [repr(lk) for lk in self.net.open_links()]
        self.pool_state = (producer._pool.available, producer._pool.total)


async def _await(handle: Any) -> Any:
    try:
        return await handle
    except BaseException as exc:
        return exc


def run_world(world: World) -> World:
    """Run one simulation to the end; failures are in ``world.failures``."""
    global _current
    p = world.params
    random.seed(p.seed)
    log = logging.getLogger("aioproducer")
    handler = _LogCollector(world)
    old = (log.level, log.propagate)
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if world.tracing else logging.WARNING)
    log.propagate = False
    _current = world
    loop = world.loop
    t0 = time.perf_counter()
    try:
        try:
            loop.run_until_complete(world.main())
        except SimFailure as exc:
            world.aborted = True
            world.fail("O7" if "busy" in str(exc) or "iterations" in str(exc) else "O4", str(exc))
            _teardown(loop)
        except Exception as exc:
            world.aborted = True
            world.fail("SIM", f"the run raised {exc!r}")
            _teardown(loop)
        gc.collect()
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        except SimFailure:
            pass
    finally:
        loop.close()
        _current = None
        log.removeHandler(handler)
        log.setLevel(old[0])
        log.propagate = old[1]
        world.wall_s = time.perf_counter() - t0
    from .oracles import check

    check(world)
    return world


def _teardown(loop: SimLoop) -> None:
    """After a deadlock or busy loop: cancel what is left and let it unwind (bounded)."""
    import tests.sim.vloop as v

    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for t in tasks:
        t.cancel()
    saved = v.STUCK_ITERATIONS
    v.STUCK_ITERATIONS = 10_000
    loop._stuck = 0
    try:
        if tasks:
            loop.run_until_complete(asyncio.wait(tasks, timeout=1.0))
    except (SimFailure, Exception):
        pass
    finally:
        v.STUCK_ITERATIONS = saved
        loop._ready.clear()  # type: ignore[attr-defined]
        loop._scheduled.clear()  # type: ignore[attr-defined]
