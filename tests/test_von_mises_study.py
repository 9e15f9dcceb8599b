"""Chapter 01's study: `mempkg.studies.von_mises.run` under cut tiny settings returns a frozen result whose
summary the scorecard decides, whose tables agree with the summary, and which a second run reads back
from the cache unchanged."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mempkg.book import plots, profiles, scorecard
from mempkg.book.cache import Cache
from mempkg.studies import von_mises

NB = "01_von_mises"
SETTINGS = dataclasses.replace(profiles.CHAPTERS["von_mises"]["tiny"], train_steps=40, n_samples=64,
                               sample_steps=20, n_curve=5, n_train_seeds=2)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    cache = Cache(tmp_path_factory.mktemp("von_mises"), device="cpu")
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
                "knee_t0_by_seed", "copies_by_seed"):
        assert len(s[key]) == SETTINGS.n_train_seeds, key
    assert set(scorecard.decide(NB, s)) == {claim.key}
    assert "| Claim |" in scorecard.chapter_rows(NB, s).data
    assert all(np.isfinite(v) for v in s.values() if isinstance(v, float))


def test_tables_agree_with_the_summary_and_the_first_seed_row(runs):
    """The per-seed table's first row, the FLIPD table's knee row, the per-point table and the copy
    table repeat the summary's numbers: one computation, shown several ways."""
    r = runs[0]
    s, iso = r.summary, r.data.isolated
    first = r.seeds.iloc[0]
    assert r.seeds.index.tolist() == [3, 4]
    assert first["FLIPD isolated"] == s["flipd_isolated"] and first["knee t0"] == s["t0"] == r.t0
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
