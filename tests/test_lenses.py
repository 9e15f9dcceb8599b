"""Three lenses on one model: the duplicated training set, copy tests with known answers, the VP view of
an EDM model, and the tables that compare lenses."""

import numpy as np
import pytest
import torch

from mempkg.core.schedules import VPSDE, EDMSchedule
from mempkg.data.images import load_images
from mempkg.estimators.lid import flipd
from mempkg.models.edm import EDMPrecond
from mempkg.models.exact import EmpiricalScore
from mempkg.models.views import VPView
from mempkg.studies import lenses as L


class NearestDenoiser:
    """D(y; sigma) = the training point nearest to y, whatever sigma: a perfect copier."""

    def __init__(self, train):
        self.train = train

    def denoise(self, y, sigma, cond=None):
        d = torch.cdist(y.flatten(1).double(), self.train.flatten(1).double())
        return self.train[d.argmin(1)].to(y)

    __call__ = denoise


def identity_denoiser(y, sigma):
    return y


def spread_points(n=6, d=16, scale=10.0, seed=0):
    """n points in R^d (as [n, 1, 4, 4] images when d = 16) at mutual distance ~ scale sqrt(2)."""
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(n, d, generator=g)).reshape(n, 1, 4, 4)


@pytest.fixture(scope="module")
def digits_train():
    return load_images("digits", "train")


# -- the training set ------------------------------------------------------------------------------

def test_duplicated_set_has_the_stated_counts_and_labels(digits_train):
    dup = L.duplicated_training_set(digits_train, n_singletons=10, n_per_count=3, seed=1)
    assert len(dup.unique) == 10 + 3 * 5
    for k in L.DUPLICATION_COUNTS:
        assert int((dup.copies == k).sum()) == 3
    assert int((dup.copies == 1).sum()) == 10
    assert len(dup.train) == 10 + 3 * sum(L.DUPLICATION_COUNTS) == int(dup.copies.sum())
    torch.testing.assert_close(dup.train.x, dup.unique.x[dup.origin])
    assert torch.equal(dup.duplicated, dup.copies > 1)
    # every distinct image appears exactly copies[i] times, counted by value
    rows, inverse, counts = L.deduplicate(dup.train.x)
    assert torch.equal(rows, dup.unique.x) and torch.equal(counts, dup.copies) and torch.equal(inverse, dup.origin)
    # the held-out split shares no image with it
    test = load_images("digits", "test")
    assert len(L.deduplicate(torch.cat([dup.unique.x, test.x]))[0]) == len(dup.unique) + len(test)
    # another seed duplicates other images, same counts
    other = L.duplicated_training_set(digits_train, 10, 3, seed=2)
    assert not torch.equal(other.copies, dup.copies)
    assert sorted(other.copies.tolist()) == sorted(dup.copies.tolist())


def test_deduplicate_keeps_first_occurrence_order():
    a, b, c = torch.zeros(1, 2, 2), torch.ones(1, 2, 2), torch.full((1, 2, 2), 2.0)
    x = torch.stack([b, a, b, c, a, b])
    rows, inverse, counts = L.deduplicate(x)
    assert torch.equal(rows, torch.stack([b, a, c]))
    assert inverse.tolist() == [0, 1, 0, 2, 1, 0] and counts.tolist() == [3, 2, 1]
    assert torch.equal(rows[inverse], x)


# -- copying a given image -------------------------------------------------------------------------

def test_one_step_rate_is_one_for_nn_denoiser_zero_for_identity():
    """The one-step rate is one for a nearest-neighbour denoiser and zero for the identity."""
    train = spread_points()
    own = torch.arange(len(train))
    rate = L.one_step_memorization(NearestDenoiser(train), train, train, own, sigma=0.1, n_draws=8)
    assert torch.equal(rate, torch.ones(len(train), dtype=torch.float64))
    # held-out points half-way between training points: the identity returns y = x + sigma z, which
    # is far from every training image, so nothing is copied
    held = 0.5 * (train + train.roll(1, 0))
    rate = L.one_step_memorization(identity_denoiser, held, train, -torch.ones(len(held), dtype=torch.long),
                                   sigma=0.5, n_draws=8)
    assert torch.equal(rate, torch.zeros(len(held), dtype=torch.float64))
    # the identity on training images at small sigma copies x itself: r = sigma |z| / ~14
    rate = L.one_step_memorization(identity_denoiser, train, train, own, sigma=0.1, n_draws=4)
    assert torch.equal(rate, torch.ones(len(train), dtype=torch.float64))


