"""CFG norms and the forward probability-flow integration against cases with known answers."""

import math

import pytest
import torch

from mempkg.core.schedules import VPSDE, DiscreteVPSchedule
from mempkg.core.tensors import time_batch
from mempkg.estimators.guidance import (
    T_START_CONTINUOUS,
    cfg_norm,
    cfg_norm_generation,
    eps_prediction,
    generation_times,
    ode_start_time,
    pf_ode_forward,
)
from mempkg.models.exact import GaussianScore


class ConditionalGaussian:
    """A conditional score model with exact scores: data | c ~ N(c, v I) in R^D, the condition c
    being the mean itself; the unconditional model (cond=None, the "empty prompt") is N(0, v I).

        s(x, t | c) = -(x - psi c) / (psi^2 v + sigma^2),
        eps_c - eps_u = -sigma [s(x, t | c) - s(x, t | 0)] = -sigma psi c / (psi^2 v + sigma^2),

    independent of x: the CFG norm is known whatever path the integrator takes.
    """

    def __init__(self, D=6, v=0.3, sde=None):
        self.D, self.v, self.sde = D, v, sde or VPSDE()
        self.data_shape = (D,)

    def score(self, x, t, cond=None):
        tb = time_batch(t, x)
        a, s = self.sde.alpha(tb)[:, None].to(x), self.sde.sigma(tb)[:, None].to(x)
        mean = torch.zeros_like(x) if cond is None else cond.to(x)
        return -(x - a * mean) / (a**2 * self.v + s**2)

    def null_cond(self, n):
        return torch.zeros(n, self.D, dtype=torch.float64)

    def cfg_vector_norm(self, t, cond):
        a, s = float(self.sde.alpha(t)), float(self.sde.sigma(t))
        return s * a * cond.norm(dim=1) / (a * a * self.v + s * s)


class ScaledGaussian(ConditionalGaussian):
    """Data | c ~ N(0, c v I) with a scalar c per row (cond [B, 1]); unconditional c = 1. Here the CFG
    vector depends on x, so the sampler's path matters."""

    def score(self, x, t, cond=None):
        tb = time_batch(t, x)
        a, s = self.sde.alpha(tb)[:, None].to(x), self.sde.sigma(tb)[:, None].to(x)
        scale = torch.ones(len(x), 1, dtype=x.dtype) if cond is None else cond.to(x)
        return -x / (a**2 * scale * self.v + s**2)


def data(B=5, D=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, D, generator=g, dtype=torch.float64), 2 * torch.randn(B, D, generator=g, dtype=torch.float64)


# -- the forward PF-ODE integration ------------------------------------------------------------------------

def exact_gaussian_flow(model, x, t_start, t0):
    """PF-ODE map of data N(mu, cov): in cov's eigenbasis each coordinate of x - psi mu scales by
    sqrt((psi(t0)^2 lam + sigma(t0)^2) / (psi(t_start)^2 lam + sigma(t_start)^2))."""
    sde = model.sde
    a0, s0 = float(sde.alpha(t_start)), float(sde.sigma(t_start))
    a1, s1 = float(sde.alpha(t0)), float(sde.sigma(t0))
    z = (x - a0 * model.mean) @ model.U
    z = z * torch.sqrt((a1**2 * model.lam + s1**2) / (a0**2 * model.lam + s0**2))
    return a1 * model.mean + z @ model.U.T


def gaussian(sde):
    g = torch.Generator().manual_seed(3)
    A = torch.randn(4, 4, generator=g, dtype=torch.float64)
    cov = A @ A.T + 0.1 * torch.eye(4, dtype=torch.float64)             # eigenvalues 0.46 .. 6.1
    return GaussianScore(torch.randn(4, generator=g, dtype=torch.float64), cov, sde)


