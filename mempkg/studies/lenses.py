"""The machinery of chapter 05: planted duplicates, copy tests of a given image, and lens comparisons.

* a training set with a known answer: image i appears k_i times (:func:`duplicated_training_set`), and
  its inverse (:func:`deduplicate`);
* copying a given image x: the own-copy ratio r(g) = |g - x| / min_{j != x} |g - x_j| against the distinct
  training images (:func:`own_copy_ratio`), the one-step copy rate (:func:`one_step_memorization`), the
  reproduction ratio from a noisy start (:func:`reproduction_ratio`), and the images some sample copies
  (:func:`memorized_by_generation`, Carlini et al.'s d1 < d2 / 3);
* comparing lenses: oriented AUROC with bootstrap errors (:func:`detection_power`), Spearman's rho
  (:func:`spearman_matrix`), the cost/power front (:func:`pareto_front`), the images two lenses rank
  furthest apart (:func:`rank_disagreements`), and every lens on one model, timed (:func:`lens_scores`).

Scores are oriented by :data:`mempkg.estimators.memorization.ORIENTATION`: low FLIPD, high L, high
one-step rate, low reproduction ratio and low PNG size mean memorized.

Layer: studies (imports core, estimators, models and data).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from ..core.protocol import modules_of
from ..core.tensors import check_choice, image_seeds
from ..data.images import ImageSet
from ..estimators.complexity import png_size
from ..estimators.lid import flipd
from ..estimators.memorization import auroc, auroc_bootstrap, extract_memorized, nearest_neighbours, oriented
from ..estimators.volume import volume_growth
from ..models.edm import edm_sigmas, heun_sampler
from ..models.views import VPView

DUPLICATION_COUNTS = (2, 4, 8, 16, 32)
COPY_RATIO = 1 / 3           # Carlini et al.'s d1 < d2 / 3

LENSES = ("flipd", "volume", "onestep", "reproduction", "png")   # directions: memorization.ORIENTATION
LENS_LABELS = {"flipd": "FLIPD (low)", "volume": "volume growth L (high)", "onestep": "one-step copy rate (high)",
               "reproduction": "reproduction ratio (low)", "png": "PNG size (low)"}


# -- the training set with a known ground truth ------------------------------------------------

@dataclass
class DuplicatedSet:
    """A training set in which some images appear several times.

    ``unique`` holds every distinct training image once; ``train`` is what the model trains on:
    image ``i`` of ``unique`` appears ``copies[i]`` times in it (first all of ``unique`` in order,
    then the extra copies); ``origin`` [len(train)] gives each row's position in ``unique``.
    """

    unique: ImageSet
    train: ImageSet
    copies: Tensor        # [U] long, >= 1
    origin: Tensor        # [R] long

    @property
    def duplicated(self) -> Tensor:
        """[U] bool: the image appears more than once."""
        return self.copies > 1


def duplicated_training_set(images: ImageSet, n_singletons: int, n_per_count: int,
                            counts: Sequence[int] = DUPLICATION_COUNTS, seed: int = 0) -> DuplicatedSet:
    """The first ``n_singletons + n_per_count * len(counts)`` images of ``images``; ``n_per_count``
    of them, drawn with ``seed``, appear ``k`` times for each k in ``counts``, the rest once.

    The duplicated images are drawn at random, so duplication is independent of what an image
    looks like (e.g. of its PNG size)."""
    counts = [int(k) for k in counts]
    if not counts or any(k < 2 for k in counts) or len(set(counts)) != len(counts):
        raise ValueError(f"counts must be distinct integers >= 2 (how often a duplicated image appears), got {counts}.")
    if int(n_singletons) < 0 or int(n_per_count) < 1:
        raise ValueError(f"need n_singletons >= 0 and n_per_count >= 1, got {n_singletons} and {n_per_count}.")
    n_unique = int(n_singletons) + int(n_per_count) * len(counts)
    if n_unique < 2:
        raise ValueError("the training set needs at least 2 distinct images (nearest-neighbour ratios need two).")
    if n_unique > len(images):
        raise ValueError(f"{n_unique} distinct images asked for ({n_singletons} singletons + {n_per_count} x "
                         f"{len(counts)} duplicated), but the pool holds only {len(images)}.")
    unique = images.subset(range(n_unique))
    if len(deduplicate(unique.x)[0]) != n_unique:
        raise ValueError("the pool's first images are not all distinct; de-duplicate it first (deduplicate).")
    g = torch.Generator().manual_seed(int(seed))
    perm = torch.randperm(n_unique, generator=g)
    copies = torch.ones(n_unique, dtype=torch.long)
    for j, k in enumerate(counts):
        copies[perm[j * int(n_per_count):(j + 1) * int(n_per_count)]] = k
    origin = torch.cat([torch.arange(n_unique), torch.repeat_interleave(torch.arange(n_unique), copies - 1)])
    return DuplicatedSet(unique, unique.subset(origin), copies, origin)


def deduplicate(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Distinct rows of ``x`` [N, ...] in order of first occurrence -> (rows [U, ...], inverse [N]
    with ``rows[inverse] == x``, counts [U]). Exact equality of every value."""
    if x.dim() < 1 or len(x) == 0:
        raise ValueError("deduplicate needs a non-empty batch [N, ...].")
    _, inv, cnt = torch.unique(x.reshape(len(x), -1), dim=0, return_inverse=True, return_counts=True)
    first = torch.full((len(cnt),), len(x), dtype=torch.long).scatter_reduce(0, inv, torch.arange(len(x)), "amin")
    order = first.argsort()                   # unique ids in order of first occurrence
    rank = torch.empty_like(order)
    rank[order] = torch.arange(len(order))
    return x[first[order]], rank[inv], cnt[order]