def test_own_copy_ratio_counts_a_copy_of_another_image_as_no_copy():
    train = spread_points()
    own = torch.arange(len(train))
    r_self = L.own_copy_ratio(train, train, own)
    assert torch.all(r_self == 0)
    r_other = L.own_copy_ratio(train.roll(1, 0), train, own)       # each output is a neighbour's image
    assert torch.all(torch.isinf(r_other) | (r_other > 1e6))
    # held-out: plain d1/d2, computed by hand
    g = train[:2] + 0.3
    d = torch.cdist(g.flatten(1).double(), train.flatten(1).double()).sort(1).values
    torch.testing.assert_close(L.own_copy_ratio(g, train, torch.tensor([-1, -1])), d[:, 0] / d[:, 1])


def test_reproduction_ratio_of_a_nearest_image_sampler():
    """The reproduction ratio of a sampler that returns the nearest training image."""
    train = spread_points()
    own = torch.arange(len(train))
    r = L.reproduction_ratio(NearestDenoiser(train), train, train, own, sigma_start=0.5, n_steps=6, n_draws=3)
    assert r.shape == (len(train),) and torch.all(r < 1e-6)
    # started from a held-out point next to training image 0, it lands on image 0: a copy (d1/d2 = 0)
    held = train[:1] + 0.2
    r = L.reproduction_ratio(NearestDenoiser(train), held, train, torch.tensor([-1]), sigma_start=0.5, n_steps=6)
    assert float(r[0]) < 1e-6
    # the identity "denoiser" keeps the noisy start: not a copy at a large start (r ~ sigma sqrt(d) / 14)
    class Identity:
        def denoise(self, y, sigma, cond=None):
            return y
    r = L.reproduction_ratio(Identity(), train, train, own, sigma_start=20.0, n_steps=6)
    assert torch.all(r > 1 / 3)


def test_memorized_by_generation_on_hand_built_samples():
    train = spread_points(n=4)
    samples = torch.stack([train[0] + 0.01, train[2] + 0.02, train[2] - 0.01, 0.5 * (train[0] + train[1])])
    labels, n_copies = L.memorized_by_generation(samples, train)
    assert labels.tolist() == [True, False, True, False]
    assert n_copies.tolist() == [1, 0, 2, 0]


# -- the VP clock --------------------------------------------------------------------------------

