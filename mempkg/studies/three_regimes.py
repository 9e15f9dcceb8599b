"""Chapter 03: where in noise a denoiser memorizes, and gap training (Dodson et al.).

Held-out X, training set {x_i}, noisy Y = X + sigma Z. On a log grid of sigma:

* the one-step copy rate of a denoiser D: the share of g = D(Y; sigma) with d_1(g) < d_2(g) / 3
  against the training set, and the train/test MSE gap E|D(Y) - X|^2 (held-out minus training),
  for the empirical optimal denoiser and two EDM models (paper Figs. 1 and 2);
* W_sigma = E[max_i w_i(Y, sigma)] and C_sigma = P(Y in union_i Sh_sigma(x_i)), and the danger zone
  where both exceed a threshold (Figs. 3 and 5; :mod:`mempkg.estimators.regimes`);
* gap training: EDM models trained without one band of sigma each -- the danger zone of one class
  (the gap), an equal-mass band beside it (the dummy) and the other equal-mass bands -- against a
  baseline, compared by the copy rate of their generations and a Frechet distance (Figs. 4 and 5).

One function per experiment (:func:`denoiser_sweeps`, :func:`danger_zone_share`, :func:`gap_training`),
each returning its own frozen dataclass; :func:`run` chains them and :func:`summarize` writes the
chapter's summary.

Layer: studies (imports core, estimators, models, data).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ..data.images import load_images
from ..estimators.memorization import copies
from ..estimators.quality import (DigitsFeatureNet, check_inception, classifier_accuracy, classifier_features,
                                  fit_classifier, frechet_distance, frechet_distance_bootstrap, inception_features)
from ..estimators.regimes import BandShare, EmpiricalDenoiser, danger_zone, laurent_massart_radii, noise_sweep, \
    share_in_band, weight_and_coverage
from ..models.edm import EDMLoss, EDMPrecond, edm_sigmas, equal_mass_bands, euler_sampler, sample_edm, \
    train_edm_cached
from ..models.networks import unet_eps

__all__ = ["DenoiserSweeps", "DangerZone", "DenoiserSwap", "GapTraining", "ThreeRegimesResult", "run"]


# -- results ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DenoiserSweeps:
    """Paper Figs. 1 and 2: MSE and one-step copy rate of three denoisers on the sigma grid."""

    names: dict                     # role ("emp", "small", "whole") -> denoiser name, e.g. "EDM-128"
    models: dict                    # role -> the denoiser (EmpiricalDenoiser or EDMPrecond)
    sweeps: dict                    # name -> {"test": ..., "train": ...}, each NoiseSweep's fields
    rate: np.ndarray                # [S] the small EDM model's copy rate of held-out inputs
    rate_se: np.ndarray             # [S] its binomial standard error, over images
    gap: np.ndarray                 # [S] its MSE gap, held-out minus training
    gap_se: np.ndarray              # [S] the gap's standard error, over images
    table: pd.DataFrame             # per denoiser: training images, peak copy rate and where, the ends


@dataclass(frozen=True)
class DangerZone:
    """Paper Figs. 3 and 5: W and C per training set, the danger zone, the copying inside it."""

    regimes: dict                   # "<N> training images" -> Regimes' fields (W, C, ...)
    zones: dict                     # "<N> training images" -> (sigma_low, sigma_high), nan when none
    zone: tuple                     # the small training set's zone
    in_zone: Optional[BandShare]    # the small model's copying inside it; None when undecided
    best_window: Optional[tuple]    # (sigma_low, sigma_high, share): the densest band of the zone's width
    best_other: Optional[tuple]     # the same among the bands that share no grid point with the zone
    reason: Optional[str]           # why the share is undecided, else None
    table: pd.DataFrame             # per training set: the zone's edges
    readings: pd.DataFrame          # the small set's zone under the paper's definitions and the earlier reading
    thresholds: pd.DataFrame        # the small set's zone under each threshold and shell constant c
    share: pd.DataFrame             # the small model's copying: in the zone, on the grid, densest bands


@dataclass(frozen=True)
class DenoiserSwap:
    """Paper Sec. 3, Table 1, Fig. 10: the memorizing model hands one window of Euler steps to the generalizing
    model (and the reverse); the share of generations that copy a training image, per window."""

    sigmas: np.ndarray              # [K + 1] the Euler grid, ending in 0
    names: dict                     # "memorizer", "generalizer" -> model name
    alone: dict                     # direction -> {"copy_rate", "copy_rate_se", "n"} with no step swapped
    rows: list                      # per direction and window: {window, name, steps, direction, copy_rate, ...}
    reason: Optional[str]           # why the small/medium/large windows are missing, else None
    table: pd.DataFrame             # the rows as a table


@dataclass(frozen=True)
class GapTraining:
    """Paper Figs. 4 and 5: models trained without a band of sigma each, against a baseline."""

    train_images: Tensor            # the class subset the models train on
    n_test: int                     # held-out images of the class
    n_in_split: int                 # images of the class in the training split
    regimes: dict                   # W, C, ... of the class subset
    band: tuple                     # the class subset's danger zone: the gap
    dummy: tuple                    # the equal-mass band beside it
    tiles: list                     # every equal-mass band one model skips, in sigma order
    losses: dict                    # model name -> EDMLoss ("baseline", then one per tile)
    label: dict                     # role ("baseline", "gap", "dummy") -> model name
    seeds: list                     # the training seeds of baseline, gap and dummy (the other bands: the first)
    generations: dict               # model name -> Tensor of samples, first seed
    mem_rate: dict                  # model name -> share of generations that copy a training image, mean over seeds
    mem_se: dict                    # model name -> standard error over seeds (binomial with one seed)
    fd: dict                        # model name -> Frechet distance to the held-out class, mean over seeds
    fd_se: dict                     # model name -> standard error over seeds (bootstrap with one seed)
    fd_diff_se: dict                # model name (not the gap) -> s.e. of FD(gap) - FD(model), paired by seed
    by_seed: pd.DataFrame           # per arm and seed: copy rate and Frechet distance
    fd_copy: float                  # the training images' own Frechet distance
    fd_name: str                    # "FID (Inception)" or "FD (digits-classifier features)"
    classifier_accuracy: Optional[float]   # the feature classifier's held-out accuracy
    sweep: dict                     # the baseline's one-step NoiseSweep on held-out class images
    setup: pd.DataFrame             # the subset, the gap and the dummy
    table: pd.DataFrame             # per model: skipped share, copy rate, Frechet distance
    at_peak: pd.DataFrame           # W and C where the baseline's one-step copying peaks

    @property
    def bands(self) -> list:
        """The gap-band models' names, in sigma order."""
        return list(self.losses)[1:]

    @property
    def best(self) -> list:
        """The gap-band models with the lowest copy rate (several on a tie)."""
        lowest = min(self.mem_rate[n] for n in self.bands)
        return [n for n in self.bands if self.mem_rate[n] == lowest]


