"""Scripted broker answers: what a test makes the simulated cluster do, and what it saw.

The seeded fault schedule (``schedule.py``) draws faults at random; a unit test needs one given
answer to one given request instead. This module is that injection API, typed and general:

* What the brokers saw, in arrival order, across the cluster: ``Cluster.produce_seen`` (one
  :class:`ProduceSeen` per Produce request, with each partition's :class:`BatchSeen`: producer
  id, epoch, base sequence, compression, record values; and when it was answered),
  ``Cluster.init_pid_seen`` and ``Cluster.metadata_seen`` (arrival times).
* Produce rules: ``Cluster.produce_rules`` is a list of :data:`ProduceRule`, functions from the
  request the broker just read (a :class:`ProduceSeen`) to a :class:`Reply`, or ``None`` to
  pass. The first rule that returns a reply decides; with none, the broker answers as Kafka
  would. A :class:`Reply` says per partition what to answer (:class:`Answer`: an error code,
  written or not, a KIP-951 leader hint, left out, answered more than once) and what becomes of
  the request as a whole (its :data:`Fate`: answered, lost before or after the broker applied
  it, or the connection reset before or after), when the answer reaches the client (a delay,
  or an exact virtual time) and its KIP-219 throttle time. :func:`on_request` and
  :func:`on_partition` build the usual rules.
* InitProducerId rules: ``Cluster.init_pid_rules``, functions from the request's index (0 for
  the first InitProducerId the cluster receives) to an error code to answer, or ``None``.
* Leaders move on command: ``Cluster.set_leader(topic, partition, node)`` (``-1``: offline).

A scripted error is answered as given: a rule can make a broker say what no real broker would
(46 for a batch it never wrote, say); the test that writes it says why.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

#: What becomes of a scripted Produce request: ``answer`` (the broker answers);
#: ``drop_request`` (lost on the way: not applied, and the link goes silent, both ways, until
#: the client gives up on it); ``drop_response`` (applied, then the link goes silent);
#: ``reset_before`` / ``reset_after`` (the broker resets the connection before applying the
#: request / after applying it, without answering).
Fate = Literal["answer", "drop_request", "drop_response", "reset_before", "reset_after"]


@dataclass(frozen=True, slots=True)
class BatchSeen:
    """One partition's record batch in a Produce request, as the broker read it."""

    topic: str
    partition: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    compression: int
    values: tuple[bytes | None, ...]

    @property
    def header(self) -> tuple[int, int, int, int]:
        """(producer id, epoch, base sequence, record count)."""
        return self.producer_id, self.producer_epoch, self.base_sequence, len(self.values)


@dataclass(slots=True)
class ProduceSeen:
    """One Produce request as a broker received it."""

    index: int  # arrival order among every Produce request of the cluster, from 0
    broker: int
    link: int  # the connection's id (``Link.id``)
    at: float  # virtual time of arrival
    version: int
    acks: int
    batches: tuple[BatchSeen, ...]
    #: Virtual time the broker sent its answer (None: no answer, acks=0 or a scripted fate).
    answered_at: float | None = None

    def batch(self, topic: str, partition: int) -> BatchSeen | None:
        for b in self.batches:
            if b.topic == topic and b.partition == partition:
                return b
        return None


@dataclass(frozen=True, slots=True)
class Answer:
    """How the broker answers one partition of a scripted Produce request."""

    #: The error code to answer (0: the broker's own outcome, written or refused).
    error: int = 0
    #: With an error: append the batch first (by the usual rules), then answer the error (an
    #: error after which Kafka may have written it, like 7 or 20).
    append: bool = False
    #: KIP-951: name this node (with the partition's leader epoch) as the current leader.
    leader: int | None = None
    #: Leave the partition out of the answer (after writing it, unless ``error`` says not).
    omit: bool = False
    #: Answer the partition again, once per code (a broken broker's duplicate entries).
    extra: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Reply:
    """What a broker does with one Produce request instead of answering it normally."""

    #: Per (topic, partition); a partition not named is answered normally.
    partitions: Mapping[tuple[str, int], Answer] = field(default_factory=dict)
    fate: Fate = "answer"
    #: The answer leaves the broker this many virtual seconds late (the client sees nothing
    #: of the connection meanwhile; later answers on it queue behind).
    delay_s: float = 0.0
    #: The answer reaches the client at exactly this virtual time (no link latency).
    at_s: float | None = None
    #: KIP-219: the answer's throttle time (the broker answers at once, the client holds off).
    throttle_ms: int = 0


ProduceRule = Callable[[ProduceSeen], "Reply | None"]
InitPidRule = Callable[[int], "int | None"]


def on_request(index: int, reply: Reply) -> ProduceRule:
    """``reply`` to the cluster's ``index``-th Produce request (from 0), whatever it holds."""

    def rule(req: ProduceSeen) -> Reply | None:
        return reply if req.index == index else None

    return rule


def on_partition(topic: str, partition: int, answer: Answer, times: int = 1) -> ProduceRule:
    """Answer ``answer`` for ``topic``-``partition`` in the first ``times`` Produce requests
    that carry it."""
    left = [times]

    def rule(req: ProduceSeen) -> Reply | None:
        if left[0] <= 0 or req.batch(topic, partition) is None:
            return None
        left[0] -= 1
        return Reply({(topic, partition): answer})

    return rule


__all__ = [
    "Answer",
    "BatchSeen",
    "Fate",
    "InitPidRule",
    "ProduceRule",
    "ProduceSeen",
    "Reply",
    "on_partition",
    "on_request",
]
