"""What the book's estimators cost, as ratios measured in one run.

Seconds depend on the machine and on whatever else it runs; a ratio of two timings taken
side by side depends on both much less. Every function here therefore times the things it
compares *together*: one warm-up call of each, then ``repeats`` rounds in which each is called
once in turn (round-robin, so that a drift in the machine's load hits all alike), and the median
of each one's rounds. On CUDA the clock reads after ``torch.cuda.synchronize``. Results are
plain dicts of ratios (seconds beside them, for the record) with :func:`machine`, the
description of what measured them.

* :func:`estimator_costs` -- each estimator's cost per image as a multiple of one forward pass of
  the same model at the same batch (FLIPD, volume growth per axis-step, one-step memorization,
  the CFG norm); :func:`flipd_cost` is its FLIPD part.
* :func:`volume_speedup` -- batched :func:`~mempkg.estimators.volume.volume_growth` against the authors' loop
  (:func:`~mempkg.estimators.volume.volume_growth_reference`, all axes of a step in one call) and against the
  physical limit of finite differences, (N + 1) forward passes per image and Euler step.
* :func:`regimes_cost` -- W and C on a sigma grid (:func:`~mempkg.estimators.regimes.weight_and_coverage`)
  against one distance matrix, against recomputing the distances per sigma, and in float64.
* :func:`regimes_scaling` -- how the cost of W and C grows with the training-set size.

The image models are untrained networks (a cost does not depend on the weights) wrapped in EDM's
preconditioning (:class:`~mempkg.models.edm.EDMPrecond`), so that one object is both a score model
(FLIPD, volume growth) and a denoiser (one-step memorization); the wrapper adds a few
element-wise operations to the network's cost. ``benchmarks/*.py`` are command-line wrappers
over these functions; ``notebooks/06_performance.py`` shows them.

Layer: book (imports every layer but the CLI).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import statistics
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode

from ..core.progress import bar
from ..core.schedules import VPSDE
from ..estimators.guidance import cfg_norm
from ..estimators.lid import flipd
from ..estimators.regimes import noise_sweep, squared_distances, weight_and_coverage
from ..estimators.volume import volume_growth, volume_growth_reference
from ..models.adapters import EpsModel, image_score_model
from ..models.edm import EDMPrecond
from ..models.networks import MLPEps, unet_eps
from ..studies.captioned import TinyStableDiffusion

# -- the clock --------------------------------------------------------------------------------------


def _sync(device) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def timed_together(fns: dict[str, Callable[[], object]], repeats: int = 3, device: str = "cpu",
                   warmup: int = 1, min_time: float = 0.1, desc: str = "") -> dict[str, float]:
    """Median seconds of one call of each function over ``repeats`` round-robin rounds, after ``warmup`` calls.

    The warm-up pays for first-call allocations and kernel selection. Round-robin: round r calls every
    function in turn, so a change of the machine's load during the run affects every function alike and
    their ratios stay meaningful. A function faster than ``min_time`` seconds (judged by its last warm-up
    call) is called ceil(min_time / t) times per round and its time divided by that count, as
    ``timeit`` does: sub-millisecond calls are not lost in the clock's and the loop's overhead, and on a
    shared machine a short stretch is no likelier than a long one to fall in a burst of someone else's load.
    On CUDA the device is synchronised before and after each timed stretch.
    """
    if int(repeats) < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats}.")
    if not fns:
        raise ValueError("timed_together needs at least one function to time.")
    number = {k: 1 for k in fns}
    times: dict[str, list[float]] = {k: [] for k in fns}
    rounds = int(warmup) + int(repeats)
    for r in bar(range(rounds), desc=desc or "timing", disable=rounds < 4):
        for k, fn in fns.items():
            _sync(device)
            t = time.perf_counter()
            for _ in range(number[k]):
                fn()
            _sync(device)
            elapsed = (time.perf_counter() - t) / number[k]
            if r >= int(warmup):
                times[k].append(elapsed)
            elif r == int(warmup) - 1 and elapsed < min_time:
                number[k] = math.ceil(min_time / max(elapsed, 1e-7))
    return {k: statistics.median(v) for k, v in times.items()}


def clock(fn: Callable[[], object], repeats: int = 3, device: str = "cpu") -> float:
    """Median seconds of ``fn`` over ``repeats`` calls after one warm-up call."""
    return timed_together({"fn": fn}, repeats, device)["fn"]


# -- what measured it -------------------------------------------------------------------------------

def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo where there is one, else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: str = "cpu") -> str:
    """One line that says what a timing ran on: CPU model, cores, torch threads, torch version, device
    (with the GPU's name on CUDA)."""
    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    cores_txt = f"{cores} cores" if usable == cores else f"{cores} cores ({usable} usable)"
    dev = str(device)
    if dev.startswith("cuda"):
        dev = f"{dev} ({torch.cuda.get_device_name(torch.device(dev))})"
    threads = torch.get_num_threads()
    return (f"{cpu_name()} ({platform.machine()}), {cores_txt}, {threads} torch thread{'s' * (threads != 1)}, "
            f"torch {torch.__version__}, device {dev}")


def machine_record() -> dict:
    """What a recorded measurement ran on, as data: CPU model, cores, system, Python, torch, its threads and
    ``$OMP_NUM_THREADS``."""
    return {"cpu": cpu_name(), "cores": os.cpu_count(), "system": f"{platform.system()} {platform.machine()}",
            "python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}


def git_commit(folder: str | Path) -> Optional[str]:
    """The short commit of the git checkout at ``folder``, or ``None`` outside one (or without git)."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=folder, capture_output=True, text=True)
    except OSError:
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def changed_files(folder: str | Path, old: Optional[str], new: Optional[str],
                  paths: Sequence[str] = ("mempkg", "notebooks")) -> Optional[list[str]]:
    """The files under ``paths`` that differ between commits ``old`` and ``new`` of the checkout at ``folder``
    (sorted; ``[]`` when none), or ``None`` when that cannot be told (a commit unknown, or no git)."""
    if not old or not new:
        return None
    try:
        out = subprocess.run(["git", "diff", "--name-only", old, new, "--", *paths], cwd=folder,
                             capture_output=True, text=True)
    except OSError:
        return None
    return sorted(out.stdout.split()) if out.returncode == 0 else None


# -- how fast the machine trains: the book's own yardstick ----------------------------------------------

TRAIN_MODES = ("plain", "channels_last", "bf16_autocast", "compile")
SPEED_PROBE = "one training step of the digits UNet, a batch of 128 8x8 images with Adam, at one torch thread"


def training_steps_per_second(batch: int = 128, steps: int = 60, warmup: int = 10, threads: Optional[int] = None,
                              mode: str = "plain", preset: str = "digits", count_flops: bool = False):
    """Steps per second of one denoising training step (forward, backward, Adam) of the ``preset`` UNet
    (default ``digits``) on ``batch`` random 8x8 images, as chapters 02, 03 and 05 train it, under ``mode`` (one of
    :data:`TRAIN_MODES`: plain float32, channels_last, bfloat16 autocast of the forward pass, ``torch.compile``
    of the network, compiled during the ``warmup`` steps), with ``threads`` torch threads (``None``: as set).
    With ``count_flops``, returns ``(steps per second, floating-point operations of one step)``, counted by
    torch's FLOP counter on one extra step (convolutions and matrix products, forward and backward)."""
    if mode not in TRAIN_MODES:
        raise ValueError(f"mode {mode!r} is not one of {', '.join(TRAIN_MODES)}")
    if threads is not None:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = unet_eps((1, 8, 8), preset, seed=0)
    x = torch.randn(batch, 1, 8, 8)
    if mode == "channels_last":
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    t = torch.rand(batch) * 999
    f = torch.compile(net) if mode == "compile" else net

    def step():
        eps = torch.randn_like(x)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode == "bf16_autocast"):
            out = f(x + eps, t).sample
        loss = (out.float() - eps).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    rate = steps / (time.perf_counter() - start)
    if not count_flops:
        return rate
    with FlopCounterMode(display=False) as counter:
        step()
    return rate, counter.get_total_flops()


def matmul_gflops(size: int = 1024, repeats: int = 20, threads: Optional[int] = 1) -> float:
    """GFLOP/s of a ``size`` x ``size`` float32 matrix product (2 size^3 operations) with ``threads`` torch threads:
    a reference for how fast this CPU does dense arithmetic through torch's most tuned kernel family (BLAS). It is
    not a hard ceiling: oneDNN's convolutions can beat it, so a step of convolutions can come out above 100% of
    it. The threads are set back afterwards."""
    before = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        g = torch.Generator().manual_seed(0)
        a, b = torch.randn(size, size, generator=g), torch.randn(size, size, generator=g)
        for _ in range(3):
            a @ b
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        return repeats * 2 * size ** 3 / (time.perf_counter() - start) / 1e9
    finally:
        torch.set_num_threads(before)


def training_arithmetic(presets=("digits", "digits_narrow"), batch: int = 128, steps: int = 30,
                        warmup: int = 5) -> dict:
    """How close one training step comes to this machine's dense-arithmetic rate, at one thread: for each UNet preset,
    the GFLOP of one step, its steps per second and the GFLOP/s they make; beside them the GFLOP/s of a
    1024 x 1024 matrix product (:func:`matmul_gflops`). The torch threads are set back afterwards.

    Returns ``{"batch", "matmul_gflops", "presets": {preset: {"gflop_per_step", "parameters", "steps_per_second",
    "gflops"}}}``."""
    before = torch.get_num_threads()
    try:
        out = {"batch": int(batch), "matmul_gflops": matmul_gflops(threads=1), "presets": {}}
        for preset in presets:
            rate, flops = training_steps_per_second(batch, steps, warmup, threads=1, preset=preset, count_flops=True)
            out["presets"][preset] = {
                "gflop_per_step": flops / 1e9, "steps_per_second": rate, "gflops": rate * flops / 1e9,
                "parameters": sum(p.numel() for p in unet_eps((1, 8, 8), preset, seed=0).parameters())}
        return out
    finally:
        torch.set_num_threads(before)


def training_arithmetic_markdown(result: dict, near: float = 0.7) -> str:
    """The sentences of :func:`training_arithmetic`: each preset's arithmetic per step and the rate it reaches, as a
    share of the matrix product's; whether the first preset's step is arithmetic-bound (at least ``near`` of the
    product's rate: then only less arithmetic makes it faster) or loses time elsewhere; and how many times faster
    each other preset steps, against how much less arithmetic it does."""
    mm, rows = result["matmul_gflops"], list(result["presets"].items())
    parts = [f"`{name}` ({r['parameters'] / 1e6:.2f} M parameters): {r['gflop_per_step']:.2f} GFLOP per step at "
             f"batch {result['batch']}, {r['steps_per_second']:.1f} steps/s, so {r['gflops']:.0f} GFLOP/s"
             for name, r in rows]
    text = (f"Measured in this run at one thread: a 1024 x 1024 float32 matrix product runs at {mm:.0f} GFLOP/s. "
            "A training step of the UNet " + "; of ".join(parts) + ". ")
    first, r0 = rows[0]
    if r0["gflops"] >= near * mm:
        text += (f"The `{first}` step does its arithmetic at {100 * r0['gflops'] / mm:.0f}% of the product's rate: "
                 "it is bound by arithmetic, and only less arithmetic can make it much faster. ")
    else:
        text += (f"The `{first}` step does its arithmetic at only {100 * r0['gflops'] / mm:.0f}% of the product's "
                 "rate: time goes to work other than arithmetic (small kernels, memory, Python). ")
    for name, r in rows[1:]:
        text += (f"`{name}` does {r0['gflop_per_step'] / r['gflop_per_step']:.1f}x less arithmetic and steps "
                 f"{r['steps_per_second'] / r0['steps_per_second']:.1f}x as fast. ")
    return text.strip()


def machine_speed(steps: int = 60, warmup: int = 10) -> float:
    """This machine's speed now, as steps per second of :data:`SPEED_PROBE` (10-15 s on 2 cores); the torch
    threads are set back afterwards. Two book timings on machines of the same description (a cloud VM's CPU
    model and cores) can differ widely (book-quick.json: 57 and 42 min for the same chapters' code, on two
    2-core machines on 2026-12-02): this says how much of a difference is the machine."""
    threads = torch.get_num_threads()
    try:
        return training_steps_per_second(128, steps, warmup, threads=1)
    finally:
        torch.set_num_threads(threads)


# the modules whose code the timings measure: the package files under these names
_MEASURED = ("book/perf", "estimators/lid", "estimators/volume", "estimators/regimes", "estimators/guidance",
             "estimators/memorization", "models/edm", "models/adapters", "models/networks", "models/stable_diffusion",
             "core/schedules", "core/tensors", "core/protocol", "studies/captioned")


def code_digest() -> str:
    """16 hex digits of sha256 over the source of the measured modules: a cache key under which
    timings are reused only while the code they timed is unchanged."""
    h = hashlib.sha256()
    package = Path(__file__).parent.parent
    for name in _MEASURED:
        h.update((package / f"{name}.py").read_bytes())
    return h.hexdigest()[:16]


def _stamp(device: str) -> dict:
    return {"machine": machine(device), "measured_at": time.strftime("%Y-%m-%d %H:%M:%S %z")}


# -- the models whose cost is measured ---------------------------------------------------------------

MODELS = {
    "mlp_2": "MLP, D = 2 (von Mises toy)",
    "mlp_64": "MLP, D = 1x8x8",
    "unet_1x8x8": "UNet with attention, D = 1x8x8 (digits preset)",
    "unet_3x32x32": "UNet with attention, D = 3x32x32 (digits preset widths)",
    "ddpm_cifar10": "DDPM CIFAR-10 UNet, D = 3x32x32 (35.7 M parameters)",
    "tiny_sd": "tiny SD stand-in, text-conditional UNet, D = 1x8x8",
}


@dataclass
class BenchModel:
    """A model to time and a batch for it: ``model`` is a score model; ``denoiser(y, sigma)`` is set for
    the EDM-wrapped models and ``cond`` for the text-conditional one."""

    name: str
    label: str
    model: object
    x: Tensor
    cond: Optional[Tensor] = None
    denoiser: Optional[Callable] = None

    @property
    def D(self) -> int:
        return int(self.x[0].numel())


def bench_model(name: str, batch: int, device: str = "cpu", seed: int = 0) -> BenchModel:
    """The model ``name`` (a key of :data:`MODELS`), untrained with seeded weights, in eval mode on
    ``device``, and a seeded batch of ``batch`` inputs in [-1, 1]."""

    if name not in MODELS:
        raise ValueError(f"Unknown benchmark model {name!r}; known: {', '.join(MODELS)}.")
    if int(batch) < 1:
        raise ValueError(f"batch must be a positive integer, got {batch}.")
    g = torch.Generator().manual_seed(int(seed))
    cond = None
    if name == "tiny_sd":
        model = TinyStableDiffusion(seed=seed).to(device).eval()
        shape = model.data_shape
        tokens = torch.randint(1, len(model.vocab), (int(batch), model.vocab.max_len), generator=g)
        with torch.no_grad():
            cond = model.text(tokens.to(device)).detach()
        denoiser = None
    else:
        shape, net = {
            "mlp_2": lambda: ((2,), MLPEps(2, seed=seed)),
            "mlp_64": lambda: ((1, 8, 8), MLPEps((1, 8, 8), seed=seed)),
            "unet_1x8x8": lambda: ((1, 8, 8), unet_eps((1, 8, 8), "digits", seed=seed)),
            "unet_3x32x32": lambda: ((3, 32, 32), unet_eps((3, 32, 32), "digits", seed=seed)),
            "ddpm_cifar10": lambda: ((3, 32, 32), unet_eps((3, 32, 32), "ddpm_cifar10", seed=seed)),
        }[name]()
        model = EDMPrecond(net, sigma_data=0.5).to(device).eval()
        denoiser = model.denoise
    x = (torch.rand(int(batch), *shape, generator=g) * 2 - 1).to(device)
    return BenchModel(name, MODELS[name], model, x, cond, denoiser)


# -- each estimator's cost in forward passes ---------------------------------------------------------

ESTIMATORS = ("flipd", "flipd_exact", "volume", "one_step", "cfg_norm")
FLIPD_LIMIT = "forward + one VJP (FLIPD's limit per probe)"


def _cost_fns(bm: BenchModel, estimators, t0, exact_max_dim, n_axes, n_steps, n_sigmas, n_train, cfg_t0,
              cfg_steps, seed):
    """{label: (function, units per image)}: the forward pass first, then every estimator that applies."""

    model, x, cond = bm.model, bm.x, bm.cond

    def forward():
        with torch.no_grad():
            model.score(x, t0, cond=cond)

    fns = {"forward": (forward, 1)}
    if "flipd" in estimators:
        for m in ("jvp", "vjp"):
            fns[f"FLIPD, 1 probe, {m}"] = (lambda m=m: flipd(model, x, t0, n_probes=1, cond=cond, method=m), 1)
    if "flipd" in estimators:
        # FLIPD's physical limit per probe: one forward pass of the score and one VJP through it,
        # nothing else (no probe drawing, no |s|^2, no bookkeeping)
        g = torch.Generator().manual_seed(int(seed) + 2)
        v = (torch.randint(0, 2, x.shape, generator=g) * 2 - 1).to(x)

        def forward_and_vjp():
            with torch.enable_grad():
                y = x.detach().requires_grad_(True)
                torch.autograd.grad(model.score(y, t0, cond=cond), y, grad_outputs=v)

        fns[FLIPD_LIMIT] = (forward_and_vjp, 1)
    if "flipd_exact" in estimators and bm.D <= int(exact_max_dim):
        for m in ("jvp", "vjp"):
            fns[f"FLIPD, exact, {m}"] = (lambda m=m: flipd(model, x, t0, cond=cond, method=m, max_batch=1024), 1)
    if "volume" in estimators:
        N, K = min(int(n_axes), bm.D), int(n_steps)
        for m in ("finite", "jvp"):
            fns[f"volume growth per axis-step, {m}"] = (
                lambda m=m: volume_growth(model, x, n_axes=N, n_steps=K, method=m, cond=cond, seed=seed), N * K)
    if "one_step" in estimators and bm.denoiser is not None:
        g = torch.Generator().manual_seed(int(seed) + 1)
        train = (torch.rand(int(n_train), *x.shape[1:], generator=g) * 2 - 1).to(x.device)
        sigmas = np.geomspace(0.1, 10.0, int(n_sigmas))
        fns["one-step memorization per sigma"] = (
            lambda: noise_sweep(bm.denoiser, x, train, sigmas, seed=seed, batch=len(x)), int(n_sigmas))
    if "cfg_norm" in estimators and cond is not None:
        fns[f"CFG norm ({int(cfg_steps)} Euler steps)"] = (
            lambda: cfg_norm(model, x, cond, t0=cfg_t0, n_steps=int(cfg_steps), max_batch=len(x)), 1)
    return fns


def estimator_costs(models: Sequence[str] = ("mlp_2", "unet_1x8x8", "unet_3x32x32", "tiny_sd"), batch: int = 64, *,
                    estimators: Sequence[str] = ESTIMATORS, t0: float = 0.05, exact_max_dim: int = 64,
                    n_axes: int = 10, n_steps: int = 2, n_sigmas: int = 2, n_train: int = 1000,
                    cfg_t0: float = 0.01, cfg_steps: int = 3, repeats: int = 3, device: str = "cpu",
                    seed: int = 0) -> dict:
    """Each estimator's cost per image, in forward passes of the same model at the same batch.

    For every model, one round-robin (:func:`timed_together`) times a forward pass (the score of
    ``batch`` inputs at t0, no gradient) and the estimators on the same ``batch`` inputs:

    * FLIPD (:func:`~mempkg.estimators.lid.flipd`) with 1 Hutchinson probe and, when D <= ``exact_max_dim``, the
      exact trace (D products), by forward-mode (jvp) and reverse-mode (vjp) products; and beside it
      FLIPD's physical limit per probe, :data:`FLIPD_LIMIT`: one forward pass of the score with
      gradients and one VJP through it, the least work any implementation of a 1-probe FLIPD does;
    * volume growth (:func:`~mempkg.estimators.volume.volume_growth`) with N = min(n_axes, D) axes and ``n_steps``
      Euler steps, divided by N * n_steps: the cost *per axis-step* (finite differences move N + 1
      points per image per step, so ~(N + 1) / N plus the QR);
    * one-step memorization (:func:`~mempkg.estimators.regimes.noise_sweep`: denoise x + sigma z once and test the
      output for a copy among ``n_train`` training images), divided by ``n_sigmas``: the cost *per sigma*
      (EDM-wrapped models only);
    * the CFG norm (:func:`~mempkg.estimators.guidance.cfg_norm`, ``cfg_steps`` conditional Euler steps to
      ``cfg_t0``, then a conditional and an unconditional prediction: cfg_steps + 2 passes by count;
      text-conditional models only).

    Returns ``{"machine", "measured_at", "settings", "rows"}``; each row holds ``model`` (its label),
    ``name``, ``D``, ``batch``, ``forward_seconds``, ``costs`` {estimator: forward passes per image
    (per axis-step, per sigma)} and ``seconds`` {estimator: median seconds of one call on the batch}.
    """
    unknown = [e for e in estimators if e not in ESTIMATORS]
    if unknown:
        raise ValueError(f"Unknown estimators {unknown}; choose from {ESTIMATORS}.")
    settings = dict(models=list(models), batch=int(batch), estimators=list(estimators), t0=t0,
                    exact_max_dim=int(exact_max_dim), n_axes=int(n_axes), n_steps=int(n_steps),
                    n_sigmas=int(n_sigmas), n_train=int(n_train), cfg_t0=cfg_t0, cfg_steps=int(cfg_steps),
                    repeats=int(repeats), seed=int(seed))
    rows = []
    for name in models:
        bm = bench_model(name, batch, device, seed)
        fns = _cost_fns(bm, estimators, t0, exact_max_dim, n_axes, n_steps, n_sigmas, n_train, cfg_t0,
                        cfg_steps, seed)
        t = timed_together({k: f for k, (f, _) in fns.items()}, repeats, device, desc=name)
        rows.append({"model": bm.label, "name": name, "D": bm.D, "batch": int(batch),
                     "forward_seconds": t["forward"],
                     "costs": {k: t[k] / t["forward"] / units for k, (_, units) in fns.items() if k != "forward"},
                     "seconds": {k: t[k] for k in fns if k != "forward"}})
        del bm
    return dict(_stamp(device), settings=settings, rows=rows)


def flipd_cost(models: Sequence[str] = ("mlp_2", "unet_1x8x8", "unet_3x32x32"), batch: int = 64,
               repeats: int = 5, exact_max_dim: int = 64, t0: float = 0.05, device: str = "cpu") -> dict:
    """FLIPD's part of :func:`estimator_costs`: 1 probe and (D <= exact_max_dim) the exact trace, jvp and
    vjp, and the physical limit :data:`FLIPD_LIMIT`, per image in forward passes; rows flattened to
    ``{"model", "D", "batch", "forward_seconds", "1 probe, jvp", ..., FLIPD_LIMIT}``."""
    out = estimator_costs(models, batch, estimators=("flipd", "flipd_exact"), t0=t0, exact_max_dim=exact_max_dim,
                          repeats=repeats, device=device)
    rows = [dict({k: r[k] for k in ("model", "D", "batch", "forward_seconds")},
                 **{k.removeprefix("FLIPD, "): v for k, v in r["costs"].items()}) for r in out["rows"]]
    return dict(out, rows=rows)


# -- volume growth against the authors' loop and against its physical limit ---------------------------

def _volume_fns(model, x: Tensor, kw: dict) -> dict[str, Callable[[], object]]:
    """The five things :func:`volume_speedup` times on one model and batch ``x`` (``kw``: n_axes, radius,
    n_steps, seed)."""

    N, K = kw["n_axes"], kw["n_steps"]
    one_image = x[:1].repeat_interleave(N + 1, dim=0)          # N + 1 rows: what one image's step moves
    all_images = x.repeat_interleave(N + 1, dim=0)             # B (N + 1) rows

    def limit(batch, calls):
        def passes():
            with torch.no_grad():
                for _ in range(K * calls):
                    model.score(batch, 0.5)        # the cost of a pass does not depend on t
        return passes

    return {"authors": lambda: volume_growth_reference(model, x, **kw),
            "finite": lambda: volume_growth(model, x, method="finite", **kw),
            "jvp": lambda: volume_growth(model, x, method="jvp", **kw),
            "limit, per image": limit(one_image, len(x)),
            "limit, one call": limit(all_images, 1)}


def volume_speedup(models: Sequence[str] = ("mlp_64", "unet_1x8x8"), images: int = 8, axes: int = 50,
                   steps: int = 10, repeats: int = 3, radius: float = 0.05, device: str = "cpu",
                   seed: int = 0) -> dict:
    """Volume growth against the authors' loop and against (N + 1) forward passes per step, in one run per model.

    One round-robin (:func:`timed_together`) times, on the same model, images, axes and steps:

    * ``authors`` -- :func:`~mempkg.estimators.volume.volume_growth_reference`, the authors' loop: one image at a
      time, the centre and all N axis points of a step in one network call, Python Gram-Schmidt;
    * ``finite`` and ``jvp`` -- :func:`~mempkg.estimators.volume.volume_growth` (all images' rows in one call,
      batched QR) by finite differences and by tangent vectors;
    * the physical limit of finite differences: n_steps x (N + 1) forward passes per image and
      nothing else (no Gram-Schmidt, no bookkeeping), batched as the authors batch (``limit, per
      image``: one call of N + 1 rows per image and step) and as :func:`volume_growth` does (``limit,
      one call``: B (N + 1) rows per step). The limit is the faster of the two: which batching is
      faster depends on the network and the device (a large batch of large images can fall out of
      the CPU's caches).

    Rows: ``speedup_finite`` = authors / finite, ``speedup_jvp`` = authors / jvp (above 1: faster
    than the authors' loop), ``finite_per_limit``, ``jvp_per_limit``, ``authors_per_limit`` (each
    time / the limit: 1 is the physical limit), ``max_rel_diff_L`` (largest relative difference of
    the score L between the authors' loop and finite: the two compute the same numbers),
    ``images_per_second_finite``, ``D``, ``seconds``.
    """
    N, K = int(axes), int(steps)
    kw = {"n_axes": N, "radius": radius, "n_steps": K, "seed": seed}
    rows = []
    for name in models:
        bm = bench_model(name, images, device, seed)
        model, x = bm.model, bm.x
        if bm.cond is not None:
            raise ValueError(f"{name} is text-conditional; volume_growth_reference has no condition.")
        if N > bm.D:
            raise ValueError(f"axes={axes} exceeds the dimension D = {bm.D} of {name}.")
        fns = _volume_fns(model, x, kw)
        # the warm-up round, done here because two of its results are the accuracy check
        out = {k: fn() for k, fn in fns.items()}
        ref, fast = out["authors"], out["finite"]
        rel = float(((fast[:, -1] - ref[:, -1]).abs() / ref[:, -1].abs().clamp_min(1e-12)).max())
        t = timed_together(fns, repeats, device, warmup=0, desc=name)
        lim = min(t["limit, per image"], t["limit, one call"])
        rows.append({"model": bm.label, "name": name, "D": bm.D,
                     "speedup_finite": t["authors"] / t["finite"], "speedup_jvp": t["authors"] / t["jvp"],
                     "authors_per_limit": t["authors"] / lim, "finite_per_limit": t["finite"] / lim,
                     "jvp_per_limit": t["jvp"] / lim, "max_rel_diff_L": rel,
                     "images_per_second_finite": int(images) / t["finite"], "seconds": t})
    settings = {"models": list(models), "images": int(images), "axes": N, "steps": K, "repeats": int(repeats),
                "radius": radius, "seed": int(seed)}
    return dict(_stamp(device), settings=settings, rows=rows)


# -- W and C (Dodson et al.) ------------------------------------------------------------------------

def _regimes_data(n_train: int, n_queries: int, dim: int, device: str):
    # seed 1 for the data: weight_and_coverage draws its noise from seed 0, and the same seed would
    # make the noise equal to the training points
    g = torch.Generator().manual_seed(1)
    train = torch.randn(int(n_train), int(dim), generator=g, dtype=torch.float64).to(device)
    held = torch.randn(int(n_queries), int(dim), generator=g, dtype=torch.float64).to(device)
    z = torch.randn(held.shape, generator=g, dtype=torch.float64).to(device)
    return train, held, z


def regimes_cost(train: int = 10_000, queries: int = 1_000, dim: int = 3072, sigmas: int = 64,
                 naive_sigmas: int = 4, repeats: int = 3, device: str = "cpu") -> dict:
    """The cost of W_sigma and C_sigma on a grid of ``sigmas`` values, as a multiple of one distance matrix.

    Times together, on the same random data: (a) one noisy-query-to-train squared-distance matrix
    ``[queries, train]`` (the unavoidable matrix product); (b) :func:`~mempkg.estimators.regimes.weight_and_coverage`
    on the whole grid (distances once per noise draw, reused for every sigma; per-sigma pass in
    float32); (c) the same with the per-sigma pass in float64; then (d) the naive way, recomputing the
    distances and the log-softmax of W for every sigma, on ``naive_sigmas`` sigmas and extrapolated to
    the grid (it does not even compute C). Returns ``{"machine", "measured_at", "settings", "ratios",
    "seconds"}``.
    """

    T, X, Z = _regimes_data(train, queries, dim, device)
    grid = np.geomspace(1e-2, 80, int(sigmas))
    few = grid[: int(naive_sigmas)]

    def naive():
        return [torch.log_softmax(-squared_distances(X + s * Z, T) / (2 * s * s), 1) for s in few]

    t = timed_together({"distance matrix": lambda: squared_distances(X + 0.5 * Z, T),
                        "W and C": lambda: weight_and_coverage(X, T, grid, chunk=256),
                        "W and C, float64": lambda: weight_and_coverage(X, T, grid, chunk=256, precision="float64"),
                        "naive, few sigmas": naive}, repeats, device, desc="W and C")
    t_naive = t["naive, extrapolated"] = t["naive, few sigmas"] / len(few) * len(grid)
    ratios = {"W and C on the grid / one distance matrix": t["W and C"] / t["distance matrix"],
              "W and C, float64 sigma pass / one distance matrix": t["W and C, float64"] / t["distance matrix"],
              "naive (distances per sigma) / one distance matrix": t_naive / t["distance matrix"],
              "speed-up of the one-pass estimator over the naive one": t_naive / t["W and C"],
              "speed-up of W and C with the float32 sigma pass over float64 (whole estimator)": t["W and C, float64"] / t["W and C"]}
    settings = dict(train=int(train), queries=int(queries), dim=int(dim), sigmas=int(sigmas),
                    naive_sigmas=int(naive_sigmas), repeats=int(repeats))
    return dict(_stamp(device), settings=settings, ratios=ratios, seconds=t)


def regimes_scaling(train_sizes: Sequence[int] = (1000, 2000, 5000, 10_000), queries: int = 1_000, dim: int = 3072,
                    sigmas: int = 64, repeats: int = 3, device: str = "cpu") -> dict:
    """How the cost of W and C grows with the training-set size N, at fixed queries, dimension and grid.

    One round-robin times, for every N, one distance matrix ``[queries, N]`` and
    :func:`~mempkg.estimators.regimes.weight_and_coverage` on the grid (training sets are the first N of one draw).
    Rows: ``N``, ``wc_per_distance`` (W and C / one distance matrix at that N), ``wc_growth`` and
    ``distance_growth`` (cost at N / cost at the smallest N), ``N_growth`` (N / smallest N), and seconds.
    """

    sizes = sorted(int(n) for n in train_sizes)
    if not sizes or sizes[0] < 1:
        raise ValueError(f"train_sizes must be positive integers, got {list(train_sizes)}.")
    T, X, Z = _regimes_data(sizes[-1], queries, dim, device)
    grid = np.geomspace(1e-2, 80, int(sigmas))
    fns = {}
    for n in sizes:
        fns[f"distance {n}"] = lambda n=n: squared_distances(X + 0.5 * Z, T[:n])
        fns[f"W and C {n}"] = lambda n=n: weight_and_coverage(X, T[:n], grid, chunk=256)
    t = timed_together(fns, repeats, device, desc="W and C vs N")
    n0 = sizes[0]
    rows = [{"N": n, "distance_seconds": t[f"distance {n}"], "wc_seconds": t[f"W and C {n}"],
             "wc_per_distance": t[f"W and C {n}"] / t[f"distance {n}"],
             "wc_growth": t[f"W and C {n}"] / t[f"W and C {n0}"],
             "distance_growth": t[f"distance {n}"] / t[f"distance {n0}"], "N_growth": n / n0} for n in sizes]
    settings = dict(train_sizes=sizes, queries=int(queries), dim=int(dim), sigmas=int(sigmas), repeats=int(repeats))
    return dict(_stamp(device), settings=settings, rows=rows)


# -- the papers' scale, on a GPU (make gpu-check) -------------------------------------------------------

# Stable Diffusion v1.5's UNet, from its published config (unet/config.json of the hub repository); random weights
SD15_UNET = dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
                 block_out_channels=(320, 640, 1280, 1280), cross_attention_dim=768, attention_head_dim=8,
                 down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
                 up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"))
# what each figure is measured at: the papers' settings ("paper") or a shrunken copy for a CPU test ("tiny")
PAPER_SCALE = {
    "paper": dict(sd_unet=SD15_UNET, sd_batch=8, text_len=77, ddpm_preset="ddpm_cifar10", ddpm_shape=(3, 32, 32),
                  vg_images=2, vg_axes=100, vg_steps=1000, vg_steps_timed=3, wc_train=50_000, wc_queries=10_000,
                  wc_dim=3072, wc_sigmas=64),
    "tiny": dict(sd_unet=dict(SD15_UNET, sample_size=8, block_out_channels=(32, 64), cross_attention_dim=32,
                              down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                              up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), layers_per_block=1),
                 sd_batch=2, text_len=7, ddpm_preset="digits", ddpm_shape=(1, 8, 8), vg_images=2, vg_axes=4,
                 vg_steps=20, vg_steps_timed=2, wc_train=300, wc_queries=50, wc_dim=64, wc_sigmas=8),
}


