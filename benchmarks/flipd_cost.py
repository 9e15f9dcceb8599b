"""FLIPD's cost per image as a multiple of one forward pass of the same model at the same batch.

    python benchmarks/flipd_cost.py [--batch 64] [--repeats 5] [--device auto]

For each model, one run times (median of ``repeats`` round-robin rounds) a forward pass of the
score on B images and FLIPD on the same B images with 1 Hutchinson probe and with the exact trace
(D <= 64), for forward-mode (jvp) and reverse-mode (vjp) products, and FLIPD's physical limit per
probe (one forward pass of the score with gradients and one VJP through it, nothing else). Only
ratios are reported: seconds depend on the machine, ratios much less. Target (foundation issue):
1 probe <= 4 forward passes. The measuring is mempkg.studies.performance.estimator_costs.
Writes ``results/benchmarks/flipd_cost.json``.
"""

from __future__ import annotations

import argparse

from mempkg.book.paths import results_root
from mempkg.core.devices import resolve_device
from mempkg.core.files import write_json_atomic
from mempkg.studies import performance


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--models", nargs="+", default=["mlp_2", "unet_1x8x8", "unet_3x32x32"], choices=list(performance.MODELS))
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    out = performance.estimator_costs(args.models, args.batch, estimators=("flipd", "flipd_exact"), repeats=args.repeats,
                               device=resolve_device(args.device))
    out["rows"] = [dict(r, **{k.removeprefix("FLIPD, "): v for k, v in r["costs"].items()}) for r in out["rows"]]

    cols = ["1 probe, jvp", "1 probe, vjp", "exact, jvp", "exact, vjp", performance.FLIPD_LIMIT]
    print(f"FLIPD cost per image in forward passes of the same model at batch {args.batch} ({out['machine']})\n")
    print("| model | D | " + " | ".join(cols) + " |")
    print("|---|---|" + "---|" * len(cols))
    for r in out["rows"]:
        cells = [f"{r[c]:.2f}" if c in r else "-" for c in cols]
        print(f"| {r['model']} | {r['D']} | " + " | ".join(cells) + " |")
    best = min(min(r["1 probe, jvp"], r["1 probe, vjp"]) for r in out["rows"])
    worst = max(min(r["1 probe, jvp"], r["1 probe, vjp"]) for r in out["rows"])
    print(f"\n1 probe with the faster method: {best:.2f}-{worst:.2f} forward passes (target <= 4).")
    per_limit = [r["1 probe, vjp"] / r[performance.FLIPD_LIMIT] for r in out["rows"]]
    print(f"1 probe by vjp / its limit (one forward pass and one VJP): {min(per_limit):.2f}-{max(per_limit):.2f}.")
    path = write_json_atomic(results_root() / "benchmarks" / "flipd_cost.json", out)
    print(f"Wrote {path}")


if __name__ == "__main__":
    main()