def _check_distinct(train: Tensor) -> None:
    if len(deduplicate(train)[0]) != len(train):
        raise ValueError("the training reference holds repeated images, so the second-nearest distance of a "
                         "duplicate is 0; pass the de-duplicated images (DuplicatedSet.unique or deduplicate(x)[0]).")


# -- copying a given image ---------------------------------------------------------------------

def own_copy_ratio(outputs: Tensor, train: Tensor, own) -> Tensor:
    """How closely each output copies *its own* training image -> float64 [B]:

        r(g) = |g - t_own| / min_{j != own} |g - t_j|,

    ``outputs`` [B, ...], ``train`` the distinct training images [N, ...], ``own`` [B] the position
    in ``train`` of the image each output came from. When t_own is g's nearest training image, r is
    Carlini et al.'s d1/d2, and r < 1/3 means g copies it. A held-out image has no training image of
    its own (``own = -1``): r is then d1/d2 itself, whether g copies *any* training image (Dodson et
    al.'s per-noise memorization of held-out inputs)."""

    own = torch.as_tensor(own, dtype=torch.long)
    if own.shape != (len(outputs),):
        raise ValueError(f"own must hold one position per output ({len(outputs)}), got shape {tuple(own.shape)}.")
    d, i = nearest_neighbours(outputs, train, k=2)
    d, i, own = d.cpu(), i.cpu(), own.cpu()
    flat = outputs.reshape(len(outputs), -1).double().cpu()
    d_own = (flat - train.reshape(len(train), -1).double().cpu()[own.clamp_min(0)]).norm(dim=1)
    held = own < 0
    first = torch.where(held, d[:, 0], d_own)
    other = torch.where(i[:, 0] == own, d[:, 1], d[:, 0])
    other = torch.where(held, d[:, 1], other)
    return first / other.clamp_min(1e-12)


def _check_copy_inputs(x: Tensor, train: Tensor, own) -> Tensor:
    if not isinstance(x, Tensor) or x.dim() < 2 or x.shape[1:] != train.shape[1:]:
        raise ValueError(f"x must be a batch [B, ...] shaped like the training images {tuple(train.shape[1:])}, "
                         f"got {tuple(getattr(x, 'shape', ()))}.")
    own = torch.as_tensor(own, dtype=torch.long)
    if own.shape != (len(x),) or (len(own) and (own.min() < -1 or own.max() >= len(train))):
        raise ValueError(f"own must give, for each of the {len(x)} images, its position in the {len(train)} "
                         "training images, or -1 for an image not among them.")
    _check_distinct(train)
    mine = own >= 0
    if mine.any() and not torch.equal(x[mine].cpu(), train[own[mine]].cpu().to(x.dtype)):
        raise ValueError("own points at training images that differ from the images given; pass each training "
                         "image's position in the de-duplicated training set (-1 for held-out images).")
    return own