def _tf32(enabled: bool) -> None:
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


def _rel_diff(a: Tensor, b: Tensor) -> float:
    a, b = a.double().cpu(), b.double().cpu()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def paper_scale(device: str = "cuda", scale: str = "paper", repeats: int = 3, seed: int = 0) -> dict:
    """The estimators at the papers' scale on the real architectures with random weights (no download), each
    beside the same model's forward pass at the same batch, so that the ratios carry to any GPU:

    * FLIPD with one Hutchinson probe on Stable Diffusion v1.5's UNet (:data:`SD15_UNET`; 4 x 64 x 64 latents,
      77 x 768 text embeddings): images per second and forward passes per estimate;
    * volume growth with N = 100 axes and 1,000 Euler steps on the DDPM CIFAR-10 UNet (35.7 M parameters):
      images per second, from ``vg_steps_timed`` timed steps (each step costs the same);
    * W and C on 50,000 training x 10,000 held-out points x 3,072 dimensions over 64 sigmas: seconds, beside
      one distance matrix;
    * each in float32 and with TF32 matmuls, and the largest relative difference of the values between the two.

    ``scale="tiny"`` shrinks every size (:data:`PAPER_SCALE`) to check this code on a CPU.
    """
    from diffusers import UNet2DConditionModel  # heavy: diffusers takes seconds to import

    c = PAPER_SCALE[scale]
    g = torch.Generator().manual_seed(seed)
    out = {"scale": scale, "settings": {k: v for k, v in c.items() if k != "sd_unet"}, "measured": _stamp(device)}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(**c["sd_unet"]).to(device).eval()
    sd = EpsModel(unet, VPSDE(), time_scale=999, cond_key="encoder_hidden_states")
    side = c["sd_unet"]["sample_size"]
    z = torch.randn(c["sd_batch"], 4, side, side, generator=g).to(device)
    cond = torch.randn(c["sd_batch"], c["text_len"], c["sd_unet"]["cross_attention_dim"], generator=g).to(device)
    out["sd_unet_parameters"] = sum(p.numel() for p in unet.parameters())
    ddpm = image_score_model(unet_eps(c["ddpm_shape"], c["ddpm_preset"], seed=seed), VPSDE()).to(device).eval()
    out["ddpm_unet_parameters"] = sum(p.numel() for p in ddpm.parameters())
    x = torch.rand(c["vg_images"], *c["ddpm_shape"], generator=g).mul(2).sub(1).to(device)
    rows = c["vg_images"] * (c["vg_axes"] + 1)
    xr = torch.rand(rows, *c["ddpm_shape"], generator=g).mul(2).sub(1).to(device)
    train = torch.randn(c["wc_train"], c["wc_dim"], generator=g).to(device)
    held = torch.randn(c["wc_queries"], c["wc_dim"], generator=g).to(device)
    sigmas = np.geomspace(0.01, 80.0, c["wc_sigmas"]).tolist()
    vg = dict(n_axes=c["vg_axes"], n_steps=c["vg_steps_timed"], t_start=1e-3, t_end=1e-3 + c["vg_steps_timed"] / c["vg_steps"],
              method="finite", seed=seed)
    for mode in ("float32", "tf32"):
        _tf32(mode == "tf32")
        with torch.no_grad():
            fns = {"flipd": lambda: flipd(sd, z, 0.1, n_probes=1, cond=cond, seed=seed),
                   "sd_forward": lambda: sd.score(z, 0.1, cond),
                   "volume_steps": lambda: volume_growth(ddpm, x, **vg),
                   "ddpm_forward_rows": lambda: ddpm.score(xr, 0.5),
                   "wc": lambda: weight_and_coverage(held, train, sigmas, seed=seed),
                   "distances": lambda: squared_distances(held, train)}
            t = timed_together({k: v for k, v in fns.items() if k != "flipd"}, repeats=repeats, device=device)
        t.update(timed_together({"flipd": fns["flipd"]}, repeats=repeats, device=device))   # needs gradients
        per_step = t["volume_steps"] / c["vg_steps_timed"]
        out[mode] = {
            "flipd_images_per_s": c["sd_batch"] / t["flipd"],
            "flipd_forward_passes": t["flipd"] / t["sd_forward"],
            "sd_forward_images_per_s": c["sd_batch"] / t["sd_forward"],
            "volume_images_per_s": c["vg_images"] / (per_step * c["vg_steps"]),
            "volume_step_per_forward": per_step / t["ddpm_forward_rows"],
            "ddpm_forward_rows_per_s": rows / t["ddpm_forward_rows"],
            "wc_seconds": t["wc"], "wc_per_distance_matrix": t["wc"] / t["distances"],
            "seconds": t,
        }
        out[mode]["values"] = {"flipd": fns["flipd"]().cpu(), "volume": volume_growth(ddpm, x, **vg).cpu(),
                               "W": torch.as_tensor(weight_and_coverage(held, train, sigmas, seed=seed).W)}
    _tf32(False)
    out["tf32_rel_diff"] = {k: _rel_diff(out["tf32"]["values"][k], out["float32"]["values"][k])
                            for k in out["float32"]["values"]}
    for mode in ("float32", "tf32"):
        del out[mode]["values"]
    return out


