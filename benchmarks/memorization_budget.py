"""What chapter 02's training buys: how much its overfit model copies after shorter or cheaper training.

    python benchmarks/memorization_budget.py [--parallel 2] [--n-samples 500] [--only I ...] [--record]

Chapter 02's model -- the `digits` UNet on the VP-SDE, trained on the first 64 digits and their flips (128
images) with the full batch, 100 warm-up steps and a cosine decay -- is trained again under each setting of
SETTINGS: the reference (3000 steps at lr 1e-3, the authors' uniform training times; the quick profile until
December 2026), and settings that would make it cheaper: fewer steps, a larger learning rate, a smaller batch, a
smaller network, log-uniform training times. Each setting draws `n_samples` samples (200 Euler-Maruyama steps,
as the chapter) and counts the samples that copy a training image (d1 < d2 / 3): the copy rate the chapter's
memorization findings rest on. The record also names the setting the quick profile uses now.

Every setting runs in its own process with one thread, `--parallel` of them at a time (on 2 cores, two one-thread
processes give the most training per second; their training seconds are comparable with each other, not with a
two-thread run). Writes results/benchmarks/memorization_budget.json; with `--record`, also
book/measurements/memorization-budget.json, which the performance page shows. With `--only`, the settings run
replace theirs in the record (a row is known by its settings, not its label) and the other rows are kept; each
row names its own date and commit, and a record of another machine is refused.
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
RECORD = ROOT / "book" / "measurements" / "memorization-budget.json"

# (label, batch size (None: the full 128), steps, learning rate, channels of the two UNet levels, training times)
SETTINGS = (
    ("the reference: 3000 steps, uniform times", None, 3000, 1e-3, (32, 64), "uniform"),
    ("2/3 of the steps", None, 2000, 1e-3, (32, 64), "uniform"),
    ("1/3 of the steps", None, 1000, 1e-3, (32, 64), "uniform"),
    ("1/2 of the steps, 3x the learning rate", None, 1500, 3e-3, (32, 64), "uniform"),
    ("batch 32 (1/4 of the images per step)", 32, 3000, 1e-3, (32, 64), "uniform"),
    ("half the channels (1/4 of the parameters)", None, 3000, 1e-3, (16, 32), "uniform"),
    ("1/2 of the steps, log-uniform times", None, 1500, 1e-3, (32, 64), "log-uniform"),
    ("1/2 of the steps, 2x the learning rate, log-uniform times", None, 1500, 2e-3, (32, 64), "log-uniform"),
    ("0.4 of the steps, 2x the learning rate, log-uniform times", None, 1200, 2e-3, (32, 64), "log-uniform"),
    ("1/3 of the steps, 3x the learning rate, log-uniform times", None, 1000, 3e-3, (32, 64), "log-uniform"),
)


def profile_setting() -> dict:
    """The setting chapter 02's quick profile trains with now (from mempkg's profiles)."""
    from mempkg.book.profiles import CHAPTERS

    q = CHAPTERS["volume_growth"]["quick"]          # the `digits` preset's channels: the profile does not set them
    return {"batch_size": q["batch_size"] or 128, "steps": q["train_steps"], "lr": q["lr"], "channels": [32, 64],
            "t_sampling": q["t_sampling"]}


def setting_row(setting) -> dict:
    """A SETTINGS entry as the settings part of a record row."""
    label, batch, steps, lr, channels, t_sampling = setting
    return {"setting": label, "batch_size": batch or 128, "steps": steps, "lr": lr, "channels": list(channels),
            "t_sampling": t_sampling}


def one(batch, steps: int, lr: float, channels, n_samples: int, sample_steps: int,
        t_sampling: str = "uniform") -> dict:
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
                       t_sampling=t_sampling, seed=0, progress=False)
    seconds = time.perf_counter() - start
    net.eval()
    gen = sample(net, n_samples, sub.trained.image_shape, n_steps=sample_steps, seed=0, progress=False)
    is_copy = copies(gen, sub.trained.x)[0]
    return {"train_seconds": round(seconds, 1), "steps_per_second": round(steps / seconds, 2),
            "final_loss": float(sum(result.losses[-100:]) / len(result.losses[-100:])),
            "copy_rate": float(is_copy.float().mean()), "n_parameters": sum(p.numel() for p in net.parameters()),
            "threads": torch.get_num_threads()}


def merged(old: dict | None, new: dict) -> dict:
    """``new``'s rows over ``old``'s, a row known by its settings; rows in SETTINGS order, labelled from SETTINGS.

    Refuses (SystemExit) an ``old`` record of another machine or other sampling settings: its training seconds
    and copy rates would not compare with the new rows'."""
    from mempkg.book.perf import budget_row_key

    if old is None:
        return new
    same = ("machine", "parallel", "n_samples", "sample_steps")
    diff = [k for k in same if old.get(k) != new.get(k)]
    if diff:
        raise SystemExit(f"{RECORD} was measured with other {', '.join(diff)} ({', '.join(repr(old.get(k)) for k in diff)}"
                         f" against {', '.join(repr(new.get(k)) for k in diff)}); run every setting (no --only) "
                         "to replace it.")
    dated = [{"t_sampling": "uniform", "date": old["date"], "commit": old.get("commit"), **r} for r in old["rows"]]
    by_key = {budget_row_key(r): r for r in dated + new["rows"]}                # a new row replaces an old one
    rows = []
    for setting in SETTINGS:
        r = by_key.get(budget_row_key(setting_row(setting)))
        if r is not None:
            rows.append(dict(r, setting=setting[0]))
    return dict(new, wall_seconds=None, rows=rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parallel", type=int, default=2, help="settings trained at once, one thread each")
    ap.add_argument("--n-samples", type=int, default=500)
    ap.add_argument("--sample-steps", type=int, default=200)
    ap.add_argument("--only", type=int, nargs="*", help="indices into the settings (default: all); with --record, "
                    "the other rows of the record are kept")
    ap.add_argument("--record", action="store_true", help=f"also write {RECORD.relative_to(ROOT)}")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        batch, steps, lr, channels, t_sampling = json.loads(args.child)
        print(json.dumps(one(batch, steps, lr, channels, args.n_samples, args.sample_steps, t_sampling)))
        return 0
    if args.parallel < 1:
        ap.error("--parallel must be at least 1")
    if args.only is not None and any(not 0 <= i < len(SETTINGS) for i in args.only):
        ap.error(f"--only takes indices from 0 to {len(SETTINGS) - 1}")

    from mempkg.book.paths import results_root
    from mempkg.book.perf import git_commit, machine_record
    from mempkg.core.files import write_json_atomic
    commit = git_commit(ROOT)
    date = time.strftime("%Y-%m-%d")
    # the children run one thread each: the parent's threads are not theirs
    machine = {k: v for k, v in machine_record().items() if k in ("cpu", "cores", "system", "torch")}
    old = json.loads(RECORD.read_text()) if args.record and args.only is not None and RECORD.is_file() else None
    if old is not None:                      # refuse a merge that cannot be made before training anything
        merged(old, {"machine": machine, "parallel": args.parallel, "n_samples": args.n_samples,
                     "sample_steps": args.sample_steps, "rows": []})

    chosen = [SETTINGS[i] for i in (args.only if args.only is not None else range(len(SETTINGS)))]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    rows, running, queue = [], [], list(chosen)
    start = time.perf_counter()
    while queue or running:
        while queue and len(running) < args.parallel:
            label, batch, steps, lr, channels, t_sampling = queue.pop(0)
            cmd = [sys.executable, __file__, "--n-samples", str(args.n_samples), "--sample-steps",
                   str(args.sample_steps), "--child", json.dumps([batch, steps, lr, list(channels), t_sampling])]
            running.append(((label, batch, steps, lr, channels, t_sampling),
                            subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)))
        done = next((r for r in running if r[1].poll() is not None), None)
        if done is None:
            time.sleep(1.0)
            continue
        running.remove(done)
        (label, batch, steps, lr, channels, t_sampling), proc = done
        out, _ = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"the setting {label!r} failed (exit {proc.returncode}); its error is above.")
        row = {**setting_row((label, batch, steps, lr, channels, t_sampling)), "date": date, "commit": commit,
               **json.loads(out.strip().splitlines()[-1])}
        rows.append(row)
        print(f"{label}: copy rate {row['copy_rate']:.3f}, {row['train_seconds'] / 60:.1f} min of training", flush=True)
    order = {s[0]: i for i, s in enumerate(SETTINGS)}
    rows.sort(key=lambda r: order[r["setting"]])
    record = {"date": date, "commit": commit, "machine": machine, "parallel": args.parallel,
              "n_samples": args.n_samples, "sample_steps": args.sample_steps, "profile_setting": profile_setting(),
              "wall_seconds": round(time.perf_counter() - start, 1), "rows": rows}
    (results_root() / "benchmarks").mkdir(parents=True, exist_ok=True)
    write_json_atomic(results_root() / "benchmarks" / "memorization_budget.json", record)
    if args.record:
        RECORD.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(RECORD, merged(old, record))
        print(f"Written: {RECORD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
