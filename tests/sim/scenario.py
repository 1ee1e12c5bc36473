"""Unit tests on the simulator: one scripted scenario, a real ``Producer``, virtual time.

A :class:`Scenario` is a :class:`~tests.sim.world.World` without the seeded workload and
faults: the cluster (3 brokers, topic ``t0`` of 3 partitions unless ``sim=`` says otherwise)
answers as Kafka would, except where the test scripts it (:mod:`tests.sim.script`), and
``body(producer, world)`` runs between ``start()`` and ``close()``. The run is deterministic
and takes milliseconds whatever virtual time it spans; the oracles' after-close checks (no task
left, no open connection, memory pool whole, no error handed to the loop) still apply.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any, TypeVar

from aioproducer import Producer
from tests.helpers import wait_until

from .schedule import Params
from .script import BatchSeen, ProduceSeen
from .world import World, run_world

Body = Callable[[Producer, World], Awaitable[None]]
T = TypeVar("T")


class Scenario(World):
    """``body(producer, world)`` run against a fault-free simulated cluster. ``sim``: fields
    of :class:`Params` (the cluster's shape, latencies); ``setup(world)`` runs before the
    producer starts (to script InitProducerId answers, say); ``config``: the producer's."""

    def __init__(
        self,
        body: Body,
        sim: Mapping[str, Any] | None = None,
        setup: Callable[[World], None] | None = None,
        **config: Any,
    ) -> None:
        super().__init__(replace(Params(seed=1, n_records=0), **(sim or {})))
        self.body = body
        self.setup = setup
        self.config = config
        self.error: BaseException | None = None

    async def main(self) -> None:
        if self.setup is not None:
            self.setup(self)
        producer = self.producer = Producer(**{**self.producer_config(), **self.config})
        try:
            await producer.start()
        except Exception as exc:  # the test reads it: run(..., start_fails=True)
            self.start_error = exc
            return
        try:
            await self.body(producer, self)
        except BaseException as exc:  # reported by run(), after the loop is torn down
            self.error = exc
        finally:
            await producer.close()


async def _nothing(p: Producer, w: World) -> None:
    raise AssertionError("the producer started")


def run(
    body: Body = _nothing,
    sim: Mapping[str, Any] | None = None,
    setup: Callable[[World], None] | None = None,
    start_fails: bool = False,
    **config: Any,
) -> Scenario:
    """Run one scenario to the end; raise what its body raised, or an oracle's failure."""
    world = Scenario(body, sim, setup, **config)
    run_world(world)
    if world.error is not None:
        raise world.error
    if start_fails:
        assert world.start_error is not None, "start() succeeded"
    elif world.start_error is not None:
        raise world.start_error
    assert not world.failures, world.failures
    return world


async def until(
    condition: Callable[[], T | None], what: str, within_s: float = 60.0, step_s: float = 0.001
) -> T:
    """``condition()``'s first truthy value, checked every ``step_s`` of virtual time for up
    to ``within_s`` virtual seconds (then an AssertionError naming ``what``)."""
    return await wait_until(condition, what, timeout=within_s, interval=step_s)


def log_of(world: World, partition: int, topic: str = "t0") -> list[bytes | None]:
    """The values in the partition's log, in offset order."""
    part = world.cluster.partition(topic, partition)
    assert part is not None
    return [e.value for e in part.log]


def requests_for(world: World, partition: int, topic: str = "t0") -> list[ProduceSeen]:
    """The Produce requests that carried a batch of the partition, in arrival order."""
    return [r for r in world.cluster.produce_seen if r.batch(topic, partition) is not None]


def batches_of(world: World, partition: int, topic: str = "t0") -> list[BatchSeen]:
    """The partition's batches as the brokers received them, in arrival order."""
    out = []
    for r in world.cluster.produce_seen:
        b = r.batch(topic, partition)
        if b is not None:
            out.append(b)
    return out


def leader_of(world: World, partition: int, topic: str = "t0") -> int:
    part = world.cluster.partition(topic, partition)
    assert part is not None
    return part.leader


__all__ = [
    "Body",
    "Scenario",
    "batches_of",
    "leader_of",
    "log_of",
    "requests_for",
    "run",
    "until",
]