def gpu_records(folder: str | Path) -> list[dict]:
    """The GPU measurement records (``gpu-*.json``, written by ``make gpu-check``) of ``folder``, newest first."""
    files = sorted(Path(folder).glob("gpu-*.json"))
    records = [json.loads(f.read_text()) | {"file": f.name} for f in files]
    return sorted(records, key=lambda r: r.get("date", ""), reverse=True)


def gpu_records_table(records: Sequence[dict]):
    """One row per record and figure: the paper-scale throughputs and ratios, measured on which device."""
    import pandas as pd  # heavy: pandas takes about a second to import
    rows = []
    for r in records:
        ps = r.get("paper_scale") or {}
        for mode in ("float32", "tf32"):
            m = ps.get(mode)
            if not m:
                continue
            rows.append({"device": r.get("device_name"), "date": r.get("date"), "precision": mode,
                         "FLIPD (1 probe, SD v1.5 UNet), images/s": m["flipd_images_per_s"],
                         "FLIPD, forward passes": m["flipd_forward_passes"],
                         "volume growth (N=100, K=1000, DDPM UNet), images/s": m["volume_images_per_s"],
                         "volume, one step / forward of N+1 rows": m["volume_step_per_forward"],
                         "W and C (50k x 10k x 3072, 64 sigmas), s": m["wc_seconds"],
                         "W and C / one distance matrix": m["wc_per_distance_matrix"]})
    return pd.DataFrame(rows)


