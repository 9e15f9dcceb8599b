"""Chapter 05: three lenses on one model -- FLIPD, volume growth, the one-step copy rate -- and PNG size.

An EDM model trains on a set in which image i appears k_i times (k in ``counts``, the rest once), so
the memorized images are known before training. Every lens scores every distinct training image x:

* FLIPD(x, t0) = d + t0^2 [tr grad s(x, t0) + |s(x, t0)|^2] at the knee t0 of the median FLIPD curve
  (Kamkari et al.; low = memorized);
* the volume growth L(x) = sum_i log |v_i(T)| / |v_i(t0)| of a small sphere carried along the PF-ODE on
  the VP clock (Hasegawa & Yasuda; high = memorized);
* the one-step copy rate of D(x + sigma z; sigma) at the centre sigma = sqrt(lo hi) of the danger zone
  [lo, hi], where W and C both exceed ``threshold`` (Dodson et al.; high = memorized);
* the reproduction ratio of the Heun sampler started at x + sigma z, and the PNG size (low = memorized).

Each lens is judged by its oriented AUROC with bootstrap errors against three answers: the planted
duplicates, the images some generated sample copies (Carlini et al.'s extraction), and membership.
The machinery lives in :mod:`mempkg.studies.lenses`; :func:`run` chains it.

Layer: studies (imports core, estimators, models, data).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ..core.digests import content_digest
from ..core.schedules import EDMSchedule
from ..data.images import ImageSet, load_images
from ..estimators.lid import find_knee, flipd_curve
from ..estimators.memorization import auroc, oriented
from ..estimators.regimes import danger_zone, weight_and_coverage
from ..models.edm import EDMLoss, EDMPrecond, sample_edm, train_edm_cached
from ..models.networks import unet_eps
from ..models.views import EDMView, VPView
from .lenses import (LENS_LABELS, LENSES, base_lens, detection_power, duplicated_training_set, forward_seconds,
                     lens_label, lens_scores, memorized_by_generation, network_evaluations, one_step_sweep,
                     pareto_front, per_image_seeds, percentile_ranks, rank_correlation, rank_disagreements,
                     spearman_matrix, timed)
from .readers import describe_model, reader_pixel_inputs, reader_source

__all__ = ["ThreeLensesResult", "run"]

PAIRS = (("flipd", "volume"), ("flipd", "onestep"), ("volume", "onestep"))   # the papers' three measures
VARIANTS = {"flipd:1 probe": dict(n_probes=1), "volume:N=1, K=1": dict(volume_axes=1, volume_steps=1),
            "volume:t_start=1e-3": dict(volume_t_start=1e-3)}
VARIANT_KEYS = {"flipd:1 probe": "flipd_1probe", "volume:N=1, K=1": "volume_1axis_1step",
                "volume:t_start=1e-3": "volume_authors_start"}                # their names in summary.json


# -- results ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Training:
    """The model and the images every lens scores."""

    net: object                     # the denoiser: EDMPrecond, or the reader's model on EDM's clock
    images: Tensor                  # [U, C, H, W] the distinct training images
    copies: np.ndarray              # [U] how often each appears in training (all 1 for a reader's model)
    heldout: ImageSet               # images the model never saw
    shape: tuple                    # (C, H, W)
    n_rows: int                     # training rows, duplicates included
    planted: bool                   # True: the chapter's own model, with planted duplicates
    about: dict                     # describe_model: source, class, parameters, weights digest
    counts: Optional[pd.DataFrame]  # per k: distinct images and training rows; None for a reader's model
    table: pd.DataFrame             # what the model is and what it trained on


@dataclass(frozen=True)
class Reference:
    """The reference by generation: training images that some sample copies (d1 < d2 / 3)."""

    samples: Tensor                 # [n_generations, C, H, W]
    seconds: float                  # wall-clock seconds of the sampling
    memorized: np.ndarray           # [U] bool
    n_copying: np.ndarray           # [U] samples that copy each image
    copy_rate: float                # share of the samples that copy a training image
    by_count: pd.DataFrame          # per k: images, share memorized, samples copying each
    table: pd.DataFrame             # the copy rate and what it covers


@dataclass(frozen=True)
class NoiseLevels:
    """The lenses' settings read from the data: the danger zone's centre and FLIPD's knee t0."""

    sigmas: np.ndarray              # [S] the W/C grid
    regimes: dict                   # W, C, ... over the held-out images
    zone: tuple                     # (lo, hi): the danger zone
    sigma: float                    # sqrt(lo hi): the one-step sigma and the reproduction start
    t0s: np.ndarray                 # [T] FLIPD's t0 grid
    curve: np.ndarray               # [T, n_curve] FLIPD(t0) of the first training images
    median_curve: np.ndarray        # [T]
    knee: int                       # index of t0 in t0s
    t0: float
    table: pd.DataFrame             # the noise levels each lens reads