def per_image_seeds(seed: int, ids: Sequence) -> list[int]:
    """One seed per image from the run's ``seed`` and each image's id (any ints or tuples of ints, e.g.
    ``(0, position)`` for a training image and ``(1, position)`` for a held-out one), through numpy's
    SeedSequence: an image's draws then depend on its id only, not on the batch it is scored in."""
    return [int(np.random.SeedSequence([int(seed), *np.atleast_1d(i).astype(int).tolist()]).generate_state(1)[0])
            for i in ids]


def _noise(seed, n: int, x: Tensor) -> Tensor:
    """[n, B, ...] standard normal draws on the CPU: from one generator for an int ``seed``, or, for B
    per-image seeds, image b's n draws from its own generator (:func:`mempkg.core.tensors.image_seeds`)."""
    seeds = image_seeds(seed, len(x))
    if seeds is None:
        return torch.randn((n, *x.shape), generator=torch.Generator().manual_seed(int(seed)))
    return torch.stack([torch.randn((n, *x.shape[1:]), generator=torch.Generator().manual_seed(s)) for s in seeds], 1)


@torch.no_grad()
def one_step_memorization(denoiser: Callable[[Tensor, float], Tensor], x: Tensor, train: Tensor, own,
                          sigma: float, n_draws: int = 16, seed=0, ratio: float = COPY_RATIO,
                          batch: int = 2048) -> Tensor:
    """Per-image one-step copy rate at noise level sigma (Dodson et al.'s per-noise memorization,
    asked of one image at a time) -> float64 [B]:

        rate(x) = 1/n sum_k 1[ r(D(x + sigma z_k; sigma)) < ratio ],   z_k ~ N(0, I),

    with r the own-copy ratio (:func:`own_copy_ratio`): the share of draws that copy x itself, or,
    for a held-out image (``own = -1``), that copy any training image. ``denoiser(y, sigma)`` is any denoiser (an
    :class:`~mempkg.models.edm.EDMPrecond`, an :class:`~mempkg.estimators.regimes.EmpiricalDenoiser`). Noise drawn on
    the CPU from ``seed``: one int for the batch, or one per image (:func:`per_image_seeds`)."""
    own = _check_copy_inputs(x, train, own)
    if not (sigma > 0 and int(n_draws) >= 1):
        raise ValueError(f"need sigma > 0 and n_draws >= 1, got sigma={sigma}, n_draws={n_draws}.")
    n = int(n_draws)
    z = _noise(seed, n, x).to(x)
    xs = x.unsqueeze(0).expand(n, *x.shape).reshape(n * len(x), *x.shape[1:])
    y = xs + float(sigma) * z.reshape(xs.shape)
    out = torch.cat([denoiser(yc, float(sigma)) for yc in y.split(int(batch))])
    r = own_copy_ratio(out, train, own.repeat(n))
    return (r < ratio).double().reshape(n, len(x)).mean(0)


def one_step_sweep(denoiser: Callable[[Tensor, float], Tensor], x: Tensor, train: Tensor, own,
                   sigmas: Sequence[float], n_draws: int = 16, seed=0) -> Tensor:
    """:func:`one_step_memorization` at every sigma of a grid (the same noise draws z at each) -> float64 [S, B]."""
    return torch.stack([one_step_memorization(denoiser, x, train, own, float(s), n_draws, seed=seed) for s in sigmas])