def book_times(folder: str | Path, profile: str) -> Optional[dict]:
    """The empty-cache run-time record of ``profile`` (``book-<profile>.json``, written by `make profile-book`),
    or ``None`` when there is none."""
    path = Path(folder) / f"book-{profile}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def notebook_times(path: str | Path) -> dict:
    """papermill's timing of one executed notebook: ``start`` and ``end`` (timezone-aware datetimes, or ``None``
    where papermill recorded none) and ``duration`` in seconds (or ``None``)."""
    meta = json.loads(Path(path).read_text())["metadata"].get("papermill", {})

    def when(key):
        value = meta.get(key)
        return datetime.fromisoformat(value) if value else None

    return {"start": when("start_time"), "end": when("end_time"), "duration": meta.get("duration")}


def run_span(times: Sequence[dict], gap: float = 120.0) -> Optional[dict]:
    """How notebooks that ran in one go shared the clock: ``seconds`` from the first start to the last end, and
    ``at_once``, the most that ran at the same time. ``None`` when a start or end is missing, or when the clock
    stood idle for more than ``gap`` seconds between them (they ran at different times, e.g. a rebuild that
    re-executed only some: their span would not be a book's time)."""
    spans = sorted((t["start"], t["end"]) for t in times if t.get("start") and t.get("end"))
    if not spans or len(spans) != len(times):
        return None
    reach = spans[0][1]
    for start, end in spans[1:]:
        if (start - reach).total_seconds() > gap:
            return None
        reach = max(reach, end)
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])   # an end sorts before a start
    running = at_once = 0
    for _, step in events:
        running += step
        at_once = max(at_once, running)
    return {"seconds": (reach - spans[0][0]).total_seconds(), "at_once": at_once}


