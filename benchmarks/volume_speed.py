"""Batched volume growth against the authors' per-image, per-axis loop, in one run.

    python benchmarks/volume_speed.py [--images 8] [--axes 50] [--steps 10] [--repeats 3] [--device auto]

Times, on the same model and images, `volume_growth_reference` (one image at a time, finite
differences, a per-axis loop of model calls, Python Gram-Schmidt), the same reference with all
axes of an image in one model call (the authors' code groups axes in blocks), and the batched
`volume_growth` (images and axes in one model call, QR), for method="finite" and "jvp".
Reports speed-ups as ratios (target: batched >= 10x the per-axis loop at n_axes = 50) and the
largest relative difference of L between reference and batched finite (target: <= 1e-3).
The measuring is mempkg.perf.volume_speedup. Writes results/benchmarks/volume_speed.json.
"""

from __future__ import annotations

import argparse

from mempkg import perf
from mempkg.cache import write_json_atomic
from mempkg.paths import results_root
from mempkg.profiles import resolve_device


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--axes", type=int, default=50)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--models", nargs="+", default=["mlp_64", "unet_1x8x8"], choices=list(perf.MODELS))
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    out = perf.volume_speedup(args.models, args.images, args.axes, args.steps, args.repeats,
                              device=resolve_device(args.device))

    print(f"Volume growth, {args.images} images, n_axes={args.axes}, n_steps={args.steps} ({out['machine']})\n")
    print("| model | batched finite vs per-axis loop | batched finite vs axes-in-one-call loop "
          "| batched jvp vs per-axis loop | max rel. diff. of L |")
    print("|---|---|---|---|---|")
    for r in out["rows"]:
        print(f"| {r['model']} | {r['speedup_finite']:.1f}x | {r['speedup_finite_vs_blocked']:.1f}x "
              f"| {r['speedup_jvp']:.1f}x | {r['max_rel_diff_L']:.1e} |")
    path = write_json_atomic(results_root() / "benchmarks" / "volume_speed.json", out)
    print(f"\nWrote {path}")


if __name__ == "__main__":
    main()