def test_vp_view_of_an_edm_score_is_the_vp_score():
    pts = spread_points(n=5, scale=1.0).reshape(5, 16).double()
    vp, edm = VPSDE(), EDMSchedule()
    y = torch.randn(7, 16, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    view = VPView(EmpiricalScore(pts, edm), vp)
    for t in (1e-3, 0.05, 0.5, view.t_max):
        torch.testing.assert_close(view.score(y, t), EmpiricalScore(pts, vp).score(y, t))


def test_vp_view_ends_at_the_edm_models_largest_noise_level():
    view = VPView(EmpiricalScore(spread_points(n=2, scale=1.0).reshape(2, 16), EDMSchedule(sigma_max=80.0)))
    assert float(view.sde.sigma(view.t_max) / view.sde.alpha(view.t_max)) == pytest.approx(80.0, rel=1e-9)
    assert 0.9 < view.t_max < 1.0           # VP time 1 would read sigma ~ 152, beyond what EDM trains on
    with pytest.raises(ValueError, match="t_max"):
        view.score(torch.zeros(1, 16), 1.0)
    # a VP model has no sigma_max: its view runs to the VP-SDE's end
    assert VPView(EmpiricalScore(torch.zeros(2, 16), VPSDE())).t_max == 1.0


def test_vp_time_of_a_noise_level_round_trips():
    view = VPView(EmpiricalScore(spread_points(n=2, scale=1.0).reshape(2, 16), EDMSchedule()))
    for sigma in (0.01, 0.1, 1.0, 20.0):
        t = view.time_of(sigma)
        assert 0 < t <= 1
        assert float(view.sde.sigma(t) / view.sde.alpha(t)) == pytest.approx(sigma, rel=1e-9)


def test_flipd_is_the_same_on_either_clock():
    pts = spread_points(n=5, scale=1.0).reshape(5, 16).double()
    model = EmpiricalScore(pts, EDMSchedule())
    x = pts[:3] + 0.05
    view = VPView(model)
    t_vp = 0.05
    sigma_ve = float(view.sde.sigma(t_vp) / view.sde.alpha(t_vp))
    torch.testing.assert_close(flipd(view, x, t_vp), flipd(model, x, sigma_ve))


# -- comparing lenses --------------------------------------------------------------------------------

def _scores(n=40, seed=0):
    g = np.random.default_rng(seed)
    positive = np.arange(n) < n // 4
    base = positive + 0.3 * g.standard_normal(n)
    return positive, {"flipd": -base, "volume": base + 0.5 * g.standard_normal(n), "onestep": g.random(n),
                      "reproduction": -base, "png": g.integers(100, 120, n).astype(float)}


def test_detection_power_and_spearman_tables():
    positive, scores = _scores()
    power = L.detection_power(scores, positive, n_boot=50, seed=0)
    assert list(power.index) == list(scores) and list(power.columns) == ["auroc", "se", "se_diff_best",
                                                                          "as_good_as_best"]
    assert power.loc["flipd", "auroc"] > 0.9 and power.loc["flipd", "as_good_as_best"]
    assert power["auroc"].between(0, 1).all() and (power["se"] >= 0).all()
    # the orientation is fixed: a lens read the wrong way round scores below 1/2, it is not flipped
    flipped = L.detection_power({"flipd": scores["reproduction"] * -1, "volume": scores["volume"]}, positive,
                                n_boot=20)
    assert flipped.loc["flipd", "auroc"] < 0.1
    rho = L.spearman_matrix(scores)
    assert rho.shape == (5, 5) and np.allclose(rho.values, rho.values.T) and np.allclose(np.diag(rho.values), 1)
    assert rho.loc["flipd", "reproduction"] == pytest.approx(1.0)       # the same oriented score
    assert rho.loc["flipd", "volume"] > 0.5


def test_variants_take_their_lens_direction():
    positive, scores = _scores()
    power = L.detection_power({"flipd": scores["flipd"], "flipd:1 probe": scores["flipd"] + 1e-3}, positive, n_boot=10)
    assert power.loc["flipd:1 probe", "auroc"] == pytest.approx(power.loc["flipd", "auroc"])
    assert L.lens_label("volume:N=1, K=1") == "volume growth L (high) [N=1, K=1]"
    with pytest.raises(ValueError, match="lens"):
        L.base_lens("lid:1 probe")
    assert L.rank_correlation(np.arange(5.0), np.ones(5)) == 0.0       # a constant score ranks nothing


def test_pareto_front_keeps_only_undominated_lenses():
    cost = {"png": 0.1, "flipd:1 probe": 3.0, "onestep": 17.0, "flipd": 270.0, "volume": 160.0}
    power = {"png": 0.49, "flipd:1 probe": 0.81, "onestep": 0.78, "flipd": 0.88, "volume": 0.78}
    assert L.pareto_front(cost, power) == ["png", "flipd:1 probe", "flipd"]
    with pytest.raises(ValueError, match="same lenses"):
        L.pareto_front(cost, {"png": 0.5})


def test_rank_disagreements_find_the_planted_disagreement():
    positive, scores = _scores(n=20)
    a = dict(scores)
    a["volume"] = -a["flipd"].copy()                   # agrees with FLIPD everywhere ...
    a["volume"][3] = a["volume"].min() - 1             # ... but calls a memorized image the least memorized
    first, second = L.rank_disagreements(a, "flipd", "volume", k=2)
    assert first[0] == 3 and len(first) == len(second) == 2
    assert 3 not in second


# -- bad input and determinism ----------------------------------------------------------------------

def test_bad_input_fails_early_and_plainly(digits_train):
    train = spread_points()
    with pytest.raises(ValueError, match="de-duplicated"):
        L.one_step_memorization(identity_denoiser, train, torch.cat([train, train[:1]]), torch.arange(6), 0.1)
    with pytest.raises(ValueError, match="own"):
        L.one_step_memorization(identity_denoiser, train, train, torch.arange(6).roll(1), 0.1)
    with pytest.raises(ValueError, match="own"):
        L.reproduction_ratio(NearestDenoiser(train), train, train, torch.arange(5), 0.5)
    with pytest.raises(ValueError, match="counts"):
        L.duplicated_training_set(digits_train, 10, 2, counts=(1, 4))
    with pytest.raises(ValueError, match="pool"):
        L.duplicated_training_set(digits_train, 990, 4)
    with pytest.raises(ValueError, match="both classes"):
        L.detection_power({"flipd": np.arange(5.0)}, np.ones(5, bool))
    with pytest.raises(ValueError, match="lens"):
        L.spearman_matrix({"lid": np.arange(5.0), "volume": np.arange(5.0)})
    with pytest.raises(ValueError, match="one score per image"):
        L.spearman_matrix({"flipd": np.arange(5.0), "volume": np.arange(4.0)})


def test_same_seed_same_numbers(tiny_unet):
    torch.manual_seed(0)
    model = EDMPrecond(tiny_unet, sigma_data=0.75).eval()
    train = load_images("digits", "train").x[:12]
    x = torch.cat([train[:3], load_images("digits", "test").x[:2]])
    own = torch.tensor([0, 1, 2, -1, -1])
    settings = dict(t0=0.05, n_probes=2, sigma=0.5, onestep_draws=3, sigma_start=1.0, reproduction_steps=3,
                    reproduction_draws=2, volume_axes=2, volume_steps=2, volume_radius=0.05)
    a = L.lens_scores(model, x, train, own, seed=4, **settings)
    b = L.lens_scores(model, x, train, own, seed=4, **settings)
    c = L.lens_scores(model, x, train, own, seed=5, **settings)
    for k in L.LENSES:
        assert a[k].shape == (5,) and np.isfinite(a[k]).all()
        np.testing.assert_array_equal(a[k], b[k])
        assert a["seconds"][k] >= 0
    assert not np.array_equal(a["flipd"], c["flipd"]) and not np.array_equal(a["volume"], c["volume"])
    assert L.forward_seconds(model, x, 0.5, repeats=2) > 0
    assert L.network_evaluations("volume", settings, 64) == 2 * 3
    assert L.network_evaluations("flipd", dict(settings, n_probes=None), 64) == 64


def test_per_image_seeds_make_every_score_independent_of_its_batch(tiny_unet):
    model = EDMPrecond(tiny_unet, sigma_data=0.75).eval()
    train = load_images("digits", "train").x[:12]
    x = torch.cat([train[:4], load_images("digits", "test").x[:2]])
    own = torch.tensor([0, 1, 2, 3, -1, -1])
    seeds = L.per_image_seeds(3, [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1)])
    assert len(set(seeds)) == 6 and seeds == L.per_image_seeds(3, [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1)])
    settings = dict(t0=0.05, n_probes=2, sigma=0.5, onestep_draws=4, sigma_start=1.0, reproduction_steps=3,
                    reproduction_draws=2, volume_axes=2, volume_steps=2, volume_radius=0.05)
    whole = L.lens_scores(model, x, train, own, seed=seeds, **settings)
    part = [5, 1, 3]                                   # another batch, in another order
    sub = L.lens_scores(model, x[part], train, own[part], seed=[seeds[i] for i in part], **settings)
    for k in L.LENSES:   # float32 network: a batch of another size rounds differently in the last digits
        np.testing.assert_allclose(sub[k], whole[k][part], rtol=1e-4, atol=1e-6, err_msg=k)
    with pytest.raises(ValueError, match="one seed per image"):
        L.one_step_memorization(model, x, train, own, 0.5, seed=[1, 2])
    # rates strictly between 0 and 1 (the identity at the copy threshold) are equal draw for draw
    pts, ids = spread_points(), torch.arange(6)
    s6 = L.per_image_seeds(0, range(6))
    rate = L.one_step_memorization(identity_denoiser, pts, pts, ids, 4.0, n_draws=32, seed=s6)
    assert ((rate > 0) & (rate < 1)).any()
    torch.testing.assert_close(L.one_step_memorization(identity_denoiser, pts[[4, 2]], pts, ids[[4, 2]], 4.0,
                                                       n_draws=32, seed=[s6[4], s6[2]]), rate[[4, 2]])