def _minutes(seconds) -> str:
    return "not recorded" if seconds is None else f"{float(seconds) / 60:.1f}"


def _book_minutes(record: dict) -> str:
    """A run-time record's time for the whole book: its wall clock where it has one, else its chapters' sum."""
    seconds = record.get("wall_seconds") or record["total_seconds"]
    return f"{float(seconds) / 60:.0f}"


def record_speed(record: dict) -> Optional[float]:
    """A run-time record's machine speed (steps per second of :data:`SPEED_PROBE`): the mean of the probes run
    before and after the chapters, or ``None`` when the record has none (records before the probe existed)."""
    values = [v for v in ((record.get("speed") or {}).get(k) for k in ("before", "after")) if v is not None]
    return sum(values) / len(values) if values else None


def _speed_text(record: dict) -> str:
    sp = record.get("speed") or {}
    got = [f"{sp[k]:.2f} steps per second {k} the chapters" for k in ("before", "after") if sp.get(k) is not None]
    return " and ".join(got)


def _previous_text(record: dict, prev: dict) -> str:
    """What a record says of the measurement it replaced: which machine, the book's minutes, which of the
    chapters' files changed between the two commits, and the two machines' speeds where both were probed."""
    m, pm = record["machine"], prev.get("machine") or {}
    same = all(pm.get(k) == m.get(k) for k in ("cpu", "cores", "threads", "torch"))
    text = (f" The measurement it replaced, of commit {prev.get('commit') or 'unknown'} on {prev.get('date')}"
            + (" on a machine of the same description (CPU model, cores, threads and torch; a cloud machine's "
               "speed is not in its description)" if same else
               f" on {pm.get('cpu')} with {pm.get('cores')} cores and {pm.get('threads')} threads")
            + f", took **{_book_minutes(prev)} min**"
            + (f" ({prev['at_once']} chapters at a time)" if (prev.get("at_once") or 1) > 1 else
               " (one chapter after another)")
            + "; the column Before is its minutes.")
    files = prev.get("changed_files")
    if files is None:
        text += " Which of the chapters' files changed between the two commits is not recorded."
    elif files:
        text += (" Between the two commits the chapters' code (`mempkg/`, `notebooks/`) changed in "
                 + ", ".join(f"`{f}`" for f in files) + ".")
    else:
        text += " The chapters' code (`mempkg/`, `notebooks/`) is the same in both commits."
    now, then = record_speed(record), record_speed(prev)
    if now is not None and then is not None:
        book = float(prev.get("wall_seconds") or prev["total_seconds"]) / float(
            record.get("wall_seconds") or record["total_seconds"])
        text += (f" The machine's speed probe ran {now / then:.2f} times as fast for this measurement as for that "
                 f"one ({now:.2f} against {then:.2f} steps per second), and the book {book:.2f} times as fast.")
    elif now is not None:
        text += (" That measurement has no probe of its machine's speed, so how much of the difference is the "
                 "machine's and how much the code's is not known.")
    return text


