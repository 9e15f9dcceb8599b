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
from torch import Tensor

from ..data.images import load_images
from ..estimators.memorization import copies
from ..estimators.quality import (DigitsFeatureNet, classifier_accuracy, classifier_features, fit_classifier,
                                  frechet_distance, frechet_distance_bootstrap, inception_fid)
from ..estimators.regimes import BandShare, EmpiricalDenoiser, danger_zone, noise_sweep, share_in_band, \
    weight_and_coverage
from ..models.edm import EDMLoss, EDMPrecond, equal_mass_bands, sample_edm, train_edm_cached
from ..models.networks import unet_eps

__all__ = ["DenoiserSweeps", "DangerZone", "GapTraining", "ThreeRegimesResult", "run"]


# -- results ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DenoiserSweeps:
    """Paper Figs. 1 and 2: MSE and one-step copy rate of three denoisers on the sigma grid."""

    names: dict                     # role ("emp", "small", "whole") -> denoiser name, e.g. "EDM-128"
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
    reason: Optional[str]           # why the share is undecided, else None
    table: pd.DataFrame             # per training set: the zone's edges
    share: pd.DataFrame             # the small model's copying: in the zone, on the grid, densest band


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
    generations: dict               # model name -> Tensor of samples
    mem_rate: dict                  # model name -> share of generations that copy a training image
    mem_se: dict                    # model name -> binomial standard error
    fd: dict                        # model name -> Frechet distance to the held-out class
    fd_se: dict                     # model name -> bootstrap standard error (nan for Inception)
    fd_boot: Optional[dict]         # model name -> bootstrap draws; None for Inception
    fd_diff_se: dict                # model name (not the gap) -> bootstrap s.e. of FD(gap) - FD(model)
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
    return DenoiserSweeps(names, sweeps, rate, rate_se, gap, gap_se, table.set_index("denoiser"))


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


def regimes_of(settings, test: Tensor, train: Tensor, sigmas, name: str, *, seed, device, cache) -> dict:
    """W_sigma and C_sigma of held-out ``test`` against ``train`` (:func:`weight_and_coverage`), cached."""
    return cache.get(name, dict(asdict(settings), seed=seed), lambda: vars(
        weight_and_coverage(test.to(device), train.to(device), sigmas, alpha=settings.alpha, seed=seed)),
        inputs={"test": test, "train": train})


def danger_zone_share(settings, train: Tensor, test: Tensor, sigmas, sweeps: DenoiserSweeps, *, seed, device, cache,
                      profile: str = "") -> DangerZone:
    """The danger zone {sigma : W_sigma >= threshold and C_sigma >= threshold} of ``n_small`` images and of all,
    and the share of the small model's copying inside it (:func:`share_in_band`, bootstrap over images) against
    the zone's share of the grid and against the densest band of the same number of grid points."""
    S = settings
    regimes = {f"{len(tr)} training images": regimes_of(S, test, tr, sigmas, f"regimes_{len(tr)}", seed=seed,
                                                        device=device, cache=cache)
               for tr in (train[: S.n_small], train)}
    zones = {name: danger_zone(sigmas, r["W"], r["C"], S.threshold) for name, r in regimes.items()}
    lo, hi = zones[f"{S.n_small} training images"]
    rate = sweeps.rate
    in_zone = best_window = None
    reason = None if np.isfinite(lo) else (f"W and C of the {S.n_small}-image set never both exceed the threshold "
                                           f"{S.threshold} on the sigma grid under profile {profile}")
    if reason is None and rate.sum() > 0:
        copied = sweeps.sweeps[sweeps.names["small"]]["test"]["copied_per_image"]
        in_zone = share_in_band(sigmas, copied, (lo, hi), seed=seed)
        width = int(in_zone.inside.sum())          # the same number of grid points, slid along the grid
        window = max(range(len(sigmas) - width + 1), key=lambda i: rate[i: i + width].sum())
        best_window = (float(sigmas[window]), float(sigmas[window + width - 1]),
                       float(rate[window: window + width].sum() / rate.sum()))
    elif reason is None:
        reason = f"{sweeps.names['small']} copies no held-out input at any sigma, so its copying has no share anywhere"
    table = pd.DataFrame([{"training set": name, "danger zone, low sigma": z[0], "danger zone, high sigma": z[1]}
                          for name, z in zones.items()]).set_index("training set")
    peak = float(sigmas[rate.argmax()])
    share = _column(sweeps.names["small"], {
        "copy-rate peak sigma": peak, "peak inside the zone": bool(lo <= peak <= hi),
        "share of the copying in the zone": in_zone.share if in_zone else np.nan,
        "bootstrap s.e.": in_zone.se if in_zone else np.nan,
        "zone's share of the grid": in_zone.grid_share if in_zone else np.nan,
        "densest band of that width, low": best_window[0] if best_window else np.nan,
        "densest band, high": best_window[1] if best_window else np.nan,
        "densest band's share": best_window[2] if best_window else np.nan,
        "undecided because": reason or ""})
    return DangerZone(regimes, zones, (lo, hi), in_zone, best_window, reason, table, share)


