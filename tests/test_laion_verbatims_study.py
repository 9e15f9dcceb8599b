"""Chapter 04's study: `mempkg.studies.laion_verbatims.run` under cut tiny settings returns a frozen result
whose summary the scorecard reads (as a stand-in), whose tables repeat the summary's numbers, and which a
second run reads back from the cache unchanged."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from mempkg.book import profiles, scorecard
from mempkg.book.cache import Cache
from mempkg.studies import laion_verbatims

NB = "04_laion_verbatims"
SETTINGS = dataclasses.replace(profiles.CHAPTERS["laion_verbatims"]["tiny"], n_per_set=5, train_steps=2, n_show=2,
                               sample_steps=2)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    cache = Cache(tmp_path_factory.mktemp("laion_verbatims"), device="cpu")
    first = laion_verbatims.run(SETTINGS, seed=1, device="cpu", cache=cache, n_boot=20, profile="tiny")
    misses = cache.misses
    second = laion_verbatims.run(SETTINGS, seed=1, device="cpu", cache=cache, n_boot=20, profile="tiny")
    return first, second, misses, cache


def test_run_returns_a_frozen_result_the_scorecard_reads_as_a_stand_in(runs):
    """The summary holds every key the chapter's claims read; the tiny model is a stand-in for SD, so every
    verdict is 'stand-in', and the chapter's rows render."""
    r = runs[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.summary = {}
    s = r.summary
    needs = {k for c in scorecard.claims_of(NB) for k in c.needs}
    assert needs <= set(s) and "verdicts" not in s and "seconds" not in s
    assert set(scorecard.decide(NB, s).values()) == {scorecard.STAND_IN}
    assert "| Claim |" in scorecard.chapter_rows(NB, s).data
    assert s["model"] == "tiny_sd" and s["n_memorized"] == SETTINGS.n_planted and s["n_nonmemorized"] == 15
    numbers = [v for v in s.values() if isinstance(v, float)]
    assert numbers and all(math.isfinite(v) for v in numbers)


def test_tables_repeat_the_summary(runs):
    """The AUROC table's pooled column, the paper table, the t0 sweep and the reproduction counts are the
    summary's numbers, shown as tables."""
    r = runs[0]
    s = r.summary
    assert r.auroc.loc["flipd_cond", "all non-memorized"] == s["auroc_flipd_cond"]
    assert r.auroc_se.loc["png_size", "all non-memorized"] == s["auroc_se_png"]
    assert r.paper.loc["FLIPD, conditional", "this run (tiny), vs all non-memorized"] == round(s["auroc_flipd_cond"], 3)
    assert list(r.sweep.auroc["cfg_norm"]["all non-memorized"]) == list(s["auroc_cfg_norm_by_t0"].values())
    shown = r.reproduction.table["value"]
    assert shown["memorized captions sampled"] == SETTINGS.n_show
    assert shown["nearest training image is the caption's own"] == round(s["own_nearest_fraction"] * SETTINGS.n_show)
    assert list(r.sets.sets)[0] == r.sets.memorized and len(r.scores[r.sets.memorized]["png_size"]) == SETTINGS.n_planted
    assert r.sets.about.loc["planted verbatims", "value"] == SETTINGS.n_planted


def test_a_second_run_reads_everything_from_the_cache(runs):
    """Same settings and seed: no miss on the second run, the same summary and scores."""
    first, second, misses, cache = runs
    assert cache.misses == misses and cache.hits > 0
    assert first.summary == second.summary
    for name, sc in first.scores.items():
        assert all(np.array_equal(v, second.scores[name][m]) for m, v in sc.items())


def test_a_reader_model_without_its_folders_is_refused_before_loading(tmp_path):
    with pytest.raises(ValueError, match="memorized_images, nonmemorized_images and captions"):
        laion_verbatims.run(SETTINGS, seed=0, device="cpu", cache=Cache(tmp_path, device="cpu"), model="no/such-model")
