"""Sample quality (mempkg.estimators.quality): the Frechet distance on cases with a known answer, and the
digits feature classifier."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import scipy.linalg
import torch

from mempkg.data.images import load_images
from mempkg.estimators.quality import (
    DigitsFeatureNet,
    classifier_accuracy,
    classifier_features,
    fit_classifier,
    frechet_distance,
    gaussian_stats,
    inception_fid,
    train_classifier,
)


def _features(n=400, k=6, seed=0):
    g = np.random.default_rng(seed)
    return g.normal(size=(n, k)) @ g.normal(size=(k, k))      # correlated, full rank


def test_fd_of_a_set_with_itself_is_zero():
    f = _features()
    assert frechet_distance(f, f) == pytest.approx(0.0, abs=1e-8)


def test_fd_of_a_shift_is_the_squared_shift():
    # same covariance: the trace term vanishes exactly, FD = |c|^2
    f = _features()
    c = np.array([1.0, -2.0, 0.5, 0.0, 3.0, 1.0])
    assert frechet_distance(f, f + c) == pytest.approx(float(c @ c), rel=1e-8)


def test_fd_of_a_scaled_set():
    # B = 2 (A - mean): S_B = 4 S_A, (S_A S_B)^(1/2) = 2 S_A, FD = |mu_A|^2 + tr(S_A + 4 S_A - 4 S_A) = |mu_A|^2 + tr S_A
    f = _features() + 1.0
    mu, S = gaussian_stats(f)
    assert frechet_distance(f, 2 * (f - mu)) == pytest.approx(float(mu @ mu + np.trace(S)), rel=1e-7)


def test_fd_matches_the_symmetric_square_root_form():
    # tr (S_A S_B)^(1/2) = tr (S_A^(1/2) S_B S_A^(1/2))^(1/2): an independent computation
    a, b = _features(seed=1), _features(seed=2) * 0.7 + 0.3
    (mu_a, S_a), (mu_b, S_b) = gaussian_stats(a), gaussian_stats(b)
    r = scipy.linalg.sqrtm(S_a).real
    expected = np.sum((mu_a - mu_b) ** 2) + np.trace(S_a + S_b) - 2 * np.trace(scipy.linalg.sqrtm(r @ S_b @ r).real)
    assert frechet_distance(a, b) == pytest.approx(float(expected), rel=1e-7)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-7)


def test_fd_rejects_bad_features():
    with pytest.raises(ValueError, match="n >= 2"):
        frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="differ"):
        frechet_distance(_features(k=3), _features(k=4))
    bad = _features()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(bad, _features())


def test_fd_with_fewer_images_than_features_is_finite():
    assert np.isfinite(frechet_distance(_features(n=5, k=6), _features(n=5, k=6, seed=3)))


def test_digits_classifier_learns_and_is_seeded():
    train, test = load_images("digits", "train"), load_images("digits", "test")
    net = train_classifier(train.x, train.labels, n_steps=300, seed=0, progress=False)
    assert classifier_accuracy(net, test.x, test.labels) > 0.85
    again = DigitsFeatureNet(seed=0)
    fit_classifier(again, train.x, train.labels, n_steps=300, seed=0, progress=False)
    f1, f2 = classifier_features(net, test.x[:50]), classifier_features(again, test.x[:50])
    assert f1.shape == (50, 32) and torch.equal(f1, f2)
    # the features tell the classes apart: FD between two classes exceeds FD between halves of one
    feats, y = classifier_features(net, test.x), test.labels
    same = frechet_distance(feats[y == 0][:40], feats[y == 0][40:])
    other = frechet_distance(feats[y == 0][:40], feats[y == 1][:40])
    assert other > 3 * same


@pytest.mark.skipif(importlib.util.find_spec("torchmetrics") is not None, reason="torchmetrics is installed")
def test_inception_fid_says_what_to_install():
    x = torch.zeros(2, 3, 8, 8)
    with pytest.raises(ImportError, match="torchmetrics"):
        inception_fid(x, x)


def test_fd_bootstrap_is_seeded_and_centred_on_the_fd():
    from mempkg.estimators.quality import frechet_distance_bootstrap
    a, b, ref = _features(seed=1) + 0.5, _features(seed=2), _features(seed=3)
    boots = frechet_distance_bootstrap([a, b], ref, n_boot=40, seed=0)
    assert boots.shape == (40, 2)
    np.testing.assert_array_equal(boots, frechet_distance_bootstrap([a, b], ref, n_boot=40, seed=0))
    # FD is biased upwards under resampling, but stays within a few standard errors of the point value
    assert abs(boots[:, 0].mean() - frechet_distance(a, ref)) < 3 * boots[:, 0].std()


def test_check_inception_fails_early_and_says_what_to_do(monkeypatch):
    """Offline, with no cached Inception weights (or no torchmetrics), the check raises at once, naming the fix."""
    import sys
    import types

    from mempkg.estimators.quality import INCEPTION_WEIGHTS, check_inception

    def offline(**kwargs):
        raise OSError("could not download the weights")

    fid = types.ModuleType("torchmetrics.image.fid")
    fid.FrechetInceptionDistance = lambda feature: offline()
    for name in ("torchmetrics", "torchmetrics.image"):
        monkeypatch.setitem(sys.modules, name, sys.modules.get(name) or types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "torchmetrics.image.fid", fid)
    with pytest.raises(RuntimeError, match=INCEPTION_WEIGHTS):
        check_inception()
    fid.FrechetInceptionDistance = lambda feature: object()
    check_inception()                                   # weights present: no error
    monkeypatch.setitem(sys.modules, "torchmetrics.image.fid", None)            # torchmetrics not installed
    with pytest.raises(ImportError, match=r"pip install 'mempkg\[full\]' \(in this repository: make venv PROFILE=full"):
        check_inception()


def _fd_sqrtm(a, b):
    """FD with scipy's sqrtm of S_A S_B: the textbook computation, independent of frechet_distance's eigh form."""
    (mu_a, S_a), (mu_b, S_b) = gaussian_stats(a), gaussian_stats(b)
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(S_a + S_b) - 2 * np.trace(scipy.linalg.sqrtm(S_a @ S_b).real))


@pytest.mark.parametrize("n_a, n_b, k", [(400, 300, 5), (400, 300, 64), (20, 300, 64), (300, 20, 64), (30, 20, 64)])
def test_fd_eigh_form_matches_sqrtm_of_the_product(n_a, n_b, k):
    """tr (S_A S_B)^(1/2) from the eigenvalues of S_B^(1/2) S_A S_B^(1/2) equals sqrtm's trace, also when one or
    both covariances are singular (n < k)."""
    g = np.random.default_rng(k + n_a)
    a = g.normal(size=(n_a, k)) @ g.normal(size=(k, k))
    b = g.normal(size=(n_b, k)) @ g.normal(size=(k, k)) * 0.7 + 0.3
    assert frechet_distance(a, b) == pytest.approx(_fd_sqrtm(a, b), rel=1e-6)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-8)


def test_fd_of_diagonal_covariances_has_the_closed_form():
    """Columns of a Hadamard matrix are centred and orthogonal, so the sample covariances are exactly diagonal and
    FD = |mu_A - mu_B|^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2; one of A's variances is 0 (a singular S_A)."""
    n, k = 64, 8
    H = scipy.linalg.hadamard(n).astype(float)
    g = np.random.default_rng(0)
    s_a, s_b = g.uniform(0.5, 3.0, k), g.uniform(0.5, 3.0, k)
    s_a[3] = 0.0
    mu_a, mu_b = g.normal(size=k), g.normal(size=k)
    a, b = H[:, 1:k + 1] * s_a + mu_a, H[:, k + 1:2 * k + 1] * s_b + mu_b
    var_a, var_b = s_a ** 2 * n / (n - 1), s_b ** 2 * n / (n - 1)
    np.testing.assert_allclose(gaussian_stats(a)[1], np.diag(var_a), atol=1e-12)
    expected = np.sum((mu_a - mu_b) ** 2) + np.sum((np.sqrt(var_a) - np.sqrt(var_b)) ** 2)
    assert frechet_distance(a, b) == pytest.approx(float(expected), rel=1e-10)


def test_fd_bootstrap_replicates_are_fds_of_the_resamples():
    """Reusing the reference's square root across the sets of a replicate changes nothing: each entry is the FD of
    that replicate's resamples, drawn in the order reference, set 0, set 1, ..."""
    from mempkg.estimators.quality import frechet_distance_bootstrap
    sets, ref = [_features(n=50, seed=1) + 0.5, _features(n=80, seed=2)], _features(n=60, seed=3)
    boots = frechet_distance_bootstrap(sets, ref, n_boot=3, seed=7)
    g = np.random.default_rng(7)
    for r in range(3):
        ref_r = ref[g.integers(0, len(ref), len(ref))]
        for k, f in enumerate(sets):
            assert boots[r, k] == pytest.approx(frechet_distance(f[g.integers(0, len(f), len(f))], ref_r), rel=1e-10)