@torch.no_grad()
def reproduction_ratio(model, x: Tensor, train: Tensor, own, sigma_start: float, n_steps: int = 18,
                       n_draws: int = 1, seed=0, sigma_min: Optional[float] = None, rho: float = 7.0) -> Tensor:
    """Does the model generate x when started near it? -> float64 [B], the median over ``n_draws`` of

        r(g, x),   g = Heun(x + sigma_start z: sigma_start -> 0),   z ~ N(0, I),

    the own-copy ratio (:func:`own_copy_ratio`; d1/d2 for a held-out image) of the deterministic EDM sampler's output
    (:func:`mempkg.models.edm.heun_sampler` on :func:`mempkg.models.edm.edm_sigmas` from ``sigma_start`` down to
    ``sigma_min`` -- the model's schedule's by default -- then 0; 2 ``n_steps`` - 1 evaluations).
    Low means reproduced (< 1/3: a copy). ``seed``: one int for the batch, or one per image."""

    own = _check_copy_inputs(x, train, own)
    if int(n_draws) < 1:
        raise ValueError(f"n_draws must be >= 1, got {n_draws}.")
    sigma_min = float(sigma_min if sigma_min is not None else getattr(getattr(model, "sde", None), "sigma_min", 0.002))
    if not sigma_start > sigma_min:
        raise ValueError(f"sigma_start={sigma_start} must exceed sigma_min={sigma_min}.")
    sigmas = edm_sigmas(n_steps, sigma_min, float(sigma_start), rho)
    n = int(n_draws)
    z = _noise(seed, n, x).to(x)
    xs = x.unsqueeze(0).expand(n, *x.shape).reshape(n * len(x), *x.shape[1:])
    out = heun_sampler(model, xs + float(sigma_start) * z.reshape(xs.shape), sigmas)
    r = own_copy_ratio(out, train, own.repeat(n)).reshape(n, len(x))
    return r.median(0).values if n > 1 else r[0]


def memorized_by_generation(samples: Tensor, train: Tensor, ratio: float = COPY_RATIO) -> tuple[Tensor, Tensor]:
    """The positive class: training images that some generated sample copies (its nearest
    training image, d1 < ratio d2; :func:`mempkg.estimators.memorization.extract_memorized`) -> (bool [N],
    number of samples copying each image, long [N]). ``train`` must hold distinct images."""

    _check_distinct(train)
    found, counts, _ = extract_memorized(samples, train, ratio)
    n_copies = torch.zeros(len(train), dtype=torch.long)
    n_copies[found] = counts
    return n_copies > 0, n_copies


# -- comparing lenses ----------------------------------------------------------------------------

def base_lens(name: str) -> str:
    """The lens of a score's name: ``"flipd"``, or ``"flipd"`` for a variant ``"flipd:1 probe"``."""
    lens = str(name).split(":")[0]
    check_choice("lens", lens, LENSES)
    return lens


def lens_label(name: str) -> str:
    """A reader's label: ``"FLIPD (low)"``, or ``"FLIPD (low) [1 probe]"`` for the variant ``"flipd:1 probe"``."""
    extra = str(name).split(":", 1)[1] if ":" in str(name) else ""
    return LENS_LABELS[base_lens(name)] + (f" [{extra}]" if extra else "")


def _check_scores(scores: dict, n: Optional[int] = None) -> int:
    if not scores:
        raise ValueError("no scores given.")
    lengths = {k: len(np.asarray(v)) for k, v in scores.items()}
    for k in scores:
        base_lens(k)
        if not np.all(np.isfinite(np.asarray(scores[k], float))):
            raise ValueError(f"the {k!r} scores hold NaN or infinite values.")
    if len(set(lengths.values())) != 1 or (n is not None and set(lengths.values()) != {n}):
        raise ValueError(f"every lens needs one score per image ({n if n is not None else 'same count'}); "
                         f"got {lengths}.")
    return next(iter(lengths.values()))


def detection_power(scores: dict, positive, n_boot: int = 200, seed: int = 0):
    """Oriented AUROC of every lens for ``positive`` (bool [n]) against the rest, with bootstrap errors.

    Images are resampled with replacement (``n_boot`` times, seeded; a resample with one class
    empty is drawn again). Returns a DataFrame indexed by lens with ``auroc``, ``se`` (bootstrap
    standard error), ``se_diff_best`` (standard error of its AUROC minus the best lens's, from the
    same resamples) and ``as_good_as_best`` (within two of those standard errors of the best).
    """
    import pandas as pd  # heavy: pandas takes about a second to import

    positive = np.asarray(positive, dtype=bool)
    n = _check_scores(scores, len(positive))
    if positive.all() or not positive.any():
        raise ValueError(f"AUROC needs both classes; {int(positive.sum())} of {n} images are positive.")
    lenses = list(scores)
    S = np.stack([oriented(base_lens(k), scores[k]) for k in lenses])           # [L, n]
    point = np.array([auroc(s[positive], s[~positive]) for s in S])
    boot = auroc_bootstrap(S, positive, n_boot, seed, stratified=False)
    best = int(point.argmax())
    se_diff = (boot - boot[:, [best]]).std(axis=0, ddof=1)
    return pd.DataFrame({"auroc": point, "se": boot.std(axis=0, ddof=1), "se_diff_best": se_diff,
                         "as_good_as_best": point >= point[best] - 2 * se_diff}, index=lenses)


