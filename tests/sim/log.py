"""The simulated partition: its log (the truth the oracles read) and the broker's per-producer
state (epoch, the last five batches' sequences), with Kafka 4.x's rules as
:mod:`tests.sim.cluster` describes them."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

MAX_SEQ = 2**31 - 1
NO_EPOCH = -1
BATCHES_TO_RETAIN = 5

API_NAMES = {0: "Produce", 3: "Metadata", 18: "ApiVersions", 22: "InitProducerId"}
#: Injected errors after which the leader may have appended (Kafka: 7, 20; -1 either way).
APPENDED_ERRORS = {7, 20}


@dataclass(slots=True)
class Entry:
    offset: int
    pid: int
    epoch: int
    seq: int
    key: bytes | None
    value: bytes | None
    headers: tuple[Any, ...]
    payload: str
    #: A transaction marker (control record): "<commit>" or "<abort>" (tests/sim/coordinator.py).
    control: str | None = None
    #: Written in a transaction (its batch had the transactional attribute).
    txn: bool = False


@dataclass(slots=True)
class BatchMeta:
    pid: int
    epoch: int
    first_seq: int
    last_seq: int
    base_offset: int
    last_offset: int


@dataclass(slots=True)
class PState:
    epoch: int
    batches: deque[BatchMeta] = field(default_factory=lambda: deque(maxlen=BATCHES_TO_RETAIN))

    @property
    def last_seq(self) -> int:
        return self.batches[-1].last_seq if self.batches else -1


def in_sequence(last: int, nxt: int) -> bool:
    return nxt == last + 1 or (nxt == 0 and last == MAX_SEQ)


def payload_of(value: bytes | None) -> str:
    if not value:
        return "?"
    head = value[:24].split(b":", 1)[0]
    return head.decode("ascii", "replace")


class Partition:
    def __init__(self, topic: str, index: int, replicas: list[int]) -> None:
        self.topic = topic
        self.index = index
        self.replicas = replicas
        self.isr = list(replicas)
        self.leader = replicas[0]
        self.leader_epoch = 0
        self.log: list[Entry] = []
        self.batches: list[BatchMeta] = []
        self.hw = 0  # entries [0, hw) are on every ISR member
        self.generation = 0  # bumped by truncation: stale replication callbacks are ignored
        self.pstate: dict[int, PState] = {}
        self.truncated: list[Entry] = []
        #: (producer id, log end offset) at each producer-state expiry.
        self.expiries: list[tuple[int, int]] = []
        #: Producer ids this partition answered UNKNOWN_PRODUCER_ID (an injected older-broker
        #: answer): until one starts over at sequence 0, its other batches get 59 too.
        self.old_broker_pids: set[int] = set()

    @property
    def name(self) -> str:
        return f"{self.topic}-{self.index}"

    def rebuild_state(self) -> None:
        """Producer state from the log, as a new leader has it (replayed batch by batch)."""
        self.pstate.clear()
        for bm in self.batches:
            st = self.pstate.get(bm.pid)
            if st is None or st.epoch != bm.epoch:
                st = self.pstate[bm.pid] = PState(bm.epoch)
            st.batches.append(bm)

    def truncate(self, to: int) -> list[Entry]:
        lost = self.log[to:]
        if lost:
            del self.log[to:]
            self.batches = [b for b in self.batches if b.base_offset < to]
            self.truncated.extend(lost)
            self.rebuild_state()
        self.generation += 1
        return lost
