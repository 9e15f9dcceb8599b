"""What the book's estimators cost, as ratios of timings taken together in one run.

A ratio of two timings taken side by side depends on the machine much less than seconds do:
:func:`timed_together` times the things compared in round-robin rounds and keeps each one's
median. The image models are untrained networks (a cost does not depend on the weights) in EDM's
preconditioning, so one object is both a score model and a denoiser. :func:`run` is chapter 06.

Layer: studies (imports core, estimators, models and data).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from ..core.progress import bar
from ..data.captioned import Vocabulary
from ..estimators.guidance import cfg_norm
from ..estimators.lid import flipd
from ..estimators.regimes import noise_sweep, squared_distances, weight_and_coverage
from ..estimators.volume import volume_growth, volume_growth_reference
from ..models.edm import EDMPrecond
from ..models.networks import MLPEps, unet_eps
from ..models.tiny_sd import TinyStableDiffusion

# -- the clock and what it ran on -------------------------------------------------------------------


def timed_together(fns: dict[str, Callable[[], object]], repeats: int = 3, device: str = "cpu",
                   warmup: int = 1, min_time: float = 0.1, desc: str = "") -> dict[str, float]:
    """Median seconds of one call of each function over ``repeats`` round-robin rounds.

    Round r calls every function in turn, so a change of the machine's load hits all alike. A
    function faster than ``min_time`` (judged by its last warm-up call) is called
    ceil(min_time / t) times per round and timed per call, as ``timeit`` does.
    """
    if int(repeats) < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats}.")
    sync = torch.cuda.synchronize if str(device).startswith("cuda") else (lambda: None)
    number = {k: 1 for k in fns}
    times: dict[str, list[float]] = {k: [] for k in fns}
    rounds = int(warmup) + int(repeats)
    for r in bar(range(rounds), desc=desc or "timing", disable=rounds < 4):
        for k, fn in fns.items():
            sync()
            t = time.perf_counter()
            for _ in range(number[k]):
                fn()
            sync()
            elapsed = (time.perf_counter() - t) / number[k]
            if r >= int(warmup):
                times[k].append(elapsed)
            elif r == int(warmup) - 1 and elapsed < min_time:
                number[k] = math.ceil(min_time / max(elapsed, 1e-7))
    return {k: statistics.median(v) for k, v in times.items()}


def machine(device: str = "cpu") -> str:
    """One line: CPU model, cores, torch threads, torch version, device (with a GPU's name)."""
    cpu = platform.processor() or platform.machine()
    if Path("/proc/cpuinfo").is_file():
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), cpu)
    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    dev = str(device)
    if dev.startswith("cuda"):
        dev = f"{dev} ({torch.cuda.get_device_name(torch.device(dev))})"
    threads = torch.get_num_threads()
    return (f"{cpu} ({platform.machine()}), {cores} cores{'' if usable == cores else f' ({usable} usable)'}, "
            f"{threads} torch thread{'s' * (threads != 1)}, torch {torch.__version__}, device {dev}")


def code_digest() -> str:
    """16 hex digits of sha256 over the measured code (core, estimators, models, this module)."""
    root = Path(__file__).parents[1]
    files = {*root.glob("core/*.py"), *root.glob("estimators/*.py"), *root.glob("models/*.py"), Path(__file__)}
    return hashlib.sha256(b"".join(f.read_bytes() for f in sorted(files))).hexdigest()[:16]


def _stamp(device: str) -> dict:
    return {"machine": machine(device), "measured_at": time.strftime("%Y-%m-%d %H:%M:%S %z")}


# -- the models whose cost is measured --------------------------------------------------------------

