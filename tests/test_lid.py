"""FLIPD against cases with known answers."""

import numpy as np
import pytest
import torch

from mempkg.core.schedules import VPSDE
from mempkg.estimators.lid import find_knee, flipd, flipd_curve
from mempkg.models.adapters import EpsModel
from mempkg.models.exact import EmpiricalScore, GaussianScore


def rank4_gaussian(seed=0, D=6, d=4):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(D, d, generator=g, dtype=torch.float64)
    mu = torch.randn(D, generator=g, dtype=torch.float64)
    x = mu + (A @ torch.randn(d, 8, generator=g, dtype=torch.float64)).T   # points on the support
    return A @ A.T, mu, x


def closed_form_flipd(cov, mu, x, sde, t0):
    """D - sigma^2 tr Sigma_t^{-1} + sigma^2 psi^2 |Sigma_t^{-1}(x - mu)|^2, Sigma_t = psi^2 cov + sigma^2 I."""
    a, s = float(sde.alpha(t0)), float(sde.sigma(t0))
    D = cov.shape[0]
    St = a * a * cov.numpy() + s * s * np.eye(D)
    inv = np.linalg.inv(St)
    r = (x.numpy() - mu.numpy()) @ inv
    return D - s * s * np.trace(inv) + s * s * a * a * (r**2).sum(1)


@pytest.mark.parametrize("t0", [1e-3, 1e-2, 0.05, 0.2, 0.6])
def test_exact_flipd_matches_closed_form_on_rank4_gaussian(t0):
    cov, mu, x = rank4_gaussian()
    sde = VPSDE()
    got = flipd(GaussianScore(mu, cov, sde), x, t0).numpy()
    np.testing.assert_allclose(got, closed_form_flipd(cov, mu, x, sde, t0), rtol=1e-4)


def test_flipd_tends_to_intrinsic_dimension():
    cov, mu, x = rank4_gaussian()
    model = GaussianScore(mu, cov, VPSDE())
    errs = [float((flipd(model, x, t0) - 4).abs().max()) for t0 in (1e-2, 1e-3, 1e-4)]
    assert errs[0] > errs[1] > errs[2] and errs[2] < 1e-3


def test_hutchinson_agrees_with_exact_trace():
    cov, mu, x = rank4_gaussian()
    model = GaussianScore(mu, cov, VPSDE())
    exact = flipd(model, x, 0.05)
    for probe in ("rademacher", "gaussian"):
        est = flipd(model, x, 0.05, n_probes=4000, probe=probe, seed=3)
        np.testing.assert_allclose(est.numpy(), exact.numpy(), rtol=0.03)


def test_hutchinson_is_seeded():
    cov, mu, x = rank4_gaussian()
    model = GaussianScore(mu, cov, VPSDE())
    a = flipd(model, x, 0.1, n_probes=1, seed=7)
    assert torch.equal(a, flipd(model, x, 0.1, n_probes=1, seed=7))
    assert not torch.equal(a, flipd(model, x, 0.1, n_probes=1, seed=8))


