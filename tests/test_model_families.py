"""Model families on tiny instances built offline: an EDM denoiser D(x, sigma) as a score model, and the
pipeline classes refused before any weight loads."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import mempkg
from mempkg.core.schedules import VPSDE, EDMSchedule
from mempkg.estimators.lid import flipd
from mempkg.estimators.volume import volume_growth
from mempkg.models.edm_denoiser import EDMDenoiser
from mempkg.models.exact import GaussianScore
from mempkg.models.pretrained import PretrainedError, inspect_model, load_pretrained
from mempkg.models.views import VPView

# -- EDMDenoiser -------------------------------------------------------------------------------------

LAM = torch.tensor([1.5, 0.8, 0.0, 0.0], dtype=torch.float64)      # N(0, diag(LAM)): intrinsic dimension 2


def gaussian_D(lam: torch.Tensor):
    """The exact denoiser of N(0, diag(lam)): D(x, sigma) = lam / (lam + sigma^2) x (Tweedie)."""
    def D(x, sigma):
        return lam.to(x) / (lam.to(x) + sigma[:, None] ** 2) * x
    return D


def points(n: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, len(LAM), dtype=torch.float64, generator=torch.Generator().manual_seed(seed)) * LAM.sqrt()


def test_edm_denoiser_follows_the_protocol_and_refuses_bad_D():
    model = mempkg.EDMDenoiser(gaussian_D(LAM), sigma_data=0.5)
    mempkg.check_score_model(model)
    assert isinstance(model.sde, EDMSchedule) and isinstance(model, mempkg.ScoreModel)
    with pytest.raises(TypeError, match="D must be a denoiser"):
        EDMDenoiser(3.0)
    with pytest.raises(ValueError, match="sigma_data must be a positive"):
        EDMDenoiser(gaussian_D(LAM), sigma_data=0.0)
    with pytest.raises(ValueError, match="keeps the shape of its input"):
        EDMDenoiser(lambda x, sigma: x[:, :1]).score(points(), 0.1)


def test_edm_denoiser_score_is_the_exact_gaussian_score():
    """s = (D - x) / sigma^2 of the exact denoiser is GaussianScore's closed form on the EDM schedule."""
    model = EDMDenoiser(gaussian_D(LAM))
    exact = GaussianScore(torch.zeros(4), torch.diag(LAM), EDMSchedule())
    x = points()
    for sigma in (0.05, 0.7, 10.0):
        torch.testing.assert_close(model.score(x, sigma), exact.score(x, sigma), rtol=1e-9, atol=1e-12)


def test_flipd_of_isotropic_gaussian_denoiser_matches_closed_form():
    """Data N(0, s^2 I_d), D = s^2 / (s^2 + sigma^2) x: FLIPD(x, sigma) = d s^2 / (s^2 + sigma^2)
    + sigma^2 |x|^2 / (s^2 + sigma^2)^2 (eq. 9 with tr grad s = -d / (s^2 + sigma^2)), -> d as sigma -> 0."""
    s2, d = 0.49, 5
    model = EDMDenoiser(lambda x, sigma: s2 / (s2 + sigma[:, None] ** 2) * x, sigma_data=0.7)
    x = torch.randn(4, d, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) * s2 ** 0.5
    for sigma in (0.01, 0.3):
        expected = d * s2 / (s2 + sigma**2) + sigma**2 * x.pow(2).sum(1) / (s2 + sigma**2) ** 2
        torch.testing.assert_close(flipd(model, x, t0=sigma), expected, rtol=1e-9, atol=1e-9)
    assert torch.allclose(flipd(model, x, t0=1e-3), torch.full((4,), float(d), dtype=torch.float64), atol=1e-4)