@dataclass(frozen=True)
class ThreeRegimesResult:
    """What chapter 03 shows: the sweeps, the danger zone, gap training, and the summary."""

    sigmas: np.ndarray              # [S] log-spaced from sigma_min to sigma_max
    data: pd.DataFrame              # the training images' pixel standard deviation against sigma_data
    denoisers: DenoiserSweeps
    zone: DangerZone
    swap: DenoiserSwap
    gap: GapTraining
    summary: dict                   # the chapter's summary.json (without verdicts)


# -- the experiments --------------------------------------------------------------------------------

def _edm(settings, cache, name, images, loss, steps, batch_size, *, seed, device):
    """An EDM model (the ``preset`` UNet, EDM preconditioning) trained on ``images``, cached."""
    shape = tuple(images.shape[1:])
    build = lambda: EDMPrecond(unet_eps(shape, settings.preset, seed=seed), sigma_data=settings.sigma_data)  # noqa: E731
    return train_edm_cached(cache, name, build, dict(preset=settings.preset, shape=list(shape), seed=seed), images,
                            steps, loss=loss, seed=seed, device=device, lr=settings.lr, batch_size=batch_size)[0]


def denoiser_sweeps(settings, train: Tensor, test: Tensor, sigmas, *, seed, device, cache) -> DenoiserSweeps:
    """MSE and one-step copy rate of EMP, EDM on ``n_small`` images and EDM on all, held-out and training.

    g = D(x + sigma z; sigma) is a copy when d_1(g) < d_2(g) / 3 (Dodson et al., after Carlini et al.); the
    copy rate's standard error is binomial, sqrt(p (1 - p) / n), the MSE gap's the two means' over images.
    """
    S, loss = settings, EDMLoss(sigma_data=settings.sigma_data)
    small = train[: S.n_small]
    names = {"emp": f"EMP-{S.n_small}", "small": f"EDM-{S.n_small}", "whole": f"EDM-{len(train)}"}
    fit = lambda name, x: _edm(S, cache, name, x, loss, S.train_steps, S.batch_size, seed=seed, device=device)  # noqa: E731
    models = {names["emp"]: EmpiricalDenoiser(small), names["small"]: fit("edm_small", small),
              names["whole"]: fit("edm_whole", train)}
    train_sets = {names["emp"]: small, names["small"]: small, names["whole"]: train}
    sweeps = {}
    for name, D in models.items():
        tr = train_sets[name]
        sweeps[name] = cache.get(f"sweep_{name}", dict(asdict(S), seed=seed, per_image=True), lambda: {
            "test": vars(noise_sweep(D, test.to(device), tr, sigmas, seed=seed)),
            "train": vars(noise_sweep(D, tr[: S.n_test].to(device), tr, sigmas, seed=seed + 1))},
            inputs={"denoiser": D, "test": test, "train": tr})
    sw_test, sw_train = sweeps[names["small"]]["test"], sweeps[names["small"]]["train"]
    rate = np.asarray(sw_test["mem_rate"])
    rate_se = np.sqrt(rate * (1 - rate) / len(test))                                  # binomial, over images
    gap = np.asarray(sw_test["mse"]) - np.asarray(sw_train["mse"])
    gap_se = np.sqrt(np.asarray(sw_test["mse_per_image"]).var(1, ddof=1) / len(test)
                     + np.asarray(sw_train["mse_per_image"]).var(1, ddof=1) / len(sw_train["mse_per_image"][0]))
    table = pd.DataFrame([_peaks(name, len(train_sets[name]), sigmas, sw) for name, sw in sweeps.items()])
    roles = {name: role for role, name in names.items()}
    return DenoiserSweeps(names, {roles[n]: D for n, D in models.items()}, sweeps, rate, rate_se, gap, gap_se,
                          table.set_index("denoiser"))


