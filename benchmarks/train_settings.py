"""Training speed of the book's digits UNet on a CPU under the settings issue 16 weighs, in one run.

    python benchmarks/train_settings.py [--batch 128] [--steps 60] [--warmup 10] [--rounds 3]

One denoising training step (forward, backward, Adam) of the `digits` UNet preset on a batch of 8x8 images,
as chapters 02, 03 and 05 train it, timed under: torch's default threads; one thread; at one thread (as
`make notebooks` runs chapters on 2 cores), channels_last memory format, bfloat16 autocast (the forward pass in
bfloat16 where the CPU supports it) and `torch.compile` of the network (its compilation not timed); and two
one-thread processes at once (the throughput of training two models side by side, as `make notebooks` runs
chapters). Every setting runs once per round in its own process, one after another, for ``--rounds`` rounds (the
machine's speed drifts from one minute to the next by as much as some settings change it). Prints each
setting's median steps per second and the median of its per-round ratios to the default threads or, for the modes,
to one thread; the record keeps every round. Writes results/benchmarks/train_settings.json;
with `--record`, also book/measurements/train-settings.json (with the machine, date and commit), which the
performance page shows.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from mempkg.book.perf import TRAIN_MODES as MODES, training_steps_per_second


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3, help="times every setting is timed, round-robin")
    ap.add_argument("--modes", default=",".join(MODES),
                    help=f"comma-separated settings timed at one thread (default: all of {','.join(MODES)}; "
                         "plain, the baseline of the others, always runs)")
    ap.add_argument("--record", action="store_true", help="also write book/measurements/train-settings.json")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)          # threads, mode
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error(f"--rounds must be at least 1, got {args.rounds}")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        ap.error(f"--modes: {', '.join(unknown)} not among {', '.join(MODES)}")
    modes = [m for m in MODES[1:] if m in modes]
    if args.child:
        print(training_steps_per_second(args.batch, args.steps, args.warmup, int(args.child[0]), args.child[1]))
        return

    def child(threads: int, mode: str = "plain"):
        return subprocess.Popen([sys.executable, __file__, "--batch", str(args.batch), "--steps", str(args.steps),
                                 "--warmup", str(args.warmup), "--child", str(threads), mode],
                                stdout=subprocess.PIPE, text=True, env=dict(os.environ, OMP_NUM_THREADS=str(threads)))

    def one(threads: int, mode: str = "plain") -> float:
        return float(child(threads, mode).communicate()[0].strip().splitlines()[-1])

    default = os.cpu_count() or 1
    keys = ("default_threads", "one_thread", *modes, "two_one_thread_processes_total")
    rounds = {k: [] for k in keys}
    for r in range(args.rounds):            # every setting once per round, so a drift of the machine hits all alike
        rounds["default_threads"].append(one(default))
        rounds["one_thread"].append(one(1))
        for mode in modes:                  # at one thread, as `make notebooks` runs the chapters on 2 cores
            rounds[mode].append(one(1, mode))
        pair = [child(1), child(1)]
        rounds["two_one_thread_processes_total"].append(sum(float(p.communicate()[0]) for p in pair))
        print(f"round {r + 1} of {args.rounds}: " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in rounds.items()),
              file=sys.stderr, flush=True)
    out = {"cores": os.cpu_count(), "batch": args.batch, "torch": torch.__version__, "modes_threads": 1,
           "n_rounds": args.rounds, "rounds": rounds}
    out.update({k: statistics.median(v) for k, v in rounds.items()})

    def paired(key: str, against: str) -> float:        # the median of the per-round ratios
        return statistics.median(x / y for x, y in zip(rounds[key], rounds[against]))

    out["ratios_to_default"] = {k: paired(k, "default_threads") for k in
                                ("one_thread", "two_one_thread_processes_total")}
    out["ratios_to_one_thread"] = {k: paired(k, "one_thread") for k in modes}
    print(json.dumps(out, indent=1))
    from mempkg.book.paths import results_root
    from mempkg.book.perf import git_commit, machine_record
    from mempkg.core.files import write_json_atomic
    path = results_root() / "benchmarks" / "train_settings.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, out)
    if args.record:
        root = Path(__file__).resolve().parents[1]
        machine = {k: v for k, v in machine_record().items() if k in ("cpu", "cores", "system", "torch")}
        write_json_atomic(root / "book" / "measurements" / "train-settings.json",
                          dict(out, date=time.strftime("%Y-%m-%d"), commit=git_commit(root), machine=machine,
                               steps=args.steps, warmup=args.warmup))
        print("Written: book/measurements/train-settings.json")


if __name__ == "__main__":
    main()
