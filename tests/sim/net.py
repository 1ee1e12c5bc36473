"""The simulated network: in-memory TCP links between the producer and the simulated brokers.

A :class:`Link` carries bytes in both directions with a per-link latency (+ jitter) while
keeping TCP's ordering; it can be *stalled* (half-open: every byte after that vanishes, both
ways, until the client gives up and closes), *reset* by the broker side (the client sees
``connection_lost(ConnectionResetError)`` after the bytes already on the wire), and it can
deliver the broker's bytes in random chunks (partial frames). When the client aborts a link,
requests still on the wire may reach the broker anyway ("late delivery", seeded), as on a real
network; their responses go nowhere.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from .vloop import SimTransport

if TYPE_CHECKING:
    from .broker import Broker
    from .world import World


class Link:
    __slots__ = (
        "b2c_at",
        "broker",
        "buf",
        "c2b_at",
        "client_closed",
        "dead",
        "id",
        "incarnation",
        "late_ok",
        "muted_until",
        "protocol",
        "reset_sent",
        "stalled",
        "transport",
        "world",
    )

    def __init__(self, world: World, broker: Broker, protocol: Any, lid: int) -> None:
        self.world = world
        self.broker = broker
        self.protocol = protocol
        self.id = lid
        self.incarnation = broker.incarnation
        self.stalled = False
        self.client_closed = False
        self.reset_sent = False
        self.dead = False  # the client's protocol got connection_lost
        self.late_ok = False
        self.c2b_at = 0.0
        self.b2c_at = 0.0
        self.muted_until = 0.0
        self.buf = bytearray()
        self.transport: SimTransport | None = None

    def __repr__(self) -> str:
        return f"link#{self.id}(b{self.broker.node_id})"

    # -- client -> broker -----------------------------------------------------------------------

    def client_write(self, data: bytes) -> None:
        w = self.world
        if self.stalled or self.dead or self.reset_sent:
            w.trace("net", f"{self} drop {len(data)}B (link stalled/reset)")
            return
        # Strictly after the previous write: timers due at the same instant may run in any
        # order (asyncio's heap does not keep insertion order), and TCP keeps order.
        t = max(w.loop.time() + w.latency(), self.c2b_at + 1e-6, self.muted_until)
        self.c2b_at = t
        w.loop.call_at(t, self._arrive, data)

    def _arrive(self, data: bytes) -> None:
        if self.stalled or self.reset_sent:
            return
        if self.client_closed and not self.late_ok:
            return
        b = self.broker
        if not b.up or b.incarnation != self.incarnation:
            return
        b.on_bytes(self, data)

    # -- broker -> client -----------------------------------------------------------------------

    def to_client(self, data: bytes, extra_delay: float = 0.0, at: float | None = None) -> None:
        """Send ``data`` to the client: after ``extra_delay`` and the link's latency, or
        arriving at virtual time ``at`` exactly (a scripted answer); never before bytes sent
        earlier."""
        w = self.world
        if self.stalled or self.client_closed or self.reset_sent:
            return
        loop = w.loop
        if at is None:
            at = loop.time() + extra_delay + w.latency()
        t = max(at, self.b2c_at)
        for chunk in w.chunks(data):
            loop.call_at(t, self._deliver, chunk)
            t += 1e-6
        self.b2c_at = t

    def _deliver(self, data: bytes) -> None:
        if self.client_closed or self.dead or self.stalled:
            return
        self.protocol.data_received(data)

    # -- ends -----------------------------------------------------------------------------------

    def stall(self, why: str) -> None:
        if not self.stalled:
            self.stalled = True
            self.world.trace("fault", f"{self} stalled ({why})")

    def client_close(self) -> None:
        """The client aborted the connection (transport.abort/close)."""
        if self.client_closed:
            return
        self.client_closed = True
        w = self.world
        self.late_ok = w.in_fault_window() and w.frng.random() < w.params.p_late_delivery
        w.trace(
            "net",
            f"{self} closed by client"
            + (" (requests on the wire still land)" if self.late_ok else ""),
        )
        w.net.links.discard(self)
        if not self.dead:
            self.dead = True
            w.loop.call_soon(self.protocol.connection_lost, None)

    def reset(self, why: str) -> None:
        """The broker side drops the connection: the client sees a reset after the bytes
        already on their way to it."""
        if self.client_closed or self.reset_sent:
            return
        self.reset_sent = True
        w = self.world
        w.trace("fault", f"{self} reset ({why})")
        t = max(w.loop.time() + w.latency(), self.b2c_at)
        w.loop.call_at(t, self._lost)

    def _lost(self) -> None:
        if self.dead:
            return
        self.dead = True
        self.client_closed = True
        if self.transport is not None:
            self.transport._closing = True
        self.world.net.links.discard(self)
        self.protocol.connection_lost(ConnectionResetError(104, "Connection reset by peer"))


class Network:
    def __init__(self, world: World) -> None:
        self.world = world
        self.links: set[Link] = set()
        self._next_id = 0
        self.connects = 0

    async def connect(
        self, loop: asyncio.AbstractEventLoop, factory: Any, host: str | None, port: int | None
    ) -> tuple[SimTransport, Any]:
        w = self.world
        self.connects += 1
        broker = w.cluster.broker_at(host, port)
        where = f"{host}:{port}"
        if broker is None:
            await asyncio.sleep(w.latency())
            w.trace("net", f"connect {where}: refused (nobody there)")
            raise ConnectionRefusedError(111, f"Connect call failed ('{host}', {port})")
        if not broker.listening():
            if broker.down_mode == "blackhole":
                w.trace("net", f"connect {where}: no answer (host down)")
                # SYNs are lost until the host is back; a retransmitted SYN then gets through
                # (or the caller's connection set-up timeout ends this first).
                waiter = loop.create_future()
                broker.syn_waiters.append(waiter)
                await waiter
            await asyncio.sleep(w.latency())
            w.trace("net", f"connect {where}: refused (broker down)")
            raise ConnectionRefusedError(111, f"Connect call failed ('{host}', {port})")
        await asyncio.sleep(2 * w.latency())  # SYN, SYN-ACK
        if not broker.listening():
            raise ConnectionRefusedError(111, f"Connect call failed ('{host}', {port})")
        self._next_id += 1
        protocol = factory()
        link = Link(w, broker, protocol, self._next_id)
        transport = SimTransport(link, (host or "", port or 0))
        link.transport = transport
        self.links.add(link)
        broker.links.add(link)
        w.trace("net", f"connect {where}: {link} open")
        protocol.connection_made(transport)
        return transport, protocol

    def open_links(self) -> list[Link]:
        return [lk for lk in _by_id(self.links) if not lk.client_closed and not lk.dead]


def _by_id(links: set[Link]) -> list[Link]:
    """Links in the order they were made: a set's order would depend on memory addresses,
    which differ between versions of the code, and a seed must replay the same on both."""
    return sorted(links, key=lambda lk: lk.id)
