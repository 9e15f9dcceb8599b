"""The cost of W_sigma and C_sigma on a grid of sigmas, as a multiple of one distance computation.

    python benchmarks/regimes_cost.py [--train 10000] [--queries 1000] [--dim 3072] [--sigmas 64]

Times, in one run on the same random data, (a) one noisy-query-to-train squared-distance matrix
(the unavoidable matrix product) and (b) `weight_and_coverage` on the whole sigma grid, which
computes distances once per noise draw and reuses them for every sigma. Also times (c) the naive
approach, recomputing the distances for every sigma, on a few sigmas and extrapolated, and
(d) the estimator with its per-sigma pass in float64 instead of float32.
Target (three-regime issue): (b) at most 3x (a). Writes results/benchmarks/regimes_cost.json.
The data are drawn from seed 1, the estimator's noise from seed 0 (the same seed would make the
noise equal to the training points).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import clock, machine, timed_together  # noqa: E402

from mempkg.cache import write_json_atomic
from mempkg.paths import results_root
from mempkg.profiles import resolve_device
from mempkg.regimes import squared_distances, weight_and_coverage


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=1_000)
    ap.add_argument("--dim", type=int, default=3072)
    ap.add_argument("--sigmas", type=int, default=64)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    device = resolve_device(args.device)
    g = torch.Generator().manual_seed(1)
    train = torch.randn(args.train, args.dim, generator=g, dtype=torch.float64).to(device)
    held = torch.randn(args.queries, args.dim, generator=g, dtype=torch.float64).to(device)
    sigmas = np.geomspace(1e-2, 80, args.sigmas)

    z = torch.randn(held.shape, generator=g, dtype=torch.float64).to(device)
    t = timed_together({"dist": lambda: squared_distances(held + 0.5 * z, train),
                        "wc": lambda: weight_and_coverage(held, train, sigmas, chunk=256),
                        "wc64": lambda: weight_and_coverage(held, train, sigmas, chunk=256, precision="float64")},
                       3, device)
    t_dist, t_wc = t["dist"], t["wc"]
    few = sigmas[:4]
    t_naive_few = clock(lambda: [torch.log_softmax(-squared_distances(held + s * z, train) / (2 * s * s), 1)
                                 for s in few], 3, device)
    t_naive = t_naive_few / len(few) * len(sigmas)
    rows = {"W and C on the grid / one distance matrix": t_wc / t_dist,
            "W and C, float64 sigma pass / one distance matrix": t["wc64"] / t_dist,
            "naive (distances per sigma) / one distance matrix": t_naive / t_dist,
            "speed-up of the one-pass estimator over the naive one": t_naive / t_wc}
    print(f"{args.queries} queries x {args.train} training points, d = {args.dim}, {args.sigmas} sigmas "
          f"({machine(device)})\n")
    for k, v in rows.items():
        print(f"{k}: {v:.2f}x")
    print("\nTarget: W and C on the grid <= 3x one distance matrix.")
    out = results_root() / "benchmarks" / "regimes_cost.json"
    write_json_atomic(out, {"machine": machine(device), "settings": vars(args), "ratios": rows})
    print(f"Wrote {out}")


if __name__ == "__main__":
    main()
