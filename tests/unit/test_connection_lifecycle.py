"""The connection pool's lifecycle rules on the simulator, in virtual time: idle connections
close (``connections_max_idle_ms``), the setup timeout grows per failure
(``socket_connection_setup_timeout_max_ms``), and the producer goes back to its bootstrap
servers when the cluster it learned is gone (``metadata_recovery_strategy``, KIP-899 and
KIP-1102)."""

from __future__ import annotations

import itertools
from typing import Any

from aioproducer import KafkaTimeoutError, Producer, RecordFuture
from aioproducer.metrics import value_of
from tests.sim.scenario import log_of, requests_for, run, until
from tests.sim.world import World

from .sending import PLAIN, SHORT, failure, now, settled

#: An address no metadata answer advertises: a load balancer in front of broker 0.
BOOT = ("bootstrap.example", 9092)


def behind_a_load_balancer(w: World) -> None:
    w.cluster.aliases[BOOT] = 0


def boot_attempts(w: World, after: float) -> list[float]:
    return [t for t, h, p in w.loop.connect_attempts if (h, p) == BOOT and t > after]


def refuse_metadata_at_the_learned_addresses(w: World) -> None:
    """The learned brokers accept connections but reset on Metadata; the connection the
    producer still has to the bootstrap address is dropped (only a rebootstrap reopens one)."""
    w.cluster.metadata_refused_at = {(b.host, b.port) for b in w.cluster.brokers.values()}
    drop_the_bootstrap_connection(w)


def drop_the_bootstrap_connection(w: World) -> None:
    for link in w.net.open_links():
        if link.transport is not None and link.transport._peer == BOOT:
            link.reset("the load balancer dropped it")


def move_every_broker(w: World) -> None:
    """The cluster moves to new addresses: old ones refuse, metadata advertises the new."""
    for b in w.cluster.brokers.values():
        b.host = b.host.replace("10.0.0.", "10.0.1.")
        for link in sorted(b.links, key=lambda lk: lk.id):
            link.reset("the broker moved")
        b.links.clear()
    w.cluster.changed()


# -- connections_max_idle_ms -----------------------------------------------------------------------


def test_an_idle_connection_closes_and_the_next_send_reconnects() -> None:
    seen: dict[str, Any] = {}

    async def body(p: Producer, w: World) -> None:
        await settled([await p.send("t0", b"a", partition=0)])
        quiet_from = now()
        assert w.net.open_links()
        await until(lambda: not w.net.open_links(), "every connection closed as idle", 5)
        seen["idle_s"] = now() - quiet_from
        seen["closed"] = value_of(p.metrics(), "connection-close-total", "producer-metrics")
        fut = await p.send("t0", b"b", partition=0)
        await settled([fut])
        seen["fut"] = fut

    w = run(body, **PLAIN, connections_max_idle_ms=300)
    assert 0.3 <= seen["idle_s"] < 0.35
    assert seen["closed"] >= 1
    assert seen["fut"].result().offset == 1 and log_of(w, 0) == [b"a", b"b"]
    first, second = requests_for(w, 0)
    assert first.link != second.link  # a new connection


def test_a_connection_waiting_for_an_answer_is_not_idle() -> None:
    """The broker answers after 1 s: longer than connections_max_idle_ms, well within
    request_timeout_ms. The connection stays open and the request succeeds first time."""
    from tests.sim.script import Reply, on_request

    async def body(p: Producer, w: World) -> None:
        w.cluster.produce_rules.append(on_request(0, Reply(at_s=now() + 1.0)))
        fut = await p.send("t0", b"a", partition=0)
        await settled([fut])
        assert fut.result().offset == 0

    w = run(body, **PLAIN, connections_max_idle_ms=300, request_timeout_ms=5000)
    assert len(requests_for(w, 0)) == 1


def test_minus_one_never_closes_an_idle_connection() -> None:
    async def body(p: Producer, w: World) -> None:
        await settled([await p.send("t0", b"a", partition=0)])
        links = w.net.open_links()
        t = now()
        await until(lambda: now() > t + 30, "30 s of quiet")
        assert w.net.open_links() == links

    run(body, **PLAIN, connections_max_idle_ms=-1)


# -- socket_connection_setup_timeout_max_ms --------------------------------------------------------


def test_the_setup_timeout_doubles_per_failed_attempt_up_to_the_max() -> None:
    """The only bootstrap broker's host is down (SYNs unanswered): each attempt lasts its
    setup timeout, 1 s then 2 s then 4 s, then 4 s again (±20 %), plus a ~50 ms backoff."""

    def host_down(w: World) -> None:
        w.cluster.crash(0, "blackhole")

    w = run(
        setup=host_down,
        start_fails=True,
        bootstrap_servers="10.0.0.1:9092",
        socket_connection_setup_timeout_ms=1000,
        socket_connection_setup_timeout_max_ms=4000,
        reconnect_backoff_ms=50,
        reconnect_backoff_max_ms=50,
        max_block_ms=15000,
    )
    starts = [t for t, h, _ in w.loop.connect_attempts if h == "10.0.0.1"]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(gaps) >= 4, starts
    for gap, timeout in zip(gaps, (1.0, 2.0, 4.0, 4.0), strict=False):
        assert 0.8 * timeout + 0.04 <= gap <= min(1.2 * timeout, 4.0) + 0.1, (gaps, timeout)