def test_per_image_seeds_make_a_value_independent_of_its_batch():
    cov, mu, x = rank4_gaussian()
    model = GaussianScore(mu, cov, VPSDE())
    seeds = [11, 5, 7, 3, 2, 9, 4, 8]
    batched = flipd(model, x, 0.1, n_probes=2, seed=seeds)
    alone = torch.cat([flipd(model, x[i:i + 1], 0.1, n_probes=2, seed=[s]) for i, s in enumerate(seeds)])
    torch.testing.assert_close(batched, alone, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(flipd(model, x[[3, 0]], 0.1, n_probes=2, seed=[3, 11]), batched[[3, 0]],
                               rtol=1e-12, atol=1e-12)
    assert not torch.equal(batched, flipd(model, x, 0.1, n_probes=2, seed=0))
    with pytest.raises(ValueError, match="one seed per image"):
        flipd(model, x, 0.1, n_probes=1, seed=[1, 2])


class LinearScore:
    """s(x, t) = M x with a hand-written Jacobian M: the trace is tr M exactly."""

    def __init__(self, M):
        self.M, self.sde = M, VPSDE()

    def score(self, x, t, cond=None):
        return (x.reshape(len(x), -1) @ self.M.T).reshape(x.shape)


def test_trace_matches_hand_derived_jacobian_for_both_methods_and_chunking():
    g = torch.Generator().manual_seed(0)
    M = torch.randn(12, 12, generator=g, dtype=torch.float64)      # non-symmetric on purpose
    x = torch.randn(5, 3, 4, generator=g, dtype=torch.float64)
    model, t0 = LinearScore(M), 0.1
    a, s = float(model.sde.alpha(t0)), float(model.sde.sigma(t0))
    y = a * x.reshape(5, -1)
    expected = 12 + s**2 * (torch.trace(M) + (y @ M.T).pow(2).sum(1))
    for method in ("jvp", "vjp"):
        for max_batch in (7, 4096):
            got = flipd(model, x, t0, method=method, max_batch=max_batch)
            torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


def test_empirical_score_matches_autograd_of_mixture_log_density():
    g = torch.Generator().manual_seed(1)
    pts = torch.randn(7, 3, generator=g, dtype=torch.float64)
    sde, t = VPSDE(), 0.2
    a, s = float(sde.alpha(t)), float(sde.sigma(t))
    y = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    logp = torch.logsumexp(-((y[:, None] - a * pts[None]) ** 2).sum(-1) / (2 * s**2), dim=1).sum()
    (grad,) = torch.autograd.grad(logp, y)
    torch.testing.assert_close(EmpiricalScore(pts, sde).score(y.detach(), t), grad)


def test_isolated_point_has_flipd_zero_under_memorizing_score():
    """An isolated training point has FLIPD zero under the exact memorizing score."""
    # a dense arc plus one far point: the training-set score collapses on the far point only
    ang = np.concatenate([np.linspace(0, 1, 60), [3.0]])
    pts = torch.tensor(np.stack([np.cos(ang), np.sin(ang)], 1))
    f = flipd(EmpiricalScore(pts, VPSDE()), pts, 0.02)
    assert abs(float(f[-1])) < 1e-3
    assert 0.5 < float(f[:-1].median()) < 1.5


def test_unet_adapter_jvp_trace_agrees_with_reverse_mode(tiny_unet):
    model = EpsModel(tiny_unet, VPSDE(), time_scale=999)
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    fwd = flipd(model, x, 0.1, n_probes=3, method="jvp", seed=2)
    rev = flipd(model, x, 0.1, n_probes=3, method="vjp", seed=2)
    assert torch.isfinite(fwd).all()
    torch.testing.assert_close(fwd, rev, rtol=1e-4, atol=1e-3)
    exact = flipd(model, x, 0.1, max_batch=64)
    torch.testing.assert_close(exact, flipd(model, x, 0.1, method="vjp", max_batch=64), rtol=1e-4, atol=1e-3)


def test_unet_adapter_trace_agrees_with_finite_differences(tiny_unet):
    model = EpsModel(tiny_unet, VPSDE(), time_scale=999)
    x = torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    t0, h = 0.1, 1e-3
    y = float(model.sde.alpha(t0)) * x
    v = torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        fd = ((model.score(y + h * v, t0) - model.score(y - h * v, t0)) / (2 * h) * v).sum()
    from mempkg.estimators.lid import _score_and_quadratic
    _, q = _score_and_quadratic(model, y, v, t0, None, "jvp")
    assert abs(float(q) - float(fd)) < 1e-2 * max(1.0, abs(float(fd)))


def test_clear_errors_for_bad_input():
    cov, mu, x = rank4_gaussian()
    model = GaussianScore(mu, cov, VPSDE())
    with pytest.raises(ValueError, match="outside the schedule"):
        flipd(model, x, 0.0)
    with pytest.raises(ValueError, match="outside the schedule"):
        flipd(model, x, 2.0)
    with pytest.raises(ValueError, match="batch dimension"):
        flipd(model, x[0], 0.1)
    with pytest.raises(ValueError, match="n_probes"):
        flipd(model, x, 0.1, n_probes=0)
    with pytest.raises(ValueError, match="one condition per image"):
        flipd(model, x, 0.1, cond=torch.zeros(3, 2))
    with pytest.raises(TypeError, match="not a score model"):
        flipd(object(), x, 0.1)


def test_curve_and_knee():
    cov, mu, x = rank4_gaussian()
    model = GaussianScore(mu, cov, VPSDE())
    t0s = np.logspace(-3, 0, 9)
    c = flipd_curve(model, x[:2], t0s)
    assert c.shape == (9, 2)
    # a plateau at 4 that drops linearly in log t0 after 1e-1: the knee is at the corner
    t = np.logspace(-4, 0, 41)
    y = np.where(t < 1e-1, 4.0, 4.0 - 3 * (np.log10(t) + 1))
    assert abs(np.log10(t[find_knee(t, y)]) + 1) < 0.11
    with pytest.raises(ValueError):
        find_knee([1, 2], [1, 2])
