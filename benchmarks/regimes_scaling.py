"""How the cost of W_sigma and C_sigma grows with the training-set size N.

    python benchmarks/regimes_scaling.py [--train-sizes 1000 2000 5000 10000] [--queries 1000] [--dim 3072]
                                         [--sigmas 64] [--repeats 3] [--device auto]

Times together, in one run, one distance matrix [queries, N] and `weight_and_coverage` on the
sigma grid at every N (the first N points of one random draw), and reports W and C as a multiple
of one distance matrix at each N and both costs relative to the smallest N: W and C should grow
like the distance matrix, linearly in N. The measuring is mempkg.studies.performance.regimes_scaling.
Writes results/benchmarks/regimes_scaling.json.
"""

from __future__ import annotations

import argparse

from mempkg.book.paths import results_root
from mempkg.core.devices import resolve_device
from mempkg.core.files import write_json_atomic
from mempkg.studies import performance


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train-sizes", type=int, nargs="+", default=[1000, 2000, 5000, 10_000])
    ap.add_argument("--queries", type=int, default=1_000)
    ap.add_argument("--dim", type=int, default=3072)
    ap.add_argument("--sigmas", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    out = performance.regimes_scaling(args.train_sizes, args.queries, args.dim, args.sigmas, args.repeats,
                               device=resolve_device(args.device))

    print(f"W and C, {args.queries} queries, d = {args.dim}, {args.sigmas} sigmas ({out['machine']})\n")
    print("| N | N / N_0 | W and C / one distance matrix | W and C cost / at N_0 | distance cost / at N_0 |")
    print("|---|---|---|---|---|")
    for r in out["rows"]:
        print(f"| {r['N']} | {r['N_growth']:.1f} | {r['wc_per_distance']:.2f}x | {r['wc_growth']:.2f}x "
              f"| {r['distance_growth']:.2f}x |")
    path = write_json_atomic(results_root() / "benchmarks" / "regimes_scaling.json", out)
    print(f"\nWrote {path}")


if __name__ == "__main__":
    main()
