import numpy as np
import pytest
import torch

import mempkg.book.profiles as profiles
from mempkg.data.toy import circular_gaps, find_isolated_seed, von_mises_circle
from mempkg.estimators.memorization import copies, nearest_neighbours


def test_profile_resolution_order(monkeypatch):
    monkeypatch.delenv("MEMPKG_PROFILE", raising=False)
    assert profiles.resolve().name == "quick"
    monkeypatch.setenv("MEMPKG_PROFILE", "tiny")
    assert profiles.resolve().name == "tiny"
    assert profiles.resolve("full", device="cpu").name == "full"
    with pytest.raises(ValueError, match="tiny, quick, full"):
        profiles.resolve("huge")
    with pytest.raises(ValueError, match="Unknown device"):
        profiles.resolve("tiny", device="tpu")
    assert profiles.resolve("tiny").device in ("cpu", "cuda")


def test_every_chapter_has_every_profile():
    for chapter, by_profile in profiles.CHAPTERS.items():
        assert set(by_profile) == set(profiles.PROFILES), chapter
        kinds = {type(v) for v in by_profile.values()}
        assert len(kinds) == 1, f"{chapter}: profiles are instances of different settings classes: {kinds}"
        assert by_profile["quick"] == kinds.pop()(), f"{chapter}: the class defaults are not the quick profile"


def test_summary_is_written_with_profile_and_seed(results_tmp):
    p = profiles.resolve("tiny", "cpu").write_summary("nb", {"x": 1.5}, seed=3)
    import json
    assert json.loads(p.read_text()) == {"x": 1.5, "profile": "tiny", "seed": 3, "device": "cpu",
                                         "settings_overridden": {}}
    assert p.parent == results_tmp / "tiny" / "nb"


def test_nearest_neighbours_match_brute_force():
    g = torch.Generator().manual_seed(0)
    q, r = torch.randn(50, 3, 2, generator=g), torch.randn(70, 3, 2, generator=g)
    d, i = nearest_neighbours(q, r, k=2, chunk=16)
    full = torch.cdist(q.reshape(50, -1).double(), r.reshape(70, -1).double())
    dd, ii = full.topk(2, largest=False)
    torch.testing.assert_close(d, dd)
    assert torch.equal(i, ii)


def test_copies_flags_copies_only():
    train = torch.randn(20, 5, generator=torch.Generator().manual_seed(1))
    near = train[:4] + 1e-3
    far = torch.randn(6, 5, generator=torch.Generator().manual_seed(2)) * 5
    flag, idx, _ = copies(torch.cat([near, far]), train)
    assert flag[:4].all() and not flag[4:].any()
    assert torch.equal(idx[:4], torch.arange(4))


def test_circular_gaps_against_brute_force():
    ang = np.random.default_rng(0).uniform(-np.pi, np.pi, 30)
    diff = np.abs(ang[:, None] - ang[None])
    diff = np.minimum(diff, 2 * np.pi - diff)
    np.fill_diagonal(diff, np.inf)
    np.testing.assert_allclose(circular_gaps(ang), diff.min(1))


def test_isolated_seed_search_is_deterministic():
    s = find_isolated_seed(100, 2.0, 1.0)
    ds = von_mises_circle(100, 2.0, s)
    assert ds.isolation_gap >= 1.0 and ds.isolation_gap > 20 * ds.median_gap
    assert all(von_mises_circle(100, 2.0, k).isolation_gap < 1.0 for k in range(s))
    assert torch.equal(ds.points, von_mises_circle(100, 2.0, s).points)
    assert torch.allclose(ds.points.norm(dim=1), torch.ones(100))


def test_auroc_against_brute_force_and_edge_cases():
    from mempkg.estimators.memorization import auroc, two_sided_auroc, welch_test

    g = np.random.default_rng(0)
    pos, neg = g.normal(1, 1, 40), g.normal(0, 1, 50)
    pos[:3] = neg[:3]                                            # ties count one half
    brute = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
    assert abs(auroc(pos, neg) - brute) < 1e-12
    assert auroc([2, 3], [0, 1]) == 1.0 and auroc([0, 1], [2, 3]) == 0.0
    assert two_sided_auroc([0, 1], [2, 3]) == 1.0
    t, p = welch_test(pos + 5, neg)
    assert t > 0 and p < 1e-10
    with pytest.raises(ValueError):
        auroc([], [1.0])