def test_flipd_of_low_rank_gaussian_denoiser_agrees_with_gaussian_score():
    """On N(0, diag(1.5, 0.8, 0, 0)) FLIPD of the denoiser equals FLIPD of the exact score and is ~2 at small t0."""
    model = EDMDenoiser(gaussian_D(LAM))
    exact = GaussianScore(torch.zeros(4), torch.diag(LAM), EDMSchedule())
    x = points()
    for t0 in (0.01, 0.2):
        torch.testing.assert_close(flipd(model, x, t0=t0), flipd(exact, x, t0=t0), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(flipd(model, x, t0=1e-3), torch.full((6,), 2.0, dtype=torch.float64), atol=1e-3, rtol=0)


def test_flipd_with_a_tiny_random_network_denoiser():
    """A random nn.Module denoiser (NVlabs/edm's call form): FLIPD runs, is finite, and the exact trace
    equals the Hutchinson mean over many probes within its error."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 4)).double()
    D = lambda x, sigma: x / (1 + sigma[:, None] ** 2) + 0.1 * net(torch.cat([x, sigma[:, None].log()], 1))  # noqa: E731
    model = EDMDenoiser(D, data_shape=(4,))
    x = points(3)
    exact = flipd(model, x, t0=0.1)
    assert exact.shape == (3,) and torch.isfinite(exact).all()
    hutch = flipd(model, x, t0=0.1, n_probes=400, probe="gaussian", seed=1)
    assert torch.allclose(hutch, exact, atol=0.5)
    with pytest.raises(ValueError, match="model expects"):
        flipd(model, torch.zeros(2, 3, dtype=torch.float64), t0=0.1)


def test_volume_growth_runs_on_the_edm_denoiser_through_the_vp_view():
    """Through VPView the Gaussian denoiser's volume growth equals the exact VP Gaussian's."""
    view = VPView(EDMDenoiser(gaussian_D(LAM), sde=EDMSchedule(sigma_max=80.0)))
    exact = GaussianScore(torch.zeros(4), torch.diag(LAM), VPSDE())
    x = points(2)
    kw = dict(n_axes=2, n_steps=20, t_end=view.t_max, method="jvp", seed=0)
    got, want = volume_growth(view, x, **kw), volume_growth(exact, x, **kw)
    assert got.shape == (2, 20) and torch.isfinite(got).all()
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


# -- pipeline classes refused before any weight ---------------------------------------------------


def write_folder(root, pipeline: str, unet_class: str = "UNet2DModel", prediction: str = "epsilon",
                 components=("unet", "scheduler")):
    """A pipeline folder with configs only (no weight file): loading any weight would fail."""
    root.mkdir(parents=True)
    index = {"_class_name": pipeline, "_diffusers_version": "0.30.0"}
    for c in components:
        (root / c).mkdir()
        index[c] = ["diffusers", "X"]
    (root / "model_index.json").write_text(json.dumps(index))
    (root / "unet" / "config.json").write_text(json.dumps(
        {"_class_name": unet_class, "in_channels": 3, "sample_size": 32, "block_out_channels": [32, 64]}))
    (root / "scheduler" / "scheduler_config.json").write_text(json.dumps(
        {"_class_name": "DDPMScheduler", "num_train_timesteps": 1000, "prediction_type": prediction}))
    return root


@pytest.mark.parametrize("pipeline, why", [
    ("StableDiffusionXLPipeline", "SDXL"), ("LDMPipeline", "latent UNet"), ("DiTPipeline", "DiT"),
    ("KandinskyPipeline", "not read here")])
def test_unsupported_pipeline_class_refused_before_weights(tmp_path, pipeline, why):
    folder = write_folder(tmp_path / "m", pipeline, components=("unet", "scheduler", "vqvae"))
    with pytest.raises(PretrainedError) as e:
        load_pretrained(str(folder), device="cpu")
    msg = str(e.value)
    assert pipeline in msg and why in msg and "StableDiffusionPipeline, DDPMPipeline" in msg


def test_v_prediction_scheduler_refused_before_weights(tmp_path):
    folder = write_folder(tmp_path / "m", "DDPMPipeline", prediction="v_prediction")
    with pytest.raises(PretrainedError, match="predicts 'v_prediction'.*prediction_type 'epsilon'"):
        load_pretrained(str(folder), device="cpu")


def test_supported_ddpm_folder_passes_inspection_without_weights(tmp_path):
    """The control: the same configs under DDPMPipeline pass inspection (loading would then need weights)."""
    info = inspect_model(str(write_folder(tmp_path / "m", "DDPMPipeline")))
    assert info.kind == "ddpm" and info.native_size == 32


def test_class_conditional_ddpm_unet_scores_with_its_labels():
    """A class-conditional UNet2DModel reads cond as class_labels at the scheduler's timestep: labels change
    the score, and the score is the UNet's own eps at n(t) = N t - 1 over -sigma(t)."""
    from diffusers import DDPMScheduler, UNet2DModel

    torch.manual_seed(0)
    unet = UNet2DModel(sample_size=8, in_channels=1, out_channels=1, block_out_channels=(32, 32), layers_per_block=1,
                       down_block_types=("DownBlock2D",) * 2, up_block_types=("UpBlock2D",) * 2,
                       norm_num_groups=8, num_class_embeds=3)
    with torch.no_grad():
        unet.class_embedding.weight.mul_(10)              # make the labels matter visibly at init
    scheduler = DDPMScheduler(num_train_timesteps=1000)
    model = mempkg.DDPMScoreModel(unet, scheduler)
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 2])
    with torch.no_grad():
        s = model.score(x, 0.5, cond=labels)
        eps = unet(x, torch.full((2,), 499.0), class_labels=labels).sample
    sigma = float(model.sde.sigma(torch.tensor(0.5, dtype=torch.float64)))
    torch.testing.assert_close(s, -eps / sigma)
    assert not torch.allclose(s, model.score(x, 0.5, cond=torch.tensor([1, 1])))
    with pytest.raises(ValueError, match="class-conditional: call it with cond"):
        model.score(x, 0.5)


def test_class_conditional_ddpm_folder_refused_before_weights(tmp_path):
    folder = write_folder(tmp_path / "m", "DDPMPipeline")
    cfg = json.loads((folder / "unet" / "config.json").read_text())
    (folder / "unet" / "config.json").write_text(json.dumps({**cfg, "num_class_embeds": 10}))
    with pytest.raises(PretrainedError, match="class-conditional.*DDPMScoreModel"):
        load_pretrained(str(folder), device="cpu")