def gap_training(settings, train, sigmas, *, seed, device, cache) -> GapTraining:
    """Train a baseline and one model per equal-mass band of sigma skipped, on one class; rate their samples.

    Gap training draws ln sigma from EDM's log-normal conditioned on lying outside the band
    (``EDMLoss(gap=...)``); the bands tile the sigma axis with the log-normal mass of the class subset's
    danger zone (:func:`equal_mass_bands`). A generation copies when d_1 < d_2 / 3 against the subset;
    sample quality is a Frechet distance to the held-out class (Inception or a digits classifier's features).

    Args:
        train: the training split (an ImageSet with labels).
    """
    S, loss = settings, EDMLoss(sigma_data=settings.sigma_data)
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
    models = {name: _edm(S, cache, f"class_{name.split(' ')[0]}_{i}", cls_train, L, S.gap_train_steps,
                         S.gap_batch_size, seed=seed, device=device) for i, (name, L) in enumerate(losses.items())}
    generations = {name: cache.get(f"generations_{i}", dict(asdict(S), seed=seed, model=name), lambda: sample_edm(
        M, S.n_generations, shape, S.sample_steps, seed=seed + 1, device=device), inputs={"model": M})
        for i, (name, M) in enumerate(models.items())}
    mem_rate = {name: float(copies(g, cls_train)[0].float().mean()) for name, g in generations.items()}
    mem_se = {name: (p * (1 - p) / S.n_generations) ** 0.5 for name, p in mem_rate.items()}     # binomial
    quality = _frechet(S, train, cls_train, cls_test, generations, seed=seed, device=device, cache=cache)
    sweep = cache.get("sweep_class_baseline", dict(asdict(S), seed=seed), lambda: vars(
        noise_sweep(models["baseline"], cls_test.to(device), cls_train, sigmas, seed=seed)),
        inputs={"model": models["baseline"], "test": cls_test, "train": cls_train})
    fd, fd_se, fd_boot = quality["fd"], quality["fd_se"], quality["fd_boot"]
    fd_diff_se = {n: float(np.std(fd_boot[label["gap"]] - fd_boot[n], ddof=1)) if fd_boot else None
                  for n in losses if n != label["gap"]}  # bootstrap s.e. of FD(gap) - FD(n); none for Inception
    n_in_split = int((train.labels == S.gap_class).sum())
    setup = _column("value", {
        "class": S.gap_class, "training images": len(cls_train), "held-out images": len(cls_test),
        "of the class in the training split": n_in_split, "gap, low sigma": band[0], "gap, high sigma": band[1],
        "gap's skipped share": losses[label["gap"]].excluded_mass, "dummy, low sigma": dummy[0],
        "dummy, high sigma": dummy[1], "dummy's skipped share": losses[label["dummy"]].excluded_mass,
        "bands": len(tiles), "feature classifier's held-out accuracy": quality["accuracy"]})
    table = pd.DataFrame([{"model": name, "role": next((r for r, n in label.items() if n == name), "sweep"),
                           "skipped share of training sigmas": L.excluded_mass if name != "baseline" else 0.0,
                           "memorized generations": mem_rate[name], "binomial s.e.": mem_se[name],
                           quality["fd_name"]: fd[name], "FD bootstrap s.e.": fd_se[name],
                           "s.e. of FD(gap) - FD(model)": fd_diff_se.get(name)}
                          for name, L in losses.items()])
    i_peak = int(np.argmax(sweep["mem_rate"]))
    at_peak = pd.DataFrame([{"sigma of the baseline's one-step peak": float(sigmas[i_peak]),
                             "W": float(cls_regimes["W"][i_peak]), "C": float(cls_regimes["C"][i_peak]),
                             "threshold": S.threshold}])
    return GapTraining(cls_train, len(cls_test), n_in_split, cls_regimes, band, dummy, tiles, losses, label,
                       generations, mem_rate, mem_se, fd, fd_se, fd_boot, fd_diff_se, quality["fd_copy"],
                       quality["fd_name"], quality["accuracy"], sweep, setup, table, at_peak)


