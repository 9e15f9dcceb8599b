import math

import pytest
import torch

from mempkg.core.schedules import VPSDE, get_sde


def test_vp_schedule_matches_closed_form():
    sde = VPSDE(0.1, 20.0)
    t = torch.tensor([1e-4, 0.05, 0.3, 1.0], dtype=torch.float64)
    B = 0.1 * t + 0.5 * t**2 * 19.9
    torch.testing.assert_close(sde.alpha(t), torch.exp(-B / 2))
    torch.testing.assert_close(sde.alpha(t) ** 2 + sde.sigma(t) ** 2, torch.ones_like(t))
    torch.testing.assert_close(sde.beta(t), 0.1 + 19.9 * t)


def test_t_from_sigma_inverts_sigma():
    sde = VPSDE()
    t = torch.tensor([1e-3, 0.01, 0.3, 0.9], dtype=torch.float64)
    torch.testing.assert_close(sde.t_from_sigma(sde.sigma(t)), t, rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="0 < sigma < 1"):
        sde.t_from_sigma(1.0)


def test_alpha_derivative_is_minus_half_beta_alpha():
    sde = VPSDE()
    t, h = 0.4, 1e-6
    d = (sde.alpha(t + h) - sde.alpha(t - h)) / (2 * h)
    assert math.isclose(float(d), float(-0.5 * sde.beta(t) * sde.alpha(t)), rel_tol=1e-6)


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5, float("nan")])
def test_check_time_rejects_out_of_range(bad):
    with pytest.raises(ValueError, match="outside the schedule"):
        VPSDE().check_time(bad, "t0")


def test_bad_schedule_and_unknown_name():
    with pytest.raises(ValueError):
        VPSDE(beta_min=5, beta_max=1)
    with pytest.raises(ValueError, match="Unknown SDE"):
        get_sde("edm-typo")


def test_marginal_prob_broadcasts_per_sample_times():
    sde = VPSDE()
    x0 = torch.ones(3, 2, 4)
    t = torch.tensor([0.1, 0.5, 0.9])
    mean, std = sde.marginal_prob(x0, t)
    assert mean.shape == x0.shape and std.shape == (3, 1, 1)
    torch.testing.assert_close(mean[:, 0, 0], sde.alpha(t))
