"""VPView and EDMView read one probability flow on two clocks: checked against exact Gaussian scores."""

from __future__ import annotations

import pytest
import torch

from mempkg.core.schedules import VPSDE, DiscreteVPSchedule, EDMSchedule
from mempkg.models.exact import GaussianScore
from mempkg.models.views import EDMView, VPView

D = 3
MEAN = torch.tensor([0.5, -1.0, 0.0], dtype=torch.float64)
COV = torch.diag(torch.tensor([2.0, 0.3, 0.0], dtype=torch.float64))       # one direction with no variance


@pytest.mark.parametrize("vp", [VPSDE(), DiscreteVPSchedule(torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000), 0))],
                         ids=["linear beta", "discrete DDPM"])
def test_edm_view_of_a_vp_gaussian_is_the_ve_gaussian(vp):
    view = EDMView(GaussianScore(MEAN, COV, vp))
    exact = GaussianScore(MEAN, COV, EDMSchedule(sigma_max=1e4))
    x = torch.randn(5, D, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for sigma in (0.05, 0.7, 5.0):
        torch.testing.assert_close(view.score(x, sigma), exact.score(x, sigma), rtol=1e-6, atol=1e-8)
        denoised = x + sigma ** 2 * exact.score(x, sigma)                    # Tweedie: E[x0 | x]
        torch.testing.assert_close(view.denoise(x, sigma), denoised, rtol=1e-6, atol=1e-8)
    assert view.sde.sigma_max == pytest.approx(float(vp.sigma(vp.T) / vp.alpha(vp.T)))
    with pytest.raises(ValueError, match="past the model's sigma_max"):
        view.score(x, view.sde.sigma_max * 1.01)


def test_vp_view_of_the_edm_view_gives_the_vp_score_back():
    vp = VPSDE()
    model = GaussianScore(MEAN, COV, vp)
    round_trip = VPView(EDMView(model), sde=vp)
    x = torch.randn(4, D, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for t in (0.01, 0.3, 0.9):
        torch.testing.assert_close(round_trip.score(x, t), model.score(x, t), rtol=1e-6, atol=1e-8)


def test_edm_view_refuses_what_is_not_a_score_model():
    with pytest.raises(TypeError, match="EDMView wraps a VP score model"):
        EDMView(object())