def _frechet(settings, train, cls_train, cls_test, generations, *, seed, device, cache) -> dict:
    """Frechet distance of each model's generations to the held-out class: Inception FID, or the distance in a
    digits classifier's penultimate features with bootstrap standard errors (:func:`frechet_distance_bootstrap`)."""
    S = settings
    if S.fd_features == "inception":
        fd = {name: inception_fid(cls_test, g, device=device) for name, g in generations.items()}
        fd_copy = inception_fid(cls_test, cls_train, device=device)
        return {"fd": fd, "fd_copy": fd_copy, "fd_se": {name: float("nan") for name in generations},
                "fd_boot": None, "fd_name": "FID (Inception)", "accuracy": None}   # no bootstrap of Inception features
    test_all = load_images(S.data, "test", download=S.download, md5=S.data_md5)
    clf = cache.model("classifier", dict(asdict(S), seed=seed),
                      lambda: DigitsFeatureNet(image_shape=train.image_shape, seed=seed),
                      lambda net: fit_classifier(net, train.x, train.labels, S.classifier_steps, seed=seed))[0]
    feats = lambda x: classifier_features(clf, x)  # noqa: E731
    fd = {name: frechet_distance(feats(g), feats(cls_test)) for name, g in generations.items()}
    fd_boot = dict(zip(generations, frechet_distance_bootstrap([feats(g) for g in generations.values()],
                                                               feats(cls_test), seed=seed).T))
    return {"fd": fd, "fd_boot": fd_boot, "fd_se": {name: float(b.std(ddof=1)) for name, b in fd_boot.items()},
            "fd_copy": frechet_distance(feats(cls_train), feats(cls_test)),
            "fd_name": "FD (digits-classifier features)",
            "accuracy": classifier_accuracy(clf, test_all.x, test_all.labels)}


# -- the chapter ------------------------------------------------------------------------------------