@dataclass(frozen=True)
class LensScores:
    """Every lens (and its variants) on every distinct training image, and its cost."""

    train: dict                     # lens -> [U] scores
    heldout: dict                   # lens -> [n_heldout_scored] scores
    all: dict                       # lens or variant ("flipd:1 probe") -> [U] scores
    seconds: dict                   # lens or variant -> seconds per image
    evaluations: dict               # lens or variant -> network evaluations per image
    forward_seconds: float          # seconds per image of one batched forward pass: the cost unit
    labels: dict                    # lens or variant -> a reader's label, "FLIPD (low) [1 probe]"
    data_digest: str                # content digest of the scored images
    trend: Optional[pd.DataFrame]   # Spearman of each oriented score with the count; None without counts


@dataclass(frozen=True)
class DetectionPower:
    """Oriented AUROC of every lens for three questions, with bootstrap standard errors."""

    positive: np.ndarray            # [U] bool: the headline's positive class
    positive_class: str             # "duplicated 2+ times", or "memorized by generation"
    headline: pd.DataFrame          # detection_power against the positive class
    generation: Optional[pd.DataFrame]   # against the reference by generation; None when one class only
    membership: pd.DataFrame        # training against held-out images (the five lenses)
    reason: Optional[str]           # why ``generation`` is None
    questions: pd.DataFrame         # each question's class sizes, and whether it was decided
    table: pd.DataFrame             # the three AUROCs per lens and variant


@dataclass(frozen=True)
class OneStepSweep:
    """The one-step rate's AUROC at other noise levels: a check on the danger zone's sigma."""

    sigmas: np.ndarray              # [n_sweep]
    rates: np.ndarray               # [n_sweep, U] one-step copy rate of each training image
    auroc: dict                     # question -> [n_sweep] AUROCs
    best_sigma: float               # where the headline AUROC peaks
    best_auroc: float
    best_in_zone: float             # the best headline AUROC inside the danger zone; nan when none is
    table: pd.DataFrame


@dataclass(frozen=True)
class Cost:
    """What each lens costs per image, against its power."""

    table: pd.DataFrame             # seconds, forward passes, evaluations, AUROC per lens and variant
    front: list                     # lenses no other beats on both cost and AUROC, by increasing cost
    best: str                       # the highest headline AUROC
    cheapest: str                   # the cheapest lens within two standard errors of the best
    choice: pd.DataFrame            # the best lens and the cheapest as good as it


@dataclass(frozen=True)
class Disagreements:
    """Images that one of the papers' measures ranks far more memorized than another does."""

    ranks: dict                     # lens -> [U] percentile ranks of the oriented scores
    shown: dict                     # (a, b, r) -> image positions; r = 0: a says memorized, 1: b does
    table: pd.DataFrame             # per panel row: images, memorized, duplicated, median PNG size


@dataclass(frozen=True)
class ThreeLensesResult:
    """What chapter 05 shows, and its summary."""

    data: Training
    reference: Reference
    levels: NoiseLevels
    scores: LensScores
    power: DetectionPower
    sweep: OneStepSweep
    rho: pd.DataFrame               # [L, L] Spearman correlations of the oriented scores
    pairs: pd.DataFrame             # every pair of lenses by rho
    cost: Cost
    disagreements: Disagreements
    together: pd.DataFrame          # per lens: the three AUROCs and the cost
    summary: dict                   # the chapter's summary.json (without seconds)


