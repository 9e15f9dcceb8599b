"""Posterior weights, the empirical denoiser, W, C and the danger zone on cases with known answers."""

import math

import numpy as np
import pytest
import torch

from mempkg.estimators.regimes import (
    EmpiricalDenoiser,
    danger_zone,
    log_posterior_weights,
    noise_sweep,
    share_in_band,
    laurent_massart_radii,
    shell_radii,
    weight_and_coverage,
)


def test_two_training_points_by_hand():
    train = torch.tensor([[0.0], [2.0]])
    y = torch.tensor([[0.5]])
    w = log_posterior_weights(y, train, 1.0).exp()[0]
    w0 = 1 / (1 + math.exp(-1.0))                       # exp(-0.125) / (exp(-0.125) + exp(-1.125))
    assert abs(float(w[0]) - w0) < 1e-12 and abs(float(w[1]) - (1 - w0)) < 1e-12
    assert abs(float(EmpiricalDenoiser(train)(y, 1.0)) - 2 * (1 - w0)) < 1e-6


@pytest.mark.parametrize("sigma", [1e-3, 80.0])
def test_weights_are_finite_at_extreme_noise(sigma):
    train = torch.randn(50, 16, generator=torch.Generator().manual_seed(0))
    y = torch.randn(7, 16, generator=torch.Generator().manual_seed(1)) * 3
    logw = log_posterior_weights(y, train, sigma)
    assert torch.isfinite(logw.exp()).all()
    torch.testing.assert_close(logw.exp().sum(1), torch.ones(7, dtype=torch.float64))
    m = EmpiricalDenoiser(train)(y, sigma)
    assert torch.isfinite(m).all()
    if sigma < 1:   # one-hot: the nearest training point
        nearest = torch.cdist(y, train).argmin(1)
        torch.testing.assert_close(m, train[nearest])
    else:           # all weights nearly equal: the training mean
        torch.testing.assert_close(m, train.mean(0).expand_as(m), atol=0.05, rtol=0)


def test_empirical_denoiser_is_the_exact_posterior_mean():
    g = torch.Generator().manual_seed(2)
    train = torch.randn(9, 3, generator=g, dtype=torch.float64)
    y = torch.randn(5, 3, generator=g, dtype=torch.float64)
    sigma = 0.7
    # brute force: p(x_i | y) proportional to N(y; x_i, sigma^2 I), summed explicitly
    lik = torch.stack([torch.exp(-((y - xi) ** 2).sum(1) / (2 * sigma**2)) for xi in train], 1)
    post = lik / lik.sum(1, keepdim=True)
    torch.testing.assert_close(EmpiricalDenoiser(train)(y, sigma), post @ train)


@pytest.mark.parametrize("precision, tol", [("float64", 1e-10), ("float32", 1e-6)])
def test_max_weight_matches_the_two_point_formula(precision, tol):
    # X = 0 between training points -a and +a (d = 1): max_i w_i = sigmoid(2 a |z| / sigma)
    a, sigmas = 1.0, np.array([0.1, 0.5, 1.0, 3.0])
    X = torch.zeros(400, 1)
    reg = weight_and_coverage(X, torch.tensor([[-a], [a]]), sigmas, w_points="heldout", seed=5, chunk=64, precision=precision)
    g = torch.Generator().manual_seed(5)     # the estimator's draws, chunk by chunk
    z = torch.cat([torch.randn(c, 1, generator=g, dtype=torch.float64)[:, 0] for c in [64] * 6 + [16]])
    for j, s in enumerate(sigmas):
        want = torch.sigmoid(2 * a * z.abs() / s).mean().item()
        assert abs(reg.W[j] - want) < tol


def test_coverage_of_training_points_is_the_shell_probability():
    # queries equal to the only training point: |Y - x| = sigma |Z| lies in the shell w.p. 1 - alpha
    d, alpha = 256, 0.1
    x = torch.randn(1, d, generator=torch.Generator().manual_seed(0))
    reg = weight_and_coverage(x.expand(4000, d), x, [0.01, 1.0, 50.0], shell="chi2", alpha=alpha, seed=1, chunk=1000)
    np.testing.assert_allclose(reg.C, 1 - alpha, atol=0.02)
    np.testing.assert_allclose(reg.W, 1.0)                     # one training point: w = 1
    lo, hi = shell_radii(d, alpha)
    assert lo < math.sqrt(d) < hi


@pytest.mark.parametrize("d, r_in, r_out", [(64, 5.31, 10.48), (3072, 53.14, 57.71)])
def test_laurent_massart_radii_are_the_papers(d, r_in, r_out):
    """Eq. 6 with c = 5, against the closed form and the values quoted from the paper's audit."""
    lo, hi = laurent_massart_radii(d, 5.0)
    assert lo == pytest.approx(math.sqrt(d - 2 * math.sqrt(5 * d)), rel=1e-12)
    assert hi == pytest.approx(math.sqrt(d + 2 * math.sqrt(5 * d) + 10), rel=1e-12)
    assert lo == pytest.approx(r_in, abs=0.005) and hi == pytest.approx(r_out, abs=0.005)
    assert laurent_massart_radii(8, 5.0)[0] == 0.0                 # d < 4c: no inner radius