def run(settings, *, seed: int, device, cache, profile: str = "") -> ThreeRegimesResult:
    """Sweep three denoisers over sigma, locate the danger zone, and train the gap models.

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
    train = load_images(S.data, "train", download=S.download, md5=S.data_md5)
    test = load_images(S.data, "test", download=S.download, md5=S.data_md5).subset(range(S.n_test))
    sigmas = np.geomspace(S.sigma_min, S.sigma_max, S.n_sigmas)
    sweeps = denoiser_sweeps(S, train.x, test.x, sigmas, seed=seed, device=device, cache=cache)
    data = pd.DataFrame([{"pixel standard deviation of the training images": float(train.x.std()),
                          "sigma_data of the models": S.sigma_data}])
    zone = danger_zone_share(S, train.x, test.x, sigmas, sweeps, seed=seed, device=device, cache=cache,
                             profile=profile)
    gap = gap_training(S, train, sigmas, seed=seed, device=device, cache=cache)
    return ThreeRegimesResult(sigmas, data, sweeps, zone, gap, summarize(S, sigmas, sweeps, zone, gap))


def _finite(v):
    """``v`` as a float, or None (null in the summary) when it is not finite."""
    return float(v) if np.isfinite(v) else None


def summarize(settings, sigmas, sweeps: DenoiserSweeps, zone: DangerZone, gap: GapTraining) -> dict:
    """The chapter's summary.json: every number the scorecard reads, ``<key>_reason`` beside each null."""
    rate, lo, hi, in_zone, reason, g = sweeps.rate, *zone.zone, zone.in_zone, zone.reason, gap
    whole_rate = np.asarray(sweeps.sweeps[sweeps.names["whole"]]["test"]["mem_rate"])
    summary = {
        "danger_zone_low": _finite(lo), "danger_zone_high": _finite(hi), "danger_zone_found": bool(np.isfinite(lo)),
        "memorization_share_in_zone": None if reason else in_zone.share,
        "memorization_share_in_zone_se": None if reason else in_zone.se,
        "zone_share_of_grid": None if reason else in_zone.grid_share,
        "densest_equal_width_band": None if reason else list(zone.best_window),
        "peak_memorization_sigma": float(sigmas[rate.argmax()]),
        "peak_memorization_rate": float(rate.max()),
        "mem_rate_by_sigma": rate.tolist(), "mem_rate_se_by_sigma": sweeps.rate_se.tolist(),
        "mse_gap_by_sigma": sweeps.gap.tolist(), "mse_gap_se_by_sigma": sweeps.gap_se.tolist(),
        "mse_gap_peak_sigma": float(sigmas[sweeps.gap.argmax()]),
        "max_mem_rate_whole": float(whole_rate.max()),
        "n_small": settings.n_small,
        "mem_rate_baseline": g.mem_rate["baseline"],
        "mem_rate_gap": g.mem_rate[g.label["gap"]],
        "mem_rate_dummy": g.mem_rate[g.label["dummy"]],
        "fd_baseline": g.fd["baseline"],
        "fd_gap": g.fd[g.label["gap"]],
        "fd_dummy": g.fd[g.label["dummy"]],
        "mem_rate_se_baseline": g.mem_se["baseline"],
        "mem_rate_se_gap": g.mem_se[g.label["gap"]],
        "mem_rate_se_dummy": g.mem_se[g.label["dummy"]],
        "fd_se_baseline": _finite(g.fd_se["baseline"]),
        "fd_se_gap": _finite(g.fd_se[g.label["gap"]]),
        "fd_diff_se_baseline": g.fd_diff_se["baseline"],
        "fd_diff_se_dummy": g.fd_diff_se[g.label["dummy"]],
        "mem_rate_by_band": [g.mem_rate[n] for n in g.bands],
        "mem_rate_se_by_band": [g.mem_se[n] for n in g.bands],
        "gap_band_index": g.bands.index(g.label["gap"]),
        "fd_kind": settings.fd_features,
        "best_gap_band": [_finite(v) for v in g.tiles[list(g.losses).index(g.best[0]) - 1]],
        "baseline_one_step_peak_sigma": float(sigmas[np.argmax(g.sweep["mem_rate"])]),
        "fd_training_images": g.fd_copy,
        "gap_low": g.band[0], "gap_high": g.band[1],
        "dummy_low": g.dummy[0], "dummy_high": _finite(g.dummy[1]),
        "gap_excluded_mass": g.losses[g.label["gap"]].excluded_mass,
        "n_gap_train": len(g.train_images),
    }
    if not g.fd_boot:
        summary.update({f"fd_diff_se_{n}_reason": "Inception features are not bootstrapped, so the FD rule has no "
                        "margin" for n in ("baseline", "dummy")})
    if reason:
        summary.update({f"{k}_reason": reason for k in ("memorization_share_in_zone", "memorization_share_in_zone_se",
                                                        "zone_share_of_grid")})
    return summary