# -- the experiment, step by step -----------------------------------------------------------------

def _own_model(S, *, seed, device, cache) -> Training:
    """The EDM ``preset`` UNet trained on the split's first images, ``n_per_count`` of them k times each."""
    train_split = load_images(S.data, "train", download=S.download, md5=S.data_md5)
    heldout = load_images(S.data, "test", download=S.download, md5=S.data_md5)
    dup = duplicated_training_set(train_split, S.n_singletons, S.n_per_count, S.counts, seed=S.dup_seed)
    U, copies, shape = dup.unique.x, dup.copies.numpy(), train_split.image_shape
    build = lambda: EDMPrecond(unet_eps(shape, S.preset, seed=seed), sigma_data=S.sigma_data)  # noqa: E731
    net, history = train_edm_cached(cache, "edm", build, dict(preset=S.preset, shape=list(shape), seed=seed),
                                    dup.train.x, S.train_steps, loss=EDMLoss(sigma_data=S.sigma_data), seed=seed,
                                    device=device, lr=S.lr, batch_size=S.batch_size)
    counts = pd.DataFrame([{"copies k": k, "distinct images": int((copies == k).sum()),
                            "training rows": int(k * (copies == k).sum())} for k in np.unique(copies)])
    about = describe_model(net, f"trained here: the EDM `{S.preset}` UNet on {len(dup.train)} {S.data} rows")
    table = pd.Series({"model": about["source"], "parameters (M)": round(about["n_parameters"] / 1e6, 3),
                       "distinct training images": len(U), "training rows": len(dup.train),
                       "held-out images": len(heldout),
                       "final training loss (mean of the last 100 steps)": float(np.mean(history["losses"][-100:]))})
    return Training(net, U, copies, heldout, shape, len(dup.train), True, about,
                    counts.set_index("copies k").T, table.to_frame("value"))


def _reader_model(model, train_images, heldout_images, *, device, model_factory=None) -> Training:
    """A reader's DDPM pipeline read on EDM's clock (or a factory's model, on EDM's clock already or read so),
    with its training and held-out folders."""
    given = reader_pixel_inputs(model, train_images, heldout_images, device=device, chapter="Chapter 05",
                                model_factory=model_factory)
    if given.heldout is None:
        raise ValueError("Chapter 05 with a reader's model needs heldout_images too: the danger zone and the "
                         "membership test read images the model never saw.")
    edm_clock = isinstance(given.model.sde, EDMSchedule)
    if edm_clock and not callable(getattr(given.model, "denoise", None)):
        raise ValueError(f"Chapter 05 reads a model on EDM's clock through its denoiser D(x; sigma), and the "
                         f"{type(given.model).__name__} of {given.source!r} has no denoise method: wrap D in "
                         "mempkg.EDMDenoiser.")
    net = given.model if edm_clock else EDMView(given.model)     # EDMView of an EDM model would misread its clock
    about = describe_model(given.model, given.source)
    U = given.train.x
    table = pd.Series({"model": given.source, "parameters (M)": round(about["n_parameters"] / 1e6, 3),
                       "weights digest": about["weights_digest"],
                       "sigma range on EDM's clock": f"{net.sde.sigma_min:.3g} to {net.sde.sigma_max:.3g}",
                       "training images": f"{len(U)} from {train_images}",
                       "held-out images": f"{len(given.heldout)} from {heldout_images}",
                       "duplication counts": "none known"})
    return Training(net, U, np.ones(len(U), dtype=int), given.heldout, given.model.data_shape, len(U), False, about,
                    None, table.to_frame("value"))