def book_times_markdown(record: dict, stages: bool = False, top: int = 6) -> str:
    """A Markdown table of a run-time record: minutes per chapter (and, with ``stages``, its ``top`` costliest
    stages), headed by the machine and date it was measured on and, where the record has it, the machine's
    speed (:data:`SPEED_PROBE`). With ``stages``, a record that keeps the measurement it replaced (``previous``,
    see `tools/profile_book.py`) shows that one's minutes beside it, the chapters' files that changed between
    the two commits, and the two machines' speeds where both were probed."""
    m = record["machine"]
    at_once = record.get("at_once") or 1
    head = (f"Measured by `make profile-book` on {record['date']} (commit {record.get('commit') or 'unknown'}), "
            f"every chapter from an empty cache under `{record['profile']}`, on {m['cpu']} with {m['cores']} cores, "
            f"torch {m['torch']}, Python {m['python']}: **{_book_minutes(record)} min** for the whole book")
    if at_once > 1:
        head += (f", from the first chapter's start to the last one's end. The chapters ran up to {at_once} at a "
                 f"time (`make notebooks`, JOBS), each with the torch threads of the column Threads, so their own "
                 f"times overlap and add up to more ({float(record['total_seconds']) / 60:.0f} min).")
    else:
        head += f", one chapter after another, with {m['threads']} torch threads."
    if _speed_text(record):
        head += f" The machine's speed probe ({SPEED_PROBE}, run alone) ran at {_speed_text(record)}."

    def threads(c):
        return c.get("threads") or (m["threads"] if at_once == 1 else "not recorded")

    if not stages:
        rows = "".join(f"| {{doc}}`notebooks/{c['notebook']}` | {_minutes(c['seconds'])} | {threads(c)} |\n"
                       for c in record["chapters"])
        return head + "\n\n| Chapter | Minutes | Threads |\n| --- | ---: | ---: |\n" + rows
    prev = record.get("previous")
    if prev:
        head += _previous_text(record, prev)
    before = "| Before " if prev else ""
    lines = [f"| Chapter | Minutes {before}| Threads "
             "| Costliest stages (minutes; x n: n cached results of that name) |",
             "| --- | ---: " + ("| ---: " if prev else "") + "| ---: | --- |"]
    for c in record["chapters"]:
        parts = [f"{s['stage']}{' x %d' % s['count'] if s['count'] > 1 else ''} {s['seconds'] / 60:.1f}"
                 for s in c["stages"][:top]]
        if c.get("not_cached_seconds") is not None:
            parts.append(f"not cached {c['not_cached_seconds'] / 60:.1f}")
        was = f" {_minutes(prev['chapters'].get(c['notebook']))} |" if prev else ""
        lines.append(f"| {c['notebook']} | {_minutes(c['seconds'])} |{was} {threads(c)} | {'; '.join(parts)} |")
    return head + "\n\n" + "\n".join(lines) + "\n"