# -- the chapter's study ---------------------------------------------------------------------------

SUMMARY_KEYS = {  # the keys chapter 05 has always written (less profile, seed, device, settings, seconds)
    *(f"{p}_{k}" for p in ("auroc", "auroc_se", "auroc_generation", "auroc_member", "cost_forward_passes",
                           "seconds_per_image") for k in L.LENSES),
    *(f"{p}_{v}" for p in ("auroc", "cost_forward_passes")
      for v in ("flipd_1probe", "volume_1axis_1step", "volume_authors_start")),
    *(f"spearman_{a}_{b}" for i, a in enumerate(L.LENSES) for b in L.LENSES[i + 1:]),
    "planted_k", "spearman_oriented", "forward_pass_seconds_per_image", "pareto_front", "positive_class",
    "cheapest_as_good_as_best", "best_lens", "n_unique", "n_rows", "n_memorized", "memorized_fraction_singletons",
    "memorized_fraction_duplicated", "generation_copy_rate", "danger_zone_low", "danger_zone_high", "sigma_onestep",
    "t0", "onestep_best_sweep_sigma", "onestep_best_sweep_auroc", "onestep_best_sweep_auroc_in_zone", "model",
    "data_digest"}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    import dataclasses

    from mempkg.book import profiles
    from mempkg.book.cache import Cache
    from mempkg.studies import three_lenses

    settings = dataclasses.replace(profiles.CHAPTERS["three_lenses"]["tiny"], train_steps=4, n_generations=16)
    cache = Cache(tmp_path_factory.mktemp("three_lenses"), device="cpu")
    first = three_lenses.run(settings, seed=1, device="cpu", cache=cache, profile="tiny")
    misses = cache.misses
    second = three_lenses.run(settings, seed=1, device="cpu", cache=cache, profile="tiny")
    return settings, first, second, misses, cache