def _reference(S, data: Training, *, seed, device, cache, model) -> Reference:
    """``n_generations`` Heun samples; a training image is memorized when some sample copies it."""
    net, U, copies = data.net, data.images, data.copies
    generation = cache.get("generations", dict(asdict(S), seed=seed), lambda: timed(lambda: sample_edm(
        net, S.n_generations, data.shape, S.sample_steps, seed=seed + 1, device=device)), inputs={"model": net})
    samples = generation["value"]
    memorized, n_copying = memorized_by_generation(samples, U)
    memorized, n_copying = memorized.numpy(), n_copying.numpy()
    copy_rate = float((n_copying.sum()) / len(samples))
    if not data.planted and not 0 < memorized.sum() < len(U):
        raise ValueError(f"Chapter 05 on {model}: its {len(samples)} samples copy {int(memorized.sum())} of its "
                         f"{len(U)} training images, so there is no memorized class (or no other class) to judge the "
                         "lenses against; draw more samples (-p n_generations N) or give the images the model was "
                         "trained on.")
    by_count = pd.DataFrame([{"copies k": k, "images": int((copies == k).sum()),
                              "memorized (found by generation)": float(memorized[copies == k].mean()),
                              "samples copying it, mean": float(n_copying[copies == k].mean())}
                             for k in np.unique(copies)]).set_index("copies k")
    table = {"samples": len(samples), "share of samples that copy a training image": copy_rate,
             "distinct training images": len(U), "memorized (copied by some sample)": int(memorized.sum()),
             "memorized, copied by a single sample": int((n_copying == 1).sum())}
    if data.planted:
        table |= {"share memorized, images seen once": float(memorized[copies == 1].mean()),
                  "share memorized, duplicated images": float(memorized[copies > 1].mean())}
    return Reference(samples, float(generation["seconds"]), memorized, n_copying, copy_rate, by_count,
                     pd.Series(table, dtype=object).to_frame("value"))


def _noise_levels(S, data: Training, *, seed, device, cache) -> NoiseLevels:
    """The danger zone of W and C over the held-out images, and the knee of the median FLIPD(t0) curve."""
    net, U, heldout = data.net, data.images, data.heldout
    sigmas = np.geomspace(S.sigma_min, S.sigma_max, S.n_sigmas)
    regimes = cache.get("regimes", dict(asdict(S), seed=seed), lambda: vars(weight_and_coverage(
        # the book's earlier reading (W over held-out points, chi-square shell); chapter 03 compares it with the paper's
        heldout.x[: S.n_test].to(device), U.to(device), sigmas, w_points="heldout", shell="chi2", alpha=S.alpha,
        seed=seed)),
        inputs={"test": heldout.x[: S.n_test], "train": U})
    lo, hi = danger_zone(sigmas, regimes["W"], regimes["C"], S.threshold)
    if not np.isfinite(lo):
        raise RuntimeError(f"W and C never both exceed threshold={S.threshold} on sigma in [{S.sigma_min}, "
                           f"{S.sigma_max}]: there is no danger zone to take the one-step sigma from; lower "
                           "`threshold` or widen the sigma grid.")
    sigma = float(np.sqrt(lo * hi))
    t0s = np.geomspace(S.t0_min, S.t0_max, S.n_t0)
    curve = np.asarray(cache.get("flipd_curve", dict(asdict(S), seed=seed), lambda: flipd_curve(
        net, U[: S.n_curve].to(device), t0s, n_probes=S.curve_probes, seed=seed),
        inputs={"model": net, "x": U[: S.n_curve]}))
    median_curve = np.median(curve, axis=1)
    knee = find_knee(t0s, median_curve)
    t0 = float(t0s[knee])
    view = VPView(net)
    sigma_authors = float(view.sde.sigma(1e-3) / view.sde.alpha(1e-3))      # EDM's sigma at the authors' VP start
    table = {"danger zone, low sigma": lo, "danger zone, high sigma": hi,
             "sigma of the one-step and reproduction lenses": sigma, "FLIPD's t0 (knee)": t0,
             "VP time where volume growth starts": view.time_of(t0), "the authors' VP start": 1e-3,
             "sigma at the authors' start": sigma_authors}
    if data.planted:                      # a reader's model trained on its own schedule's noise levels
        cdf = EDMLoss(sigma_data=S.sigma_data).sigma_cdf
        table |= {"share of EDM training at sigma <= the authors' start": float(cdf(sigma_authors)),
                  "share of EDM training at sigma <= t0": float(cdf(t0))}
    return NoiseLevels(sigmas, regimes, (lo, hi), sigma, t0s, curve, median_curve, knee, t0,
                       pd.Series(table).to_frame("value"))


