"""EDM (Karras et al. 2022) against known answers: the preconditioning's identities, an exact Gaussian
denoiser (score, FLIPD, Heun sampler, volume growth), the log-normal sigma draws with and without
gap bands (Dodson et al.), and seeded, resumable training."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from mempkg.core.protocol import check_score_model
from mempkg.core.schedules import EDMSchedule, get_sde
from mempkg.estimators.lid import flipd
from mempkg.estimators.volume import volume_growth
from mempkg.models.edm import (EDMLoss, EDMPrecond, edm_sigmas, euler_sampler, heun_sampler, sample_edm, train_edm,
                               train_edm_cached)
from mempkg.models.exact import GaussianScore
from mempkg.models.networks import MLPEps
from mempkg.models.sampling import probability_flow
from mempkg.models.train import CheckpointMismatch, load_checkpoint


class GaussianF(nn.Module):
    """The raw network F that makes EDMPrecond the exact denoiser of N(mu, diag(lam)):

        D*(x; sigma) = mu + lam / (lam + sigma^2) (x - mu),   F = (D* - c_skip x) / c_out,

    with sigma = exp(4 c_noise) and x = y / c_in read back from F's inputs (y = c_in x)."""

    def __init__(self, mu, lam, sigma_data):
        super().__init__()
        self.mu, self.lam, self.sd = mu, lam, sigma_data

    def forward(self, y, c_noise):
        sigma = torch.exp(4 * c_noise)[:, None]
        x = y * (sigma**2 + self.sd**2).sqrt()
        D = self.mu + self.lam / (self.lam + sigma**2) * (x - self.mu)
        c_skip = self.sd**2 / (sigma**2 + self.sd**2)
        c_out = sigma * self.sd / (sigma**2 + self.sd**2).sqrt()
        return (D - c_skip * x) / c_out


def gaussian(lam=(1.0, 0.25), mu=(0.5, -0.3), sigma_data=0.5):
    mu, lam = torch.tensor(mu, dtype=torch.float64), torch.tensor(lam, dtype=torch.float64)
    return mu, lam, EDMPrecond(GaussianF(mu, lam, sigma_data), sigma_data=sigma_data)


# -- (a) the schedule and the preconditioning -------------------------------------------------