@pytest.mark.parametrize("sde", [VPSDE(), VPSDE(0.85, 12.0)])
def test_euler_steps_converge_to_the_exact_gaussian_flow_at_first_order(sde):
    model = gaussian(sde)
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    exact = exact_gaussian_flow(model, x, 1e-4, 0.3)
    moved = float((exact - x).abs().max())
    errs = [float((pf_ode_forward(model, x, 0.3, n) - exact).abs().max()) / moved for n in (3, 30, 300)]
    # measured: 0.28, 0.025, 0.0025 (beta 0.1 -> 20) and 0.14, 0.012, 0.0012 (0.85 -> 12)
    assert errs[0] < 0.3 and errs[2] < 3e-3
    for coarse, fine in zip(errs, errs[1:]):
        assert 8 < coarse / fine < 12                                      # error ~ 1 / n_steps


def test_ross_setting_three_euler_steps_to_001_on_a_gaussian():
    # SD's beta range (the linear-beta approximation): 3 steps to t0 = 0.01 as Ross et al.
    model = gaussian(VPSDE(0.85, 12.0))
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    exact = exact_gaussian_flow(model, x, 1e-4, 0.01)
    moved = float((exact - x).abs().max())
    err = float((pf_ode_forward(model, x, 0.01, 3) - exact).abs().max())
    assert err < 0.025 * moved                                             # measured 1.8%
    assert float((pf_ode_forward(model, x, 0.01, 30) - exact).abs().max()) < 0.0025 * moved


# -- cfg_norm (Ross, Kamkari et al.) -------------------------------------------------------------------------

@pytest.mark.parametrize("n_steps", [1, 3])
@pytest.mark.parametrize("t0", [0.01, 0.3])
def test_cfg_norm_known_answer(n_steps, t0):
    model = ConditionalGaussian()
    x, cond = data()
    got = cfg_norm(model, x, cond, t0=t0, n_steps=n_steps)
    assert got.dtype == torch.float64 and got.shape == (5,)
    torch.testing.assert_close(got, model.cfg_vector_norm(t0, cond), rtol=1e-10, atol=0)
    score_form = cfg_norm(model, x, cond, t0=t0, n_steps=n_steps, parametrization="score")
    torch.testing.assert_close(score_form, got / float(model.sde.sigma(t0)), rtol=1e-10, atol=0)


def test_cfg_norm_is_zero_for_the_empty_condition_and_batches():
    model = ConditionalGaussian()
    x, cond = data(B=7)
    assert torch.equal(cfg_norm(model, x, model.null_cond(7)), torch.zeros(7, dtype=torch.float64))
    torch.testing.assert_close(cfg_norm(model, x, cond, max_batch=3), cfg_norm(model, x, cond))


def test_cfg_norm_follows_the_conditional_flow():
    # with an x-dependent CFG vector, cfg_norm is the norm at the end of the *conditional* flow
    model = ScaledGaussian(D=3)
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    cond = torch.tensor([[0.2], [1.0], [3.0], [10.0]], dtype=torch.float64)
    t0 = 0.05
    y = pf_ode_forward(model, x, t0, 3, cond=cond)
    a, s = float(model.sde.alpha(t0)), float(model.sde.sigma(t0))
    expected = s * (y / (a * a * cond * model.v + s * s) - y / (a * a * model.v + s * s)).norm(dim=1)
    torch.testing.assert_close(cfg_norm(model, x, cond, t0=t0), expected, rtol=1e-10, atol=0)
    assert float(cfg_norm(model, x, cond, t0=t0)[1]) == 0.0         # c = 1 is the unconditional model


class RecordingGaussian(ConditionalGaussian):
    """ConditionalGaussian that records every time it is asked for a score at."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.times = []

    def score(self, x, t, cond=None):
        self.times.extend(time_batch(t, x).tolist())
        return super().score(x, t, cond)


def sd_like_schedule(N=1000):
    """SD v1's "scaled_linear" alphas_cumprod, written out (sqrt(beta) linear from sqrt(0.00085) to sqrt(0.012))."""
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, N, dtype=torch.float64) ** 2
    return DiscreteVPSchedule(torch.cumprod(1 - betas, 0))