def _scores(S, data: Training, levels: NoiseLevels, *, seed, device, cache) -> LensScores:
    """Every lens on the training and held-out images, the variants on the training images, each timed."""
    net, U = data.net, data.images
    scored_heldout = data.heldout.subset(range(min(S.n_heldout_scored, len(data.heldout))))
    x_all = torch.cat([U, scored_heldout.x])
    own = torch.cat([torch.arange(len(U)), -torch.ones(len(scored_heldout), dtype=torch.long)])
    image_seed = per_image_seeds(seed, [(0, i) for i in range(len(U))]
                                 + [(1, i) for i in range(len(scored_heldout))])
    lens_settings = dict(t0=levels.t0, n_probes=S.flipd_probes, sigma=levels.sigma, onestep_draws=S.onestep_draws,
                         sigma_start=levels.sigma, reproduction_steps=S.reproduction_steps,
                         reproduction_draws=S.reproduction_draws, volume_axes=S.volume_axes,
                         volume_steps=S.volume_steps, volume_radius=S.volume_radius,
                         volume_t_start=S.volume_t_start, volume_t_end=S.volume_t_end)
    result = cache.get("lens_scores", dict(asdict(S), seed=seed, seeding="per image", **lens_settings), lambda: dict(
        lens_scores(net, x_all.to(device), U.to(device), own, seed=image_seed, **lens_settings),
        forward_seconds=forward_seconds(net, x_all.to(device), levels.sigma)),
        inputs={"model": net, "x": x_all, "train": U})
    variant_key = dict(asdict(S), seed=seed, seeding="per image", variants=VARIANTS, **lens_settings)
    variant_result = cache.get("variant_scores", variant_key, lambda: {
        name: lens_scores(net, U.to(device), U.to(device), torch.arange(len(U)), seed=image_seed[: len(U)],
                          lenses=(base_lens(name),), **dict(lens_settings, **change))
        for name, change in VARIANTS.items()}, inputs={"model": net, "train": U})
    train = {k: np.asarray(result[k], dtype=float)[: len(U)] for k in LENSES}
    heldout = {k: np.asarray(result[k], dtype=float)[len(U):] for k in LENSES}
    all_scores = train | {name: np.asarray(v[base_lens(name)], dtype=float) for name, v in variant_result.items()}
    seconds = result["seconds"] | {name: v["seconds"][base_lens(name)] for name, v in variant_result.items()}
    d = int(np.prod(data.shape))
    evaluations = {name: network_evaluations(base_lens(name), dict(lens_settings, **VARIANTS.get(name, {})), d)
                   for name in all_scores}
    trend = None
    if data.planted:
        trend = pd.DataFrame({"Spearman with the duplication count": [
            rank_correlation(data.copies, oriented(k, train[k])) for k in LENSES]},
            index=[LENS_LABELS[k] for k in LENSES])
    return LensScores(train, heldout, all_scores, seconds, evaluations, float(result["forward_seconds"]),
                      {k: lens_label(k) for k in all_scores}, content_digest(x_all), trend)


def _power(S, data: Training, ref: Reference, scores: LensScores, *, seed, profile) -> DetectionPower:
    """AUROC against the planted truth (or, for a reader's model, the reference), the reference, membership."""
    U, copies, memorized = data.images, data.copies, ref.memorized
    positive, positive_class = ((copies >= S.planted_k, f"duplicated {S.planted_k}+ times") if data.planted else
                                (memorized.astype(bool), "memorized by generation"))
    reason = None if 0 < memorized.sum() < len(U) else (
        f"the reference found {int(memorized.sum())} memorized images of {len(U)} under profile {profile}: "
        "one class only")
    power = detection_power(scores.all, positive, n_boot=S.n_boot, seed=seed)
    power_gen = None if reason else detection_power(scores.all, memorized, n_boot=S.n_boot, seed=seed)
    n_held = len(next(iter(scores.heldout.values())))
    member = np.r_[np.ones(len(U), bool), np.zeros(n_held, bool)]
    power_member = detection_power({k: np.r_[scores.train[k], scores.heldout[k]] for k in LENSES}, member,
                                   n_boot=S.n_boot, seed=seed)
    questions = pd.DataFrame([
        {"question": f"{positive_class} vs not", "positive": int(positive.sum()), "negative": int((~positive).sum()),
         "decided": "yes"},
        {"question": "memorized by generation vs not", "positive": int(memorized.sum()),
         "negative": int((~memorized.astype(bool)).sum()), "decided": reason or "yes"},
        {"question": "training vs held-out", "positive": len(U), "negative": n_held, "decided": "yes"}])
    table = pd.DataFrame({
        f"{positive_class} vs not: AUROC": power["auroc"], "s.e.": power["se"],
        "as good as the best": power["as_good_as_best"],
        "memorized by generation vs not": power_gen["auroc"] if power_gen is not None else np.nan,
        "training vs held-out": power_member["auroc"]}).loc[list(scores.all)]
    table.index = [lens_label(k) for k in table.index]
    return DetectionPower(positive, positive_class, power, power_gen, power_member, reason,
                          questions.set_index("question"), table)