def test_laurent_massart_shell_holds_at_least_its_bound():
    # |Y - x| = sigma |Z| for queries on the only training point: inside w.p. >= 1 - 2 e^-c
    d, c = 64, 2.0
    x = torch.randn(1, d, generator=torch.Generator().manual_seed(0))
    reg = weight_and_coverage(x.expand(4000, d), x, [0.1, 3.0], shell_c=c, seed=1, chunk=1000)
    assert np.all(reg.C >= 1 - 2 * math.exp(-c) - 0.01) and np.all(reg.C < 1)
    assert reg.shell == "laurent_massart" and reg.shell_param == c


def test_weight_on_training_points_runs_from_one_to_one_over_n():
    """Def. 4.1: at tiny sigma the noisy point's own image takes all the weight, at huge sigma none does."""
    g = torch.Generator().manual_seed(7)
    train, held = torch.randn(50, 16, generator=g), torch.randn(10, 16, generator=g) + 5
    reg = weight_and_coverage(held, train, [1e-3, 1e4], seed=3)
    assert reg.w_points == "train"
    assert reg.W[0] == pytest.approx(1.0, abs=1e-9) and reg.W[1] == pytest.approx(1 / 50, rel=1e-3)
    assert weight_and_coverage(held, train, [1e4], n_w_points=5, seed=3).W[0] == pytest.approx(1 / 50, rel=1e-3)
    far = weight_and_coverage(held, train, [1e-3], w_points="heldout", seed=3)
    assert far.W[0] == pytest.approx(1.0, abs=1e-6) and reg.C[0] == far.C[0] == 0.0


def test_weight_on_training_points_matches_a_direct_computation():
    g = torch.Generator().manual_seed(8)
    train, held = torch.randn(30, 6, generator=g), torch.randn(20, 6, generator=g)
    sigmas = np.geomspace(0.1, 3, 5)
    reg = weight_and_coverage(held, train, sigmas, seed=4, precision="float64")
    Z = torch.randn(30, 6, generator=torch.Generator().manual_seed(5), dtype=torch.float64)   # seed + 1
    for j, s in enumerate(sigmas):
        d = torch.cdist(train.double() + s * Z, train.double())
        assert reg.W[j] == pytest.approx(float(torch.softmax(-d**2 / (2 * s * s), 1).max(1).values.mean()), abs=1e-10)


def test_far_held_out_points_are_not_covered_at_small_noise():
    g = torch.Generator().manual_seed(3)
    train = torch.randn(30, 64, generator=g)
    held = torch.randn(20, 64, generator=g) + 10
    reg = weight_and_coverage(held, train, [0.01, 0.1], w_points="heldout", seed=0)
    assert np.all(reg.C == 0) and np.all(reg.W > 0.99)


@pytest.mark.parametrize("precision, tol", [("float64", 1e-9), ("float32", 1e-6)])
def test_one_pass_agrees_with_a_direct_computation_per_sigma(precision, tol):
    g = torch.Generator().manual_seed(4)
    train, held = torch.randn(40, 8, generator=g), torch.randn(25, 8, generator=g)
    sigmas = np.geomspace(0.05, 5, 7)
    reg = weight_and_coverage(held, train, sigmas, w_points="heldout", shell="chi2", alpha=0.05, seed=9, chunk=25, precision=precision)
    Z = torch.randn(25, 8, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    lo, hi = shell_radii(8, 0.05)
    for j, s in enumerate(sigmas):
        y = held.double() + s * Z
        d = torch.cdist(y, train.double())
        W = torch.softmax(-d**2 / (2 * s * s), 1).max(1).values.mean()
        C = ((d >= s * lo) & (d <= s * hi)).any(1).double().mean()
        assert abs(reg.W[j] - float(W)) < tol and abs(reg.C[j] - float(C)) < 1e-12


def test_danger_zone_interpolates_the_crossings():
    s = np.geomspace(0.01, 100, 41)
    ls = np.log(s)
    W = 1 / (1 + np.exp(4 * (ls - np.log(2.0))))       # falls through 0.5 at sigma = 2
    C = 1 / (1 + np.exp(-4 * (ls - np.log(0.3))))      # rises through 0.5 at sigma = 0.3
    lo, hi = danger_zone(s, W, C, 0.5)
    assert abs(lo - 0.3) / 0.3 < 0.02 and abs(hi - 2.0) / 2.0 < 0.02
    assert all(math.isnan(v) for v in danger_zone(s, W * 0.1, C, 0.5))
    with pytest.raises(ValueError):
        danger_zone(s[::-1], W, C)


def test_nearest_image_denoiser_always_memorizes_and_identity_never_does():
    g = torch.Generator().manual_seed(5)
    train, held = torch.randn(100, 32, generator=g), torch.randn(50, 32, generator=g)
    sigmas = [0.01, 0.3, 1.0, 10.0]
    nearest = lambda y, s: train[torch.cdist(y, train).argmin(1)]       # noqa: E731
    identity = lambda y, s: y                                           # noqa: E731
    assert np.all(noise_sweep(nearest, held, train, sigmas).mem_rate == 1.0)
    sweep = noise_sweep(identity, held, train, sigmas, seed=1)
    assert np.all(sweep.mem_rate == 0.0)
    np.testing.assert_allclose(sweep.mse, np.square(sigmas), rtol=0.1)  # E|sigma Z|^2 / d = sigma^2


def test_empirical_denoiser_copies_at_small_noise_and_generalizes_at_large():
    g = torch.Generator().manual_seed(6)
    train, held = torch.randn(200, 16, generator=g), torch.randn(100, 16, generator=g)
    sweep = noise_sweep(EmpiricalDenoiser(train), held, train, [0.05, 30.0])
    assert sweep.mem_rate[0] == 1.0 and sweep.mem_rate[1] == 0.0


def test_bad_input():
    t = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="positive"):
        weight_and_coverage(t, t, [0.0, 1.0])
    with pytest.raises(ValueError, match="features"):
        weight_and_coverage(torch.zeros(3, 4), t, [1.0])
    with pytest.raises(ValueError, match="alpha"):
        shell_radii(4, 1.5)
    with pytest.raises(ValueError, match="w_points"):
        weight_and_coverage(t, t, [1.0], w_points="test")
    with pytest.raises(ValueError, match="shell"):
        weight_and_coverage(t, t, [1.0], shell="gaussian")
    with pytest.raises(ValueError, match="positive"):
        laurent_massart_radii(4, 0.0)
    with pytest.raises(ValueError, match="sigma must be positive"):
        log_posterior_weights(t, t, 0.0)


