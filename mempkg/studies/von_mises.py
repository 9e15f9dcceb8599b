"""Chapter 01: an isolated training point on the von Mises circle (Ross, Kamkari et al., Fig. 3).

n angles ~ vonMises(0, kappa) on the unit circle (D = 2, d = 1), the first data seed that leaves
one point at least ``min_gap`` radians from its neighbours; an eps-MLP trained on them by denoising
score matching; FLIPD (Kamkari et al.) at every training point, read at the knee of the median
FLIPD(t0) curve; reverse-SDE samples, and the count of samples within the copy radius of the
isolated point tested against the exact mass the true density puts there. The knee t0 is chosen on
the first training seed (the selection seed) only; the claim is tested on the other training seeds,
each read at that t0, so the rule is not tuned on the data it is decided on.

Layer: studies (imports core, estimators, models, data).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
import time

import numpy as np
import pandas as pd
from torch import Tensor

from ..core.schedules import VPSDE
from ..data import toy
from ..estimators import lid
from ..estimators.memorization import copies, excess_count_test, nearest_neighbours
from ..models.adapters import EpsModel
from ..models.exact import EmpiricalScore
from ..models.networks import MLPEps
from ..models.sampling import sample
from ..models.train import train_cached

__all__ = ["VonMisesResult", "run"]


@dataclass(frozen=True)
class VonMisesResult:
    """What chapter 01 shows: the data, FLIPD at the training points and at the samples, the copy counts.

    ``curve``, ``knee`` and ``samples`` are those of the first training seed, the selection seed whose
    knee gives ``t0``; ``seeds`` repeats the read-out at that ``t0`` and the copy count for every
    training seed, the test seeds after the selection seed.
    """

    data: toy.VonMisesCircle        # the training set, its isolated point and gaps
    data_seed: int                  # the first seed >= data_seed_start that isolates a point by min_gap
    history: dict                   # {"losses": [...]} of the first training seed
    t0s: np.ndarray                 # [n_curve] log-spaced in [1e-3, 1]
    curve: Tensor                   # [n_curve, n_train] FLIPD(x, t0) at every training point
    curve_exact: Tensor             # [n_curve] the isolated point under the exact training-set score
    knee: int                       # index in t0s of the knee of the median curve of the other points
    t0: float                       # t0s[knee]: the read-out time
    points: pd.DataFrame            # per training point: angle, FLIPD at the knee, at the fixed t0, exact score
    samples: Tensor                 # [n_samples, 2] reverse-SDE samples
    flipd_samples: Tensor           # [n_samples] FLIPD of the samples at the knee t0
    true_draws: Tensor              # [n_samples, 2] draws of the true density (data_seed + 1)
    copy_radius: float              # copy_radius_sigmas * sigma(t_end)
    data_table: pd.DataFrame        # the isolated point against the others
    flipd_table: pd.DataFrame       # FLIPD of the isolated and the other points per read-out
    copy_table: pd.DataFrame        # samples near the isolated point: model, true draws, exact expectation
    seeds: pd.DataFrame             # per training seed: role (selection, test), t0, FLIPD, copies, p
    summary: dict                   # the chapter's summary.json (without verdicts)

    @property
    def others(self) -> np.ndarray:
        """Indices of the training points other than the isolated one."""
        return np.delete(np.arange(len(self.data.points)), self.data.isolated)


def run(settings, *, seed: int, device, cache) -> VonMisesResult:
    """Train, read FLIPD and count copies of the isolated point on every training seed.

    The knee t0 is chosen on the selection seed ``seed`` alone; every test seed (``seed + 1``, ...,
    ``seed + n_train_seeds - 1``) is read at that t0, and only the test seeds enter the ``*_by_seed``
    lists the scorecard decides the claim on.

    FLIPD(x, t0) = D + sigma(t0)^2 [tr grad s(psi(t0) x, t0) + |s(psi(t0) x, t0)|^2]  (Kamkari et al., eq. 9),
    exact trace, D = 2. A sample copies the isolated point x_iso when |x - x_iso| < r, r = copy_radius_sigmas *
    sigma(t_end); its count k of n is tested against p0 = P_true(|X - x_iso| < r) by P(Bin(n, p0) >= k).

    Args:
        settings: the chapter's settings (``mempkg.book.profiles.VonMises``).
        seed: the selection seed, the first training seed; each training seed also seeds its own samples.
        device: where the model trains and runs.
        cache: ``cache.get(name, params, compute, inputs=...)``; also what ``train_cached`` needs.
    Returns:
        a :class:`VonMisesResult`.
    """
    S, start = settings, time.time()
    sde = VPSDE()

    # 1. the data: the first seed that isolates a point
    data_seed = toy.find_isolated_seed(S.n_train, S.kappa, S.min_gap, start=S.data_seed_start)
    ds = toy.von_mises_circle(S.n_train, S.kappa, data_seed)
    train_nn = nearest_neighbours(ds.points, ds.points, k=2)[0][:, 1]          # Euclidean, excluding itself
    median_train_nn = float(train_nn.median())

    def train_model(train_seed):
        arch = dict(hidden=S.hidden, depth=S.depth, t_dim=S.t_dim)
        return train_cached(cache, "eps_mlp", lambda: MLPEps(2, **arch, seed=train_seed), dict(arch, seed=train_seed),
                            sde, ds.points, S.train_steps, seed=train_seed, device=device, lr=S.lr,
                            n_noise=S.n_noise, t_min=S.t_min, t_sampling=S.t_sampling)

    def flipd_curve(m, s):
        return cache.get("flipd_curve_all", dict(asdict(S), data_seed=data_seed, seed=s, t0s=t0s.tolist()),
                         lambda: lid.flipd_curve(m, x_train, t0s), inputs={"model": m, "x": x_train})

    def samples_of(m, s):
        return cache.get("samples", dict(asdict(S), data_seed=data_seed, seed=s),
                         lambda: sample(m, S.n_samples, 2, n_steps=S.sample_steps, t_end=S.t_end,
                                        method=S.sampler, seed=s, device=device), inputs={"model": m})

    # 2. the model of the first training seed
    net, history = train_model(seed)
    model = EpsModel(net, sde)

    # 3. FLIPD at the training points; t0 at the knee of the median curve of the other points
    t0s = np.logspace(-3, 0, S.n_curve)
    x_train = ds.points.to(device)
    others = np.delete(np.arange(len(ds.points)), ds.isolated)
    curve = flipd_curve(model, seed)
    knee = lid.find_knee(t0s, curve[:, others].median(1).values)
    t0, t0_fixed = float(t0s[knee]), S.t0
    lid_train = curve[knee]
    lid_train_fixed = lid.flipd(model, x_train, t0_fixed)
    lid_train_exact = lid.flipd(EmpiricalScore(ds.points, sde), ds.points.double(), t0)
    curve_exact = lid.flipd_curve(EmpiricalScore(ds.points, sde), ds.points[[ds.isolated]].double(), t0s)[:, 0]
    flipd_isolated = float(lid_train[ds.isolated])
    flipd_median_others = float(lid_train[others].median())

    # 4. samples, and their count within the copy radius against the true density
    copy_radius = S.copy_radius_sigmas * float(sde.sigma(S.t_end))
    p_true = toy.von_mises_ball_mass(float(ds.angles[ds.isolated]), copy_radius, ds.kappa, ds.mu)
    iso_point = ds.points[ds.isolated]
    samples = samples_of(model, seed)
    true_draws = toy.von_mises_draws(len(samples), ds.kappa, ds.mu, seed=data_seed + 1)
    lid_samples = lid.flipd(model, samples.to(device), t0)
    dist_to_iso = (samples - iso_point).norm(dim=1)
    dist_true_to_iso = (true_draws - iso_point).norm(dim=1)
    near_iso = dist_to_iso < copy_radius
    n_copy_iso = int(near_iso.sum())
    n_true_iso = int((dist_true_to_iso < copy_radius).sum())
    p_copies = excess_count_test(n_copy_iso, len(samples), p_true)
    ratio_model = copies(samples, ds.points)
    ratio_true = copies(true_draws, ds.points)
    nearest_sample_to_isolated = float(dist_to_iso.min())

    # 5. every training seed read at the selection seed's t0 (index knee on the same grid); its own knee
    #    is shown, never used: tuning t0 on a test seed would tune the rule on the data it decides
    rows = []
    for s in range(seed, seed + S.n_train_seeds):
        m = model if s == seed else EpsModel(train_model(s)[0], sde)
        c = curve if s == seed else flipd_curve(m, s)
        own_knee = lid.find_knee(t0s, c[:, others].median(1).values)
        smp = samples if s == seed else samples_of(m, s)
        n_near = int(((smp - iso_point).norm(dim=1) < copy_radius).sum())
        rows.append({"train seed": s, "role": "selection" if s == seed else "test", "t0": float(t0s[knee]),
                     "own knee t0": float(t0s[own_knee]), "FLIPD isolated": float(c[knee, ds.isolated]),
                     "median FLIPD others": float(c[knee, others].median()), "copies of the isolated point": n_near,
                     "true density, expected": p_true * len(smp),
                     "p (binomial, one-sided)": excess_count_test(n_near, len(smp), p_true)})
    seeds = pd.DataFrame(rows).set_index("train seed")
    test = seeds[seeds["role"] == "test"]
    columns = {"flipd_isolated_by_seed": "FLIPD isolated", "flipd_median_others_by_seed": "median FLIPD others",
               "t0_by_seed": "t0", "knee_t0_by_seed": "own knee t0", "copies_by_seed": "copies of the isolated point",
               "p_copies_vs_true_density_by_seed": "p (binomial, one-sided)"}
    if len(test):
        by_seed = {key: test[col].tolist() for key, col in columns.items()}
    else:                                       # null: the scorecard calls the claim undecided, with the reason
        no_test = ("one training seed: the knee t0 is chosen on it, so no seed is left to test the claim on "
                   "(n_train_seeds >= 2 gives one)")
        by_seed = {**dict.fromkeys(columns), **{f"{key}_reason": no_test for key in columns}}

    n = len(samples)
    median_others_curve = curve[:, others].median(1).values
    data_table = pd.DataFrame({"value": {
        "data seed": data_seed, "kappa": S.kappa, "angle of the isolated point (rad)": float(ds.angles[ds.isolated]),
        "its nearest-neighbour angle (rad)": ds.isolation_gap,
        "median nearest-neighbour angle of the others (rad)": ds.median_gap,
        "ratio of the two": ds.isolation_gap / ds.median_gap}})
    flipd_table = pd.DataFrame([
        {"read-out": "model, knee of the median curve", "t0": t0, "sigma(t0)": float(sde.sigma(t0)),
         "isolated point": flipd_isolated, "other points (median)": flipd_median_others},
        {"read-out": "model, fixed t0", "t0": t0_fixed, "sigma(t0)": float(sde.sigma(t0_fixed)),
         "isolated point": float(lid_train_fixed[ds.isolated]),
         "other points (median)": float(lid_train_fixed[others].median())},
        {"read-out": "exact training-set score, knee", "t0": t0, "sigma(t0)": float(sde.sigma(t0)),
         "isolated point": float(lid_train_exact[ds.isolated]),
         "other points (median)": float(lid_train_exact[others].median())},
        {"read-out": "model, smallest over the t0 grid", "isolated point": float(curve[:, ds.isolated].min()),
         "other points (median)": float(median_others_curve.min())},
        {"read-out": "model, largest over the t0 grid", "isolated point": float(curve[:, ds.isolated].max()),
         "other points (median)": float(median_others_curve.max())},
    ]).set_index("read-out")
    copies_iso = {"the trained model": ratio_model, "true von Mises density": ratio_true}
    copy_table = pd.DataFrame({
        "samples": {"the trained model": n, "true von Mises density": n, "true density, expected (exact mass)": n},
        f"within {copy_radius:.3g} of the isolated point": {
            "the trained model": n_copy_iso, "true von Mises density": n_true_iso,
            "true density, expected (exact mass)": p_true * n},
        "ratio test d1 < d2/3 (isolated point)": {
            k: int((r[0] & (r[1] == ds.isolated)).sum()) for k, r in copies_iso.items()},
        "p (binomial, one-sided)": {"the trained model": p_copies,
                                    "true von Mises density": excess_count_test(n_true_iso, n, p_true)},
        "nearest to the isolated point": {"the trained model": nearest_sample_to_isolated,
                                          "true von Mises density": float(dist_true_to_iso.min())},
        f"within {median_train_nn:.3g} (median training NN distance)": {
            "the trained model": int((dist_to_iso < median_train_nn).sum()),
            "true von Mises density": int((dist_true_to_iso < median_train_nn).sum())},
        "median FLIPD, copies": {"the trained model": float(lid_samples[near_iso].median()) if n_copy_iso else None},
        "median FLIPD, other samples": {"the trained model": float(lid_samples[~near_iso].median())},
    }).astype(float).T
    points = pd.DataFrame({"angle": ds.angles, "FLIPD, knee t0": lid_train.numpy(),
                           "FLIPD, fixed t0": lid_train_fixed.numpy(), "FLIPD, exact score": lid_train_exact.numpy(),
                           "isolated": np.arange(len(ds.angles)) == ds.isolated})
    summary = {
        "flipd_isolated": flipd_isolated,
        "flipd_median_others": flipd_median_others,
        "flipd_isolated_fixed_t0": float(lid_train_fixed[ds.isolated]),
        "flipd_median_others_fixed_t0": float(lid_train_fixed[others].median()),
        "flipd_isolated_exact_score": float(lid_train_exact[ds.isolated]),
        **by_seed,                                  # the test seeds only, in order
        "t0_selection_seed": seed,
        "test_seeds": test.index.tolist(),
        "n_train_seeds": S.n_train_seeds,
        "nearest_sample_to_isolated": nearest_sample_to_isolated,
        "median_train_nn_distance": median_train_nn,
        "copy_radius": copy_radius,
        "n_samples_copying_isolated": n_copy_iso,
        "n_true_density_copying_isolated": n_true_iso,
        "true_density_copy_probability": p_true,
        "p_copies_vs_true_density": p_copies,
        "n_samples": n,
        "isolation_gap_rad": ds.isolation_gap,
        "data_seed": data_seed,
        "kappa": S.kappa,
        "t0": t0,
        "t0_fixed": t0_fixed,
        "seed": seed,
        "seconds": time.time() - start,
    }
    return VonMisesResult(ds, data_seed, history, t0s, curve, curve_exact, knee, t0, points, samples, lid_samples,
                          true_draws, copy_radius, data_table, flipd_table, copy_table, seeds, summary)
