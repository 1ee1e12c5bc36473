"""``python -m tests.sim --seed N [--trace]`` or ``--seeds N [--start S] [--jobs J]``."""

from __future__ import annotations

import argparse
import sys

from .runner import REPLAY, ensure_hash_seed, run_many, run_params, summarize
from .schedule import params_from_seed


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="python -m tests.sim", description=__doc__)
    ap.add_argument("--seed", type=int, help="run one seed")
    ap.add_argument("--trace", action="store_true", help="print every frame, fault and timer")
    ap.add_argument("--params", action="store_true", help="print the seed's schedule")
    ap.add_argument("--seeds", type=int, default=200, help="how many seeds to run")
    ap.add_argument("--start", type=int, default=0, help="first seed")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes")
    args = ap.parse_args(argv)
    ensure_hash_seed(argv)
    if args.seed is not None:
        params = params_from_seed(args.seed)
        if args.params or args.trace:
            print(f"# seed {args.seed}: {params.describe()}")
        _w, o = run_params(params, trace=args.trace, out=sys.stdout)
        print(
            f"# seed {o.seed}: {o.records} records, {o.acked} acked, {o.virtual_s:.2f}s virtual, "
            f"{o.iterations} loop iterations, {o.wall_s:.2f}s wall"
        )
        for oracle, msg in o.failures:
            print(f"FAIL {oracle}: {msg}")
        if o.failures:
            print(f"replay: {REPLAY.format(seed=o.seed)}")
            return 1
        print("OK")
        return 0
    import aioproducer

    print(f"# aioproducer from {aioproducer.__file__}", flush=True)
    seeds = list(range(args.start, args.start + args.seeds))
    outcomes, elapsed = run_many(seeds, args.jobs if args.jobs > 1 else 0)
    print(summarize(outcomes, elapsed))
    return 1 if any(o.failures for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