def rank_correlation(a, b) -> float:
    """Spearman's rank correlation of two score vectors (ties by mid-ranks); 0 when either is constant
    (a score that ranks nothing agrees with nothing)."""
    from scipy.stats import spearmanr  # heavy: scipy.stats takes about a second to import

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(spearmanr(a, b).statistic) if a.std() > 0 and b.std() > 0 else 0.0


def spearman_matrix(scores: dict):
    """Spearman rank correlation between every pair of lenses' *oriented* scores (:func:`rank_correlation`),
    so that +1 means full agreement about which images are memorized -> DataFrame [L, L]."""
    import pandas as pd  # heavy: pandas takes about a second to import

    _check_scores(scores)
    lenses = list(scores)
    S = np.stack([oriented(k, scores[k]) for k in lenses])
    rho = np.eye(len(lenses))
    for i in range(len(lenses)):
        for j in range(i + 1, len(lenses)):
            rho[i, j] = rho[j, i] = rank_correlation(S[i], S[j])
    return pd.DataFrame(rho, index=lenses, columns=lenses)


def pareto_front(cost: dict, power: dict) -> list:
    """The lenses that no other lens beats on both counts -> names by increasing cost: a lens is on the front
    when every cheaper lens (strictly lower ``cost``) has strictly lower ``power`` (e.g. AUROC)."""
    if set(cost) != set(power) or not cost:
        raise ValueError(f"cost and power must name the same lenses, got {sorted(cost)} and {sorted(power)}.")
    front, best = [], -np.inf
    for name in sorted(cost, key=lambda k: (cost[k], -power[k])):
        if power[name] > best:
            front.append(name)
            best = power[name]
    return front


def percentile_ranks(lens: str, values) -> np.ndarray:
    """Rank of each image among all by the oriented score, in (0, 1]: 1 = most memorized by this lens."""
    from scipy.stats import rankdata  # heavy: scipy.stats takes about a second to import

    v = oriented(lens, values)
    return rankdata(v) / len(v)