def expected_book_seconds(record: dict, speed: float) -> Optional[float]:
    """How long the book of ``record`` (a run-time record, see `tools/profile_book.py`) should take from an empty
    cache on a machine whose speed probe (:func:`machine_speed`) runs at ``speed`` steps per second: the record's
    wall clock scaled by the ratio of the two probes. ``None`` when the record has no probe. It assumes what the
    record ran with (cores, chapters at a time, threads) and that the chapters' other work scales like training."""
    if not (speed > 0):
        raise ValueError(f"speed must be a positive number of steps per second, got {speed!r}")
    then = record_speed(record)
    if then is None:
        return None
    return float(record.get("wall_seconds") or record["total_seconds"]) * then / float(speed)


def expected_book_markdown(record: dict, speed: float, cores: Optional[int] = None,
                           changed: Optional[list[str]] = None) -> str:
    """The sentences of :func:`expected_book_seconds` for a reader about to run the book: this machine's probe
    against the record's, the minutes expected, and what the estimate takes for granted (``cores``: this
    machine's, where they differ from the record's; ``changed``: the chapters' files changed since the record's
    commit)."""
    m = record["machine"]
    text = (f"This machine's speed probe ({SPEED_PROBE}) runs at {speed:.2f} steps per second. ")
    seconds = expected_book_seconds(record, speed)
    if seconds is None:
        return text + (f"The `{record['profile']}` record of {record['date']} has no probe of its machine, so no "
                       "estimate can be made from it (`make profile-book` writes one that has).")
    then = record_speed(record)
    text += (f"The `{record['profile']}` book took {_book_minutes(record)} min from an empty cache on "
             f"{record['date']} (commit {record.get('commit') or 'unknown'}, {m['cpu']} with {m['cores']} cores), "
             f"where the probe ran at {then:.2f}: so expect **about {seconds / 60:.0f} min** here "
             f"({_book_minutes(record)} x {then:.2f} / {speed:.2f}).")
    prev = record.get("previous")
    guess = expected_book_seconds(prev, then) if prev and record_speed(prev) else None
    if guess is not None:
        actual = float(record.get("wall_seconds") or record["total_seconds"])
        text += (f" How far to trust it: made the same way from the measurement the record replaced ({prev['date']}, "
                 f"{(prev.get('machine') or {}).get('cpu')}), the estimate for the record's machine would have been "
                 f"{guess / 60:.0f} min against the {actual / 60:.0f} measured ({100 * (guess / actual - 1):+.0f}%).")
    if cores is not None and cores != m.get("cores"):
        text += (f" That machine had {m['cores']} cores and this one has {cores}: `make notebooks` runs as many "
                 "chapters at once as there are cores (JOBS), and the estimate is for the record's "
                 f"{record.get('at_once') or 1} at a time, so the book may take "
                 f"{'less' if cores > (m.get('cores') or 0) else 'more'} than this here.")
    if changed:
        text += (" The chapters' code changed since that commit (" + ", ".join(f"`{f}`" for f in changed)
                 + "), so their time may have too.")
    return text


def memorization_budget(folder: str | Path) -> Optional[dict]:
    """The record of `benchmarks/memorization_budget.py --record` (``memorization-budget.json``), or ``None``."""
    path = Path(folder) / "memorization-budget.json"
    return json.loads(path.read_text()) if path.is_file() else None


def budget_row_key(row: dict) -> tuple:
    """What identifies a row of the memorization-budget record: its settings, not its label (a batch of ``None``
    is the full 128 images; rows recorded before training times were a setting drew them uniformly)."""
    return (int(row["batch_size"] or 128), int(row["steps"]), float(row["lr"]), tuple(int(c) for c in row["channels"]),
            str(row.get("t_sampling", "uniform")))


def memorization_budget_markdown(record: dict) -> str:
    """A Markdown table of what chapter 02's model copies under each setting, beside its training time as a share
    of the reference's (the first row), headed by the machine and date; then sentences, from the numbers, naming the
    cheapest setting that copies at least 90% as much as the reference and the setting the quick profile uses
    (``record["profile_setting"]``), with its copy rate."""
    rows = record["rows"]
    ref = rows[0]
    m = record["machine"]

    when = {(r.get("date", record["date"]), r.get("commit", record.get("commit"))) for r in rows}
    head = (f"Measured by `benchmarks/memorization_budget.py` on {m['cpu']} with {m['cores']} cores, torch "
            f"{m['torch']}, "
            + (f"on {record['date']} (commit {record.get('commit') or 'unknown'}); " if len(when) == 1 else
               "each row on the date and commit it names; ")
            + f"{record['parallel']} settings trained at a time, one thread each; {record['n_samples']} samples per "
            f"setting ({record['sample_steps']} steps). Training times are shares of the reference's (the first row)"
            + (". The rows come from separate runs, so a share also carries any change in the machine's speed between "
               "them (each row's steps per second is in the record); the copy rates do not depend on it" if len(when) > 1
               else "") + ".\n\n")
    prof = record.get("profile_setting")
    ours = next((r for r in rows if prof is not None and budget_row_key(r) == budget_row_key(prof)), None)
    cols = "| Setting | Batch | Steps | Learning rate | Training times | Parameters | Training (share) | Copy rate |"
    lines = [cols + (" Measured |" if len(when) > 1 else ""),
             "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |" + (" --- |" if len(when) > 1 else "")]
    for r in rows:
        label = r["setting"] + (" (**the quick profile's**)" if r is ours else "")
        lines.append(f"| {label} | {r['batch_size']} | {r['steps']} | {r['lr']:g} | {r.get('t_sampling', 'uniform')} | "
                     f"{r['n_parameters'] / 1e6:.2f} M | {r['train_seconds'] / ref['train_seconds']:.2f} | "
                     f"{100 * r['copy_rate']:.1f}% |"
                     + (f" {r.get('date', record['date'])}, {r.get('commit', record.get('commit')) or 'unknown'} |"
                        if len(when) > 1 else ""))
    others = rows[1:]
    keeps = [r for r in others if r["copy_rate"] >= 0.9 * ref["copy_rate"]]
    if keeps:
        best = min(keeps, key=lambda r: r["train_seconds"])
        verdict = (f"The cheapest setting that keeps at least 90% of the reference's copy rate ({100 * ref['copy_rate']:.1f}%) "
                   f"is **{best['setting']}**: {100 * best['copy_rate']:.1f}% in "
                   f"{best['train_seconds'] / ref['train_seconds']:.2f} of the training time.")
    elif others:
        verdict = (f"**No cheaper setting keeps 90% of the reference's copy rate** ({100 * ref['copy_rate']:.1f}%); "
                   f"the best of them copies {100 * max(r['copy_rate'] for r in others):.1f}%.")
    else:
        verdict = ""
    if prof is not None and ours is None:
        verdict += (f" The quick profile's setting ({prof['steps']} steps at lr {prof['lr']:g}, {prof['t_sampling']} "
                    "times) is not in this record: `python benchmarks/memorization_budget.py --record` measures it.")
    elif ours is not None and ours is not ref:
        share = ours["copy_rate"] / ref["copy_rate"] if ref["copy_rate"] > 0 else None
        verdict += (f" The quick profile trains with **{ours['setting']}**: {100 * ours['copy_rate']:.1f}% of its samples "
                    f"are copies" + (f", {100 * share:.0f}% of the reference's" if share is not None else "")
                    + f", in {ours['train_seconds'] / ref['train_seconds']:.2f} of the reference's training time.")
    return head + "\n".join(lines) + "\n\n" + verdict.strip() + "\n"


def training_cuts(folder: str | Path) -> Optional[dict]:
    """The record of `benchmarks/training_cuts.py --record` (``training-cuts-quick.json``), or ``None``."""
    path = Path(folder) / "training-cuts-quick.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _cut_value(v, se, unit: str) -> str:
    if v is None:
        return "-"
    if unit == "%":
        return f"{100 * v:.1f}%" + (f" ± {100 * se:.1f}" if se is not None else "")
    if unit == "auroc":
        return f"{v:.3f}" + (f" ± {se:.3f}" if se is not None else "")
    return f"{v:.3g}" + (f" ± {se:.2g}" if se is not None else "")


def cut_shift(row: dict) -> Optional[float]:
    """How far a headline number moved under the cut, in standard errors of the difference (``None`` without
    both runs' standard errors, or when both are zero)."""
    r, c, sr, sc = row["reference"], row["cut"], row.get("reference_se"), row.get("cut_se")
    if None in (r, c, sr, sc) or math.hypot(sr, sc) == 0:
        return None
    return (c - r) / math.hypot(sr, sc)