MODELS = {  # name: (label, input shape, untrained eps-network from a seed); tiny_sd builds its own
    "mlp_2": ("MLP, D = 2 (von Mises toy)", (2,), lambda s: MLPEps(2, seed=s)),
    "mlp_64": ("MLP, D = 1x8x8", (1, 8, 8), lambda s: MLPEps((1, 8, 8), seed=s)),
    "unet_1x8x8": ("UNet with attention, D = 1x8x8 (digits preset)", (1, 8, 8),
                   lambda s: unet_eps((1, 8, 8), "digits", seed=s)),
    "unet_3x32x32": ("UNet with attention, D = 3x32x32 (digits preset widths)", (3, 32, 32),
                     lambda s: unet_eps((3, 32, 32), "digits", seed=s)),
    "ddpm_cifar10": ("DDPM CIFAR-10 UNet, D = 3x32x32 (35.7 M parameters)", (3, 32, 32),
                     lambda s: unet_eps((3, 32, 32), "ddpm_cifar10", seed=s)),
    "tiny_sd": ("tiny SD stand-in, text-conditional UNet, D = 1x8x8", None, None)}


def bench_model(name: str, batch: int, device: str = "cpu", seed: int = 0) -> tuple:
    """``(model, x, cond, denoiser)``: the untrained score model ``name`` (a key of :data:`MODELS`) in
    eval mode, ``batch`` seeded inputs in [-1, 1], and its condition or its denoiser (else ``None``)."""
    if name not in MODELS:
        raise ValueError(f"Unknown benchmark model {name!r}; known: {', '.join(MODELS)}.")
    if int(batch) < 1:
        raise ValueError(f"batch must be a positive integer, got {batch}.")
    g = torch.Generator().manual_seed(int(seed))
    cond = denoiser = None
    if name == "tiny_sd":
        model = TinyStableDiffusion(Vocabulary(), seed=seed).to(device).eval()
        shape = model.data_shape
        tokens = torch.randint(1, len(model.vocab), (int(batch), model.vocab.max_len), generator=g)
        with torch.no_grad():
            cond = model.text(tokens.to(device)).detach()
    else:
        _, shape, build = MODELS[name]
        model = EDMPrecond(build(seed), sigma_data=0.5).to(device).eval()
        denoiser = model.denoise
    x = (torch.rand(int(batch), *shape, generator=g) * 2 - 1).to(device)
    return model, x, cond, denoiser


# -- each estimator's cost in forward passes --------------------------------------------------------

ESTIMATORS = ("flipd", "flipd_exact", "volume", "one_step", "cfg_norm")
FLIPD_LIMIT = "forward + one VJP (FLIPD's limit per probe)"


def _cost_fns(model, x, cond, denoiser, estimators, t0, exact_max_dim, n_axes, n_steps, n_sigmas, n_train, cfg_t0,
              cfg_steps, seed) -> dict:
    """{label: (function, units per image)}: the forward pass first, then each estimator that applies."""
    D = x[0].numel()

    def forward():
        with torch.no_grad():
            model.score(x, t0, cond=cond)

    fns = {"forward": (forward, 1)}
    if "flipd" in estimators:
        for m in ("jvp", "vjp"):
            fns[f"FLIPD, 1 probe, {m}"] = (lambda m=m: flipd(model, x, t0, n_probes=1, cond=cond, method=m), 1)
        # the least work a one-probe FLIPD does: one forward pass of the score and one VJP through it
        g = torch.Generator().manual_seed(int(seed) + 2)
        v = (torch.randint(0, 2, x.shape, generator=g) * 2 - 1).to(x)

        def forward_and_vjp():
            with torch.enable_grad():
                y = x.detach().requires_grad_(True)
                torch.autograd.grad(model.score(y, t0, cond=cond), y, grad_outputs=v)

        fns[FLIPD_LIMIT] = (forward_and_vjp, 1)
    if "flipd_exact" in estimators and D <= int(exact_max_dim):
        for m in ("jvp", "vjp"):
            fns[f"FLIPD, exact, {m}"] = (lambda m=m: flipd(model, x, t0, cond=cond, method=m, max_batch=1024), 1)
    if "volume" in estimators:
        N, K = min(int(n_axes), D), int(n_steps)
        for m in ("finite", "jvp"):
            fns[f"volume growth per axis-step, {m}"] = (
                lambda m=m: volume_growth(model, x, n_axes=N, n_steps=K, method=m, cond=cond, seed=seed), N * K)
    if "one_step" in estimators and denoiser is not None:
        g = torch.Generator().manual_seed(int(seed) + 1)
        train = (torch.rand(int(n_train), *x.shape[1:], generator=g) * 2 - 1).to(x.device)
        sigmas = np.geomspace(0.1, 10.0, int(n_sigmas))
        fns["one-step memorization per sigma"] = (
            lambda: noise_sweep(denoiser, x, train, sigmas, seed=seed, batch=len(x)), int(n_sigmas))
    if "cfg_norm" in estimators and cond is not None:
        fns[f"CFG norm ({int(cfg_steps)} Euler steps)"] = (
            lambda: cfg_norm(model, x, cond, t0=cfg_t0, n_steps=int(cfg_steps), max_batch=len(x)), 1)
    return fns