def test_denoising_loss_is_zero_for_the_exact_score_of_a_point_mass():
    from mempkg.core.schedules import VPSDE
    from mempkg.estimators.memorization import denoising_loss
    from mempkg.models.exact import EmpiricalScore

    train = torch.tensor([[0.5, -0.5]], dtype=torch.float64)
    model = EmpiricalScore(train, VPSDE())
    member = denoising_loss(model, train, 0.1, n_draws=4)
    other = denoising_loss(model, torch.tensor([[2.0, 2.0]], dtype=torch.float64), 0.1, n_draws=4)
    assert float(member) < 1e-20 and float(other) > 1.0


def test_plant_duplicates_and_extraction_find_the_planted_images():
    from mempkg.data.images import load_images, plant_duplicates
    from mempkg.estimators.memorization import extract_memorized

    digits = load_images("digits", "train").subset(range(200))
    p = plant_duplicates(digits, n_planted=5, n_copies=4, seed=1)
    assert len(p.train) == 200 + 5 * 3
    for pos in p.planted:
        assert int((p.train.indices == p.unique.indices[pos]).sum()) == 4
    # a "model" that returns noisy copies of two planted images and far-off noise otherwise
    g = torch.Generator().manual_seed(0)
    samples = torch.cat([p.unique.x[p.planted[:2]] + 0.01 * torch.randn(2, 1, 8, 8, generator=g),
                         5 + torch.randn(3, 1, 8, 8, generator=g)])
    found, counts, flag = extract_memorized(samples, p.unique.x)
    assert torch.equal(found, p.planted[:2].sort().values) and counts.tolist() == [1, 1]
    assert flag.tolist() == [True, True, False, False, False]


# -- chapter 01's baseline: samples near the isolated point against the true density ---------------

def test_true_density_mass_near_a_point_matches_closed_forms_and_draws():
    from mempkg.data.toy import von_mises_ball_mass, von_mises_draws

    # uniform on the circle (kappa = 0): the arc cut by a chord r has length 2 * 2 arcsin(r / 2)
    r = 0.3
    assert von_mises_ball_mass(1.0, r, kappa=0.0) == pytest.approx(4 * np.arcsin(r / 2) / (2 * np.pi), rel=1e-9)
    assert von_mises_ball_mass(1.0, 2.5, kappa=2.0) == 1.0
    # kappa = 2: the exact mass agrees with the share of 400k draws within r
    x = von_mises_draws(400_000, 2.0, seed=3).double()
    c = torch.tensor([np.cos(2.5), np.sin(2.5)], dtype=torch.float64)
    share = float(((x - c).norm(dim=1) < r).double().mean())
    p = von_mises_ball_mass(2.5, r, kappa=2.0)
    assert share == pytest.approx(p, abs=4 * (p / 400_000) ** 0.5)
    assert (x.norm(dim=1) - 1).abs().max() < 1e-6        # draws lie on the circle


def test_true_density_fails_the_copy_test_a_memorizer_passes():
    """A sampler of the true density does not pass the copy test, but a memorizer does."""
    from mempkg.data.toy import von_mises_ball_mass, von_mises_draws
    from mempkg.estimators.memorization import excess_count_test

    ds = von_mises_circle(100, 2.0, seed=17)
    point, theta, r, n = ds.points[ds.isolated], float(ds.angles[ds.isolated]), 0.03, 2000
    p0 = von_mises_ball_mass(theta, r, ds.kappa)
    # the model-free sampler itself: its count is what the baseline expects, so the test rarely fires
    pvalues = [excess_count_test(int(((von_mises_draws(n, 2.0, seed=s) - point).norm(dim=1) < r).sum()), n, p0)
               for s in range(40)]
    assert sum(p < 0.01 for p in pvalues) <= 2
    # a sampler that puts 1% of its samples on the isolated point (its share of the training set)
    memorizer = torch.cat([von_mises_draws(n - 20, 2.0, seed=99), point.expand(20, 2)])
    k = int(((memorizer - point).norm(dim=1) < r).sum())
    assert excess_count_test(k, n, p0) < 1e-6
    with pytest.raises(ValueError):
        excess_count_test(5, 3, 0.1)


def test_a_long_run_announces_its_time_and_a_short_one_does_not(capsys):
    from mempkg.core.progress import announce_eta
    announce_eta("volume growth", 2.0, 1, 100)                 # 200 s expected
    err = capsys.readouterr().err
    assert "volume growth: about 3 min in all (3 min left), from the first 1 of 100 steps." in err
    announce_eta("FLIPD", 0.1, 1, 100)                         # 10 s: no line
    announce_eta("score", 30.0, 8, 100, unit="image")          # 375 s
    err = capsys.readouterr().err
    assert "FLIPD" not in err and "from the first 8 of 100 images" in err
