"""What the quick profile's training buys: how much chapter 02's overfit model copies after shorter or cheaper training.

    python benchmarks/memorization_budget.py [--parallel 2] [--n-samples 500] [--record]

Chapter 02's quick model -- the `digits` UNet on the VP-SDE, trained on the first 64 digits and their flips
(128 images) with the full batch, lr 1e-3, 100 warm-up steps and a cosine decay, 3000 steps -- is trained again
under the settings that would make it cheaper: fewer steps, a larger learning rate, a smaller batch, a smaller
network. Each setting draws `n_samples` samples (200 Euler-Maruyama steps, as the chapter) and counts the samples
that copy a training image (d1 < d2 / 3): the copy rate the chapter's memorization findings rest on. Chapters 03
and 05 train the same network on the same kind of data for as long, which is why their training is not cut either.

Every setting runs in its own process with one thread, `--parallel` of them at a time (on 2 cores, two one-thread
processes give the most training per second; their training seconds are comparable with each other, not with a
two-thread run). Writes results/benchmarks/memorization_budget.json; with `--record`, also
book/measurements/memorization-budget.json, which the performance page shows (machine, date and commit named).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# (label, batch size (None: the full 128), steps, learning rate, channels of the two UNet levels)
SETTINGS = (
    ("the quick profile's", None, 3000, 1e-3, (32, 64)),
    ("2/3 of the steps", None, 2000, 1e-3, (32, 64)),
    ("1/3 of the steps", None, 1000, 1e-3, (32, 64)),
    ("1/2 of the steps, 3x the learning rate", None, 1500, 3e-3, (32, 64)),
    ("batch 32 (1/4 of the images per step)", 32, 3000, 1e-3, (32, 64)),
    ("half the channels (1/4 of the parameters)", None, 3000, 1e-3, (16, 32)),
)


def one(batch, steps: int, lr: float, channels, n_samples: int, sample_steps: int) -> dict:
    """Train chapter 02's overfit model under one setting and measure its copy rate."""
    import torch

    from mempkg.core.schedules import VPSDE
    from mempkg.data.images import overfit_subset
    from mempkg.estimators.memorization import copies
    from mempkg.models.adapters import image_score_model
    from mempkg.models.networks import unet_eps
    from mempkg.models.sampling import sample
    from mempkg.models.train import train_dsm

    sub = overfit_subset("digits", 64, download=False)
    sde = VPSDE()
    groups = max(1, min(8, channels[0] // 4))
    net = image_score_model(unet_eps(sub.trained.image_shape, "digits", seed=0,
                                     block_out_channels=tuple(channels), norm_num_groups=groups), sde)
    start = time.perf_counter()
    result = train_dsm(net, sde, sub.trained.x, steps, lr=lr, warmup=100, batch_size=batch, ema_decay=0.999,
                       seed=0, progress=False)
    seconds = time.perf_counter() - start
    net.eval()
    gen = sample(net, n_samples, sub.trained.image_shape, n_steps=sample_steps, seed=0, progress=False)
    is_copy = copies(gen, sub.trained.x)[0]
    return {"train_seconds": round(seconds, 1), "steps_per_second": round(steps / seconds, 2),
            "final_loss": float(sum(result.losses[-100:]) / len(result.losses[-100:])),
            "copy_rate": float(is_copy.float().mean()), "n_parameters": sum(p.numel() for p in net.parameters()),
            "threads": torch.get_num_threads()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parallel", type=int, default=2, help="settings trained at once, one thread each")
    ap.add_argument("--n-samples", type=int, default=500)
    ap.add_argument("--sample-steps", type=int, default=200)
    ap.add_argument("--only", type=int, nargs="*", help="indices into the settings (default: all)")
    ap.add_argument("--record", action="store_true", help="also write book/measurements/memorization-budget.json")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        batch, steps, lr, channels = json.loads(args.child)
        print(json.dumps(one(batch, steps, lr, channels, args.n_samples, args.sample_steps)))
        return 0
    if args.parallel < 1:
        ap.error("--parallel must be at least 1")
    chosen = [SETTINGS[i] for i in (args.only if args.only is not None else range(len(SETTINGS)))]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    rows, running, queue = [], [], list(chosen)
    start = time.perf_counter()
    while queue or running:
        while queue and len(running) < args.parallel:
            label, batch, steps, lr, channels = queue.pop(0)
            cmd = [sys.executable, __file__, "--n-samples", str(args.n_samples), "--sample-steps",
                   str(args.sample_steps), "--child", json.dumps([batch, steps, lr, list(channels)])]
            running.append(((label, batch, steps, lr, channels),
                            subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)))
        done = next((r for r in running if r[1].poll() is not None), None)
        if done is None:
            time.sleep(1.0)
            continue
        running.remove(done)
        (label, batch, steps, lr, channels), proc = done
        out, _ = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"the setting {label!r} failed (exit {proc.returncode}); its error is above.")
        row = {"setting": label, "batch_size": batch or 128, "steps": steps, "lr": lr, "channels": list(channels),
               **json.loads(out.strip().splitlines()[-1])}
        rows.append(row)
        print(f"{label}: copy rate {row['copy_rate']:.3f}, {row['train_seconds'] / 60:.1f} min of training", flush=True)
    order = {s[0]: i for i, s in enumerate(SETTINGS)}
    rows.sort(key=lambda r: order[r["setting"]])

    import platform

    import torch

    from mempkg.book.paths import results_root
    from mempkg.book.perf import cpu_name
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip() or None
    record = {"date": time.strftime("%Y-%m-%d"), "commit": commit,
              "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "system": f"{platform.system()} "
                          f"{platform.machine()}", "torch": torch.__version__},
              "parallel": args.parallel, "n_samples": args.n_samples, "sample_steps": args.sample_steps,
              "wall_seconds": round(time.perf_counter() - start, 1), "rows": rows}
    paths = [results_root() / "benchmarks" / "memorization_budget.json"]
    if args.record:
        paths.append(ROOT / "book" / "measurements" / "memorization-budget.json")
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=1) + "\n")
        print(f"Written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