def estimator_costs(models: Sequence[str] = ("mlp_2", "unet_1x8x8", "unet_3x32x32", "tiny_sd"), batch: int = 64,
                    *, estimators: Sequence[str] = ESTIMATORS, t0: float = 0.05, exact_max_dim: int = 64,
                    n_axes: int = 10, n_steps: int = 2, n_sigmas: int = 2, n_train: int = 1000,
                    cfg_t0: float = 0.01, cfg_steps: int = 3, repeats: int = 3, device: str = "cpu",
                    seed: int = 0) -> dict:
    """Each estimator's cost per image, in forward passes of the same model at the same batch.

    cost = t(estimator on B inputs) / t(score of B inputs) / units; units: N * n_steps for volume
    growth (per axis-step), n_sigmas for one-step memorization (per sigma), else 1.

    Returns:
        ``{"machine", "measured_at", "settings", "rows"}``; a row: ``model``, ``name``, ``D``,
        ``batch``, ``forward_seconds``, ``costs`` and ``seconds`` (per estimator).
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
        fns = _cost_fns(*bm, estimators, t0, exact_max_dim, n_axes, n_steps, n_sigmas, n_train, cfg_t0,
                        cfg_steps, seed)
        t = timed_together({k: f for k, (f, _) in fns.items()}, repeats, device, desc=name)
        rows.append({"model": MODELS[name][0], "name": name, "D": bm[1][0].numel(), "batch": int(batch),
                     "forward_seconds": t["forward"],
                     "costs": {k: t[k] / t["forward"] / units for k, (_, units) in fns.items() if k != "forward"},
                     "seconds": {k: t[k] for k in fns if k != "forward"}})
        del bm
    return dict(_stamp(device), settings=settings, rows=rows)


# -- volume growth against the authors' loop and its physical limit ---------------------------------

def volume_speedup(models: Sequence[str] = ("mlp_64", "unet_1x8x8"), images: int = 8, axes: int = 50,
                   steps: int = 10, repeats: int = 3, radius: float = 0.05, device: str = "cpu",
                   seed: int = 0) -> dict:
    """Volume growth against the authors' loop and against (N + 1) forward passes per image and step.

    ``authors``: :func:`~mempkg.estimators.volume.volume_growth_reference`; ``finite``, ``jvp``: the
    batched :func:`~mempkg.estimators.volume.volume_growth`; the limit: the forward passes alone,
    batched per image or all at once, whichever is faster.

    Returns:
        ``{"machine", "measured_at", "settings", "rows"}``; a row: ``speedup_finite``, ``speedup_jvp``
        (authors / method), ``*_per_limit``, ``max_rel_diff_L``, ``images_per_second_finite``, seconds.
    """
    N, K = int(axes), int(steps)
    kw = {"n_axes": N, "radius": radius, "n_steps": K, "seed": seed}
    rows = []
    for name in models:
        model, x, cond, _ = bench_model(name, images, device, seed)
        D = x[0].numel()
        if cond is not None:
            raise ValueError(f"{name} is text-conditional; volume_growth_reference has no condition.")
        if N > D:
            raise ValueError(f"axes={axes} exceeds the dimension D = {D} of {name}.")

        def limit(batch, calls):
            def passes():
                with torch.no_grad():
                    for _ in range(K * calls):
                        model.score(batch, 0.5)        # the cost of a pass does not depend on t
            return passes

        fns = {"authors": lambda: volume_growth_reference(model, x, **kw),
               "finite": lambda: volume_growth(model, x, method="finite", **kw),
               "jvp": lambda: volume_growth(model, x, method="jvp", **kw),
               "limit, per image": limit(x[:1].repeat_interleave(N + 1, dim=0), len(x)),
               "limit, one call": limit(x.repeat_interleave(N + 1, dim=0), 1)}
        out = {k: fn() for k, fn in fns.items()}       # the warm-up round, which also checks the numbers
        ref, fast = out["authors"], out["finite"]
        rel = float(((fast[:, -1] - ref[:, -1]).abs() / ref[:, -1].abs().clamp_min(1e-12)).max())
        t = timed_together(fns, repeats, device, warmup=0, desc=name)
        lim = min(t["limit, per image"], t["limit, one call"])
        rows.append({"model": MODELS[name][0], "name": name, "D": D,
                     "speedup_finite": t["authors"] / t["finite"], "speedup_jvp": t["authors"] / t["jvp"],
                     "authors_per_limit": t["authors"] / lim, "finite_per_limit": t["finite"] / lim,
                     "jvp_per_limit": t["jvp"] / lim, "max_rel_diff_L": rel,
                     "images_per_second_finite": int(images) / t["finite"], "seconds": t})
    settings = {"models": list(models), "images": int(images), "axes": N, "steps": K, "repeats": int(repeats),
                "radius": radius, "seed": int(seed)}
    return dict(_stamp(device), settings=settings, rows=rows)


# -- W and C (Dodson et al.) ------------------------------------------------------------------------

def _regimes_data(n_train: int, n_queries: int, dim: int, device: str):
    # seed 1: weight_and_coverage draws its noise from seed 0, which would equal the training points
    g = torch.Generator().manual_seed(1)
    train = torch.randn(int(n_train), int(dim), generator=g, dtype=torch.float64).to(device)
    held = torch.randn(int(n_queries), int(dim), generator=g, dtype=torch.float64).to(device)
    z = torch.randn(held.shape, generator=g, dtype=torch.float64).to(device)
    return train, held, z


WC_RATIO = "W and C on the grid / one distance matrix"


def regimes_cost(train: int = 10_000, queries: int = 1_000, dim: int = 3072, sigmas: int = 64,
                 naive_sigmas: int = 4, repeats: int = 3, device: str = "cpu") -> dict:
    """W and C on a grid of ``sigmas`` noise levels, as a multiple of one distance matrix.

    Beside them: the sigma pass in float64, and the naive way (distances per sigma) on
    ``naive_sigmas`` sigmas scaled to the grid. Returns ``{"machine", "measured_at", "settings",
    "ratios", "seconds"}``.
    """
    T, X, Z = _regimes_data(train, queries, dim, device)
    grid = np.geomspace(1e-2, 80, int(sigmas))
    few = grid[: int(naive_sigmas)]

    def naive():
        return [torch.log_softmax(-squared_distances(X + s * Z, T) / (2 * s * s), 1) for s in few]

    one = dict(w_points="heldout", chunk=256)   # one pass over the queries: the cost per query point
    t = timed_together({"distance matrix": lambda: squared_distances(X + 0.5 * Z, T),
                        "W and C": lambda: weight_and_coverage(X, T, grid, **one),
                        "W and C, float64": lambda: weight_and_coverage(X, T, grid, precision="float64", **one),
                        "naive, few sigmas": naive}, repeats, device, desc="W and C")
    t_naive = t["naive, extrapolated"] = t["naive, few sigmas"] / len(few) * len(grid)
    d = t["distance matrix"]
    ratios = {WC_RATIO: t["W and C"] / d,
              "W and C, float64 sigma pass / one distance matrix": t["W and C, float64"] / d,
              "naive (distances per sigma) / one distance matrix": t_naive / d,
              "speed-up of the one-pass estimator over the naive one": t_naive / t["W and C"],
              "speed-up of W and C with the float32 sigma pass over float64 (whole estimator)":
                  t["W and C, float64"] / t["W and C"]}
    settings = dict(train=int(train), queries=int(queries), dim=int(dim), sigmas=int(sigmas),
                    naive_sigmas=int(naive_sigmas), repeats=int(repeats))
    return dict(_stamp(device), settings=settings, ratios=ratios, seconds=t)


def regimes_scaling(train_sizes: Sequence[int] = (1000, 2000, 5000, 10_000), queries: int = 1_000,
                    dim: int = 3072, sigmas: int = 64, repeats: int = 3, device: str = "cpu") -> dict:
    """How the cost of W and C grows with the training-set size N (the first N points of one draw).

    Rows: ``N``, ``wc_per_distance``, ``wc_growth`` and ``distance_growth`` (cost at N / at the
    smallest N), ``N_growth`` and seconds.
    """
    sizes = sorted(int(n) for n in train_sizes)
    if not sizes or sizes[0] < 1:
        raise ValueError(f"train_sizes must be positive integers, got {list(train_sizes)}.")
    T, X, Z = _regimes_data(sizes[-1], queries, dim, device)
    grid = np.geomspace(1e-2, 80, int(sigmas))
    fns = {}
    for n in sizes:
        fns[f"distance {n}"] = lambda n=n: squared_distances(X + 0.5 * Z, T[:n])
        fns[f"W and C {n}"] = lambda n=n: weight_and_coverage(X, T[:n], grid, w_points="heldout", chunk=256)
    t = timed_together(fns, repeats, device, desc="W and C vs N")
    n0 = sizes[0]
    rows = [{"N": n, "distance_seconds": t[f"distance {n}"], "wc_seconds": t[f"W and C {n}"],
             "wc_per_distance": t[f"W and C {n}"] / t[f"distance {n}"],
             "wc_growth": t[f"W and C {n}"] / t[f"W and C {n0}"],
             "distance_growth": t[f"distance {n}"] / t[f"distance {n0}"], "N_growth": n / n0} for n in sizes]
    settings = dict(train_sizes=sizes, queries=int(queries), dim=int(dim), sigmas=int(sigmas), repeats=int(repeats))
    return dict(_stamp(device), settings=settings, rows=rows)


# -- chapter 06 -------------------------------------------------------------------------------------

GPU_FIGURES = {"flipd_images_per_s": "FLIPD (1 probe, SD v1.5 UNet), images/s",
               "flipd_forward_passes": "FLIPD, forward passes",
               "volume_images_per_s": "volume growth (N=100, K=1000, DDPM UNet), images/s",
               "volume_step_per_forward": "volume, one step / forward of N+1 rows",
               "wc_seconds": "W and C (50k x 10k x 3072, 64 sigmas), s",
               "wc_per_distance_matrix": "W and C / one distance matrix"}


def gpu_records(folder: str | Path) -> pd.DataFrame:
    """The papers'-scale figures of every ``gpu-*.json`` that ``make gpu-check`` wrote to ``folder``."""
    records = [json.loads(f.read_text()) for f in sorted(Path(folder).glob("gpu-*.json"))]
    rows = [{"device": r.get("device_name"), "date": r.get("date"), "precision": mode,
             **{v: m[k] for k, v in GPU_FIGURES.items()}}
            for r in records for mode in ("float32", "tf32") if (m := (r.get("paper_scale") or {}).get(mode))]
    return pd.DataFrame(rows, columns=["device", "date", "precision", *GPU_FIGURES.values()])