def test_study_returns_a_frozen_result_with_the_chapter_s_keys(study):
    """The summary holds the chapter's keys (the generation AUROCs with a reason when one class is empty),
    and a second run reads every computation back from the cache with the same numbers."""
    import dataclasses

    settings, r, again, misses, cache = study
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.rho = None
    s = r.summary
    reasons = {k for k in s if k.endswith("_reason")}
    assert set(s) - reasons == SUMMARY_KEYS and "verdicts" not in s and "seconds" not in s
    assert all(s[k[: -len("_reason")]] is None for k in reasons)
    assert s["n_unique"] == settings.n_singletons + settings.n_per_count * len(settings.counts)
    assert s["positive_class"] == f"duplicated {settings.planted_k}+ times" and s["planted_k"] == settings.planted_k
    assert misses > 0 and cache.misses == misses, "the second run computed something again"
    assert again.summary == s


def test_study_tables_repeat_the_summary_s_numbers(study):
    """The AUROC, cost, sweep and together tables show the summary's numbers: one computation, shown several ways."""
    _, r, _, _, _ = study
    s, power = r.summary, r.power
    for k in L.LENSES:
        assert power.table.loc[L.lens_label(k)].iloc[0] == s[f"auroc_{k}"]
        assert r.together.loc[L.LENS_LABELS[k], "training vs held-out"] == s[f"auroc_member_{k}"]
        assert r.cost.table.loc[L.lens_label(k), "x one forward pass"] == s[f"cost_forward_passes_{k}"]
    assert list(r.together.iloc[:, 0]) == sorted(r.together.iloc[:, 0], reverse=True)
    assert r.sweep.best_auroc == s["onestep_best_sweep_auroc"]
    assert r.sweep.rates.shape == (len(r.sweep.sigmas), s["n_unique"])
    assert r.levels.zone == (s["danger_zone_low"], s["danger_zone_high"]) and r.levels.t0 == s["t0"]
    assert r.disagreements.table["images"].iloc[-1] == s["n_unique"] and len(r.disagreements.shown) == 6
    assert r.power.questions["positive"].iloc[-1] == s["n_unique"]
    assert r.scores.trend is not None and len(r.pairs) == len(L.LENSES) * (len(L.LENSES) - 1) // 2
