import numpy as np
import pytest
import torch

from mempkg.core.schedules import VPSDE
from mempkg.models.adapters import EpsModel
from mempkg.models.exact import GaussianScore
from mempkg.models.networks import MLPEps
from mempkg.models.sampling import sample
from mempkg.models.train import sample_times, train_dsm


@pytest.mark.parametrize("method", ["sde", "ode"])
def test_samplers_recover_a_gaussian_from_its_exact_score(method):
    mu = torch.tensor([1.0, -2.0], dtype=torch.float64)
    cov = torch.tensor([[1.0, 0.6], [0.6, 0.5]], dtype=torch.float64)
    model = GaussianScore(mu, cov, VPSDE())
    x = sample(model, 4000, 2, n_steps=400, t_end=1e-3, method=method, seed=0, progress=False).double()
    torch.testing.assert_close(x.mean(0), mu, atol=0.08, rtol=0)
    torch.testing.assert_close(torch.cov(x.T), cov, atol=0.08, rtol=0)


def test_training_lowers_the_loss_and_is_seeded():
    data = torch.randn(64, 2) * torch.tensor([1.0, 0.1])
    runs = []
    for _ in range(2):
        net = MLPEps(2, hidden=32, depth=2, seed=0)
        runs.append(train_dsm(net, VPSDE(), data, 300, lr=3e-3, n_noise=2, seed=1, progress=False))
    assert runs[0].losses == runs[1].losses
    l = np.asarray(runs[0].losses)
    assert l[-50:].mean() < 0.8 * l[:50].mean()
    for p, q in zip(runs[0].net.parameters(), runs[1].net.parameters()):
        assert torch.equal(p, q)


def test_trained_model_learns_the_score_of_a_gaussian():
    sde = VPSDE()
    data = torch.randn(512, 2) * 0.5
    net = MLPEps(2, hidden=64, depth=2, seed=0)
    train_dsm(net, sde, data, 1500, lr=3e-3, batch_size=256, seed=0, progress=False)
    exact = GaussianScore(torch.zeros(2), 0.25 * torch.eye(2), sde)
    y = torch.randn(256, 2) * 0.8
    t = 0.5
    got = EpsModel(net, sde).score(y, t).detach().double()
    want = exact.score(y.double(), t)
    assert ((got - want).norm(dim=1) / want.norm(dim=1)).median() < 0.2


def test_ema_and_errors():
    net = MLPEps(2, hidden=8, depth=1, seed=0)
    r = train_dsm(net, VPSDE(), torch.randn(8, 2), 5, ema_decay=0.9, progress=False)
    assert r.ema is not None and len(r.losses) == 5
    with pytest.raises(ValueError, match="t sampling"):
        train_dsm(net, VPSDE(), torch.randn(8, 2), 5, t_sampling="exp", progress=False)
    with pytest.raises(ValueError, match="Unknown sampler"):
        sample(EpsModel(net, VPSDE()), 2, 2, method="ddim")


def test_log_uniform_times_cover_the_range():
    t = sample_times(20000, 1e-3, 1.0, "log-uniform", torch.Generator().manual_seed(0))
    assert t.min() >= 1e-3 and t.max() <= 1.0
    assert abs(float(torch.log10(t).mean()) + 1.5) < 0.02          # uniform in log10 t on [-3, 0]


def test_mlp_seed_fixes_weights_without_touching_global_rng():
    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    a = MLPEps(2, seed=3)
    after = torch.rand(1)
    b = MLPEps(2, seed=3)
    assert torch.equal(before, after)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