def rank_disagreements(scores: dict, a: str, b: str, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Images on which lenses ``a`` and ``b`` disagree most -> (the k positions that ``a`` ranks
    as far more memorized than ``b`` does, the k that ``b`` ranks so against ``a``), each sorted by
    the difference of percentile ranks (:func:`percentile_ranks`), largest first."""
    _check_scores({a: scores[a], b: scores[b]})
    diff = percentile_ranks(a, scores[a]) - percentile_ranks(b, scores[b])
    order = np.argsort(-diff, kind="stable")
    k = int(min(k, len(diff)))
    return order[:k], order[::-1][:k]


# -- every lens on one model, with its cost --------------------------------------------------------

def timed(compute: Callable[[], object]) -> dict:
    """``{"value": compute(), "seconds": wall-clock seconds it took}`` -- cache the two together, so that a
    re-run that loads the value reports the cost measured when it was computed."""
    t = time.perf_counter()
    value = compute()
    return {"value": value, "seconds": time.perf_counter() - t}


def forward_seconds(model, x: Tensor, sigma: float, repeats: int = 5) -> float:
    """Seconds per image of one batched forward pass D(x; sigma) over all of ``x`` (the best of
    ``repeats``, after one warm-up call): the unit in which lens costs are stated."""
    times = []
    with torch.no_grad():
        model.denoise(x, float(sigma))
        for _ in range(int(repeats)):
            t = time.perf_counter()
            model.denoise(x, float(sigma))
            times.append(time.perf_counter() - t)
    return min(times) / len(x)


def network_evaluations(lens: str, settings: dict, d: int) -> float:
    """Network evaluations per image that a lens costs under ``settings`` (the keys of
    :func:`lens_scores`; d = the data dimension): a VJP counts as one evaluation (its backward pass
    is extra), PNG none."""
    check_choice("lens", lens, LENSES)
    if lens == "flipd":
        return float(d if settings.get("n_probes") is None else settings["n_probes"])
    if lens == "volume":
        return float(settings["volume_steps"] * (settings["volume_axes"] + 1))
    if lens == "onestep":
        return float(settings["onestep_draws"])
    if lens == "reproduction":
        return float(settings["reproduction_draws"] * (2 * settings["reproduction_steps"] - 1))
    return 0.0


def lens_scores(model, x: Tensor, train: Tensor, own, *, t0: float, n_probes: Optional[int], sigma: float,
                onestep_draws: int, sigma_start: float, reproduction_steps: int, reproduction_draws: int,
                volume_axes: int, volume_steps: int, volume_radius: float, volume_t_start: Optional[float] = None,
                volume_t_end: Optional[float] = None, seed=0, lenses: Sequence[str] = LENSES) -> dict:
    """Every lens of the chapter for the images ``x`` [B, ...] of an EDM model -> {lens: float64 [B],
    "seconds": {lens: seconds per image}}:

    * ``flipd`` -- :func:`mempkg.estimators.lid.flipd` at ``t0`` (= sigma, EDM's time) with ``n_probes``
      Hutchinson probes (None: the exact trace);
    * ``volume`` -- the last column of :func:`mempkg.estimators.volume.volume_growth` of :class:`VPView` (model)
      on VP time [volume_t_start, volume_t_end] (finite differences, the authors' per-axis score);
      ``volume_t_start=None`` starts where the view reads the model at FLIPD's noise level,
      ``VPView(model).time_of(t0)`` (Hasegawa & Yasuda start a VP model at t = 1e-3);
      ``volume_t_end=None`` ends at :attr:`VPView.t_max`, the VP time of the model's sigma_max;
    * ``onestep`` -- :func:`one_step_memorization` at ``sigma``;
    * ``reproduction`` -- :func:`reproduction_ratio` from ``sigma_start``;
    * ``png`` -- :func:`mempkg.estimators.complexity.png_size`.

    ``train`` holds the distinct training images and ``own`` each image's position in it (-1 if
    none). ``seed`` seeds every lens's draws (probes, axes, noise): one int for the batch, or one per
    image (:func:`per_image_seeds`), which makes each image's scores independent of the batch. Seconds
    are wall-clock on this run's device (``torch.cuda.synchronize`` on CUDA).
    """

    own = _check_copy_inputs(x, train, own)
    for k in lenses:
        check_choice("lens", k, LENSES)
    sync = torch.cuda.synchronize if x.device.type == "cuda" else (lambda: None)
    view = VPView(model)
    compute = {
        "flipd": lambda: flipd(model, x, t0, n_probes=n_probes, seed=seed),
        "volume": lambda: volume_growth(view, x, n_axes=volume_axes, radius=volume_radius, n_steps=volume_steps,
                                        t_start=view.time_of(t0) if volume_t_start is None else volume_t_start,
                                        t_end=view.t_max if volume_t_end is None else volume_t_end, method="finite",
                                        seed=seed)[:, -1],
        "onestep": lambda: one_step_memorization(model, x, train, own, sigma, onestep_draws, seed=seed),
        "reproduction": lambda: reproduction_ratio(model, x, train, own, sigma_start, reproduction_steps,
                                                   reproduction_draws, seed=seed),
        "png": lambda: torch.from_numpy(png_size(x.cpu())),
    }
    mod = modules_of(model)
    if mod is not None:
        mod.eval()
    out, seconds = {}, {}
    for k in lenses:
        sync()
        t = time.perf_counter()
        v = compute[k]()
        sync()
        seconds[k] = (time.perf_counter() - t) / len(x)
        out[k] = torch.as_tensor(v).double().cpu().numpy()
    out["seconds"] = seconds
    return out
