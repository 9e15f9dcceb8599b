"""Batched volume growth against the authors' per-image, per-axis loop, in one run.

    python benchmarks/volume_speed.py [--images 8] [--axes 50] [--steps 10] [--device auto]

Times, on the same model and images, `volume_growth_reference` (one image at a time, finite
differences, a per-axis loop of model calls, Python Gram-Schmidt), the same reference with all
axes of an image in one model call (the authors' code groups axes in blocks), and the batched
`volume_growth` (images and axes in one model call, QR), for method="finite" and "jvp".
Reports speed-ups as ratios (target: batched >= 10x the per-axis loop at n_axes = 50) and the
largest relative difference of L between reference and batched finite (target: <= 1e-3).
Writes results/benchmarks/volume_speed.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, timed_together, tiny_unet  # noqa: E402

from mempkg.cache import write_json_atomic
from mempkg.models import EpsModel, MLPEps
from mempkg.paths import results_root
from mempkg.profiles import resolve_device
from mempkg.sde import VPSDE
from mempkg.volume import volume_growth, volume_growth_reference


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--axes", type=int, default=50)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    device = resolve_device(args.device)
    sde = VPSDE()
    models = {
        "MLP, D=64 (digits)": EpsModel(MLPEps((1, 8, 8), seed=0), sde),
        "UNet+attention, D=1x8x8 (digits)": EpsModel(tiny_unet(1, 8), sde, time_scale=999),
    }
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(args.images, 1, 8, 8, generator=g) * 2 - 1).to(device)
    kw = dict(n_axes=args.axes, radius=0.05, n_steps=args.steps)
    rows = []
    for name, model in models.items():
        model.to(device)
        ref = volume_growth_reference(model, x, **kw)
        fast = volume_growth(model, x, method="finite", **kw)
        rel = float(((fast[:, -1] - ref[:, -1]).abs() / ref[:, -1].abs().clamp_min(1e-12)).max())
        t = timed_together({
            "reference": lambda: volume_growth_reference(model, x, **kw),
            "reference, axes in one call": lambda: volume_growth_reference(model, x, axes_per_call=args.axes, **kw),
            "finite": lambda: volume_growth(model, x, method="finite", **kw),
            "jvp": lambda: volume_growth(model, x, method="jvp", **kw),
        }, args.repeats, device)
        rows.append({"model": name, "speedup_finite": t["reference"] / t["finite"],
                     "speedup_finite_vs_blocked": t["reference, axes in one call"] / t["finite"],
                     "speedup_jvp": t["reference"] / t["jvp"], "max_rel_diff_L": rel,
                     "images_per_second_finite": args.images / t["finite"]})

    print(f"Volume growth, {args.images} images, n_axes={args.axes}, n_steps={args.steps} ({machine(device)})\n")
    print("| model | batched finite vs per-axis loop | batched finite vs axes-in-one-call loop "
          "| batched jvp vs per-axis loop | max rel. diff. of L |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['speedup_finite']:.1f}x | {r['speedup_finite_vs_blocked']:.1f}x "
              f"| {r['speedup_jvp']:.1f}x | {r['max_rel_diff_L']:.1e} |")
    out = results_root() / "benchmarks" / "volume_speed.json"
    write_json_atomic(out, {"machine": machine(device), "settings": vars(args), "rows": rows})
    print(f"\nWrote {out}")


if __name__ == "__main__":
    main()