def _sweep(S, data: Training, ref: Reference, levels: NoiseLevels, power: DetectionPower, *, seed, device,
           cache) -> OneStepSweep:
    """The one-step rate at ``n_sweep`` noise levels (the same draws), and its AUROC at each."""
    net, U = data.net, data.images
    image_seed = per_image_seeds(seed, [(0, i) for i in range(len(U))])
    sigmas = np.geomspace(S.sweep_sigma_min, S.sweep_sigma_max, S.n_sweep)
    sweep = np.asarray(cache.get("onestep_sweep", dict(asdict(S), seed=seed, seeding="per image"),
                                 lambda: one_step_sweep(net, U.to(device), U.to(device), torch.arange(len(U)), sigmas,
                                                        S.onestep_draws, seed=image_seed),
                                 inputs={"model": net, "train": U}))
    aurocs = {name: [auroc(r[pos], r[~pos]) for r in sweep] for name, pos in
              ((power.positive_class, power.positive), ("memorized by generation", ref.memorized))
              if 0 < pos.sum() < len(pos)}
    headline = aurocs[power.positive_class]
    lo, hi = levels.zone
    best_sigma = float(sigmas[int(np.argmax(headline))])
    in_zone = (sigmas >= lo) & (sigmas <= hi)
    best_in_zone = max((a for a, z in zip(headline, in_zone) if z), default=float("nan"))
    table = pd.Series({"AUROC at the danger zone's centre": float(power.headline.loc["onestep", "auroc"]),
                       "highest AUROC over the sweep": float(max(headline)), "at sigma": best_sigma,
                       "inside the danger zone": bool(lo <= best_sigma <= hi),
                       "highest AUROC inside the danger zone": float(best_in_zone)}).to_frame("value")
    return OneStepSweep(sigmas, sweep, aurocs, best_sigma, float(max(headline)), float(best_in_zone), table)


def _cost(S, data: Training, ref: Reference, scores: LensScores, power: DetectionPower) -> Cost:
    """Seconds and network evaluations per image, in multiples of one forward pass, against the AUROC."""
    unit, seconds, headline = scores.forward_seconds, scores.seconds, power.headline
    n = len(data.images)
    table = pd.DataFrame([{"lens": lens_label(k), "seconds per image": seconds[k],
                           "x one forward pass": seconds[k] / unit,
                           "network evaluations per image": scores.evaluations[k], "AUROC": headline.loc[k, "auroc"],
                           "as good as the best": headline.loc[k, "as_good_as_best"]} for k in scores.all]
                         + [{"lens": "reference: generation + copy test", "seconds per image": ref.seconds / n,
                             "x one forward pass": ref.seconds / n / unit,
                             "network evaluations per image": S.n_generations * (2 * S.sample_steps - 1) / n,
                             "AUROC": np.nan, "as good as the best": None}]).set_index("lens")
    ties = [k for k in scores.all if headline.loc[k, "as_good_as_best"]]
    cheapest = min(ties, key=lambda k: seconds[k])
    best = str(headline["auroc"].idxmax())
    front = pareto_front({k: seconds[k] for k in scores.all}, {k: headline.loc[k, "auroc"] for k in scores.all})
    table["on the cost/power front"] = [k in front for k in scores.all] + [None]
    choice = pd.DataFrame([{"choice": what, "lens": lens_label(k), "AUROC": headline.loc[k, "auroc"],
                            "s.e.": headline.loc[k, "se"], "x one forward pass": seconds[k] / unit}
                           for what, k in (("the best", best), ("the cheapest as good as the best", cheapest))])
    return Cost(table, front, best, cheapest, choice.set_index("choice"))


