"""A simulated Kafka cluster speaking the real wire protocol through the project's codecs.

Brokers answer ApiVersions, Metadata, InitProducerId and Produce. Partitions have a leader,
a leader epoch, replicas and an ISR. The per-partition log (:attr:`Partition.log`) is the
truth the oracles read.

Producer-state rules are Apache Kafka 4.x's, from ``ProducerAppendInfo.checkProducerEpoch`` /
``checkSequence`` and ``ProducerStateEntry.findDuplicateBatch`` / ``UnifiedLog
.analyzeAndValidateProducerState`` (storage module, ``org.apache.kafka.storage.internals.log``):

* per (partition, producer id): the current epoch and the metadata of the last 5 batches
  (``NUM_BATCHES_TO_RETAIN``): first sequence, last sequence, first and last offset;
* a batch of the current epoch whose (first, last) sequence equals a cached batch is a
  duplicate: answered NONE with the *original* base offset, not written;
* epoch lower than the current one: INVALID_PRODUCER_EPOCH (47) (since Kafka 2.7 the produce
  path answers 47, not PRODUCER_FENCED);
* another (higher) epoch: first sequence must be 0, else OUT_OF_ORDER_SEQUENCE_NUMBER (45);
* same epoch: first sequence must be last sequence + 1 (wrapping after 2**31-1), else 45 —
  a sequence older than the cached window is also 45 (modern brokers never send
  DUPLICATE_SEQUENCE_NUMBER 46 or UNKNOWN_PRODUCER_ID 59 on produce);
* no state for the producer id (never seen, or expired): any sequence is accepted ("If there
  is no current producer epoch ... accept writes with any sequence number").

46 and 59 appear here only as injected faults that emulate older brokers, and only when they
are truthful (46 only for a batch that is in the log; 59 drops the partition's producer state,
as the broker that sends it has lost it).

Replication is modelled simply: with acks=all a write is on every ISR member at once
(``hw`` = log end); with acks=0/1 it reaches the followers after a seeded lag. When a leader
with followers crashes, the new leader's log is the replicated prefix: the unreplicated tail is
lost (:attr:`Partition.truncated`), which Kafka allows for acks=0/1.

Tests script single answers (an error code on one partition, a lost or late answer, a reset
after the write, an InitProducerId refusal), move leaders on command and read every request
the brokers saw through the API of :mod:`tests.sim.script`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .broker import Broker
from .log import Partition
from .script import InitPidRule, ProduceRule, ProduceSeen, Reply

if TYPE_CHECKING:
    from .coordinator import Coordinator
    from .world import World


def _wake(fut: Any) -> None:
    if not fut.done():
        fut.set_result(None)


class Cluster:
    def __init__(self, world: World, n_brokers: int, topics: list[tuple[str, int, int]]) -> None:
        self.world = world
        self.brokers = {i: Broker(world, i) for i in range(n_brokers)}
        self.partitions: dict[tuple[str, int], Partition] = {}
        self.topics: dict[str, list[Partition]] = {}
        rng = world.frng
        for name, count, rf in topics:
            plist = []
            for i in range(count):
                first = rng.randrange(n_brokers)
                replicas = [(first + k) % n_brokers for k in range(min(rf, n_brokers))]
                part = Partition(name, i, replicas)
                plist.append(part)
                self.partitions[(name, i)] = part
            self.topics[name] = plist
        #: The transaction coordinator, for a transactional workload (tests/sim/coordinator.py).
        self.coordinator: Coordinator | None = None
        self._next_pid = 1000
        self.pids: dict[int, int] = {}  # producer id -> current epoch (the "coordinator")
        self.bad_port: int | None = None  # broker advertised with port 70000 (hostile)
        #: Extra addresses that reach a broker (a load balancer, a DNS name that moved): a
        #: test's bootstrap address, say, which no metadata answer advertises.
        self.aliases: dict[tuple[str, int], int] = {}
        #: Addresses where Metadata requests are answered with a reset (a broker that accepts
        #: connections but cannot serve metadata).
        self.metadata_refused_at: set[tuple[str, int]] = set()
        #: The highest Metadata version the brokers offer (13 adds the top-level error code,
        #: KIP-1102), and the addresses where Metadata v13+ is answered REBOOTSTRAP_REQUIRED
        #: with no broker (a broker telling the client its view is stale); when each went.
        self.metadata_max_version = 12
        self.rebootstrap_required_at: set[tuple[str, int]] = set()
        self.rebootstrap_required_sent: list[float] = []
        #: The highest ApiVersions version the brokers offer (5 takes KIP-1242's cluster and
        #: node ids), and the addresses where an ApiVersions carrying them is refused with
        #: REBOOTSTRAP_REQUIRED (a broker that is not the node the client means); when each went.
        self.api_versions_max_version = 3
        self.misrouted_at: set[tuple[str, int]] = set()
        self.misrouted_refused: list[float] = []
        # The scripting API (tests/sim/script.py): rules, and what the brokers saw.
        self.produce_rules: list[ProduceRule] = []
        self.init_pid_rules: list[InitPidRule] = []
        self.produce_seen: list[ProduceSeen] = []
        self.init_pid_seen: list[float] = []
        self.metadata_seen: list[float] = []
        self.history: list[dict[str, Any]] = [self._snapshot()]

    # -- lookups --------------------------------------------------------------------------------

    def broker_at(self, host: str | None, port: int | None) -> Broker | None:
        alias = self.aliases.get((host or "", port or 0))
        if alias is not None:
            return self.brokers[alias]
        for b in self.brokers.values():
            if b.host == host and b.port == port:
                return b
        return None

    def partition(self, topic: str, index: int) -> Partition | None:
        return self.partitions.get((topic, index))

    def endpoint(self, b: Broker) -> tuple[str, int]:
        return b.host, (70000 if self.bad_port == b.node_id else b.port)

    def advertised(self, live: list[int]) -> list[tuple[int, str, int]]:
        out = []
        for n in live:
            host, port = self.endpoint(self.brokers[n])
            out.append((n, host, port))
        return out

    def bootstrap_servers(self, ids: list[int]) -> str:
        return ",".join(f"{self.brokers[i].host}:{self.brokers[i].port}" for i in ids)

    def scripted(self, seen: ProduceSeen) -> Reply | None:
        """The first produce rule's reply to ``seen`` (None: answer as Kafka would)."""
        for rule in self.produce_rules:
            reply = rule(seen)
            if reply is not None:
                return reply
        return None

    def set_leader(self, topic: str, index: int, node: int) -> None:
        """Move the partition's leadership to ``node`` (-1: no leader), with a new leader
        epoch; the next metadata answers say so."""
        part = self.partitions[(topic, index)]
        self.world.trace("fault", f"{part.name}: leader {part.leader} -> {node} (scripted)")
        part.leader = node
        part.leader_epoch += 1
        self.changed()

    # -- metadata snapshots ---------------------------------------------------------------------

    def _snapshot(self) -> dict[str, Any]:
        return {
            "live": [n for n, b in self.brokers.items() if b.up],
            "topics": {
                name: [(p.leader, p.leader_epoch, tuple(p.replicas), tuple(p.isr)) for p in plist]
                for name, plist in self.topics.items()
            },
        }

    def changed(self) -> None:
        self.history.append(self._snapshot())

    def snapshot_now(self) -> dict[str, Any]:
        return self.history[-1]

    # -- producer ids ---------------------------------------------------------------------------

    def init_producer_id(self, pid: int, epoch: int) -> tuple[int, int]:
        if pid >= 0 and self.pids.get(pid) == epoch and epoch < 32766:
            self.pids[pid] = epoch + 1  # KIP-360: bump the caller's epoch
            return pid, epoch + 1
        self._next_pid += 1
        self.pids[self._next_pid] = 0
        return self._next_pid, 0

    # -- replication & faults -------------------------------------------------------------------

    def replicate_later(self, part: Partition) -> None:
        w = self.world
        lag = w.frng.uniform(0.001, 0.03)
        if w.in_fault_window() and w.frng.random() < 0.3:
            lag = w.frng.uniform(0.2, 1.5)  # a slow follower: a wider window for loss
        w.loop.call_later(lag, self._replicated, part, part.generation, len(part.log))

    @staticmethod
    def _replicated(part: Partition, generation: int, upto: int) -> None:
        if part.generation == generation:
            part.hw = max(part.hw, min(upto, len(part.log)))

    def crash(self, node: int, mode: str) -> None:
        w = self.world
        b = self.brokers[node]
        if not b.up:
            return
        b.up = False
        b.down_mode = mode
        b.incarnation += 1
        w.trace("fault", f"broker {node} crashes ({mode})")
        for link in sorted(b.links, key=lambda lk: lk.id):
            if mode == "blackhole":
                link.stall("broker host down")
            else:
                link.reset("broker crashed")
        b.links.clear()
        for part in self.partitions.values():
            if node in part.isr and len(part.isr) > 1:
                part.isr.remove(node)
            if part.leader == node:
                others = [r for r in part.isr if r != node and self.brokers[r].up]
                if others:
                    lost = part.truncate(part.hw)
                    if lost:
                        w.trace(
                            "fault",
                            f"{part.name}: new leader {others[0]} lacks {len(lost)} unreplicated "
                            f"record(s) at offsets {lost[0].offset}..{lost[-1].offset}",
                        )
                    part.leader = others[0]
                else:
                    part.leader = -1
                part.leader_epoch += 1
        self.changed()

    def restart(self, node: int) -> None:
        w = self.world
        b = self.brokers[node]
        if b.up:
            return
        b.up = True
        w.trace("fault", f"broker {node} restarts")
        waiters, b.syn_waiters = b.syn_waiters, []
        for fut in waiters:
            w.loop.call_later(w.frng.uniform(0.0, 1.0), _wake, fut)
        for part in self.partitions.values():
            if node in part.replicas and node not in part.isr:
                part.isr.append(node)
            if part.leader == -1 and node in part.replicas:
                part.leader = node
                part.leader_epoch += 1
                part.hw = len(part.log)
        self.changed()

    def move_leader(self, part: Partition) -> None:
        w = self.world
        live = [r for r in part.isr if self.brokers[r].up and r != part.leader]
        if part.leader < 0 or not live:
            return
        new = w.frng.choice(live)
        if part.hw < len(part.log):
            part.truncate(part.hw)  # a clean move still loses nothing acked with acks=all
        w.trace(
            "fault", f"{part.name}: leader {part.leader} -> {new} (epoch {part.leader_epoch + 1})"
        )
        part.leader = new
        part.leader_epoch += 1
        self.changed()

    def expire_producer_state(self, part: Partition) -> None:
        w = self.world
        for pid in list(part.pstate):
            w.trace("fault", f"{part.name}: producer state of pid {pid} expires")
            part.expiries.append((pid, len(part.log)))
        part.pstate.clear()