def _column(name: str, values: dict) -> pd.DataFrame:
    """One column of mixed values (counts stay integers), a row per quantity."""
    return pd.DataFrame({name: pd.Series(values, dtype=object)})


def _peaks(name, n_train, sigmas, sweep) -> dict:
    """One denoiser's row: where its copy rate and its MSE gap peak, and the rate at both ends."""
    rate = np.asarray(sweep["test"]["mem_rate"])
    gap = np.asarray(sweep["test"]["mse"]) - np.asarray(sweep["train"]["mse"])
    return {"denoiser": name, "training images": n_train, "peak copy rate": float(rate.max()),
            "sigma of the peak": float(sigmas[rate.argmax()]), "copy rate, smallest sigma": float(rate[0]),
            "copy rate, largest sigma": float(rate[-1]), "sigma of the MSE gap's peak": float(sigmas[gap.argmax()])}


def regimes_of(settings, test: Tensor, train: Tensor, sigmas, name: str, *, seed, device, cache, **reading) -> dict:
    """W_sigma and C_sigma of ``train`` (C over held-out ``test``; :func:`weight_and_coverage`), cached.

    The reading (``w_points``, ``shell``, ``shell_c``, ``alpha``) is the settings', each overridable."""
    S = settings
    how = dict(w_points=S.w_points, shell=S.shell, shell_c=S.shell_c, alpha=S.alpha, n_w_points=S.n_w_points) | reading
    return cache.get(name, dict(asdict(S), seed=seed, **how), lambda: vars(
        weight_and_coverage(test.to(device), train.to(device), sigmas, seed=seed, **how)),
        inputs={"test": test, "train": train})


EARLIER = dict(w_points="heldout", shell="chi2")    # the book's reading before the paper's definitions were found


def _reading_name(w_points, shell, c, alpha) -> str:
    where = "training points" if w_points == "train" else "held-out points"
    band = f"Laurent-Massart shell, c = {c:g}" if shell == "laurent_massart" else f"central {1 - alpha:.0%} chi-square band"
    return f"W over {where}, {band}"


def danger_zone_share(settings, train: Tensor, test: Tensor, sigmas, sweeps: DenoiserSweeps, *, seed, device, cache,
                      profile: str = "") -> DangerZone:
    """The danger zone {sigma : W_sigma >= threshold and C_sigma >= threshold} of ``n_small`` images and of all,
    and the share of the small model's copying inside it (:func:`share_in_band`, bootstrap over images) against
    the zone's share of the grid and against every other band of the same number of grid points.

    The threshold is the book's rule (the paper picks the zone by eye): the zone's edges under each of
    ``zone_thresholds`` and ``zone_shell_cs`` are tabulated, and under the book's earlier reading."""
    S = settings
    small = train[: S.n_small]
    regimes = {f"{len(tr)} training images": regimes_of(S, test, tr, sigmas, f"regimes_{len(tr)}", seed=seed,
                                                        device=device, cache=cache)
               for tr in (small, train)}
    zones = {name: danger_zone(sigmas, r["W"], r["C"], S.threshold) for name, r in regimes.items()}
    lo, hi = zones[f"{S.n_small} training images"]
    d = int(np.prod(small.shape[1:]))
    by_c = {c: regimes_of(S, test, small, sigmas, f"regimes_{len(small)}_c{c:g}", seed=seed, device=device,
                          cache=cache, shell="laurent_massart", shell_c=c) for c in S.zone_shell_cs}
    thresholds = pd.DataFrame([{"threshold": t, "shell constant c": c, "r_in": laurent_massart_radii(d, c)[0],
                                "r_out": laurent_massart_radii(d, c)[1],
                                **dict(zip(("danger zone, low sigma", "danger zone, high sigma"),
                                           danger_zone(sigmas, r["W"], r["C"], t)))}
                               for c, r in by_c.items() for t in S.zone_thresholds])
    earlier = regimes_of(S, test, small, sigmas, f"regimes_{len(small)}_earlier", seed=seed, device=device,
                         cache=cache, **EARLIER)
    readings = pd.DataFrame([{"reading": _reading_name(r["w_points"], r["shell"], r["shell_param"], S.alpha),
                              "r_in": r["r_lo"], "r_out": r["r_hi"],
                              **dict(zip(("danger zone, low sigma", "danger zone, high sigma"),
                                         danger_zone(sigmas, r["W"], r["C"], S.threshold)))}
                             for r in (regimes[f"{S.n_small} training images"], earlier)]).set_index("reading")
    rate = sweeps.rate
    in_zone = best_window = best_other = None
    reason = None if np.isfinite(lo) else (f"W and C of the {S.n_small}-image set never both exceed the threshold "
                                           f"{S.threshold} on the sigma grid under profile {profile}")
    if reason is None and rate.sum() > 0:
        copied = sweeps.sweeps[sweeps.names["small"]]["test"]["copied_per_image"]
        in_zone = share_in_band(sigmas, copied, (lo, hi), seed=seed)
        best_window, best_other = densest_windows(sigmas, rate, in_zone.inside)
    elif reason is None:
        reason = f"{sweeps.names['small']} copies no held-out input at any sigma, so its copying has no share anywhere"
    table = pd.DataFrame([{"training set": name, "danger zone, low sigma": z[0], "danger zone, high sigma": z[1]}
                          for name, z in zones.items()]).set_index("training set")
    peak = float(sigmas[rate.argmax()])
    band = lambda w, i: w[i] if w else np.nan  # noqa: E731
    share = _column(sweeps.names["small"], {
        "copy-rate peak sigma": peak, "peak inside the zone": bool(lo <= peak <= hi),
        "share of the copying in the zone": in_zone.share if in_zone else np.nan,
        "bootstrap s.e.": in_zone.se if in_zone else np.nan,
        "zone's share of the grid": in_zone.grid_share if in_zone else np.nan,
        "densest band of that width, low": band(best_window, 0), "densest band, high": band(best_window, 1),
        "densest band's share": band(best_window, 2),
        "densest band outside the zone, low": band(best_other, 0), "densest band outside, high": band(best_other, 1),
        "densest band outside's share": band(best_other, 2),
        "undecided because": reason or ""})
    return DangerZone(regimes, zones, (lo, hi), in_zone, best_window, best_other, reason, table, readings,
                      thresholds, share)