# -- metadata_recovery_strategy -------------------------------------------------------------------


def test_rebootstrap_finds_a_cluster_that_moved() -> None:
    """Every learned address refuses; the bootstrap address reaches the moved cluster."""
    seen: dict[str, Any] = {}

    async def body(p: Producer, w: World) -> None:
        await settled([await p.send("t0", b"a", partition=0)])
        move_every_broker(w)
        seen["moved"] = now()
        fut = await p.send("t0", b"b", partition=0)
        await settled([fut])
        seen["fut"], seen["done"] = fut, now()

    w = run(
        body,
        setup=behind_a_load_balancer,
        bootstrap_servers="bootstrap.example:9092",
        **PLAIN,
    )
    fut: RecordFuture = seen["fut"]
    assert fut.result().offset == 1 and log_of(w, 0) == [b"a", b"b"]
    assert boot_attempts(w, seen["moved"])
    assert seen["done"] - seen["moved"] < 3.0


def test_strategy_none_keeps_to_the_learned_brokers() -> None:
    seen: dict[str, Any] = {}

    async def body(p: Producer, w: World) -> None:
        await settled([await p.send("t0", b"a", partition=0)])
        move_every_broker(w)
        seen["moved"] = now()
        fut = await p.send("t0", b"b", partition=0)
        await settled([fut])
        seen["fut"] = fut

    w = run(
        body,
        setup=behind_a_load_balancer,
        bootstrap_servers="bootstrap.example:9092",
        metadata_recovery_strategy="none",
        **{**PLAIN, **SHORT},
    )
    assert isinstance(failure(seen["fut"]), KafkaTimeoutError)
    assert log_of(w, 0) == [b"a"]
    assert not boot_attempts(w, seen["moved"])


def test_rebootstrap_when_no_metadata_comes_for_the_trigger_time() -> None:
    """KIP-1102: the learned brokers accept connections but refuse Metadata; after
    metadata_recovery_rebootstrap_trigger_ms the producer asks the bootstrap address."""
    seen: dict[str, Any] = {}

    async def body(p: Producer, w: World) -> None:
        await settled([await p.send("t0", b"a", partition=0)])
        refuse_metadata_at_the_learned_addresses(w)
        seen["refused"] = now()
        await until(lambda: boot_attempts(w, seen["refused"]), "a bootstrap connection", 10)
        seen["rebootstrap"] = boot_attempts(w, seen["refused"])[0]
        answered = len(w.cluster.metadata_seen)
        await until(lambda: len(w.cluster.metadata_seen) > answered, "metadata answered", 5)
        fut = await p.send("t0", b"b", partition=0)
        await settled([fut])
        seen["fut"] = fut

    run(
        body,
        setup=behind_a_load_balancer,
        bootstrap_servers="bootstrap.example:9092",
        metadata_max_age_ms=200,
        metadata_recovery_rebootstrap_trigger_ms=2000,
        **PLAIN,
    )
    waited = seen["rebootstrap"] - seen["refused"]
    assert 2.0 <= waited < 2.0 + 0.2 + 1.5, waited  # the trigger, a refresh period, a backoff
    assert seen["fut"].result().offset == 1


def test_no_trigger_rebootstrap_with_strategy_none() -> None:
    async def body(p: Producer, w: World) -> None:
        await settled([await p.send("t0", b"a", partition=0)])
        refuse_metadata_at_the_learned_addresses(w)
        t = now()
        await until(lambda: now() > t + 6, "three trigger periods")
        assert not boot_attempts(w, t)

    run(
        body,
        setup=behind_a_load_balancer,
        bootstrap_servers="bootstrap.example:9092",
        metadata_max_age_ms=200,
        metadata_recovery_strategy="none",
        metadata_recovery_rebootstrap_trigger_ms=2000,
        **PLAIN,
    )


def answer_rebootstrap_required_at_the_learned_addresses(w: World) -> None:
    """The learned brokers answer Metadata v13 with REBOOTSTRAP_REQUIRED and no broker; the
    bootstrap address (the load balancer) still answers in full, once reconnected."""
    w.cluster.rebootstrap_required_at = {(b.host, b.port) for b in w.cluster.brokers.values()}
    drop_the_bootstrap_connection(w)


def offer_metadata_v13(w: World) -> None:
    behind_a_load_balancer(w)
    w.cluster.metadata_max_version = 13


