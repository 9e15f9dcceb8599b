"""Chapter 01's study: `mempkg.studies.von_mises.run` under cut tiny settings returns a frozen result whose
summary the scorecard decides, whose tables agree with the summary, which a second run reads back
from the cache unchanged, and whose knee t0 is chosen on the selection seed and only read on the
test seeds the claim is decided on."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mempkg.book import plots, profiles, scorecard
from mempkg.book.cache import Cache
from mempkg.estimators import lid
from mempkg.studies import von_mises

NB = "01_von_mises"
# 100 steps and 9 t0s: test seed 4's own knee lies elsewhere than seed 3's, so the two read-outs differ
SETTINGS = dataclasses.replace(profiles.CHAPTERS["von_mises"]["tiny"], train_steps=100, n_samples=64,
                               sample_steps=20, n_curve=9, n_train_seeds=3)


class RecordingCache(Cache):
    """A cache that also keeps every value it hands out, by (name, seed)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.got = {}

    def get(self, name, params, compute, *, inputs=None):
        value = super().get(name, params, compute, inputs=inputs)
        self.got[name, params.get("seed")] = value
        return value


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    cache = RecordingCache(tmp_path_factory.mktemp("von_mises"), device="cpu")
    first = von_mises.run(SETTINGS, seed=3, device="cpu", cache=cache)
    misses = cache.misses
    second = von_mises.run(SETTINGS, seed=3, device="cpu", cache=cache)
    return first, second, misses, cache


def test_run_returns_a_frozen_result_the_scorecard_decides(runs):
    """Every key the chapter-01 claim reads is in the summary, one entry per training seed, and the
    scorecard decides and renders the claim from it."""
    r = runs[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.t0 = 1.0
    s = r.summary
    claim, = scorecard.claims_of(NB)
    assert set(claim.needs) <= set(s) and "verdicts" not in s
    for key in ("flipd_isolated_by_seed", "flipd_median_others_by_seed", "p_copies_vs_true_density_by_seed",
                "t0_by_seed", "knee_t0_by_seed", "copies_by_seed"):
        assert len(s[key]) == SETTINGS.n_train_seeds - 1, key
    assert set(scorecard.decide(NB, s)) == {claim.key}
    assert "| Claim |" in scorecard.chapter_rows(NB, s).data
    assert all(np.isfinite(v) for v in s.values() if isinstance(v, float))


def test_tables_agree_with_the_summary_and_the_first_seed_row(runs):
    """The per-seed table's first row, the FLIPD table's knee row, the per-point table and the copy
    table repeat the summary's numbers: one computation, shown several ways."""
    r = runs[0]
    s, iso = r.summary, r.data.isolated
    first = r.seeds.iloc[0]
    assert r.seeds.index.tolist() == [3, 4, 5] and first["role"] == "selection"
    assert first["FLIPD isolated"] == s["flipd_isolated"] and first["t0"] == s["t0"] == r.t0
    assert first["copies of the isolated point"] == s["n_samples_copying_isolated"]
    knee_row = r.flipd_table.loc["model, knee of the median curve"]
    assert knee_row["isolated point"] == s["flipd_isolated"]
    assert knee_row["other points (median)"] == s["flipd_median_others"]
    assert r.points.loc[iso, "FLIPD, knee t0"] == s["flipd_isolated"] and r.points["isolated"].sum() == 1
    assert r.points.loc[iso, "FLIPD, fixed t0"] == s["flipd_isolated_fixed_t0"]
    model = r.copy_table["the trained model"]
    assert model.iloc[1] == s["n_samples_copying_isolated"] and model.loc["samples"] == s["n_samples"]
    assert model.loc["p (binomial, one-sided)"] == s["p_copies_vs_true_density"]
    assert r.curve.shape == (SETTINGS.n_curve, SETTINGS.n_train) and r.samples.shape == (SETTINGS.n_samples, 2)
    assert len(r.others) == SETTINGS.n_train - 1 and iso not in r.others


def test_a_second_run_reads_the_cache_and_gives_the_same_summary(runs):
    first, second, misses, cache = runs
    assert cache.misses == misses, "the second run computed something again"
    drop = {"seconds"}
    assert {k: v for k, v in first.summary.items() if k not in drop} == \
           {k: v for k, v in second.summary.items() if k not in drop}


def test_chapter_figures_draw_from_the_result(runs):
    r = runs[0]
    assert len(plots.von_mises_data(r).axes) == 1 and len(plots.von_mises_loss(r).axes) == 1
    assert len(plots.von_mises_flipd(r).axes) == 2
    assert len(plots.von_mises_samples(r, n_show=10).axes) == 4          # two panels and their colour bars


def test_test_seeds_are_read_at_the_selection_seeds_knee_t0(runs):
    """t0 is the knee of the selection seed's median curve; every test seed is read at that t0 on its own
    FLIPD curve (not at its own knee), and the lists the scorecard decides on hold the test seeds only."""
    r, cache = runs[0], runs[3]
    s, iso, others = r.summary, r.data.isolated, r.others
    assert s["t0_selection_seed"] == 3 and s["test_seeds"] == [4, 5]
    assert r.knee == lid.find_knee(r.t0s, r.curve[:, others].median(1).values) and s["t0"] == r.t0s[r.knee]
    assert s["t0_by_seed"] == [s["t0"]] * 2
    assert any(k != s["t0"] for k in s["knee_t0_by_seed"]), "no test seed has a knee of its own elsewhere"
    assert r.seeds.loc[s["test_seeds"], "role"].eq("test").all()
    for i, seed in enumerate(s["test_seeds"]):
        curve = cache.got["flipd_curve_all", seed]                 # the test seed's own FLIPD(t0) curve
        assert not np.array_equal(curve.numpy(), r.curve.numpy())
        assert s["flipd_isolated_by_seed"][i] == float(curve[r.knee, iso])
        assert s["flipd_median_others_by_seed"][i] == float(curve[r.knee, others].median())
        assert s["knee_t0_by_seed"][i] == r.t0s[lid.find_knee(r.t0s, curve[:, others].median(1).values)]
    test = r.seeds.loc[s["test_seeds"]]
    assert s["p_copies_vs_true_density_by_seed"] == test["p (binomial, one-sided)"].tolist()
    assert s["copies_by_seed"] == test["copies of the isolated point"].tolist()


def test_one_training_seed_leaves_the_claim_undecided(tmp_path):
    """With one training seed the knee is chosen on it and nothing is left to test: the per-seed lists
    are null with a reason, and the scorecard calls the claim undecided rather than deciding it."""
    one = dataclasses.replace(SETTINGS, n_train_seeds=1)
    s = von_mises.run(one, seed=3, device="cpu", cache=Cache(tmp_path, device="cpu")).summary
    claim, = scorecard.claims_of(NB)
    assert s["test_seeds"] == [] and all(s[k] is None and s[f"{k}_reason"] for k in claim.needs)
    assert scorecard.decide(NB, s) == {claim.key: scorecard.UNDECIDED}
    assert s["flipd_isolated"] is not None and s["t0_selection_seed"] == 3