def training_cuts_markdown(record: dict) -> str:
    """Per chapter and cut of the record: what the cut is, both runs' minutes, whether the verdicts are the same,
    and a table of the headline numbers (quick profile, cut, change: percentage points for rates, in standard
    errors of the difference where both runs give one); then the numbers that moved by more than two standard
    errors, and the minutes each cut saves over its chapters. An entry measured at another date or commit than
    the record's (a cut kept from an earlier record) says so. Every sentence is decided from the record's
    numbers."""
    m = record["machine"]
    out = [f"Measured by `benchmarks/training_cuts.py` on {m['cpu']} with {m['cores']} cores, torch {m['torch']}, on "
           f"{record['date']} (commit {record.get('commit') or 'unknown'}): each chapter executed under the "
           f"{record['profile']} profile as it is and with each training cut, {record['parallel']} runs at a time, "
           f"{record['threads']} thread each."]
    saved: dict = {}
    for ch in record["chapters"]:
        name = ch.get("cut_name")
        ref_s, cut_s = ch["seconds"]["reference"], ch["seconds"]["cut"]
        s, t = saved.get(name, (0.0, 0.0))
        saved[name] = (s + ref_s - cut_s, t + ref_s)
        settings = ", ".join(f"`{k}={v}` (profile: `{ch['profile_settings'].get(k)}`)"
                             for k, v in ch["settings"].items())
        text = (f"**{ch['notebook']}**, cut{f' `{name}`' if name else ''}: {ch['cut']} ({settings}). "
                f"It ran **{cut_s / 60:.1f} min** against "
                f"{ref_s / 60:.1f} min as the profile has it ({100 * (ref_s - cut_s) / ref_s:.0f}% "
                f"{'less' if cut_s <= ref_s else 'more'}"
                + (f"; both measured on {ch['date']} at commit {ch.get('commit') or 'unknown'}"
                   + (f" on {ch['machine']['cpu']} with {ch['machine']['cores']} cores"
                      if ch.get("machine") and ch["machine"] != m else "")
                   if (ch.get("date"), ch.get("commit")) not in ((None, None), (record["date"], record.get("commit")))
                   else "") + "). ")
        vr, vc = ch["verdicts"]["reference"], ch["verdicts"]["cut"]
        if not vr and not vc:
            text += "The chapter decides no claim of the scorecard; its findings are the numbers below."
        elif vr == vc:
            counts = {v: sum(1 for x in vr.values() if x == v) for v in dict.fromkeys(vr.values())}
            text += ("Its verdicts are **the same** in both runs ("
                     + ", ".join(f"{n} {v}" for v, n in counts.items()) + ").")
        else:
            changed = [f"{k}: {vr.get(k, 'absent')} -> {vc.get(k, 'absent')}" for k in dict.fromkeys([*vr, *vc])
                       if vr.get(k) != vc.get(k)]
            text += "**Its verdicts change**: " + "; ".join(changed) + "."
        lines = ["| Number | Quick profile | Cut | Change |", "| --- | ---: | ---: | ---: |"]
        moved = []
        for r in ch["rows"]:
            if r["reference"] is None or r["cut"] is None:
                change = "-"
            else:
                d = r["cut"] - r["reference"]
                change = (f"{100 * d:+.1f} pp" if r["unit"] == "%" else f"{d:+.3f}" if r["unit"] == "auroc"
                          else f"{d:+.3g}")
            z = cut_shift(r)
            if z is not None:
                change += f" ({z:+.1f} SE)"
                if abs(z) > 2:
                    moved.append(f"{r['label']} ({z:+.1f} SE)")
            lines.append(f"| {r['label']} | {_cut_value(r['reference'], r.get('reference_se'), r['unit'])} | "
                         f"{_cut_value(r['cut'], r.get('cut_se'), r['unit'])} | {change} |")
        with_se = sum(1 for r in ch["rows"] if cut_shift(r) is not None)
        text += "\n\n" + "\n".join(lines) + "\n\n" + (
            f"Of the {with_se} numbers with standard errors, **{len(moved)} moved by more than two**: "
            + "; ".join(moved) + "." if moved else
            f"None of the {with_se} numbers with standard errors moved by more than two of them.")
        out.append(text)
    if list(saved) == [None]:
        s, t = saved[None]
        out.append(f"Together the cuts save {s / 60:.1f} of these chapters' {t / 60:.1f} minutes at one thread "
                   f"({100 * s / t:.0f}%)." if t else "")
    elif saved:
        out.append("Over its chapters, at one thread, " + "; ".join(
            f"the `{name}` cut saves {s / 60:.1f} of {t / 60:.1f} minutes ({100 * s / t:.0f}%)"
            for name, (s, t) in saved.items() if t) + ".")
    return "\n\n".join(s for s in out if s) + "\n"


TRAIN_SETTINGS = (("default_threads", "torch's default threads", None),
                  ("one_thread", "one thread", "default_threads"),
                  ("channels_last", "channels_last memory format", "one_thread"),
                  ("bf16_autocast", "bfloat16 autocast", "one_thread"),
                  ("compile", "torch.compile", "one_thread"),
                  ("two_one_thread_processes_total", "two one-thread processes at once (their steps together)",
                   "default_threads"))


def train_settings(folder: str | Path) -> Optional[dict]:
    """The record of `benchmarks/train_settings.py --record` (``train-settings.json``), or ``None``."""
    path = Path(folder) / "train-settings.json"
    return json.loads(path.read_text()) if path.is_file() else None


def train_settings_markdown(record: dict, faster_by: float = 1.1) -> str:
    """A table of one training step's speed under each setting the record holds, each as a ratio to what it
    changes (torch's default threads, or one thread for the memory format, the precision and the compiler),
    headed by the machine and date; then the settings that beat their baseline by ``faster_by`` or more, from the
    numbers. A record of several rounds (``rounds``: every setting's steps per second in each) gives each
    setting's median and the median and range of its per-round ratios, and names a setting faster only when it
    was faster by ``faster_by`` in every round: one round's ratio is within the machine's drift."""
    m = record["machine"]
    names = {key: label for key, label, _ in TRAIN_SETTINGS}
    rounds = record.get("rounds") or {}
    n = int(record.get("n_rounds") or 1)
    lines = ["| Setting | Steps per second | Against |" + (" Range over the rounds |" if n > 1 else ""),
             "| --- | ---: | --- |" + (" --- |" if n > 1 else "")]
    faster = []
    for key, label, against in TRAIN_SETTINGS:
        v = record.get(key)
        if v is None:
            continue
        if against is None:
            lines.append(f"| {label} | {v:.2f} | |" + (" |" if n > 1 else ""))
            continue
        per_round = ([x / y for x, y in zip(rounds[key], rounds[against])] if key in rounds and against in rounds
                     else [v / record[against]])
        ratio = statistics.median(per_round)
        lines.append(f"| {label} | {v:.2f} | {ratio:.2f} x {names[against]} |"
                     + (f" {min(per_round):.2f} to {max(per_round):.2f} |" if n > 1 else ""))
        if min(per_round) >= faster_by:
            faster.append(f"{label} ({ratio:.2f} x {names[against]})")
    how = (f"each setting in its own process, one after another, in {n} rounds; the medians, and the range of the "
           "ratio taken within each round" if n > 1 else "each setting once in its own process, one after another")
    every = " in every round" if n > 1 else ""
    pct = f"{100 * (faster_by - 1):.0f}%"
    return (f"Measured by `benchmarks/train_settings.py` on {m['cpu']} with {m['cores']} cores, torch {m['torch']}, on "
            f"{record['date']} (commit {record.get('commit') or 'unknown'}): one training step (forward, backward, "
            f"Adam) of the `digits` UNet at batch {record['batch']}, {record['steps']} steps timed after "
            f"{record['warmup']} of warm-up, {how}.\n\n"
            + "\n".join(lines) + "\n\n"
            + (f"At least {pct} faster than what they change{every}: " + "; ".join(faster) + "." if faster else
               f"No setting is {pct} faster than what it changes{every}.") + "\n")