def densest_windows(sigmas, rate, inside) -> tuple[tuple, Optional[tuple]]:
    """(lo, hi, share) of the densest run of ``inside.sum()`` grid points, and of the densest one that shares
    no grid point with ``inside`` (None when no such run fits on the grid)."""
    width, where = int(inside.sum()), np.flatnonzero(inside)
    starts = range(len(sigmas) - width + 1)
    shares = {i: float(rate[i: i + width].sum() / rate.sum()) for i in starts}
    band = lambda i: (float(sigmas[i]), float(sigmas[i + width - 1]), shares[i])  # noqa: E731
    outside = [i for i in starts if i + width - 1 < where[0] or i > where[-1]]
    return band(max(shares, key=shares.get)), (band(max(outside, key=shares.get)) if outside else None)


PAPER_WINDOWS = {"paper's small": range(14, 18), "paper's medium": range(6, 14), "paper's large": range(0, 6)}
# Dodson et al.'s CIFAR-10 windows on the 18-step EDM grid (Table 1, Fig. 10): medium = steps 6..13, sigma 8.4..0.14


def denoiser_swap(settings, sweeps: DenoiserSweeps, small: Tensor, zone: tuple, *, seed, device,
                  cache) -> DenoiserSwap:
    """Euler sampling on the EDM grid (:func:`edm_sigmas`, ``swap_steps`` levels + 0) with the memorizing model
    (EDM on ``n_small`` images) or the generalizing one (EDM on all), one window of steps handed to the other.

    Windows: below the danger zone (small), inside it (medium), above it (large), and each single step; step i
    belongs to a window when sigma_i does. On the paper's 18-step grid, the paper's CIFAR-10 windows by step
    index too (:data:`PAPER_WINDOWS`): the same steps, whatever the zone of this run's data. A generation copies when d_1 < d_2 / 3 against the ``n_small`` images;
    the standard error is binomial over ``swap_n`` generations. Every run starts from the same noise, and a run
    that swaps from step k on starts from the unswapped run's state at step k.
    """
    S = settings
    mem, gen = sweeps.models["small"], sweeps.models["whole"]
    names = {"memorizer": sweeps.names["small"], "generalizer": sweeps.names["whole"]}
    grid = edm_sigmas(S.swap_steps)
    steps = grid[:-1].numpy()
    lo, hi = zone
    windows = {f"step {i}": np.arange(len(steps)) == i for i in range(len(steps))}
    reason = None
    if np.isfinite(lo):
        windows = {"small": steps < lo, "medium": (steps >= lo) & (steps <= hi), "large": steps > hi} | windows
        empty = [w for w in ("small", "medium", "large") if not windows[w].any()]
        reason = (f"no step of the {S.swap_steps}-step grid falls in the {', '.join(empty)} window of the danger zone "
                  f"[{lo:.3g}, {hi:.3g}]") if empty else None
    else:
        reason = "there is no danger zone to take the small, medium and large windows from"
    if S.swap_steps == 18:
        windows |= {name: np.isin(np.arange(len(steps)), idx) for name, idx in PAPER_WINDOWS.items()}

    def compute():
        g = torch.Generator().manual_seed(int(seed) + 2)
        x0 = (float(grid[0]) * torch.randn((S.swap_n, *small.shape[1:]), generator=g, dtype=torch.float64))
        x0 = x0.to(device=device, dtype=torch.float32)
        alone, rows = {}, []
        for direction, base, donor in (("memorizer runs", mem, gen), ("generalizer runs", gen, mem)):
            states = euler_sampler(base, x0, grid, states=True)
            alone[direction] = _copy_rate(states[-1], small)
            for name, mask in windows.items():
                if not mask.any():
                    continue
                k = int(np.flatnonzero(mask)[0])
                out = euler_sampler([donor if m else base for m in mask[k:]], states[k], grid[k:])
                rows.append({"name": name, "direction": direction, "steps": np.flatnonzero(mask).tolist(),
                             "window": [float(steps[mask].min()), float(steps[mask].max())], **_copy_rate(out, small)})
        return {"alone": alone, "rows": rows}

    got = cache.get("swap", dict(asdict(S), seed=seed, windows={k: v.tolist() for k, v in windows.items()}), compute, inputs={"memorizer": mem, "generalizer": gen,
                                                                         "train": small})
    rows = [r | _flip(r, got["alone"]) for r in got["rows"]]
    table = pd.DataFrame([{"direction": r["direction"], "window": r["name"], "sigma low": r["window"][0],
                           "sigma high": r["window"][1], "copy rate": r["copy_rate"], "s.e.": r["copy_rate_se"],
                           "n": r["n"], "flip toward the donor": r["flip"], "flip s.e.": r["flip_se"]}
                          for r in rows])
    return DenoiserSwap(grid.numpy(), names, got["alone"], rows, reason, table)


