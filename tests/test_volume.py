"""Volume growth against cases with known answers (linear probability-flow ODEs)."""

import numpy as np
import pytest
import torch

from mempkg.core.schedules import VPSDE
from mempkg.estimators.volume import gram_schmidt_longest_first, volume_growth, volume_growth_reference
from mempkg.models.adapters import EpsModel
from mempkg.models.exact import GaussianScore
from mempkg.models.networks import MLPEps
from mempkg.models.train import train_dsm


def drift_eigenvalues(lam, sde, t):
    """For data N(0, diag(lam)) the PF-ODE is linear: v = A(t) u with
    A = diag(-1/2 beta (1 - 1/(psi^2 lam + sigma^2)))."""
    a, s, b = float(sde.alpha(t)), float(sde.sigma(t)), float(sde.beta(t))
    return -0.5 * b * (1 - 1 / (a * a * np.asarray(lam) + s * s))


def exact_log_det(lam, sde, n_steps, t_start=1e-3, t_end=1.0):
    """Cumulative sum over steps of log|det(I + dt A(t_k))|."""
    dt = (t_end - t_start) / n_steps
    steps = [np.log(np.abs(1 + dt * drift_eigenvalues(lam, sde, t_start + k * dt))).sum() for k in range(n_steps)]
    return np.cumsum(steps)


