"""The cost of W_sigma and C_sigma on a grid of sigmas, as a multiple of one distance computation.

    python benchmarks/regimes_cost.py [--train 10000] [--queries 1000] [--dim 3072] [--sigmas 64] [--repeats 3]

Times together, in one run on the same random data, (a) one noisy-query-to-train squared-distance
matrix (the unavoidable matrix product), (b) `weight_and_coverage` on the whole sigma grid, which
computes distances once per noise draw and reuses them for every sigma, (c) the estimator with its
per-sigma pass in float64 instead of float32, and (d) the naive approach, recomputing the distances
for every sigma, on a few sigmas and extrapolated.
Target (three-regime issue): (b) at most 3x (a). The measuring is mempkg.studies.performance.regimes_cost.
Writes results/benchmarks/regimes_cost.json. The data are drawn from seed 1, the estimator's noise
from seed 0 (the same seed would make the noise equal to the training points).
"""

from __future__ import annotations

import argparse

from mempkg.book.paths import results_root
from mempkg.core.devices import resolve_device
from mempkg.core.files import write_json_atomic
from mempkg.studies import performance


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=1_000)
    ap.add_argument("--dim", type=int, default=3072)
    ap.add_argument("--sigmas", type=int, default=64)
    ap.add_argument("--naive-sigmas", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    out = performance.regimes_cost(args.train, args.queries, args.dim, args.sigmas, args.naive_sigmas, args.repeats,
                            device=resolve_device(args.device))

    print(f"{args.queries} queries x {args.train} training points, d = {args.dim}, {args.sigmas} sigmas "
          f"({out['machine']})\n")
    for k, v in out["ratios"].items():
        print(f"{k}: {v:.2f}x")
    print("\nTarget: W and C on the grid <= 3x one distance matrix.")
    path = write_json_atomic(results_root() / "benchmarks" / "regimes_cost.json", out)
    print(f"Wrote {path}")


if __name__ == "__main__":
    main()
