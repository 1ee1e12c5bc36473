"""Run seeds: one (with a trace) or many (in worker processes), and summarise failures."""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from .schedule import Params, params_from_seed
from .world import World, run_world

REPLAY = ".venv/bin/python -m tests.sim --seed {seed} --trace"


@dataclass
class Outcome:
    seed: int
    failures: list[tuple[str, str]] = field(default_factory=list)
    records: int = 0
    acked: int = 0
    virtual_s: float = 0.0
    iterations: int = 0
    wall_s: float = 0.0
    #: What the run did, hashed: every record's outcome (its time, offset or error type and
    #: persisted status) and every partition's log. Equal digests over many seeds show that
    #: a refactoring changed no behaviour the simulator can see (``--digest``).
    digest: str = ""


def digest_of(w: World) -> str:
    h = hashlib.sha256()
    for r in w.recs:
        h.update(f"{r.index} {r.partition} {r.sent_at!r} {type(r.raised).__name__};".encode())
        for t, md, exc in r.resolutions:
            what = (
                f"{getattr(md, 'partition', None)}@{getattr(md, 'offset', None)}"
                if exc is None
                else f"{type(exc).__name__}/{getattr(exc, 'persisted_status', None)}"
            )
            h.update(f"{t!r} {what};".encode())
    for key in sorted(w.cluster.partitions):
        part = w.cluster.partitions[key]
        h.update(f"{key}:".encode())
        for e in part.log:
            h.update(f"{e.offset} {e.pid} {e.epoch} {e.seq} {e.payload};".encode())
    h.update(f"{w.loop.time()!r} {w.loop.iterations}".encode())
    return h.hexdigest()[:16]


def run_params(params: Params, trace: bool = False, out: Any = None) -> tuple[World, Outcome]:
    w = run_world(World(params, trace=trace, out=out))
    o = Outcome(
        params.seed,
        list(w.failures),
        len(w.recs),
        sum(1 for r in w.recs if r.ok),
        w.loop.time(),
        w.loop.iterations,
        w.wall_s,
        digest_of(w),
    )
    return w, o


def run_seed(seed: int) -> Outcome:
    return run_params(params_from_seed(seed))[1]


def run_many(seeds: list[int], jobs: int = 1, progress: bool = True) -> tuple[list[Outcome], float]:
    t0 = time.perf_counter()
    outcomes: list[Outcome] = []
    if jobs <= 0:  # in this process (the CLI re-executes itself with PYTHONHASHSEED=0)
        for i, s in enumerate(seeds):
            outcomes.append(run_seed(s))
            if progress and (i + 1) % 100 == 0:
                _progress(i + 1, len(seeds), t0, outcomes)
    else:
        import multiprocessing as mp

        # Spawned workers with PYTHONHASHSEED=0: the same set iteration order as a replay.
        os.environ["PYTHONHASHSEED"] = "0"
        ctx = mp.get_context("spawn")
        # Fresh workers every 400 seeds: a long run in one process slowed from ~55 to ~15
        # seeds/s as its heap grew.
        with ctx.Pool(jobs, maxtasksperchild=100) as pool:
            for i, o in enumerate(pool.imap_unordered(run_seed, seeds, chunksize=4)):
                outcomes.append(o)
                if progress and o.failures:  # at once: a long run can be stopped and replayed
                    print(
                        f"  seed {o.seed} fails: {o.failures[0][0]} {o.failures[0][1][:160]}",
                        file=sys.stderr,
                        flush=True,
                    )
                if progress and (i + 1) % 100 == 0:
                    _progress(i + 1, len(seeds), t0, outcomes)
    outcomes.sort(key=lambda o: o.seed)
    return outcomes, time.perf_counter() - t0


def _progress(done: int, total: int, t0: float, outcomes: list[Outcome]) -> None:
    bad = sum(1 for o in outcomes if o.failures)
    rate = done / (time.perf_counter() - t0)
    print(f"  {done}/{total} seeds, {rate:.1f} seeds/s, {bad} failing", file=sys.stderr, flush=True)


def summarize(outcomes: list[Outcome], elapsed: float, examples: int = 8) -> str:
    lines = []
    n = len(outcomes)
    bad = [o for o in outcomes if o.failures]
    lines.append(
        f"{n} seeds in {elapsed:.1f}s ({n / max(elapsed, 1e-9):.1f} seeds/s), "
        f"{sum(o.records for o in outcomes)} records, "
        f"{sum(o.virtual_s for o in outcomes):.0f}s virtual; {len(bad)} failing"
    )
    total = hashlib.sha256(" ".join(o.digest for o in outcomes).encode()).hexdigest()[:16]
    lines[-1] += f"; behaviour digest {total}"
    slow = sorted(outcomes, key=lambda o: -o.wall_s)[:5]
    lines.append(
        "slowest: "
        + ", ".join(f"seed {o.seed} {o.wall_s:.2f}s ({o.iterations} iterations)" for o in slow)
    )
    by_oracle: dict[str, list[Outcome]] = defaultdict(list)
    for o in bad:
        for oracle in sorted({f[0] for f in o.failures}):
            by_oracle[oracle].append(o)
    for oracle in sorted(by_oracle):
        group = by_oracle[oracle]
        lines.append(
            f"\n{oracle}: {len(group)} seed(s): {' '.join(str(o.seed) for o in group[:40])}"
        )
        for o in group[:examples]:
            msg = next(m for k, m in o.failures if k == oracle)
            lines.append(f"  seed {o.seed}: {msg[:300]}")
            lines.append(f"    replay: {REPLAY.format(seed=o.seed)}")
    return "\n".join(lines)


def ensure_hash_seed(argv: list[str]) -> None:
    """Re-exec with PYTHONHASHSEED=0 so set iteration order (hence a run) is reproducible."""
    if os.environ.get("PYTHONHASHSEED") != "0":
        env = dict(os.environ, PYTHONHASHSEED="0")
        os.execve(sys.executable, [sys.executable, "-m", "tests.sim", *argv], env)