def _disagreements(S, data: Training, ref: Reference, scores: LensScores) -> Disagreements:
    """For each of the papers' pairs, the ``n_show`` images each lens ranks far more memorized than the other."""
    copies, memorized, train = data.copies, ref.memorized, scores.train
    ranks = {k: percentile_ranks(k, train[k]) for k in LENSES}
    shown = {(a, b, r): idx for a, b in PAIRS for r, idx in enumerate(rank_disagreements(train, a, b, S.n_show))}
    rows = [{"pair": f"{a} vs {b}", "lens that calls them memorized": [a, b][r], "images": len(idx),
             "memorized by the reference": int(memorized[idx].sum()), "duplicated": int((copies[idx] > 1).sum()),
             "median PNG size": float(np.median(train["png"][idx]))} for (a, b, r), idx in shown.items()]
    rows.append({"pair": "all training images", "lens that calls them memorized": "-", "images": len(copies),
                 "memorized by the reference": int(memorized.sum()), "duplicated": int((copies > 1).sum()),
                 "median PNG size": float(np.median(train["png"]))})
    return Disagreements(ranks, shown, pd.DataFrame(rows))


def _summary(S, data: Training, ref: Reference, levels: NoiseLevels, scores: LensScores, power: DetectionPower,
             sweep: OneStepSweep, rho: pd.DataFrame, cost: Cost) -> dict:
    """The chapter's summary.json, every key as the chapter has always written it."""
    headline, gen, member = power.headline, power.generation, power.membership
    unit, seconds, memorized, copies = scores.forward_seconds, scores.seconds, ref.memorized, data.copies
    key = lambda k: VARIANT_KEYS.get(k, k)                                              # noqa: E731
    summary = {
        **{f"auroc_{k}": float(headline.loc[k, "auroc"]) for k in LENSES},
        **{f"auroc_se_{k}": float(headline.loc[k, "se"]) for k in LENSES},
        **{f"auroc_generation_{k}": None if gen is None else float(gen.loc[k, "auroc"]) for k in LENSES},
        **({f"auroc_generation_{k}_reason": power.reason for k in LENSES} if power.reason else {}),
        "planted_k": S.planted_k if data.planted else None,
        **{f"auroc_member_{k}": float(member.loc[k, "auroc"]) for k in LENSES},
        **{f"spearman_{a}_{b}": float(rho.loc[a, b]) for i, a in enumerate(LENSES) for b in LENSES[i + 1:]},
        "spearman_oriented": True,
        **{f"cost_forward_passes_{k}": float(seconds[k] / unit) for k in LENSES},
        **{f"seconds_per_image_{k}": float(seconds[k]) for k in LENSES},
        "forward_pass_seconds_per_image": unit,
        **{f"auroc_{v}": float(headline.loc[k, "auroc"]) for k, v in VARIANT_KEYS.items()},
        **{f"cost_forward_passes_{v}": float(seconds[k] / unit) for k, v in VARIANT_KEYS.items()},
        "pareto_front": [key(k) for k in cost.front],
        "positive_class": power.positive_class,
        "cheapest_as_good_as_best": key(cost.cheapest),
        "best_lens": key(cost.best),
        "n_unique": len(data.images), "n_rows": data.n_rows, "n_memorized": int(memorized.sum()),
        "memorized_fraction_singletons": float(memorized[copies == 1].mean()),
        "memorized_fraction_duplicated": float(memorized[copies > 1].mean()) if data.planted else None,
        "generation_copy_rate": ref.copy_rate,
        "danger_zone_low": levels.zone[0], "danger_zone_high": levels.zone[1], "sigma_onestep": levels.sigma,
        "t0": levels.t0,
        "onestep_best_sweep_sigma": sweep.best_sigma, "onestep_best_sweep_auroc": sweep.best_auroc,
        "onestep_best_sweep_auroc_in_zone": sweep.best_in_zone if np.isfinite(sweep.best_in_zone) else None,
        "model": data.about,
        "data_digest": scores.data_digest,
    }
    if not data.planted:
        summary |= {f"{k}_reason": "the reader's training set has no planted duplicates"
                    for k in ("planted_k", "memorized_fraction_duplicated")}
    return summary