def _copy_rate(x: Tensor, train: Tensor) -> dict:
    p = float(copies(x.cpu(), train)[0].float().mean())
    return {"copy_rate": p, "copy_rate_se": (p * (1 - p) / len(x)) ** 0.5, "n": len(x)}      # binomial


def _flip(row: dict, alone: dict) -> dict:
    """How far the swap moved the copy rate from the base model's own toward the donor's:
    f = (r - r_base) / (r_donor - r_base), 0 the base's outcome, 1 the donor's; its standard error from the three
    rates' binomial ones. Undefined (None) when the two models' own rates are within two standard errors."""
    other = "generalizer runs" if row["direction"] == "memorizer runs" else "memorizer runs"
    base, donor = alone[row["direction"]], alone[other]
    delta = donor["copy_rate"] - base["copy_rate"]
    delta_se = (donor["copy_rate_se"] ** 2 + base["copy_rate_se"] ** 2) ** 0.5
    if abs(delta) <= 2 * delta_se:
        return {"flip": None, "flip_se": None}
    f = (row["copy_rate"] - base["copy_rate"]) / delta
    se = (row["copy_rate_se"] ** 2 + (1 - f) ** 2 * base["copy_rate_se"] ** 2 + f ** 2 * donor["copy_rate_se"] ** 2)
    return {"flip": f, "flip_se": se ** 0.5 / abs(delta)}