def test_blocked_float32_pass_matches_float64_and_direct_coverage():
    # N large enough that the sigma loop runs over several row blocks per chunk (rows = 2^18 // N = 87)
    g = torch.Generator().manual_seed(11)
    train, held = torch.randn(3000, 16, generator=g), torch.randn(300, 16, generator=g)
    held[:100] = train[:100]                                   # queries on training points: inner-radius rows
    sigmas = np.geomspace(0.01, 20, 24)
    r32 = weight_and_coverage(held, train, sigmas, w_points="heldout", shell="chi2", seed=2, chunk=256, precision="float32")
    r64 = weight_and_coverage(held, train, sigmas, w_points="heldout", shell="chi2", seed=2, chunk=256, precision="float64")
    np.testing.assert_allclose(r32.W, r64.W, atol=1e-6, rtol=0)
    np.testing.assert_array_equal(r32.C, r64.C)
    gz = torch.Generator().manual_seed(2)
    Z = torch.cat([torch.randn(c, 16, generator=gz, dtype=torch.float64) for c in (256, 44)])
    lo, hi = shell_radii(16, 0.01)
    for j, s in enumerate(sigmas):
        d = torch.cdist(held.double() + s * Z, train.double())
        assert r64.C[j] == ((d >= s * lo) & (d <= s * hi)).any(1).double().mean().item()
    assert 0 < r32.C.max() and r32.W.min() < 0.5 < r32.W.max()   # the grid spans both regimes


def test_noise_sweep_per_image_values_average_to_the_rates():
    train = torch.randn(20, 8, generator=torch.Generator().manual_seed(0))
    held = torch.randn(15, 8, generator=torch.Generator().manual_seed(1))
    sweep = noise_sweep(EmpiricalDenoiser(train), held, train, [0.05, 0.5, 5.0], n_draws=2)
    assert sweep.copied_per_image.shape == sweep.mse_per_image.shape == (3, 15)
    np.testing.assert_allclose(sweep.copied_per_image.mean(1), sweep.mem_rate)
    np.testing.assert_allclose(sweep.mse_per_image.mean(1), sweep.mse)
    assert set(np.unique(sweep.copied_per_image * 2)) <= {0.0, 1.0, 2.0}      # two draws per image


def test_share_in_band_against_its_known_answers():
    sigmas = np.geomspace(0.01, 10, 40)
    band = (sigmas[10], sigmas[19])                        # 10 of 40 grid points
    even = share_in_band(sigmas, np.ones((40, 50)), band)  # copying spread evenly: exactly the band's share
    assert even.share == pytest.approx(0.25) and even.grid_share == pytest.approx(0.25) and even.se == 0
    peaked = np.zeros((40, 50))
    peaked[12:15] = 1.0                                    # all copying inside the band
    assert share_in_band(sigmas, peaked, band).share == 1.0
    rng = np.random.default_rng(0)
    noisy = (rng.random((40, 200)) < 0.05).astype(float)   # random copying, evenly spread in expectation
    res = share_in_band(sigmas, noisy, band, seed=1)
    assert abs(res.share - 0.25) < 3 * res.se and res.se > 0   # chance stays within its standard error
    assert not res.share - 2 * res.se > res.grid_share         # so the scorecard's rule would not pass on it
    with pytest.raises(ValueError, match="zero everywhere"):
        share_in_band(sigmas, np.zeros((40, 5)), band)
    with pytest.raises(ValueError, match="len"):
        share_in_band(sigmas, np.ones((39, 5)), band)