def test_a_broker_asking_for_a_rebootstrap_gets_one_at_once() -> None:
    """KIP-1102's REBOOTSTRAP_REQUIRED in a Metadata v13 answer: the producer goes back to its
    bootstrap servers at once, long before metadata_recovery_rebootstrap_trigger_ms."""
    seen: dict[str, Any] = {}

    async def body(p: Producer, w: World) -> None:
        await settled([await p.send("t0", b"a", partition=0)])
        answer_rebootstrap_required_at_the_learned_addresses(w)
        seen["asked"] = now()
        await until(lambda: boot_attempts(w, seen["asked"]), "a bootstrap connection", 10)
        seen["rebootstrap"] = boot_attempts(w, seen["asked"])[0]
        seen["refusals"] = list(w.cluster.rebootstrap_required_sent)
        w.cluster.rebootstrap_required_at.clear()
        fut = await p.send("t0", b"b", partition=0)
        await settled([fut])
        seen["fut"] = fut

    w = run(
        body,
        setup=offer_metadata_v13,
        bootstrap_servers="bootstrap.example:9092",
        metadata_max_age_ms=200,
        metadata_recovery_rebootstrap_trigger_ms=60000,
        **PLAIN,
    )
    assert len(seen["refusals"]) == 1, seen["refusals"]
    # The next refresh (metadata_max_age_ms) is answered 129; the bootstrap address follows.
    waited = seen["rebootstrap"] - seen["asked"]
    assert waited < 0.2 + 0.1, waited
    assert seen["rebootstrap"] >= seen["refusals"][0]
    assert seen["fut"].result().offset == 1 and log_of(w, 0) == [b"a", b"b"]


def test_rebootstrap_required_with_strategy_none_is_a_failed_update() -> None:
    """With "none" the answer (no broker) is a failed update, as in Java: the producer keeps
    the brokers it knows, asks them again after the backoff, and still delivers."""
    seen: dict[str, Any] = {}

    async def body(p: Producer, w: World) -> None:
        await settled([await p.send("t0", b"a", partition=0)])
        answer_rebootstrap_required_at_the_learned_addresses(w)
        t = now()
        await until(lambda: len(w.cluster.rebootstrap_required_sent) >= 3, "three refusals", 10)
        fut = await p.send("t0", b"b", partition=0)
        await settled([fut])
        seen["fut"], seen["t"] = fut, t
        await until(lambda: now() > t + 5, "a few seconds more")
        seen["known"] = sorted(p._metadata.cluster.brokers)

    w = run(
        body,
        setup=offer_metadata_v13,
        bootstrap_servers="bootstrap.example:9092",
        metadata_max_age_ms=200,
        metadata_recovery_strategy="none",
        metadata_recovery_rebootstrap_trigger_ms=2000,
        **PLAIN,
    )
    assert not boot_attempts(w, seen["t"])
    assert seen["fut"].result().offset == 1 and log_of(w, 0) == [b"a", b"b"]
    assert seen["known"] == sorted(w.cluster.brokers)  # the view kept, not emptied
    # Asked again after each failed update (retry_backoff_ms), only ever the learned brokers.
    assert len(w.cluster.rebootstrap_required_sent) >= 10
    assert w.cluster.metadata_seen[-1] < seen["t"]


def test_a_broker_refusing_a_misrouted_connection_sends_the_producer_to_bootstrap() -> None:
    """KIP-1242: connecting to a learned broker, the producer names the cluster and node in
    ApiVersions v5; an address now held by another broker answers REBOOTSTRAP_REQUIRED, and the
    producer rebootstraps at once (with metadata_cluster_check_enable off it would not ask)."""
    seen: dict[str, Any] = {}

    def offer_api_versions_v5(w: World) -> None:
        behind_a_load_balancer(w)
        w.cluster.api_versions_max_version = 5

    async def body(p: Producer, w: World) -> None:
        await settled([await p.send("t0", b"a", partition=0)])
        partition = w.cluster.partition("t0", 0)
        assert partition is not None
        leader = w.cluster.brokers[partition.leader]
        # Only the leader's address is misrouted: the other brokers answer, so nothing but the
        # refusal itself would send the producer back to its bootstrap servers.
        w.cluster.misrouted_at = {(leader.host, leader.port)}
        drop_the_bootstrap_connection(w)
        for link in w.net.open_links():  # the leader's connection drops: the producer reconnects
            if link.transport is not None and link.transport._peer in w.cluster.misrouted_at:
                link.reset("scripted")
        seen["asked"] = now()
        fut_b = await p.send("t0", b"b", partition=0)
        await until(lambda: w.cluster.misrouted_refused, "a refused ApiVersions", 10)
        await until(lambda: boot_attempts(w, seen["asked"]), "a bootstrap connection", 10)
        seen["refused"] = w.cluster.misrouted_refused[0]
        seen["rebootstrap"] = boot_attempts(w, seen["asked"])[0]
        w.cluster.misrouted_at = set()
        await settled([fut_b])
        seen["fut"] = fut_b

    w = run(
        body,
        setup=offer_api_versions_v5,
        bootstrap_servers="bootstrap.example:9092",
        metadata_recovery_rebootstrap_trigger_ms=60000,
        **PLAIN,
    )
    assert seen["rebootstrap"] >= seen["refused"]
    assert seen["rebootstrap"] - seen["refused"] < 0.5  # at once, not after a trigger time
    assert seen["fut"].result().offset == 1 and log_of(w, 0) == [b"a", b"b"]