def gap_training(settings, train, sigmas, *, seed, device, cache) -> GapTraining:
    """Train a baseline and one model per equal-mass band of sigma skipped, on one class; rate their samples.

    Gap training draws ln sigma from EDM's log-normal conditioned on lying outside the band
    (``EDMLoss(gap=...)``); the bands tile the sigma axis with the log-normal mass of the class subset's
    danger zone (:func:`equal_mass_bands`). A generation copies when d_1 < d_2 / 3 against the subset;
    sample quality is a Frechet distance to the held-out class (Inception or a digits classifier's features).
    Baseline, gap and dummy are trained with ``gap_seeds`` seeds, the other bands with the first; a rate's
    standard error is over seeds (binomial over generations when a band has one seed).

    Args:
        train: the training split (an ImageSet with labels).
    """
    S, loss = settings, EDMLoss(sigma_data=settings.sigma_data)
    if S.gap_seeds < 2:
        raise ValueError(f"gap_seeds must be at least 2 (got {S.gap_seeds}): the gap verdicts' errors are over seeds.")
    shape = train.image_shape
    cls_train = train.x[train.labels == S.gap_class][: S.gap_n_train]
    cls_test = load_images(S.data, "test", download=S.download, md5=S.data_md5)
    cls_test = cls_test.x[cls_test.labels == S.gap_class]
    cls_regimes = regimes_of(S, cls_test, cls_train, sigmas, "regimes_class", seed=seed, device=device, cache=cache)
    band = danger_zone(sigmas, cls_regimes["W"], cls_regimes["C"], S.threshold)
    if not np.isfinite(band[0]):
        raise RuntimeError("W and C of the class subset never exceed the threshold together: no danger zone to "
                           "skip; lower `threshold` or use a larger `n_sigmas`.")
    tiles = equal_mass_bands(loss, band, S.gap_max_per_side)
    i_gap = tiles.index(band)
    dummy = tiles[i_gap - 1] if i_gap > 0 else tiles[i_gap + 1]
    losses = {"baseline": loss} | {f"gap [{a:.3g}, {b:.3g}]": EDMLoss(sigma_data=S.sigma_data, gap=(a, b))
                                   for a, b in tiles}
    label = {"baseline": "baseline", "gap": f"gap [{band[0]:.3g}, {band[1]:.3g}]",
             "dummy": f"gap [{dummy[0]:.3g}, {dummy[1]:.3g}]"}
    seeds = [int(seed) + k for k in range(S.gap_seeds)]
    arms = set(label.values())
    runs = [(name, i, sd) for i, name in enumerate(losses) for sd in (seeds if name in arms else seeds[:1])]
    models = {(name, sd): _edm(S, cache, f"class_{name.split(' ')[0]}_{i}" + (f"_seed{sd}" if sd != seed else ""),
                               cls_train, losses[name], S.gap_train_steps, S.gap_batch_size, seed=sd, device=device)
              for name, i, sd in runs}
    generations = {(name, sd): cache.get(f"generations_{i}" + (f"_seed{sd}" if sd != seed else ""),
                                         dict(asdict(S), seed=sd, model=name), lambda: sample_edm(
        models[name, sd], S.n_generations, shape, S.sample_steps, seed=sd + 1, device=device),
        inputs={"model": models[name, sd]}) for name, i, sd in runs}
    rate = {k: float(copies(g, cls_train)[0].float().mean()) for k, g in generations.items()}
    single = [k for k in generations if k[0] not in arms]       # one seed: their s.e. comes from the bootstrap
    quality = _frechet(S, train, cls_train, cls_test, generations, single, seed=seed, device=device, cache=cache)
    sweep = cache.get("sweep_class_baseline", dict(asdict(S), seed=seed), lambda: vars(
        noise_sweep(models["baseline", seed], cls_test.to(device), cls_train, sigmas, seed=seed)),
        inputs={"model": models["baseline", seed], "test": cls_test, "train": cls_train})
    per = {name: [sd for n, _, sd in runs if n == name] for name in losses}
    mem_rate = {n: float(np.mean([rate[n, sd] for sd in per[n]])) for n in losses}
    mem_se = {n: _se([rate[n, sd] for sd in per[n]]) if len(per[n]) > 1 else
              (mem_rate[n] * (1 - mem_rate[n]) / S.n_generations) ** 0.5 for n in losses}
    fd = {n: float(np.mean([quality["fd"][n, sd] for sd in per[n]])) for n in losses}
    fd_se = {n: _se([quality["fd"][n, sd] for sd in per[n]]) if len(per[n]) > 1 else quality["fd_se"][n, seed]
             for n in losses}
    fd_diff_se = {n: _se([quality["fd"][label["gap"], sd] - quality["fd"][n, sd] for sd in per[n]])
                  if len(per[n]) > 1 else None for n in losses if n != label["gap"]}     # paired by seed
    n_in_split = int((train.labels == S.gap_class).sum())
    setup = _column("value", {
        "class": S.gap_class, "training images": len(cls_train), "held-out images": len(cls_test),
        "of the class in the training split": n_in_split, "gap, low sigma": band[0], "gap, high sigma": band[1],
        "gap's skipped share": losses[label["gap"]].excluded_mass, "dummy, low sigma": dummy[0],
        "dummy, high sigma": dummy[1], "dummy's skipped share": losses[label["dummy"]].excluded_mass,
        "bands": len(tiles), "seeds of baseline, gap and dummy": len(seeds),
        "feature classifier's held-out accuracy": quality["accuracy"]})
    table = pd.DataFrame([{"model": name, "role": next((r for r, n in label.items() if n == name), "band"),
                           "skipped share of training sigmas": L.excluded_mass if name != "baseline" else 0.0,
                           "seeds": len(per[name]), "memorized generations": mem_rate[name], "s.e.": mem_se[name],
                           quality["fd_name"]: fd[name], "FD s.e.": fd_se[name],
                           "s.e. of FD(gap) - FD(model)": fd_diff_se.get(name)}
                          for name, L in losses.items()])
    by_seed = pd.DataFrame([{"role": r, "seed": sd, "memorized generations": rate[label[r], sd],
                             quality["fd_name"]: quality["fd"][label[r], sd]}
                            for r in ("baseline", "gap", "dummy") for sd in seeds])
    i_peak = int(np.argmax(sweep["mem_rate"]))
    at_peak = pd.DataFrame([{"sigma of the baseline's one-step peak": float(sigmas[i_peak]),
                             "W": float(cls_regimes["W"][i_peak]), "C": float(cls_regimes["C"][i_peak]),
                             "threshold": S.threshold}])
    return GapTraining(cls_train, len(cls_test), n_in_split, cls_regimes, band, dummy, tiles, losses, label, seeds,
                       {n: generations[n, seed] for n in losses}, mem_rate, mem_se, fd, fd_se, fd_diff_se,
                       by_seed, quality["fd_copy"], quality["fd_name"], quality["accuracy"], sweep, setup, table,
                       at_peak)


