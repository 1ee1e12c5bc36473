"""What one run does, drawn from its seed: the cluster, the producer's configuration, the
workload and the fault schedule. :func:`params_from_seed` is the only source of randomness of
the schedule; the run itself draws its moment-to-moment choices from RNGs seeded with the same
seed (see :class:`tests.sim.world.World`). The hypothesis test builds :class:`Params` from
strategies instead, so a failing schedule shrinks.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any

#: Produce error codes a faulty broker may answer (RELIABILITY.md §1.9). 47/90 only with
#: ``Params.fence`` (fatal: liveness is then exempt).
RETRIABLE_CODES = [6, 7, 19, 20, 5, 13, 56, 74, 2, 3]
NON_RETRIABLE_CODES = [10, 87, 29, -1]
SEQUENCE_CODES = [45, 59, 46]


@dataclass
class Crash:
    broker: int
    at_ms: int
    down_ms: int
    mode: str  # "refuse" (process died: RST, refused) or "blackhole" (host unreachable)


@dataclass
class Params:
    seed: int
    # cluster
    n_brokers: int = 3
    topics: list[tuple[str, int, int]] = field(default_factory=lambda: [("t0", 3, 3)])
    bootstrap: list[int] = field(default_factory=lambda: [0])
    produce_max_version: int = 11
    # producer configuration
    acks: Any = "all"
    enable_idempotence: bool | None = None
    max_in_flight: int = 5
    linger_ms: int = 5
    batch_size: int = 16384
    compression: str | None = None
    buffer_memory: int = 32 * 1024 * 1024
    allocation: str = "full"  # buffer_memory_allocation_strategy
    request_timeout_ms: int = 30000
    delivery_timeout_ms: int | None = None
    retry_backoff_ms: int = 100
    retry_backoff_max_ms: int = 1000
    max_block_ms: int = 60000
    # workload
    n_records: int = 100
    keyed_ratio: float = 0.5
    large_ratio: float = 0.0
    max_gap_ms: int = 20
    p_send_and_wait: float = 0.03
    p_flush: float = 0.02
    p_cancel: float = 0.01
    p_explicit_partition: float = 0.05
    close_mode: str = "after_heal"  # or "mid_fault"
    close_timeout_s: float | None = None
    # network
    latency_ms: tuple[float, float] = (0.1, 2.0)
    p_partial: float = 0.2
    executor_delay_ms: float = 1.0
    # faults, active in [fault_start_ms, heal_ms)
    fault_start_ms: int = 0
    heal_ms: int = 3000
    p_drop_request: float = 0.0
    p_reset_before: float = 0.0
    p_drop_response: float = 0.0
    p_reset_after: float = 0.0
    p_error: float = 0.0
    error_codes: list[int] = field(default_factory=lambda: list(RETRIABLE_CODES))
    p_omit: float = 0.0
    p_throttle: float = 0.0
    p_late_delivery: float = 0.0
    p_stale_metadata: float = 0.0
    p_init_error: float = 0.0
    crashes: list[Crash] = field(default_factory=list)
    leader_moves_ms: list[int] = field(default_factory=list)
    expiries_ms: list[int] = field(default_factory=list)
    late_bootstrap_ms: int = 0
    bad_port_ms: tuple[int, int] | None = None
    fence: bool = False
    # transactions (tests/sim/transactions.py): a transactional producer, a coordinator
    transactional: bool = False
    txn_v2: bool = True
    n_transactions: int = 0
    p_commit: float = 0.7
    p_coordinator_error: float = 0.0

    def describe(self) -> str:
        d = asdict(self)
        return ", ".join(f"{k}={v}" for k, v in d.items())

    @property
    def idempotent(self) -> bool:
        if self.enable_idempotence is not None:
            return self.enable_idempotence
        return self.acks in ("all", -1) and self.max_in_flight <= 5


def params_from_seed(seed: int) -> Params:
    r = random.Random(f"params-{seed}")
    p = Params(seed=seed)
    p.n_brokers = r.choice([1, 2, 3, 3, 3, 4])
    n_topics = r.choice([1, 1, 2, 3])
    p.topics = [
        (f"t{i}", r.choice([1, 2, 3, 4, 6]), r.choice([1, 2, 3, 3])) for i in range(n_topics)
    ]
    p.bootstrap = sorted(r.sample(range(p.n_brokers), r.randint(1, p.n_brokers)))
    p.produce_max_version = r.choice([9, 10, 11, 11])
    # Producer configuration: mostly the idempotent default.
    mode = r.random()
    if mode < 0.6:
        p.acks, p.enable_idempotence = "all", r.choice([None, None, True])
        p.max_in_flight = r.randint(1, 5)
    elif mode < 0.8:
        p.acks, p.enable_idempotence = r.choice(["all", 1]), False
        p.max_in_flight = r.choice([1, 1, 2, 5])
    else:
        p.acks, p.enable_idempotence = r.choice([1, 0, "all"]), False
        p.max_in_flight = r.randint(1, 5)
    p.linger_ms = r.choice([0, 1, 5, 5, 20, 100])
    p.batch_size = r.choice([512, 2048, 16384, 16384, 65536])
    p.compression = r.choice([None, None, "gzip", "lz4", "zstd"])
    p.buffer_memory = r.choice([32 * 1024 * 1024] * 4 + [65536, 262144])
    # Drawn apart, so that the seeds' other draws stay what they were before it existed.
    p.allocation = random.Random(f"allocation-{seed}").choice(["full", "incremental"])
    if r.random() < 0.5:
        p.request_timeout_ms = r.choice([500, 1000, 1500, 3000])
        p.delivery_timeout_ms = p.linger_ms + p.request_timeout_ms + r.choice([0, 500, 2000, 5000])
        p.retry_backoff_ms = r.choice([10, 50, 100])
        p.retry_backoff_max_ms = r.choice([100, 400, 1000])
        p.max_block_ms = r.choice([2000, 10000, 60000])
    # Workload.
    p.n_records = r.choice([20, 50, 100, 200, 400])
    p.keyed_ratio = r.choice([0.0, 0.5, 1.0])
    p.large_ratio = r.choice([0.0, 0.0, 0.02, 0.05])
    p.max_gap_ms = r.choice([0, 2, 10, 50])
    p.close_mode = "mid_fault" if r.random() < 0.15 else "after_heal"
    p.close_timeout_s = r.choice([None, None, None, 0.5, 5.0, 30.0])
    if p.close_mode == "mid_fault":  # close in the middle of an outage, often with a short timeout
        p.close_timeout_s = r.choice([None, 0.0, 0.05, 0.5])
    # Network.
    lo = r.choice([0.05, 0.5, 2.0])
    p.latency_ms = (lo, lo * r.choice([1.0, 3.0, 20.0]))
    p.p_partial = r.choice([0.0, 0.2, 1.0])
    p.executor_delay_ms = r.choice([0.0, 1.0, 20.0])
    # Faults.
    p.fault_start_ms = r.choice([0, 0, 100, 500])
    p.heal_ms = p.fault_start_ms + r.choice([500, 1500, 3000, 8000])
    intensity = r.choice([0.0, 0.01, 0.03, 0.1, 0.25])

    def maybe(x: float) -> float:
        return x * intensity if r.random() < 0.5 else 0.0

    p.p_drop_request = maybe(0.3)
    p.p_reset_before = maybe(0.3)
    p.p_drop_response = maybe(0.3)
    p.p_reset_after = maybe(0.3)
    p.p_error = maybe(1.5)
    codes = list(RETRIABLE_CODES)
    if r.random() < 0.4:
        codes += NON_RETRIABLE_CODES
    if r.random() < 0.4:
        codes += SEQUENCE_CODES
    p.error_codes = codes
    p.p_omit = maybe(0.2)
    p.p_throttle = maybe(0.5)
    p.p_late_delivery = r.choice([0.0, 0.5, 1.0])
    p.p_stale_metadata = maybe(1.0)
    p.p_init_error = maybe(1.0)
    window = p.heal_ms - p.fault_start_ms
    for _ in range(r.choice([0, 0, 1, 1, 2, 3])):
        at = p.fault_start_ms + r.randrange(window)
        p.crashes.append(
            Crash(
                r.randrange(p.n_brokers),
                at,
                r.choice([200, 1500, 5000]),
                r.choice(["refuse", "refuse", "blackhole"]),
            )
        )
    p.leader_moves_ms = sorted(
        p.fault_start_ms + r.randrange(window) for _ in range(r.choice([0, 0, 1, 3]))
    )
    p.expiries_ms = sorted(
        p.fault_start_ms + r.randrange(window) for _ in range(r.choice([0, 0, 0, 1, 2]))
    )
    if r.random() < 0.1:
        p.late_bootstrap_ms = r.choice([300, 500, 2000])
    if r.random() < 0.05:
        s = p.fault_start_ms + r.randrange(window)
        p.bad_port_ms = (s, min(p.heal_ms, s + r.choice([200, 1000])))
    p.fence = r.random() < 0.03
    if p.close_mode == "mid_fault" and not p.crashes:
        p.crashes.append(
            Crash(
                r.randrange(p.n_brokers), p.fault_start_ms + r.randrange(window), 5000, "blackhole"
            )
        )
    return p