def test_euler_steps_start_at_the_first_timestep_of_a_discrete_schedule():
    sde = sd_like_schedule()
    model = RecordingGaussian(sde=sde)
    x, cond = data()
    assert ode_start_time(model) == pytest.approx(1e-3, rel=1e-12)          # t_0 = 1 / N, label 0
    got = cfg_norm(model, x, cond, t0=0.01, n_steps=3)
    assert min(model.times) == pytest.approx(1e-3, rel=1e-12)
    assert float(sde.timestep(torch.tensor(model.times)).min()) > -1e-9    # no negative UNet label
    torch.testing.assert_close(got, model.cfg_vector_norm(0.01, cond), rtol=1e-10, atol=0)
    # the grid is 0.001, 0.004, 0.007 (then the read-out at 0.01)
    assert sorted({round(t, 12) for t in model.times}) == pytest.approx([1e-3, 4e-3, 7e-3, 1e-2], rel=1e-9)
    # the old start 1e-4 sat below the first timestep: label N t - 1 = -0.9
    assert float(sde.timestep(1e-4)) == pytest.approx(-0.9)
    with pytest.raises(ValueError, match="first timestep"):
        cfg_norm(model, x, cond, t0=1e-3)
    # an explicit t_start still wins
    model.times.clear()
    pf_ode_forward(model, x, 0.01, 3, cond=cond, t_start=2e-3)
    assert min(model.times) == pytest.approx(2e-3)


def test_a_continuous_schedule_still_starts_at_1e4():
    model = RecordingGaussian()                                            # VPSDE(0.1, 20)
    x, cond = data()
    assert ode_start_time(model) == T_START_CONTINUOUS == 1e-4
    got = cfg_norm(model, x, cond, t0=0.01, n_steps=3)
    assert min(model.times) == pytest.approx(1e-4, rel=1e-12)
    torch.testing.assert_close(got, cfg_norm(model, x, cond, t0=0.01, n_steps=3, t_start=1e-4), rtol=0, atol=0)
    torch.testing.assert_close(pf_ode_forward(model, x, 0.3, 3), pf_ode_forward(model, x, 0.3, 3, t_start=1e-4),
                               rtol=0, atol=0)


# -- cfg_norm_generation (Wen et al.) ---------------------------------------------------------------------------

@pytest.mark.parametrize("n_steps", [1, 4])
def test_cfg_norm_generation_known_answer(n_steps):
    model = ConditionalGaussian()
    _, cond = data()
    got = cfg_norm_generation(model, cond, n_steps=n_steps, n_inference_steps=10, dtype=torch.float64)
    ts = generation_times(model, 10)
    assert len(ts) == 11 and float(ts[0]) == 1.0 and float(ts[1]) == pytest.approx(0.9) and float(ts[-1]) == 0.0
    expected = torch.stack([model.cfg_vector_norm(float(t), cond) for t in ts[:n_steps]]).mean(0)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=0)


def test_cfg_norm_generation_follows_the_guided_ddim_sampler():
    model = ScaledGaussian(D=3)
    cond = torch.tensor([[0.5], [2.0]], dtype=torch.float64)
    w, n, N = 4.0, 3, 4
    got = cfg_norm_generation(model, cond, n_steps=n, seed=11, guidance_scale=w, n_inference_steps=N,
                              dtype=torch.float64, n_samples=2)
    # by hand: the same prior draws, DDIM x' = psi' x0_hat + sigma' eps_hat with eps_hat = eps_u + w (eps_c - eps_u)
    z = torch.randn((2, 3), generator=torch.Generator().manual_seed(11)).double()
    ts = [1.0 - k / N for k in range(N + 1)]
    expected = torch.zeros(2, dtype=torch.float64)
    for i in range(2):
        for j in range(2):
            x = z[j:j + 1]
            total = 0.0
            for k in range(n):
                t = ts[k]
                a, s = float(model.sde.alpha(t)), float(model.sde.sigma(t))
                e_c, e_u = -s * model.score(x, t, cond[i:i + 1]), -s * model.score(x, t)
                total += float((e_c - e_u).norm())
                e = e_u + w * (e_c - e_u)
                a2, s2 = float(model.sde.alpha(ts[k + 1])), float(model.sde.sigma(ts[k + 1]))
                x = a2 * (x - s * e) / a + s2 * e
            expected[i] += total / n / 2
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)
    # the guidance scale only matters after the first step
    one = dict(n_steps=1, seed=11, n_inference_steps=N, dtype=torch.float64)
    torch.testing.assert_close(cfg_norm_generation(model, cond, guidance_scale=1.0, **one),
                               cfg_norm_generation(model, cond, guidance_scale=7.5, **one))
    three = dict(one, n_steps=3)
    assert not torch.allclose(cfg_norm_generation(model, cond, guidance_scale=1.0, **three),
                              cfg_norm_generation(model, cond, guidance_scale=7.5, **three), rtol=1e-3)