@dataclass(frozen=True)
class PerformanceResult:
    """What chapter 06 shows: its tables and its summary."""

    costs: pd.DataFrame         # forward passes per image (estimator x model); last row: the forward pass in ms
    volume: pd.DataFrame        # volume growth against the authors' loop and the limit (quantity x model)
    wc: pd.DataFrame            # W and C on the sigma grid: ratios, then seconds
    scaling: pd.DataFrame       # W and C against the training-set size N (index: N)
    targets: pd.DataFrame       # the headline ratios beside the issues' targets
    gpu: pd.DataFrame           # make gpu-check's records, one row per device and precision
    summary: dict


def run(settings, *, seed: int, device: str, cache, headline_images: int = 2, headline_steps: int = 1,
        records: str | Path = "book/measurements") -> PerformanceResult:
    """Chapter 06: each estimator's cost, volume growth against the authors' loop, W and C against N.

    Args:
        settings: a ``mempkg.book.profiles.Performance``; seed: weights, inputs, probes and noise.
        cache: reuses a measurement for the same settings, seed, machine and code (:func:`code_digest`).
        headline_images, headline_steps: volume growth on ``settings.headline_model``.
        records: the folder of ``make gpu-check``'s records (``gpu-*.json``).
    """
    start, S = time.time(), settings
    key = dict(asdict(S), seed=seed, machine=machine(device), code=code_digest())
    costs = cache.get("estimator_costs", key, lambda: estimator_costs(
        S.cost_models, S.batch, t0=S.t0, exact_max_dim=S.exact_max_dim, n_axes=S.n_axes, n_steps=S.n_steps,
        n_sigmas=S.n_sigmas, n_train=S.n_train, cfg_t0=S.cfg_t0, cfg_steps=S.cfg_steps, repeats=S.repeats,
        device=device, seed=seed))
    volume = cache.get("volume_speedup", key, lambda: volume_speedup(
        S.volume_models, S.volume_images, S.volume_axes, S.volume_steps, S.repeats, device=device, seed=seed))
    volume_head = cache.get("volume_speedup_headline", dict(key, images=headline_images, steps=headline_steps),
                            lambda: volume_speedup([S.headline_model], headline_images, S.volume_axes,
                                                   headline_steps, S.repeats, device=device, seed=seed))
    wc = cache.get("regimes_cost", key, lambda: regimes_cost(
        S.wc_train, S.wc_queries, S.wc_dim, S.wc_sigmas, S.wc_naive_sigmas, S.repeats, device=device))
    scaling = cache.get("regimes_scaling", key, lambda: regimes_scaling(
        S.wc_train_sizes, S.wc_queries, S.wc_dim, S.wc_sigmas, S.repeats, device=device))

    cost_table = pd.DataFrame({r["model"]: r["costs"] for r in costs["rows"]})
    cost_table.loc[f"(forward pass, ms per batch of {S.batch})"] = [1e3 * r["forward_seconds"] for r in costs["rows"]]
    runs = [(r, S.volume_images, S.volume_steps) for r in volume["rows"]] + \
        [(r, headline_images, headline_steps) for r in volume_head["rows"]]
    vol_table = pd.DataFrame({f"{r['model']} (B = {n}, steps = {k})": {
        "authors' loop / finite (speed-up of the default)": r["speedup_finite"],
        "authors' loop / jvp": r["speedup_jvp"], "authors' loop / limit": r["authors_per_limit"],
        "finite / limit": r["finite_per_limit"], "jvp / limit": r["jvp_per_limit"],
        "max. relative difference of L (authors' loop vs finite)": r["max_rel_diff_L"],
        "(finite, images per second)": r["images_per_second_finite"]} for r, n, k in runs})
    wc_table = pd.Series({**wc["ratios"], **{f"({k}, seconds)": v for k, v in wc["seconds"].items()
                                             if k != "naive, few sigmas"}}).to_frame("value")
    sc = pd.DataFrame(scaling["rows"]).set_index("N")
    exponent = float(np.polyfit(np.log(sc.index.to_numpy(float)), np.log(sc["wc_seconds"].to_numpy()), 1)[0])

    head = next(r for r in costs["rows"] if r["name"] == S.headline_model)
    c, hv = head["costs"], volume_head["rows"][0]
    flipd_jvp, flipd_vjp, flipd_limit = c["FLIPD, 1 probe, jvp"], c["FLIPD, 1 probe, vjp"], c[FLIPD_LIMIT]
    r8 = next((r for r in volume["rows"] + volume_head["rows"] if r["name"] == "unet_1x8x8"), None)
    cfg = [v for r in costs["rows"] for k, v in r["costs"].items() if k.startswith("CFG norm")]
    wr, fields = wc["ratios"], ("speedup_finite", "speedup_jvp", "finite_per_limit", "jvp_per_limit",
                                "authors_per_limit")      # summary keys: volume_<field> ("speedup" for the first)
    targets = pd.DataFrame([  # quantity, measured on, ours, the target an issue set or the limit
        ("FLIPD, 1 probe, faster of jvp and vjp (forward passes)", head["model"], min(flipd_jvp, flipd_vjp), "<= 4"),
        ("FLIPD by vjp / its limit (forward + one VJP)", head["model"], flipd_vjp / flipd_limit, "1"),
        ("volume growth, authors' loop / finite (speed-up)", hv["model"], hv["speedup_finite"], ">= 10"),
        ("volume growth, finite / its limit", hv["model"], hv["finite_per_limit"], "1"),
        ("W and C on the grid / one distance matrix", f"N = {S.wc_train}", wr[WC_RATIO], "<= 3"),
        ("power-law exponent of W and C's seconds in N", f"N = {sc.index[0]} to {sc.index[-1]}", exponent, "1"),
    ], columns=["quantity", "on", "ours", "target"])
    summary = {
        "flipd_cost_per_forward": flipd_jvp, "flipd_cost_per_forward_vjp": flipd_vjp,
        "volume_cost_per_axis_step": c["volume growth per axis-step, finite"],
        "volume_cost_per_axis_step_jvp": c["volume growth per axis-step, jvp"],
        "one_step_cost_per_sigma": c["one-step memorization per sigma"],
        "cfg_norm_cost_per_forward": cfg[0] if cfg else None, "headline_model": head["model"],
        "flipd_limit_per_forward": flipd_limit, "flipd_vjp_per_limit": flipd_vjp / flipd_limit,
        "flipd_jvp_per_limit": flipd_jvp / flipd_limit,
        "volume_speedup_model": hv["model"], **{f"volume_{f.replace('_finite', '')}": hv[f] for f in fields},
        **{f"volume_{f.replace('_finite', '')}_1x8x8": r8[f] for f in fields if r8},
        "volume_max_rel_diff_L": max(r["max_rel_diff_L"] for r, _, _ in runs),
        "wc_cost_per_distance": wr[WC_RATIO],
        "wc_naive_speedup": wr["speed-up of the one-pass estimator over the naive one"],
        "wc_float32_speedup": wr["speed-up of W and C with the float32 sigma pass over float64 (whole estimator)"],
        "wc_cost_growth": float(sc["wc_growth"].iloc[-1]), "wc_train_growth": float(sc["N_growth"].iloc[-1]),
        "wc_cost_exponent": exponent, "machine": costs["machine"], "measured_at": costs["measured_at"],
        "seconds": time.time() - start}
    return PerformanceResult(cost_table, vol_table, wc_table, sc, targets, gpu_records(records),
                             {k: v for k, v in summary.items() if v is not None})
