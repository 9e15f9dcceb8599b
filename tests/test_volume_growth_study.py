"""Chapter 02's study: `mempkg.studies.volume_growth.run` under cut tiny settings returns a frozen result whose
summary the scorecard decides, whose tables and arrays agree with the summary, and which a second run reads
back from the cache unchanged."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from mempkg.book import plots, profiles, scorecard
from mempkg.book.cache import Cache
from mempkg.studies import volume_growth

NB = "02_cifar10_overfit"
SETTINGS = dataclasses.replace(profiles.CHAPTERS["volume_growth"]["tiny"], train_steps=10, planted_steps=10,
                               n_memorized_train=40, n_samples=16, sample_steps=5)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    cache = Cache(tmp_path_factory.mktemp("volume_growth"), device="cpu")
    first = volume_growth.run(SETTINGS, seed=1, device="cpu", cache=cache, profile="tiny")
    misses = cache.misses
    second = volume_growth.run(SETTINGS, seed=1, device="cpu", cache=cache, profile="tiny")
    return first, second, misses, cache


def test_run_returns_a_frozen_result_the_scorecard_decides(runs):
    """Every key chapter 02's claims read is in the summary (no verdicts: the notebook adds them), and the
    scorecard decides and renders each claim from it."""
    r = runs[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.L = None
    s = r.summary
    claims = scorecard.claims_of(NB)
    assert {k for c in claims for k in c.needs} <= set(s) and "verdicts" not in s
    assert set(scorecard.decide(NB, s)) == {c.key for c in claims}
    assert "| Claim |" in scorecard.chapter_rows(NB, s, keys=("trained_grow_more",)).data
    assert s["n_images_per_group"] == SETTINGS.n_subset and s["n_planted"] == SETTINGS.n_planted
    assert s["model"]["source"].startswith("trained here") and s["auroc_swap"] is not None


def test_tables_and_arrays_repeat_the_summary_s_numbers(runs):
    """Per-image L is the mean of an image and its flip; the group, control and ablation tables show the
    summary's AUROCs and p-values; the per-axis score is never below the log-volume (Hadamard)."""
    r = runs[0]
    s, n = r.summary, SETTINGS.n_subset
    assert torch.allclose(r.L_trained, (r.L[:n] + r.L[n:2 * n]) / 2)
    assert float(r.L_heldout.mean()) == s["L_heldout_mean"] and float(r.L_trained.mean()) == s["L_trained_mean"]
    axes = r.groups.loc["axes (the paper's L)"]
    assert axes["AUROC"] == s["auroc_trained_vs_heldout"] and axes["p"] == s["p_trained_vs_heldout"]
    assert r.controls["AUROC"].tolist() == [s["auroc_trained_vs_heldout"], s["auroc_swap"], s["auroc_loss_baseline"]]
    assert (r.hadamard["axes minus volume, min"] >= 0).all()
    cell = r.ablation.query("group == 'trained vs held-out' and rows == 'axes N' and `row value` == 1 and K == 1")
    assert cell["AUROC"].item() == s["auroc_one_axis_one_step"] and cell["p"].item() == s["p_one_axis_one_step"]
    assert len(r.extracted) == s["n_memorized_found"] == len(r.L_memorized)
    assert r.inputs.loc["share of samples that copy a training image", "value"] == s["copy_rate_overfit"]


def test_a_second_run_reads_everything_back_from_the_cache(runs):
    """The second run computes nothing: same summary, same per-image scores."""
    first, second, misses, cache = runs
    assert cache.misses == misses
    assert first.summary == second.summary
    assert torch.equal(first.L, second.L) and torch.equal(first.L_swap, second.L_swap)


def test_the_chapter_s_figures_draw_from_the_result(runs):
    """Each figure of the chapter draws from the result alone, the ablation one column per grid."""
    import matplotlib.pyplot as plt

    r = runs[0]
    figs = [plots.overfit_samples(r.train_images, r.samples),
            plots.volume_controls(r.L_swap, r.loss, r.member, SETTINGS.loss_t),
            plots.volume_controls(None, r.loss, r.member, SETTINGS.loss_t, "skipped"),
            plots.memorized_vs_other(r.extracted, r.L_memorized, r.L_other, r.summary["n_planted_found"]),
            plots.ablation_grids(r.grids, r.ablation_steps)]
    assert len([a for a in figs[-1].axes if a.get_label() != "<colorbar>"]) == 2 * len(r.grids)
    assert all(np.isfinite(v) or np.isnan(v) for v in r.ablation["AUROC"])
    for fig in figs:
        plt.close(fig)