def _se(values) -> float:
    """The standard error of the mean over ``values`` (seeds): sd / sqrt(n)."""
    v = np.asarray(values, float)
    return float(v.std(ddof=1) / np.sqrt(len(v)))


def _frechet(settings, train, cls_train, cls_test, generations, boot_keys, *, seed, device, cache) -> dict:
    """Frechet distance of each model's generations to the held-out class, with bootstrap standard errors for
    those in ``boot_keys`` (models trained with one seed; the others' s.e. is taken over seeds, NaN here).

    Features are Inception-v3's (FID, ``fd_features="inception"``: :func:`inception_features`) or a digits
    classifier's penultimate layer; either way each image set's features are computed once, then
    :func:`frechet_distance` gives the point values and :func:`frechet_distance_bootstrap` (the held-out
    reference resampled once per replicate, shared by every model) their standard errors. ``fd_copy`` is
    the training images' own distance to the held-out class.
    """
    S = settings
    if S.fd_features == "inception":
        feats = lambda x: inception_features(x, device=device)  # noqa: E731
        name, accuracy = "FID (Inception)", None
    else:
        test_all = load_images(S.data, "test", download=S.download, md5=S.data_md5)
        clf = cache.model("classifier", dict(asdict(S), seed=seed),
                          lambda: DigitsFeatureNet(image_shape=train.image_shape, seed=seed),
                          lambda net: fit_classifier(net, train.x, train.labels, S.classifier_steps, seed=seed))[0]
        feats = lambda x: classifier_features(clf, x)  # noqa: E731
        name, accuracy = "FD (digits-classifier features)", classifier_accuracy(clf, test_all.x, test_all.labels)
    ref = feats(cls_test)
    sets = {key: feats(g) for key, g in generations.items()}
    # 2026-12-07, 2 CPU cores: one 2048-d FD 1.6 s (sqrtm of the product: 9 s); one-seed sets only, since a
    # replicate of all 16 of the full profile's (10k images each) took 17 s, 100 of them 30 min
    fd_boot = frechet_distance_bootstrap([sets[k] for k in boot_keys], ref, seed=seed) if boot_keys else None
    boot_se = {key: float(b.std(ddof=1)) for key, b in zip(boot_keys, fd_boot.T)} if boot_keys else {}
    return {"fd": {key: frechet_distance(f, ref) for key, f in sets.items()},
            "fd_se": {key: boot_se.get(key, float("nan")) for key in sets},
            "fd_copy": frechet_distance(feats(cls_train), ref), "fd_name": name, "accuracy": accuracy}


# -- the chapter ------------------------------------------------------------------------------------

def run(settings, *, seed: int, device, cache, profile: str = "") -> ThreeRegimesResult:
    """Sweep three denoisers over sigma, locate the danger zone, swap denoisers by window, train the gap models.

    Args:
        settings: the chapter's settings (``mempkg.book.profiles.ThreeRegimes``).
        seed: the training, noise and sampling seed.
        device: where the models train and run.
        cache: ``cache.get(name, params, compute, inputs=...)``; also what ``train_edm_cached`` needs.
        profile: the profile's name, quoted when the danger zone is not found.
    Returns:
        a :class:`ThreeRegimesResult`.
    """
    S = settings
    if S.fd_features == "inception":
        check_inception()          # before any training: the weights cannot be fetched offline
    train = load_images(S.data, "train", download=S.download, md5=S.data_md5)
    test = load_images(S.data, "test", download=S.download, md5=S.data_md5).subset(range(S.n_test))
    sigmas = np.geomspace(S.sigma_min, S.sigma_max, S.n_sigmas)
    sweeps = denoiser_sweeps(S, train.x, test.x, sigmas, seed=seed, device=device, cache=cache)
    data = pd.DataFrame([{"pixel standard deviation of the training images": float(train.x.std()),
                          "sigma_data of the models": S.sigma_data}])
    zone = danger_zone_share(S, train.x, test.x, sigmas, sweeps, seed=seed, device=device, cache=cache,
                             profile=profile)
    swap = denoiser_swap(S, sweeps, train.x[: S.n_small], zone.zone, seed=seed, device=device, cache=cache)
    gap = gap_training(S, train, sigmas, seed=seed, device=device, cache=cache)
    return ThreeRegimesResult(sigmas, data, sweeps, zone, swap, gap, summarize(S, sigmas, sweeps, zone, swap, gap))


def _finite(v):
    """``v`` as a float, or None (null in the summary) when it is not finite."""
    return float(v) if np.isfinite(v) else None


