"""FLIPD's cost per image as a multiple of one forward pass of the same model at the same batch.

    python benchmarks/flipd_cost.py [--batch 64] [--repeats 5] [--device auto]

For each model, one run times (median of ``repeats``) a forward pass of the score on B images
and FLIPD on the same B images with 1 Hutchinson probe and with the exact trace, for
forward-mode (jvp) and reverse-mode (vjp) products. Only ratios are reported: seconds depend on
the machine, ratios much less. Target (foundation issue): 1 probe <= 4 forward passes.
Writes ``results/benchmarks/flipd_cost.json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine as machine_info, timed_together, tiny_unet  # noqa: E402

from mempkg.cache import write_json_atomic
from mempkg.lid import flipd
from mempkg.models import EpsModel, MLPEps
from mempkg.paths import results_root
from mempkg.profiles import resolve_device
from mempkg.sde import VPSDE


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    device = resolve_device(args.device)
    torch.manual_seed(0)
    sde = VPSDE()
    models = {
        "MLP, D=2 (von Mises)": (EpsModel(MLPEps(2, seed=0), sde), (2,), True),
        "UNet+attention, D=1x8x8 (digits)": (EpsModel(tiny_unet(1, 8), sde, time_scale=999), (1, 8, 8), True),
        "UNet+attention, D=3x32x32 (CIFAR)": (EpsModel(tiny_unet(3, 32), sde, time_scale=999), (3, 32, 32), False),
    }
    rows = []
    for name, (model, shape, do_exact) in models.items():
        model.to(device)
        x = torch.randn(args.batch, *shape, device=device)
        def forward():
            with torch.no_grad():
                model.score(x, 0.05)

        fns = {"forward": forward}
        for method in ("jvp", "vjp"):
            fns[f"1 probe, {method}"] = lambda m=method: flipd(model, x, 0.05, n_probes=1, method=m)
            if do_exact:
                fns[f"exact, {method}"] = lambda m=method: flipd(model, x, 0.05, method=m, max_batch=1024)
        t = timed_together(fns, args.repeats, device)
        row = {"model": name, "D": int(x[0].numel()), "batch": args.batch, "forward_seconds": t["forward"]}
        row.update({k: v / t["forward"] for k, v in t.items() if k != "forward"})
        rows.append(row)

    machine = machine_info(device)
    cols = ["1 probe, jvp", "1 probe, vjp", "exact, jvp", "exact, vjp"]
    print(f"FLIPD cost per image in forward passes of the same model at batch {args.batch} ({machine})\n")
    print("| model | D | " + " | ".join(cols) + " |")
    print("|---|---|" + "---|" * len(cols))
    for r in rows:
        cells = [f"{r[c]:.2f}" if c in r else "-" for c in cols]
        print(f"| {r['model']} | {r['D']} | " + " | ".join(cells) + " |")
    best = min(min(r["1 probe, jvp"], r["1 probe, vjp"]) for r in rows)
    worst = max(min(r["1 probe, jvp"], r["1 probe, vjp"]) for r in rows)
    print(f"\n1 probe with the faster method: {best:.2f}-{worst:.2f} forward passes (target <= 4).")
    out = results_root() / "benchmarks" / "flipd_cost.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out, {"machine": machine, "rows": rows})
    print(f"Wrote {out}")


if __name__ == "__main__":
    main()