def test_cfg_norm_generation_is_seeded_and_zero_for_the_empty_condition():
    model = ScaledGaussian(D=3)
    cond = torch.tensor([[0.5], [2.0], [1.0]], dtype=torch.float64)
    kw = dict(n_steps=3, dtype=torch.float64, n_samples=3)
    a = cfg_norm_generation(model, cond, seed=1, **kw)
    assert torch.equal(a, cfg_norm_generation(model, cond, seed=1, **kw))
    assert not torch.equal(a, cfg_norm_generation(model, cond, seed=2, **kw))
    assert float(a[2]) == 0.0 and torch.all(a[:2] > 0)
    assert torch.equal(cfg_norm_generation(model, model.null_cond(2)[:, :1] + 1, seed=1, **kw),
                       torch.zeros(2, dtype=torch.float64))


def test_eps_prediction_is_minus_sigma_times_score():
    model = ConditionalGaussian()
    x, cond = data()
    s = float(model.sde.sigma(0.2))
    torch.testing.assert_close(eps_prediction(model, x, 0.2, cond), -s * model.score(x, 0.2, cond))


# -- bad input -----------------------------------------------------------------------------------------------

def test_clear_errors_for_bad_input():
    model = ConditionalGaussian()
    x, cond = data()
    with pytest.raises(ValueError, match="rows"):
        cfg_norm(model, x, cond[:3])
    with pytest.raises(ValueError, match="one condition per image"):
        cfg_norm(model, x, None)
    for t0 in (0.0, -0.1, 1.5, math.nan):
        with pytest.raises(ValueError, match="t0"):
            cfg_norm(model, x, cond, t0=t0)
    for n in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="n_steps"):
            cfg_norm(model, x, cond, n_steps=n)
    with pytest.raises(ValueError, match="t_start > 0"):
        cfg_norm(model, x, cond, t_start=0.0)
    with pytest.raises(ValueError, match="t_start < t0"):
        cfg_norm(model, x, cond, t0=0.01, t_start=0.02)
    with pytest.raises(ValueError, match="parametrization"):
        cfg_norm(model, x, cond, parametrization="x0")
    with pytest.raises(ValueError, match="per-image shape"):
        cfg_norm(model, x[:, :4], cond)
    with pytest.raises(TypeError, match="not a score model"):
        cfg_norm(object(), x, cond)

    with pytest.raises(ValueError, match="n_steps"):
        cfg_norm_generation(model, cond, n_steps=0)
    with pytest.raises(ValueError, match="exceeds"):
        cfg_norm_generation(model, cond, n_steps=11, n_inference_steps=10)
    with pytest.raises(ValueError, match="n_samples"):
        cfg_norm_generation(model, cond, n_samples=0)
    with pytest.raises(ValueError, match="guidance_scale"):
        cfg_norm_generation(model, cond, guidance_scale=math.inf)
    with pytest.raises(ValueError, match="one condition per caption"):
        cfg_norm_generation(model, ["a cat"])
    with pytest.raises(ValueError, match="data_shape"):
        cfg_norm_generation(model, cond, shape=(7,))
    bare = GaussianScore(torch.zeros(2), torch.eye(2), VPSDE())
    with pytest.raises(ValueError, match="data shape"):
        cfg_norm_generation(bare, torch.zeros(2, 2))
