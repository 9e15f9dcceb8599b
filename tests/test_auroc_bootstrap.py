"""The one bootstrap AUROC and the one orientation map (mempkg.estimators.memorization)."""

from __future__ import annotations

import numpy as np
import pytest

from mempkg.estimators.memorization import ORIENTATION, auroc, auroc_bootstrap, oriented, oriented_auroc


def hanley_mcneil_se(a: float, n_pos: int, n_neg: int) -> float:
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    return float(np.sqrt((a * (1 - a) + (n_pos - 1) * (q1 - a * a) + (n_neg - 1) * (q2 - a * a)) / (n_pos * n_neg)))


@pytest.mark.parametrize("stratified", [True, False])
def test_bootstrap_se_matches_hanley_mcneil_on_two_gaussians(stratified):
    """For two unit Gaussians a mean apart, the bootstrap SE is within 20% of the closed form."""
    rng = np.random.default_rng(0)
    pos, neg = rng.normal(1.0, 1.0, 300), rng.normal(0.0, 1.0, 300)
    labels = np.r_[np.ones(300, bool), np.zeros(300, bool)]
    boot = auroc_bootstrap(np.r_[pos, neg], labels, n_boot=400, seed=1, stratified=stratified)
    a = auroc(pos, neg)
    assert boot.shape == (400, 1)
    assert boot[:, 0].mean() == pytest.approx(a, abs=0.01)
    assert boot[:, 0].std(ddof=1) == pytest.approx(hanley_mcneil_se(a, 300, 300), rel=0.2)


def test_stratified_resamples_keep_each_class_size_and_pooled_ones_vary():
    """A perfect separator: every stratified resample gives AUROC 1; pooled resamples too, never an empty class."""
    labels = np.r_[np.ones(3, bool), np.zeros(7, bool)]
    scores = np.r_[10.0, 11.0, 12.0, np.arange(7.0)]
    for stratified in (True, False):
        boot = auroc_bootstrap(scores, labels, n_boot=200, seed=0, stratified=stratified)
        assert np.all(boot == 1.0)


def test_every_score_is_resampled_with_the_same_images():
    """Two identical rows differ by exactly zero on every resample; a reversed row gives 1 - AUROC."""
    rng = np.random.default_rng(3)
    s = rng.normal(size=40)
    labels = rng.random(40) < 0.3
    for stratified in (True, False):
        boot = auroc_bootstrap(np.stack([s, s, -s]), labels, n_boot=50, seed=2, stratified=stratified)
        assert np.array_equal(boot[:, 0], boot[:, 1])
        np.testing.assert_allclose(boot[:, 2], 1 - boot[:, 0])


def test_same_seed_same_resamples_and_bad_input_is_refused():
    labels = np.r_[np.ones(5, bool), np.zeros(5, bool)]
    s = np.arange(10.0)
    assert np.array_equal(auroc_bootstrap(s, labels, 20, seed=4), auroc_bootstrap(s, labels, 20, seed=4))
    with pytest.raises(ValueError, match="both classes"):
        auroc_bootstrap(s, np.ones(10, bool))
    with pytest.raises(ValueError, match="one label per image"):
        auroc_bootstrap(s, labels[:9])
    with pytest.raises(ValueError, match="n_boot"):
        auroc_bootstrap(s, labels, n_boot=1)


def test_orientation_reads_low_flipd_and_high_cfg_norm_as_memorized():
    assert ORIENTATION["flipd_cond"] == ORIENTATION["flipd"] == -1 and ORIENTATION["cfg_norm"] == 1
    np.testing.assert_array_equal(oriented("flipd:1 probe", [1.0, -2.0]), [-1.0, 2.0])
    assert oriented_auroc("flipd", [0.1, 0.2], [1.0, 2.0]) == 1.0
    assert oriented_auroc("cfg_norm", [0.1, 0.2], [1.0, 2.0]) == 0.0
    with pytest.raises(ValueError, match="score"):
        oriented("lid", [1.0])