@pytest.mark.parametrize("method", ["jvp", "finite"])
def test_full_volume_equals_log_det_of_linear_flow(method):
    sde = VPSDE()
    lam = np.array([2.0, 1.0, 0.3, 0.05, 0.01])
    model = GaussianScore(torch.zeros(5), torch.diag(torch.tensor(lam)), sde)
    x = torch.randn(3, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    L = volume_growth(model, x, n_axes=5, radius=0.05, n_steps=40, method=method, measure="volume")
    want = exact_log_det(lam, sde, 40)
    for b in range(3):
        np.testing.assert_allclose(L[b].numpy(), want, rtol=1e-5)


def divergence_integral(lam, sde, t_start=1e-3, t_end=1.0):
    """int div v dt in closed form for data N(0, diag(lam)): with m = psi^2 lam + sigma^2, dm/dt = -beta (m - 1),
    so div v = -1/2 beta sum_j (1 - 1/m_j) = 1/2 sum_j d(log m_j)/dt and the integral is
    1/2 sum_j log(m_j(t_end) / m_j(t_start))."""
    def m(t):
        a, s = float(sde.alpha(t)), float(sde.sigma(t))
        return a * a * np.asarray(lam) + s * s
    return 0.5 * np.log(m(t_end) / m(t_start)).sum()


def test_full_volume_tends_to_the_divergence_integral():
    """The module docstring's numbers: 2.5% below the integral at 100 steps, 0.25% at 1000."""
    sde = VPSDE()
    lam = [2.0, 1.0, 0.3, 0.05, 0.01]
    model = GaussianScore(torch.zeros(5), torch.diag(torch.tensor(lam)), sde)
    x = torch.randn(2, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    want = divergence_integral(lam, sde)
    gap = {K: float(volume_growth(model, x, n_axes=5, n_steps=K, measure="volume")[0, -1]) / want - 1
           for K in (100, 1000)}
    assert -0.030 < gap[100] < -0.020 and -0.0030 < gap[1000] < -0.0020, gap
    assert 9 < gap[100] / gap[1000] < 11        # first order: ten times the steps, a tenth of the gap


@pytest.mark.parametrize("method", ["jvp", "finite"])
@pytest.mark.parametrize("n_axes", [1, 3, 6])
def test_isotropic_gaussian_stretches_every_axis_alike(method, n_axes):
    sde = VPSDE()
    model = GaussianScore(torch.zeros(6), 0.4 * torch.eye(6), sde)
    x = torch.randn(2, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    want = n_axes * exact_log_det([0.4], sde, 25)
    for measure in ("axes", "volume"):
        L = volume_growth(model, x, n_axes=n_axes, n_steps=25, method=method, measure=measure, seed=n_axes)
        np.testing.assert_allclose(L[0].numpy(), want, rtol=1e-6)
        np.testing.assert_allclose(L[1].numpy(), want, rtol=1e-6)


def test_axes_measure_bounds_volume_measure():
    sde = VPSDE()
    model = GaussianScore(torch.zeros(8), torch.diag(torch.linspace(0.01, 3, 8)), sde)
    x = torch.randn(4, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    ax = volume_growth(model, x, n_axes=4, n_steps=20, measure="axes")
    vol = volume_growth(model, x, n_axes=4, n_steps=20, measure="volume")
    assert (ax[:, -1] >= vol[:, -1] - 1e-9).all()        # Hadamard, per step and so summed
    assert (ax[:, -1] - vol[:, -1]).max() > 1e-6          # the axes do shear here


@pytest.fixture(scope="module")
def trained_mlp():
    data = torch.randn(128, 2, 2, generator=torch.Generator().manual_seed(0)) * torch.tensor([[1.0, 0.2]])
    net = MLPEps((2, 2), hidden=64, depth=2, seed=0)
    train_dsm(net, VPSDE(), data, 400, lr=3e-3, seed=0, progress=False)
    return EpsModel(net.double(), VPSDE()), data[:6].double()


def test_finite_differences_agree_with_jvp_at_small_radius(trained_mlp):
    model, x = trained_mlp
    jvp = volume_growth(model, x, n_axes=3, n_steps=30, method="jvp")
    for r in (1e-3, 1e-4):
        fin = volume_growth(model, x, n_axes=3, radius=r, n_steps=30, method="finite")
        np.testing.assert_allclose(fin[:, -1].numpy(), jvp[:, -1].numpy(), rtol=1e-3, atol=1e-3)


def test_the_default_method_is_finite_differences(trained_mlp):
    model, x = trained_mlp
    default = volume_growth(model, x, n_axes=3, n_steps=4)
    assert torch.equal(default, volume_growth(model, x, n_axes=3, n_steps=4, method="finite"))
    assert not torch.allclose(default, volume_growth(model, x, n_axes=3, n_steps=4, method="jvp"), rtol=1e-9, atol=0)


def test_batched_estimator_matches_the_authors_loop(trained_mlp):
    model, x = trained_mlp
    fast = volume_growth(model, x, n_axes=4, radius=0.05, n_steps=12, method="finite", max_batch=7)
    ref = volume_growth_reference(model, x, n_axes=4, radius=0.05, n_steps=12)
    np.testing.assert_allclose(fast.numpy(), ref.numpy(), rtol=1e-8, atol=1e-9)


class CountingModel:
    """A score model that records the number of rows of every call of ``score``."""

    def __init__(self, model):
        self.model, self.sde, self.calls = model, model.sde, []

    def score(self, x, t, cond=None):
        self.calls.append(len(x))
        return self.model.score(x, t, cond=cond)


def test_the_authors_loop_makes_one_network_call_per_image_and_step(trained_mlp):
    model, x = trained_mlp
    counted = CountingModel(model)
    volume_growth_reference(counted, x[:3], n_axes=4, radius=0.05, n_steps=5)
    assert counted.calls == [4 + 1] * (3 * 5)      # the centre and its 4 axis points, together


def test_gram_schmidt_longest_first_is_qr_of_sorted_rows():
    """Gram-Schmidt longest first is the triangular factorisation of the sorted rows."""
    W = torch.randn(5, 9, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    W = W * torch.tensor([0.5, 3.0, 1.0, 2.0, 0.1], dtype=torch.float64)[:, None]
    E, lengths = gram_schmidt_longest_first(W)
    torch.testing.assert_close(E @ E.T, torch.eye(5, dtype=torch.float64), atol=1e-12, rtol=0)
    order = W.norm(dim=1).argsort(descending=True)
    torch.testing.assert_close(lengths, W[order].norm(dim=1))
    # the sorted rows in the new basis are lower triangular with a positive diagonal: row i lies in
    # the span of e_1 .. e_i and points along e_i, which is what Gram-Schmidt in that order makes
    R = W[order] @ E.T
    torch.testing.assert_close(R, R.tril(), atol=1e-12, rtol=0)
    assert (R.diagonal() > 0).all()


def test_axes_stay_orthonormal_after_many_steps(trained_mlp):
    model, x = trained_mlp
    for method in ("jvp", "finite"):
        _, axes = volume_growth(model, x, n_axes=4, n_steps=300, method=method, return_axes=True)
        gram = axes @ axes.transpose(1, 2)
        torch.testing.assert_close(gram, torch.eye(4, dtype=gram.dtype).expand_as(gram), atol=1e-10, rtol=0)


def test_seeded_and_batch_independent(trained_mlp):
    model, x = trained_mlp
    a = volume_growth(model, x, n_axes=2, n_steps=5, seed=3)
    assert torch.equal(a, volume_growth(model, x, n_axes=2, n_steps=5, seed=3))
    assert not torch.equal(a, volume_growth(model, x, n_axes=2, n_steps=5, seed=4))
    chunked = volume_growth(model, x, n_axes=2, n_steps=5, seed=3, max_batch=3)
    torch.testing.assert_close(a, chunked, rtol=1e-12, atol=1e-12)


def test_per_image_seeds_make_a_value_independent_of_its_batch(trained_mlp):
    model, x = trained_mlp
    seeds = [4, 8, 15, 16, 23, 42]
    batched = volume_growth(model, x, n_axes=2, n_steps=5, seed=seeds)
    alone = torch.cat([volume_growth(model, x[i:i + 1], n_axes=2, n_steps=5, seed=[s]) for i, s in enumerate(seeds)])
    torch.testing.assert_close(batched, alone, rtol=1e-12, atol=1e-12)
    assert not torch.equal(batched, volume_growth(model, x, n_axes=2, n_steps=5, seed=4))


def test_runs_on_a_diffusers_unet_with_attention(tiny_unet):
    model = EpsModel(tiny_unet, VPSDE(), time_scale=999)
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    jvp = volume_growth(model, x, n_axes=3, n_steps=3, method="jvp")
    fin = volume_growth(model, x, n_axes=3, n_steps=3, method="finite", radius=1e-2)
    assert jvp.shape == (2, 3) and torch.isfinite(jvp).all()
    np.testing.assert_allclose(fin.numpy(), jvp.numpy(), rtol=2e-2, atol=2e-2)


def test_clear_errors():
    model = GaussianScore(torch.zeros(4), torch.eye(4), VPSDE())
    x = torch.zeros(2, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match="n_axes=5"):
        volume_growth(model, x, n_axes=5)
    with pytest.raises(ValueError, match="Unknown method"):
        volume_growth(model, x, n_axes=2, method="euler")
    with pytest.raises(ValueError, match="Unknown measure"):
        volume_growth(model, x, n_axes=2, measure="area")
    with pytest.raises(ValueError, match="radius"):
        volume_growth(model, x, n_axes=2, radius=0)
    with pytest.raises(ValueError, match="image -> noise"):
        volume_growth(model, x, n_axes=2, t_start=0.5, t_end=0.1)
    with pytest.raises(ValueError, match="outside"):
        volume_growth(model, x, n_axes=2, t_end=2.0)


def test_both_measures_from_one_pass_equal_two_separate_runs():
    torch.manual_seed(0)
    model = GaussianScore(torch.zeros(6), torch.diag(torch.linspace(0.2, 2.0, 6)), VPSDE())
    x = torch.randn(3, 6)
    kw = dict(n_axes=3, n_steps=4, radius=0.05, seed=[1, 2, 3])
    both = volume_growth(model, x, measure=("axes", "volume"), **kw)
    assert set(both) == {"axes", "volume"}
    assert torch.equal(both["axes"], volume_growth(model, x, measure="axes", **kw))
    assert torch.equal(both["volume"], volume_growth(model, x, measure="volume", **kw))
    assert (both["axes"] >= both["volume"] - 1e-12).all()          # Hadamard: the axes score is never smaller
    with pytest.raises(ValueError, match="measure"):
        volume_growth(model, x, measure=("axes", "area"), **kw)
    with pytest.raises(ValueError, match="measure"):
        volume_growth(model, x, measure=(), **kw)
