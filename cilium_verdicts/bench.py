"""Benchmark: ``python3 -m cilium_verdicts.bench`` times all-pairs verdicts on the synthetic cluster
(200 workloads x 40 policies by default; the README's target is well under 2 s). Not a test."""
from __future__ import annotations

import argparse
import time

from . import synthetic
from .cluster import Cluster
from .verdict import all_pairs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m cilium_verdicts.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", type=int, default=200)
    parser.add_argument("--policies", type=int, default=40)
    args = parser.parse_args(argv)
    objects = synthetic.objects(args.workloads, args.policies)
    start = time.perf_counter()
    cluster = Cluster.from_objects(objects)
    built = time.perf_counter()
    results = all_pairs(cluster)
    done = time.perf_counter()
    counts = {}
    for _, v in results:
        counts[v.verdict] = counts.get(v.verdict, 0) + 1
    print(f"{args.workloads} workloads x {args.policies} policies: {len(results)} probes "
          f"({', '.join(f'{n} {k}' for k, n in sorted(counts.items()))})")
    print(f"build {built - start:.3f} s, all-pairs {done - built:.3f} s, total {done - start:.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