def summarize(settings, sigmas, sweeps: DenoiserSweeps, zone: DangerZone, swap: DenoiserSwap,
              gap: GapTraining) -> dict:
    """The chapter's summary.json: every number the scorecard reads, ``<key>_reason`` beside each null."""
    S, rate, lo, hi, in_zone, reason, g = settings, sweeps.rate, *zone.zone, zone.in_zone, zone.reason, gap
    whole_rate = np.asarray(sweeps.sweeps[sweeps.names["whole"]]["test"]["mem_rate"])
    arms = {role: g.label[role] for role in ("baseline", "gap", "dummy")}
    other = None if reason else zone.best_other
    summary = {
        "w_points": S.w_points, "shell": S.shell, "shell_c": S.shell_c if S.shell == "laurent_massart" else None,
        "threshold": S.threshold,
        "danger_zone_low": _finite(lo), "danger_zone_high": _finite(hi), "danger_zone_found": bool(np.isfinite(lo)),
        "danger_zone_earlier_reading": [_finite(v) for v in zone.readings.iloc[1, 2:4]],
        "danger_zone_by_threshold_and_c": [{"threshold": r["threshold"], "c": r["shell constant c"],
                                            "low": _finite(r["danger zone, low sigma"]),
                                            "high": _finite(r["danger zone, high sigma"])}
                                           for _, r in zone.thresholds.iterrows()],
        "memorization_share_in_zone": None if reason else in_zone.share,
        "memorization_share_in_zone_se": None if reason else in_zone.se,
        "zone_share_of_grid": None if reason else in_zone.grid_share,
        "densest_equal_width_band": None if reason else list(zone.best_window),
        "densest_band_outside_zone": None if other is None else list(other),
        "max_share_outside_zone": None if other is None else other[2],
        "peak_memorization_sigma": float(sigmas[rate.argmax()]),
        "peak_memorization_rate": float(rate.max()),
        "mem_rate_by_sigma": rate.tolist(), "mem_rate_se_by_sigma": sweeps.rate_se.tolist(),
        "mse_gap_by_sigma": sweeps.gap.tolist(), "mse_gap_se_by_sigma": sweeps.gap_se.tolist(),
        "mse_gap_peak_sigma": float(sigmas[sweeps.gap.argmax()]),
        "max_mem_rate_whole": float(whole_rate.max()),
        "n_small": S.n_small,
        "swap": [{k: r[k] for k in ("name", "window", "steps", "direction", "copy_rate", "copy_rate_se", "n", "flip",
                                    "flip_se")} for r in swap.rows],
        "swap_alone": swap.alone,
        "swap_models": swap.names,
        "swap_windows": None if swap.reason else True,
        "swap_paper_windows": True if any(r["name"] in PAPER_WINDOWS for r in swap.rows) else None,
        "seeds_per_arm": len(g.seeds),
        "gap_seeds": g.seeds,
        "fd_kind": S.fd_features,
        "mem_rate_by_band": [g.mem_rate[n] for n in g.bands],
        "mem_rate_se_by_band": [g.mem_se[n] for n in g.bands],
        "seeds_by_band": [int(g.table.set_index("model").loc[n, "seeds"]) for n in g.bands],
        "gap_band_index": g.bands.index(g.label["gap"]),
        "best_gap_band": [_finite(v) for v in g.tiles[list(g.losses).index(g.best[0]) - 1]],
        "baseline_one_step_peak_sigma": float(sigmas[np.argmax(g.sweep["mem_rate"])]),
        "fd_training_images": g.fd_copy,
        "gap_low": g.band[0], "gap_high": g.band[1],
        "dummy_low": g.dummy[0], "dummy_high": _finite(g.dummy[1]),
        "gap_excluded_mass": g.losses[g.label["gap"]].excluded_mass,
        "n_gap_train": len(g.train_images),
    }
    for role, name in arms.items():
        by_seed = g.by_seed[g.by_seed.role == role]
        summary |= {f"mem_rate_{role}": g.mem_rate[name], f"mem_rate_se_{role}": g.mem_se[name],
                    f"mem_rate_{role}_by_seed": by_seed["memorized generations"].tolist(),
                    f"fd_{role}": g.fd[name], f"fd_se_{role}": _finite(g.fd_se[name]),
                    f"fd_{role}_by_seed": by_seed[g.fd_name].tolist()}
        if role != "gap":
            summary[f"fd_diff_se_{role}"] = g.fd_diff_se[name]
    if swap.reason:
        summary["swap_windows_reason"] = swap.reason
    if summary["swap_paper_windows"] is None:
        summary["swap_paper_windows_reason"] = (f"the paper's windows are steps of its 18-step grid; this run's swap "
                                                f"uses {S.swap_steps} steps")
    if reason:
        summary.update({f"{k}_reason": reason for k in ("memorization_share_in_zone", "memorization_share_in_zone_se",
                                                        "zone_share_of_grid")})
    elif other is None:
        summary["max_share_outside_zone_reason"] = "no band of the zone's width fits on the grid outside the zone"
    return summary