def run(settings, *, seed: int, device: str, cache, model: Optional[str] = None, train_images=None,
        heldout_images=None, profile: str = "this profile", model_factory: Optional[str] = None) -> ThreeLensesResult:
    """Every lens on every training image of one model, judged against planted and extracted memorization.

    AUROC(lens) = P(s(x+) > s(x-)) of the oriented score s (low FLIPD, high L, high one-step rate, low
    reproduction ratio, low PNG size read as memorized), with standard errors from bootstrap resamples.

    Args:
        settings: the chapter's settings (``mempkg.book.profiles.ThreeLenses``).
        seed: training, sampling, noise and probe seed.
        device: torch device of the model and the lenses.
        cache: the chapter's cache (``cache.get(name, params, compute, inputs=...)``).
        model: a reader's diffusers DDPMPipeline (hub id or folder), read on EDM's clock; None trains the
            chapter's own EDM model on a training set with planted duplicates.
        train_images: with ``model``, a folder of the images it was trained on (the images every lens scores).
        heldout_images: with ``model``, a folder of images it never saw (the danger zone, membership).
        profile: the profile's name, as the reasons in the summary state it.
        model_factory: instead of ``model``, ``"package.module:function"`` returning a score model with a
            ``data_shape`` (:mod:`mempkg.models.factory`); one on EDM's clock (an ``EDMDenoiser``) is read as it
            is, another through :class:`EDMView`.
    Returns:
        a :class:`ThreeLensesResult`.
    """
    S = settings
    reader = reader_source(model, model_factory, "Chapter 05")
    # 1. the model and its training set: planted duplicates, or the reader's
    data = (_own_model(S, seed=seed, device=device, cache=cache) if reader is None else
            _reader_model(model, train_images, heldout_images, device=device, model_factory=model_factory))
    # 2. the reference by generation, and the noise levels the lenses read
    ref = _reference(S, data, seed=seed, device=device, cache=cache, model=reader)
    levels = _noise_levels(S, data, seed=seed, device=device, cache=cache)
    # 3. every lens and variant, timed
    scores = _scores(S, data, levels, seed=seed, device=device, cache=cache)
    # 4. detection power, the one-step sweep, agreement, cost, disagreements
    power = _power(S, data, ref, scores, seed=seed, profile=profile)
    sweep = _sweep(S, data, ref, levels, power, seed=seed, device=device, cache=cache)
    rho = spearman_matrix(scores.train)
    pairs = pd.DataFrame([{"lenses": f"{LENS_LABELS[a]} / {LENS_LABELS[b]}", "Spearman rho": rho.loc[a, b],
                           "the papers' measures": (a, b) in PAIRS} for i, a in enumerate(LENSES)
                          for b in LENSES[i + 1:]]).sort_values("Spearman rho", ascending=False).set_index("lenses")
    cost = _cost(S, data, ref, scores, power)
    disagreements = _disagreements(S, data, ref, scores)
    together = pd.DataFrame({f"{power.positive_class} vs not": power.headline["auroc"],
                             "memorized by generation vs not": (power.generation["auroc"] if power.generation
                                                                is not None else np.nan),
                             "training vs held-out": power.membership["auroc"],
                             "x one forward pass": {k: scores.seconds[k] / scores.forward_seconds for k in LENSES},
                             "on the cost/power front": {k: k in cost.front for k in LENSES}}).loc[list(LENSES)]
    together = together.sort_values(f"{power.positive_class} vs not", ascending=False)
    together.index = [LENS_LABELS[k] for k in together.index]
    summary = _summary(S, data, ref, levels, scores, power, sweep, rho, cost)
    return ThreeLensesResult(data, ref, levels, scores, power, sweep, rho, pairs, cost, disagreements, together,
                             summary)
