"""Models and timing shared by the benchmark scripts."""

from __future__ import annotations

import os
import platform
import statistics
import time

import torch


def tiny_unet(channels: int, size: int, seed: int = 0):
    """A small diffusers UNet2DModel with attention (the shape of the digits/CIFAR models)."""
    from diffusers import UNet2DModel

    torch.manual_seed(seed)
    return UNet2DModel(sample_size=size, in_channels=channels, out_channels=channels,
                       block_out_channels=(32, 64), down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                       up_block_types=("AttnUpBlock2D", "UpBlock2D"), layers_per_block=1,
                       norm_num_groups=8, attention_head_dim=8).eval()


def clock(fn, repeats: int, device: str) -> float:
    """Median seconds of ``fn`` over ``repeats`` calls after one warm-up call."""
    return timed_together({"fn": fn}, repeats, device)["fn"]


def timed_together(fns: dict, repeats: int, device: str) -> dict:
    """Median seconds of each function, timed round-robin so that drifts in machine load hit all alike."""
    for fn in fns.values():
        fn()                                         # warm-up (first call pays for allocations)
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t = time.perf_counter()
            fn()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def machine(device: str) -> str:
    return (f"{platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, "
            f"torch {torch.__version__}, device {device}")