def test_schedule_is_ve_with_time_equal_to_sigma():
    sde = EDMSchedule()
    t = torch.tensor([1e-3, 0.5, 80.0], dtype=torch.float64)
    torch.testing.assert_close(sde.sigma(t), t)
    torch.testing.assert_close(sde.alpha(t), torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(sde.t_from_sigma(t), t)
    # g^2 = d sigma^2 / dt by finite differences, and the PF velocity -1/2 g^2 s = -t s
    h = 1e-6
    torch.testing.assert_close(sde.beta(t), ((t + h) ** 2 - (t - h) ** 2) / (2 * h), rtol=1e-6, atol=0)
    x, s = torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    torch.testing.assert_close(sde.probability_flow(x, t, s), -t[:, None] * s)
    assert sde.T == 80.0 and float(sde.sigma(2.0)) == 2.0
    assert get_sde("edm", sigma_max=10.0).config() == {"kind": "edm", "sigma_min": 0.002, "sigma_max": 10.0, "T": 10.0}
    sde.check_time(80.0)
    for bad in (0.0, -1.0, 80.5, float("nan")):
        with pytest.raises(ValueError, match="outside"):
            sde.check_time(bad, "t0")


def test_coefficients_at_sigma_data_and_their_identities():
    sd = 0.5
    p = EDMPrecond(MLPEps(2, hidden=8, depth=1, seed=0), sigma_data=sd)
    c_skip, c_out, c_in, c_noise = p.coefficients(torch.tensor(sd, dtype=torch.float64))
    assert math.isclose(c_skip, 0.5) and math.isclose(c_out, sd / math.sqrt(2))
    assert math.isclose(c_in, 1 / (sd * math.sqrt(2))) and math.isclose(c_noise, math.log(sd) / 4)
    sigma = torch.logspace(-3, math.log10(80), 50, dtype=torch.float64)
    c_skip, c_out, c_in, c_noise = p.coefficients(sigma)
    lam = EDMLoss(sigma_data=sd).weight(sigma)
    one = torch.ones_like(sigma)
    torch.testing.assert_close(c_in**2 * (sigma**2 + sd**2), one)               # unit-variance input
    torch.testing.assert_close(lam * c_out**2, one)                             # unit loss weight on F
    torch.testing.assert_close(((1 - c_skip) ** 2 * sd**2 + c_skip**2 * sigma**2) / c_out**2, one)   # unit target


def test_denoiser_tends_to_identity_and_score_forms_agree():
    net = MLPEps(3, hidden=16, depth=2, seed=0).double()
    p = EDMPrecond(net, sigma_data=0.5)
    check_score_model(p)
    x = torch.randn(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        errs = [float((p.denoise(x, s) - x).abs().max()) for s in (1e-2, 1e-4, 1e-6)]
        assert errs[0] > errs[1] > errs[2] and errs[2] < 1e-5
        for s in (1e-3, 0.3, 5.0, 80.0):
            sig = torch.full((6,), s, dtype=torch.float64)
            torch.testing.assert_close(p.score(x, s), (p.denoise(x, s) - x) / s**2, rtol=1e-7, atol=1e-9)
            torch.testing.assert_close(p.denoise(x, sig), p.denoise(x, s))      # float and [B] sigma agree
            torch.testing.assert_close(p(x, s), p.denoise(x, s))                # forward is denoise
        mixed = torch.tensor([0.01, 0.1, 1.0, 10.0, 50.0, 80.0], dtype=torch.float64)
        rows = torch.cat([p.denoise(x[i:i + 1], float(mixed[i])) for i in range(6)])
        torch.testing.assert_close(p.denoise(x, mixed), rows)


def test_diffusers_style_output_and_condition_are_passed_through():
    class Out:
        def __init__(self, sample):
            self.sample = sample

    class Net(nn.Module):
        def forward(self, y, c_noise, class_labels=None):
            return Out(y * 0 + c_noise[:, None] + (0 if class_labels is None else class_labels[:, None]))

    p = EDMPrecond(Net(), cond_key="class_labels")
    x = torch.zeros(2, 3)
    torch.testing.assert_close(p.F(x, 1.0), torch.zeros(2, 3))                 # c_noise = ln 1 / 4 = 0
    got = p.F(x, 1.0, cond=torch.tensor([1.0, 2.0]))
    torch.testing.assert_close(got, torch.tensor([[1.0] * 3, [2.0] * 3]))


# -- (b) an exact Gaussian denoiser: score and FLIPD ----------------------------------------------

def test_exact_gaussian_denoiser_gives_the_gaussian_score():
    mu, lam, p = gaussian()
    ref = GaussianScore(mu, torch.diag(lam), EDMSchedule())
    x = torch.randn(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 3
    for s in (0.01, 0.5, 2.0, 80.0):
        torch.testing.assert_close(p.denoise(x, s), mu + lam / (lam + s**2) * (x - mu))
        torch.testing.assert_close(p.score(x, s), ref.score(x, s), rtol=1e-8, atol=1e-10)
        torch.testing.assert_close(p.score(x, s), -(x - mu) / (lam + s**2), rtol=1e-8, atol=1e-10)


def closed_form_flipd(lam, x, sigma):
    """D - sigma^2 sum_j 1 / (lam_j + sigma^2) + sigma^2 |Sigma_t^{-1} x|^2 for N(0, diag(lam)), psi = 1."""
    inv = 1 / (lam + sigma**2)
    return len(lam) - sigma**2 * inv.sum() + sigma**2 * ((x * inv) ** 2).sum(1)


def test_flipd_under_the_edm_schedule_finds_the_intrinsic_dimension():
    lam = (2.0, 1.0, 0.5, 0.0, 0.0, 0.0)                          # D = 6, d = 3
    mu, lam_t, p = gaussian(lam=lam, mu=(0.0,) * 6)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 6, dtype=torch.float64, generator=g) * lam_t.sqrt()      # on the support
    errs = []
    for t0 in (0.1, 0.01, 1e-3):
        got = flipd(p, x, t0)
        torch.testing.assert_close(got, closed_form_flipd(lam_t, x, t0), rtol=1e-8, atol=1e-8)
        errs.append(float((got - 3).abs().max()))
    assert errs[0] > errs[1] > errs[2] and errs[2] < 1e-4
    with pytest.raises(ValueError, match="outside"):
        flipd(p, x, 100.0)


# -- (c) the Heun sampler ---------------------------------------------------------------------------

def test_edm_sigmas_follow_eq_5():
    s = edm_sigmas(18)
    assert s.shape == (19,) and s[0] == 80.0 and s[-1] == 0.0
    assert math.isclose(float(s[-2]), 0.002, rel_tol=1e-12)
    assert torch.all(s[1:] < s[:-1])
    i = 7
    want = (80 ** (1 / 7) + i / 17 * (0.002 ** (1 / 7) - 80 ** (1 / 7))) ** 7
    assert math.isclose(float(s[i]), want, rel_tol=1e-12)
    # rho = 1 is a uniform grid
    torch.testing.assert_close(edm_sigmas(5, 1.0, 5.0, rho=1.0), torch.tensor([5.0, 4, 3, 2, 1, 0], dtype=torch.float64))


def test_heun_converges_to_the_exact_flow_of_a_gaussian():
    """The PF-ODE of N(mu, diag(lam)) is linear: x(sigma) - mu = (x_T - mu) sqrt((lam + sigma^2) / (lam + T^2))."""
    mu, lam, p = gaussian()
    xT = 80 * torch.randn(200, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    exact = mu + (xT - mu) * (lam / (lam + 80**2)).sqrt()
    err = {n: float(((heun_sampler(p, xT, edm_sigmas(n)) - exact).abs() / (exact - mu).abs()).max())
           for n in (18, 40, 100)}
    assert err[18] < 0.06 and err[100] < 2e-3
    assert err[40] < err[18] / 4 and err[100] < err[40] / 4                     # second order (Heun)
    # a score model on the EDM schedule (D = x + sigma^2 s) takes the same path
    ref = GaussianScore(mu, torch.diag(lam), EDMSchedule())
    torch.testing.assert_close(heun_sampler(ref, xT, edm_sigmas(18)), heun_sampler(p, xT, edm_sigmas(18)))
    # and so does Heun on the schedule's probability_flow (-t s), to the last nonzero level
    ts = edm_sigmas(18)[:-1]
    torch.testing.assert_close(probability_flow(ref, xT, ts), heun_sampler(p, xT, ts))


def test_sample_edm_reproduces_a_gaussian():
    mu, lam, p = gaussian()
    x = sample_edm(p, 20000, 2, seed=0, dtype=torch.float64, progress=False)
    assert x.shape == (20000, 2) and torch.isfinite(x).all()
    torch.testing.assert_close(x.mean(0), mu, atol=0.03, rtol=0)
    # 18 steps overshoot the variance of unit-scale data by ~10% (eq. 5's grid is coarse near sigma ~ 1);
    # 100 steps are within Monte-Carlo error
    torch.testing.assert_close(torch.cov(x.T), torch.diag(lam), atol=0.02, rtol=0.15)
    x = sample_edm(p, 20000, 2, n_steps=100, seed=0, dtype=torch.float64, progress=False)
    torch.testing.assert_close(torch.cov(x.T), torch.diag(lam), atol=0.02, rtol=0.04)
    assert torch.equal(x, sample_edm(p, 20000, 2, n_steps=100, seed=0, dtype=torch.float64, progress=False))


# -- (d) the loss and its sigma draws ----------------------------------------------------------------

def Phi(z):
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def test_sigma_draws_are_log_normal_and_seeded():
    loss = EDMLoss()
    s = loss.sample_sigma(200_000, torch.Generator().manual_seed(0))
    assert s.dtype == torch.float64 and torch.all(s > 0)
    assert abs(float(s.log().mean()) + 1.2) < 0.01 and abs(float(s.log().std()) - 1.2) < 0.01
    assert abs(float((s < 1).double().mean()) - Phi(1.0)) < 0.003
    assert torch.equal(s[:100], loss.sample_sigma(100, torch.Generator().manual_seed(0)))
    assert not torch.equal(s[:100], loss.sample_sigma(100, torch.Generator().manual_seed(1)))


def test_gap_draws_follow_the_truncated_log_normal():
    loss = EDMLoss(gap=(1, 5))
    a, b = Phi((0 + 1.2) / 1.2), Phi((math.log(5) + 1.2) / 1.2)
    assert math.isclose(loss.excluded_mass, b - a, rel_tol=1e-9)
    s = loss.sample_sigma(200_000, torch.Generator().manual_seed(0))
    assert not torch.any((s >= 1) & (s <= 5))
    assert abs(float((s < 1).double().mean()) - a / (1 - (b - a))) < 0.002
    # the conditional CDF below the band, at a few points
    for q in (0.05, 0.2, 0.6):
        want = Phi((math.log(q) + 1.2) / 1.2) / (1 - (b - a))
        assert abs(float((s < q).double().mean()) - want) < 0.004
    # above the band: P(sigma > 10 | outside) = (1 - Phi(z_10)) / (1 - m)
    want = (1 - Phi((math.log(10) + 1.2) / 1.2)) / (1 - (b - a))
    assert abs(float((s > 10).double().mean()) - want) < 5e-4
    assert torch.equal(s[:50], loss.sample_sigma(50, torch.Generator().manual_seed(0)))


def test_several_and_overlapping_bands():
    loss = EDMLoss(gap=[(2, 5), (0.05, 0.1), (4, 8)])                            # (2, 5) and (4, 8) merge
    s = loss.sample_sigma(100_000, torch.Generator().manual_seed(3))
    assert not torch.any(((s >= 0.05) & (s <= 0.1)) | ((s >= 2) & (s <= 8)))
    m = EDMLoss(gap=(0.05, 0.1)).excluded_mass + EDMLoss(gap=(2, 8)).excluded_mass
    assert math.isclose(loss.excluded_mass, m, rel_tol=1e-12)
    # a one-sided band: nothing above sigma = 1
    s = EDMLoss(gap=(1, math.inf)).sample_sigma(10_000, torch.Generator().manual_seed(0))
    assert torch.all(s < 1)


def test_cdf_and_quantile_choose_a_dummy_band_of_equal_mass():
    loss, gap = EDMLoss(), EDMLoss(gap=(1, 5))
    p = torch.tensor([0.01, 0.3, 0.5, 0.99], dtype=torch.float64)
    torch.testing.assert_close(loss.sigma_cdf(loss.sigma_quantile(p)), p)
    assert math.isclose(float(loss.sigma_quantile(0.5)), math.exp(-1.2))
    lo = float(loss.sigma_quantile(loss.sigma_cdf(0.3) - gap.excluded_mass))   # same mass, ending at 0.3
    dummy = EDMLoss(gap=(lo, 0.3))
    assert lo < 0.3 and math.isclose(dummy.excluded_mass, gap.excluded_mass, rel_tol=1e-9)


def test_zero_network_scores_one_per_pixel_on_data_with_sigma_data():
    """lambda c_out^2 = 1 and F's target has unit variance (Karras App. B.6): F = 0 gives loss 1 at any sigma."""
    class Zero(nn.Module):
        def forward(self, y, c_noise):
            return torch.zeros_like(y)

    g = torch.Generator().manual_seed(0)
    x0 = 0.5 * torch.randn(20_000, 4, generator=g, dtype=torch.float64)
    for gap in (None, (1, 5)):
        per_pixel = EDMLoss(gap=gap)(EDMPrecond(Zero()), x0, torch.Generator().manual_seed(1))
        assert per_pixel.shape == x0.shape
        assert abs(float(per_pixel.mean()) - 1) < 0.03


def test_loss_is_the_weighted_denoising_error_of_its_draws():
    p = EDMPrecond(MLPEps(2, hidden=8, depth=1, seed=0).double())
    loss = EDMLoss(gap=(1, 5))
    x0 = torch.randn(16, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    got = loss(p, x0, torch.Generator().manual_seed(4))
    g = torch.Generator().manual_seed(4)
    sigma = loss.sample_sigma(16, g)
    n = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    want = loss.weight(sigma)[:, None] * (p.denoise(x0 + sigma[:, None] * n, sigma) - x0) ** 2
    torch.testing.assert_close(got, want)


# -- (e) training ------------------------------------------------------------------------------------

def test_training_lowers_the_loss_and_is_seeded():
    data = torch.randn(64, 2, generator=torch.Generator().manual_seed(0)) * torch.tensor([1.0, 0.1])
    before = torch.random.get_rng_state()
    runs = [train_edm(EDMPrecond(MLPEps(2, hidden=32, depth=2, seed=0)), data, 300, lr=3e-3, n_noise=2, seed=1,
                      ema_decay=0.9, progress=False) for _ in range(2)]
    assert torch.equal(torch.random.get_rng_state(), before)                    # the caller's RNG is untouched
    assert runs[0].losses == runs[1].losses and len(runs[0].losses) == 300
    l = np.asarray(runs[0].losses)
    assert l[-50:].mean() < 0.85 * l[:50].mean()
    for p, q in zip(runs[0].net.parameters(), runs[1].net.parameters()):
        assert torch.equal(p, q)
    assert isinstance(runs[0].net, EDMPrecond) and isinstance(runs[0].ema, EDMPrecond)
    gap = train_edm(EDMPrecond(MLPEps(2, hidden=32, depth=2, seed=0)), data, 5, lr=3e-3, n_noise=2, seed=1,
                    loss=EDMLoss(gap=(1, 5)), progress=False)
    assert gap.losses != runs[0].losses[:5]


def test_interrupted_and_resumed_equals_uninterrupted(tmp_path):
    data = torch.randn(12, 2, generator=torch.Generator().manual_seed(1))
    build = lambda: EDMPrecond(MLPEps(2, hidden=16, depth=2, seed=0))          # noqa: E731
    kw = dict(lr=3e-3, batch_size=8, n_noise=2, warmup=2, ema_decay=0.9, loss=EDMLoss(gap=(1, 5)), seed=5,
              progress=False)
    ref = train_edm(build(), data, 7, **kw)
    ckpt = tmp_path / "run.pt"

    def stop_after(n):
        def cb(step, _loss):
            if step == n:
                raise KeyboardInterrupt
        return cb

    with pytest.raises(KeyboardInterrupt):
        train_edm(build(), data, 7, checkpoint=ckpt, checkpoint_every=2, callback=stop_after(5), **kw)
    assert load_checkpoint(ckpt)["step"] == 4
    res = train_edm(build(), data, 7, checkpoint=ckpt, checkpoint_every=2, **kw)
    assert res.resumed_from == 4 and res.losses == ref.losses
    assert all(torch.equal(a, b) for a, b in zip(res.net.state_dict().values(), ref.net.state_dict().values()))
    assert all(torch.equal(a, b) for a, b in zip(res.ema.state_dict().values(), ref.ema.state_dict().values()))
    with pytest.raises(CheckpointMismatch, match="gap"):
        train_edm(build(), data, 7, checkpoint=ckpt, **dict(kw, loss=EDMLoss(gap=(1, 4))))


def test_train_edm_cached_trains_once_and_keys_on_the_gap(tmp_path):
    from mempkg.book.cache import Cache

    cache = Cache(tmp_path)
    data = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
    build = lambda: EDMPrecond(MLPEps(2, hidden=8, depth=1, seed=0))           # noqa: E731
    kw = dict(seed=0, progress=False, lr=1e-3)
    p1, h1 = train_edm_cached(cache, "edm", build, {"hidden": 8}, data, 4, **kw)
    p2, h2 = train_edm_cached(cache, "edm", build, {"hidden": 8}, data, 4, **kw)
    assert (cache.misses, cache.hits) == (1, 1) and h1 == h2 and isinstance(p2, EDMPrecond)
    assert all(torch.equal(a, b) for a, b in zip(p1.parameters(), p2.parameters()))
    train_edm_cached(cache, "edm", build, {"hidden": 8}, data, 4, loss=EDMLoss(gap=(1, 5)), **kw)
    assert cache.misses == 2 and not list(tmp_path.glob("*.checkpoint.pt"))


# -- (f) volume growth on EDM models --------------------------------------------------------------

def test_volume_growth_of_a_gaussian_under_the_edm_schedule():
    """With N = D axes the log-volume is the integral of div v = sum_j t / (lam_j + t^2):
    1/2 sum_j log((lam_j + t_end^2) / (lam_j + t_start^2)). A wrong PF factor would halve or double it."""
    mu, lam, p = gaussian()
    v = volume_growth(p, mu[None] + 0.1, n_axes=2, n_steps=200, t_start=0.05, t_end=2.0, measure="volume")
    want = 0.5 * torch.log((lam + 4.0) / (lam + 0.05**2)).sum()
    assert math.isclose(float(v[0, -1]), float(want), rel_tol=0.01)


def test_volume_growth_and_flipd_run_on_a_trained_style_edm_model():
    p = EDMPrecond(MLPEps((1, 4, 4), hidden=16, depth=2, seed=0))
    x = torch.randn(3, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    v = volume_growth(p, x, n_axes=4, n_steps=5, t_start=0.01, t_end=80.0)
    assert v.shape == (3, 5) and torch.isfinite(v).all()
    lid = flipd(p, x, 0.05, n_probes=2)
    assert lid.shape == (3,) and torch.isfinite(lid).all()


# -- (g) errors ----------------------------------------------------------------------------------------

def test_clear_errors():
    net = MLPEps(2, hidden=8, depth=1, seed=0)
    for bad in (0.0, -0.5, float("inf"), "0.5"):
        with pytest.raises(ValueError, match="sigma_data"):
            EDMPrecond(net, sigma_data=bad)
    with pytest.raises(ValueError, match="sigma_data"):
        EDMLoss(sigma_data=0.0)
    with pytest.raises(ValueError, match="P_std"):
        EDMLoss(P_std=0.0)
    for bad in ((5, 1), (1, 1), (-1, 5), [(1, 5), (3, 2)], (1, float("nan"))):
        with pytest.raises(ValueError, match="gap band"):
            EDMLoss(gap=bad)
    with pytest.raises(ValueError, match="gap must be"):
        EDMLoss(gap="1-5")
    with pytest.raises(ValueError, match="exclude"):
        EDMLoss(gap=(0, math.inf))
    with pytest.raises(ValueError, match="sigma_min < sigma_max"):
        EDMSchedule(sigma_min=1.0, sigma_max=0.5)
    p = EDMPrecond(net)
    with pytest.raises(ValueError, match="positive"):
        p.denoise(torch.zeros(2, 2), 0.0)
    with pytest.raises(ValueError, match="positive"):
        p.score(torch.zeros(2, 2), torch.tensor([0.5, -1.0]))
    with pytest.raises(ValueError, match="shape"):
        p.denoise(torch.zeros(2, 2), torch.ones(3))
    with pytest.raises(ValueError, match="sigma_data"):
        train_edm(EDMPrecond(net, sigma_data=0.75), torch.randn(4, 2), 1, progress=False)
    with pytest.raises(TypeError, match="EDMPrecond"):
        train_edm(net, torch.randn(4, 2), 1, progress=False)
    with pytest.raises(ValueError, match="n_steps"):
        edm_sigmas(1)
    with pytest.raises(ValueError, match="decrease"):
        heun_sampler(p, torch.zeros(2, 2), [1.0, 2.0, 0.0])
    with pytest.raises(ValueError, match="decrease"):
        heun_sampler(p, torch.zeros(2, 2), [1.0, 0.0, 0.0])
    with pytest.raises(TypeError, match="EDMSchedule"):
        from mempkg.core.schedules import VPSDE
        heun_sampler(GaussianScore(torch.zeros(2), torch.eye(2), VPSDE()), torch.zeros(2, 2), edm_sigmas(3))


def test_equal_mass_bands_tile_the_sigma_axis():
    from mempkg.models.edm import equal_mass_bands
    loss = EDMLoss(sigma_data=0.75)
    band = (0.392, 0.853)
    tiles = equal_mass_bands(loss, band)
    assert band in tiles
    assert tiles[0][0] == 0.0 and tiles[-1][1] == math.inf
    assert all(a[1] == b[0] for a, b in zip(tiles, tiles[1:]))              # contiguous, no overlap
    m = EDMLoss(sigma_data=0.75, gap=band).excluded_mass
    masses = [EDMLoss(sigma_data=0.75, gap=t).excluded_mass for t in tiles]
    assert sum(masses) == pytest.approx(1.0, abs=1e-9)
    inner = [x for t, x in zip(tiles, masses) if 0 < t[0] and t[1] < math.inf]
    assert inner and all(x == pytest.approx(m, rel=1e-9) for x in inner)   # equal mass away from the ends
    assert all(m / 2 <= x < 1.5 * m for t, x in zip(tiles, masses) if t != band)
    near = equal_mass_bands(loss, band, max_per_side=1)
    assert len(near) == 3 and near[1] == band
    with pytest.raises(ValueError, match="0 < sigma_lo"):
        equal_mass_bands(loss, (1.0, 0.5))


class _Point:
    """D(x; sigma) = a point: the optimal denoiser of data concentrated there."""

    def __init__(self, value):
        self.value = value

    def denoise(self, x, sigma, cond=None):
        return torch.full_like(x, self.value)


def test_euler_steps_scale_the_offset_by_sigma_ratios_and_swap_per_step():
    """With D = a, x_{i+1} - a = (sigma_{i+1} / sigma_i)(x_i - a): the last step to 0 lands on a; handing
    step k to D = b mixes b in with weight 1 - sigma_{k+1} / sigma_k, by the same recursion."""
    sig = edm_sigmas(6)
    x0 = torch.tensor([[3.0]], dtype=torch.float64)
    a, b = _Point(1.0), _Point(-2.0)
    states = euler_sampler(a, x0, sig, states=True)
    assert len(states) == 7 and float(states[-1]) == pytest.approx(1.0, abs=1e-12)
    for i in range(6):
        assert float(states[i] - 1.0) == pytest.approx(float(sig[i] / sig[0]) * 2.0, rel=1e-10)
    k = 2
    models = [b if i == k else a for i in range(6)]
    x = float(states[k])
    r = float(sig[k + 1] / sig[k])
    assert float(euler_sampler(models, x0, sig)) == pytest.approx(1.0, abs=1e-12)   # the step to 0 is a's
    mid = euler_sampler(models[: k + 1], x0, sig[: k + 2])
    assert float(mid) == pytest.approx(r * x + (1 - r) * -2.0, rel=1e-12)
    assert float(euler_sampler([a] * 5 + [b], x0, sig)) == pytest.approx(-2.0, abs=1e-12)
    with pytest.raises(ValueError, match="one model per step"):
        euler_sampler([a, b], x0, sig)
