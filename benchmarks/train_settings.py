"""Training speed of the book's digits UNet on a CPU under the settings issue 16 weighs, in one run.

    python benchmarks/train_settings.py [--batch 128] [--steps 60] [--warmup 10]

One denoising training step (forward, backward, Adam) of the `digits` UNet preset on a batch of 8x8 images,
as chapters 02, 03 and 05 train it, timed under: torch's default threads; one thread; channels_last memory
format; and two one-thread processes at once (the throughput of training two models side by side, as the
role swap and the overfit model of chapter 02 could be). Prints steps per second and each setting's ratio to
the default, measured in this run. Writes results/benchmarks/train_settings.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import torch

from mempkg.models.networks import unet_eps


def steps_per_second(batch: int, steps: int, warmup: int, threads: int | None, channels_last: bool) -> float:
    if threads is not None:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = unet_eps((1, 8, 8), "digits", seed=0)
    x = torch.randn(batch, 1, 8, 8)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    t = torch.rand(batch) * 999

    def step():
        eps = torch.randn_like(x)
        loss = (net(x + eps, t).sample - eps).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)          # threads, channels_last
    args = ap.parse_args()
    if args.child:
        print(steps_per_second(args.batch, args.steps, args.warmup, int(args.child[0]), args.child[1] == "1"))
        return

    def child(threads: int, cl: bool = False):
        return subprocess.Popen([sys.executable, __file__, "--batch", str(args.batch), "--steps", str(args.steps),
                                 "--warmup", str(args.warmup), "--child", str(threads), "1" if cl else "0"],
                                stdout=subprocess.PIPE, text=True, env=dict(os.environ, OMP_NUM_THREADS=str(threads)))

    def one(threads: int, cl: bool = False) -> float:
        return float(child(threads, cl).communicate()[0])

    default = os.cpu_count() or 1
    out = {"cores": os.cpu_count(), "batch": args.batch, "torch": torch.__version__}
    out["default_threads"] = one(default)
    out["one_thread"] = one(1)
    out["channels_last"] = one(default, cl=True)
    pair = [child(1), child(1)]
    out["two_one_thread_processes_total"] = sum(float(p.communicate()[0]) for p in pair)
    out["ratios_to_default"] = {k: out[k] / out["default_threads"] for k in
                                ("one_thread", "channels_last", "two_one_thread_processes_total")}
    print(json.dumps(out, indent=1))
    from mempkg.book.paths import results_root
    path = results_root() / "benchmarks" / "train_settings.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
