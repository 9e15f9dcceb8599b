"""The Stable Diffusion adapter, on a tiny pipeline built offline, and the full profile's metric path on it."""

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import io  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from tiny_models import SD_SCHEDULER, save_tiny_sd  # noqa: E402

from mempkg.core.protocol import check_inputs  # noqa: E402
from mempkg.core.schedules import DiscreteVPSchedule, linear_beta_schedule  # noqa: E402
from mempkg.estimators.complexity import png_size, to_uint8  # noqa: E402
from mempkg.estimators.guidance import cfg_norm, cfg_norm_generation  # noqa: E402
from mempkg.estimators.lid import flipd  # noqa: E402
from mempkg.models.stable_diffusion import (  # noqa: E402
    StableDiffusion,
    equal_sigma_time,
    load_stable_diffusion,
    with_schedule,
)


@pytest.fixture(scope="module")
def sd_folder(tmp_path_factory):
    """A tiny, randomly initialised SD pipeline saved in diffusers' layout: 16 px images -> 4x8x8 latents."""
    return save_tiny_sd(tmp_path_factory.mktemp("tiny_sd"))


@pytest.fixture(scope="module")
def sd(sd_folder):
    return load_stable_diffusion(sd_folder, device="cpu")


@pytest.fixture(scope="module")
def images():
    """Four 16x16 RGB images in [-1, 1]: a constant, a gradient, two noise images."""
    g = torch.Generator().manual_seed(0)
    flat = torch.full((1, 3, 16, 16), 0.2)
    ramp = torch.linspace(-1, 1, 16).expand(1, 3, 16, 16)
    noise = torch.rand(2, 3, 16, 16, generator=g) * 2 - 1
    return torch.cat([flat, ramp, noise])


# -- the schedule -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def scheduler():
    from diffusers import PNDMScheduler
    return PNDMScheduler(**SD_SCHEDULER)


def test_schedule_hits_alphas_cumprod_at_every_timestep(scheduler):
    sde = DiscreteVPSchedule.from_scheduler(scheduler)
    n = torch.arange(1000)
    t = sde.t_of_timestep(n)
    torch.testing.assert_close(sde.alpha(t), scheduler.alphas_cumprod.double().sqrt(), rtol=1e-12, atol=0)
    torch.testing.assert_close(sde.timestep(t), n.double(), rtol=0, atol=1e-9)
    assert float(sde.alpha(1.0)) == pytest.approx(float(scheduler.alphas_cumprod[-1]) ** 0.5, rel=1e-12)
    # the continuous schedule starts at the clean data
    assert float(sde.sigma(1e-12)) < 1e-6


def test_schedule_is_variance_preserving_and_self_consistent(scheduler):
    sde = DiscreteVPSchedule.from_scheduler(scheduler)
    t = torch.linspace(1e-5, 1, 20_001, dtype=torch.float64)
    torch.testing.assert_close(sde.alpha(t) ** 2 + sde.sigma(t) ** 2, torch.ones_like(t), rtol=0, atol=1e-14)
    assert torch.all(sde.sigma(t)[1:] > sde.sigma(t)[:-1])
    torch.testing.assert_close(sde.t_from_sigma(sde.sigma(t)), t, rtol=1e-9, atol=1e-12)
    # beta = dB/dt: integrating it back gives B (trapezoid on a grid that contains every knot)
    grid = torch.linspace(0, 1, 1000 * 8 + 1, dtype=torch.float64)
    mid = 0.5 * (grid[1:] + grid[:-1])
    integral = torch.cumsum(sde.beta(mid) * (grid[1:] - grid[:-1]), 0)
    torch.testing.assert_close(integral, sde.B(grid[1:]), rtol=1e-10, atol=1e-12)
    # DDPM <-> SDE: beta(t) ~ N beta_n (Song et al. 2021, Appendix B)
    torch.testing.assert_close(sde.beta(sde.t_of_timestep(torch.arange(1000)) - 5e-4),
                               1000 * scheduler.betas.double(), rtol=7e-3, atol=0)


def test_linear_beta_approximation_is_close_but_not_equal(scheduler):
    exact, lin = DiscreteVPSchedule.from_scheduler(scheduler), linear_beta_schedule(scheduler)
    assert (lin.beta_min, lin.beta_max) == pytest.approx((0.85, 12.0))
    t = torch.linspace(1e-4, 1, 10_001, dtype=torch.float64)
    gap = (exact.sigma(t) - lin.sigma(t)).abs()
    # measured: max |sigma gap| = 0.0902 at t = 0.316, max |alpha gap| = 0.124 at t = 0.513;
    # at t0 = 0.3 sigma is 0.639 (scheduler) against 0.729 (linear beta), as NOTES.md says
    assert 0.085 < float(gap.max()) < 0.095
    assert float(exact.sigma(0.3)) == pytest.approx(0.639, abs=1e-3)
    assert float(lin.sigma(0.3)) == pytest.approx(0.729, abs=1e-3)
    assert float((exact.sigma(t) - lin.sigma(t)).abs()[t <= 0.01].max()) < 2e-3    # close where FLIPD/CFG read


def test_schedule_rejects_a_bad_table():
    with pytest.raises(ValueError, match="decreasing"):
        DiscreteVPSchedule(torch.tensor([0.9, 0.95, 0.5]))
    with pytest.raises(ValueError, match="outside"):
        DiscreteVPSchedule(torch.tensor([0.9, 0.5])).check_time(1.5, "t0")


# -- the adapter on the tiny pipeline -----------------------------------------------------------------------

def test_loads_from_a_local_folder_as_a_score_model(sd, scheduler):
    assert isinstance(sd, StableDiffusion)
    assert sd.data_shape == (4, 8, 8) and sd.dtype == torch.float32 and sd.device.type == "cpu"
    assert isinstance(sd.sde, DiscreteVPSchedule)
    torch.testing.assert_close(sd.sde.alphas_cumprod, scheduler.alphas_cumprod.double())
    check_inputs(sd, torch.zeros(2, 4, 8, 8))
    with pytest.raises(ValueError, match="per-image shape"):
        check_inputs(sd, torch.zeros(2, 4, 16, 16))
    assert not any(p.requires_grad for p in sd.parameters())
    assert json.dumps(sd.config())                      # plain literals, usable as a cache key


def test_score_is_minus_eps_over_sigma_and_uses_the_right_label(sd):
    g = torch.Generator().manual_seed(1)
    z = torch.randn(3, 4, 8, 8, generator=g)
    t = torch.tensor([0.01, 0.3, 1.0])
    cond = sd.encode_prompts(["a cat", "dog", ""])
    eps = sd.eps(z, t, cond)
    sigma = sd.sde.sigma(t.double()).float().view(3, 1, 1, 1)
    torch.testing.assert_close(sd.score(z, t, cond), -eps / sigma)
    # the UNet is fed the label N t - 1: timestep 299 at t = 0.3
    direct = sd.unet(z, torch.tensor([9.0, 299.0, 999.0]), encoder_hidden_states=cond).sample
    torch.testing.assert_close(eps, direct, rtol=1e-5, atol=1e-5)
    assert torch.equal(sd.eps(z, 0.3), sd.eps(z, 0.3, sd.null_cond(3)))     # cond=None is the empty prompt


def test_linear_beta_option_reproduces_the_authors_label_and_sigma(sd_folder):
    model = load_stable_diffusion(sd_folder, device="cpu", schedule="linear_beta")
    z = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    direct = model.unet(z, torch.tensor([300.0, 300.0]), encoder_hidden_states=model.null_cond(2)).sample
    sigma = float(model.sde.sigma(0.3))
    assert sigma == pytest.approx(0.7286, abs=1e-4)
    torch.testing.assert_close(model.score(z, 0.3), -direct / sigma, rtol=1e-5, atol=1e-5)


def test_equal_sigma_time_reads_the_authors_t0_at_their_noise_level(sd):
    # NOTES.md: the authors' t0 = 0.1 is sigma = 0.362 under the linear-beta reading; SD's alphas_cumprod
    # give 0.323 at t = 0.1 and reach 0.362 only at t = 0.121
    sigma, t = equal_sigma_time(sd, 0.1, "linear_beta")
    assert sigma == pytest.approx(0.3623, abs=1e-4) and t == pytest.approx(0.1210, abs=1e-4)
    assert float(sd.sde.sigma(t)) == pytest.approx(sigma, rel=1e-10)
    assert float(sd.sde.sigma(0.1)) == pytest.approx(0.3233, abs=1e-4)
    assert equal_sigma_time(sd, 0.1, "scheduler") == (pytest.approx(float(sd.sde.sigma(0.1))), 0.1)
    # and back: the linear-beta view reads the scheduler's t = 0.1 at its own t < 0.1
    view = with_schedule(sd, "linear_beta")
    s2, t2 = equal_sigma_time(view, 0.1, "scheduler")
    assert s2 == pytest.approx(0.3233, abs=1e-4) and t2 < 0.1
    assert float(view.sde.sigma(t2)) == pytest.approx(s2, rel=1e-8)
    with pytest.raises(ValueError, match="reading"):
        equal_sigma_time(sd, 0.1, "cosine")


def test_cfg_norm_on_sd_never_feeds_the_unet_a_negative_label(sd, images):
    z = sd.encode_images(images)
    cond = sd.encode_prompts(["a cat", "a dog", "cat", "dog"])
    labels = []
    hook = sd.unet.register_forward_pre_hook(lambda mod, args: labels.append(args[1].detach().clone()))
    try:
        cfg_norm(sd, z, cond, t0=0.01, n_steps=3)
    finally:
        hook.remove()
    labels = torch.cat([lab.flatten() for lab in labels])
    # Euler steps at labels 0, 3, 6, then the read-out at 9 (conditional and unconditional)
    assert float(labels.min()) == pytest.approx(0.0, abs=1e-4)
    assert sorted({round(float(v), 3) for v in labels}) == [0.0, 3.0, 6.0, 9.0]


def test_text_and_image_encoders(sd, images):
    emb = sd.encode_prompts(["a cat", "dog", "a cat"])
    assert emb.shape == (3, 77, 32)
    torch.testing.assert_close(emb[0], emb[2])
    assert not torch.allclose(emb[0], emb[1])
    assert torch.equal(sd.encode_prompts("a cat"), sd.encode_prompts(["a cat"]))
    null = sd.null_cond(2)
    assert null.shape == (2, 77, 32) and torch.equal(null[0], null[1])
    torch.testing.assert_close(null[:1], sd.encode_prompts([""]))
    z = sd.encode_images(images)
    assert z.shape == (4, 4, 8, 8) and z.dtype == torch.float32 and torch.isfinite(z).all()
    # the posterior mean times the scaling factor, batched or not
    mean = sd.vae.encode(images).latent_dist.mean * sd.vae.config.scaling_factor
    torch.testing.assert_close(z, mean, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(sd.encode_images(images, max_batch=1), z, rtol=1e-5, atol=1e-5)
    assert sd.decode_latents(z).shape == (4, 3, 16, 16)


# -- the full profile's metric path, on CPU ------------------------------------------------------------------

def test_flipd_conditional_and_unconditional_differ(sd, images):
    z = sd.encode_images(images)
    cond = sd.encode_prompts(["a cat", "a dog", "cat", "dog"])
    unc = flipd(sd, z, 0.05, n_probes=1, seed=0)
    con = flipd(sd, z, 0.05, n_probes=1, seed=0, cond=cond)
    assert unc.shape == con.shape == (4,)
    assert torch.isfinite(unc).all() and torch.isfinite(con).all()
    assert not torch.allclose(unc, con)
    # the empty caption is the unconditional model
    torch.testing.assert_close(flipd(sd, z, 0.05, n_probes=1, seed=0, cond=sd.null_cond(4)), unc)


def test_cfg_norm_on_sd_is_finite_and_zero_for_the_empty_prompt(sd, images):
    z = sd.encode_images(images)
    cond = sd.encode_prompts(["a cat", "a dog", "cat", "dog"])
    c = cfg_norm(sd, z, cond)
    assert c.shape == (4,) and torch.isfinite(c).all() and torch.all(c > 0)
    assert torch.equal(cfg_norm(sd, z, sd.null_cond(4)), torch.zeros(4, dtype=torch.float64))
    torch.testing.assert_close(cfg_norm(sd, z, cond, max_batch=3), c, rtol=1e-4, atol=0)    # float32 rounding
    score_form = cfg_norm(sd, z, cond, parametrization="score")
    torch.testing.assert_close(score_form, c / float(sd.sde.sigma(0.01)), rtol=1e-5, atol=0)
    with pytest.raises(ValueError, match="rows"):
        cfg_norm(sd, z, cond[:3])
    with pytest.raises(TypeError, match="encode_prompts"):
        sd.score(z, 0.1, ["a cat"] * 4)


def test_cfg_norm_generation_on_sd_is_seeded_and_zero_for_the_empty_prompt(sd):
    cond = sd.encode_prompts(["a cat", "a dog", "cat"])
    a = cfg_norm_generation(sd, cond, n_steps=2, seed=3, n_inference_steps=10)
    assert a.shape == (3,) and torch.isfinite(a).all() and torch.all(a > 0)
    assert torch.equal(a, cfg_norm_generation(sd, cond, n_steps=2, seed=3, n_inference_steps=10))
    assert not torch.equal(a, cfg_norm_generation(sd, cond, n_steps=2, seed=4, n_inference_steps=10))
    # a caption's value does not depend on its batch or position
    torch.testing.assert_close(cfg_norm_generation(sd, cond[[2, 0]], n_steps=2, seed=3, n_inference_steps=10),
                               a[[2, 0]], rtol=1e-4, atol=0)
    zero = cfg_norm_generation(sd, sd.null_cond(2), n_steps=2, seed=3, n_inference_steps=10)
    assert torch.equal(zero, torch.zeros(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="data_shape"):
        cfg_norm_generation(sd, cond, shape=(4, 16, 16))


def test_png_size_known_answers(images):
    from PIL import Image

    sizes = png_size(images)
    assert sizes.shape == (4,) and sizes.dtype == np.int64
    # PNG's row filters make a constant and a ramp equally cheap; noise does not compress
    assert max(sizes[:2]) < 150 and min(sizes[2:]) > 16 * 16 * 3
    # exactly what Pillow writes at level 9 for the documented uint8 rule round(255 (x + 1) / 2)
    pix = np.round((images.double().numpy() + 1) * 127.5).astype(np.uint8).transpose(0, 2, 3, 1)
    assert np.array_equal(to_uint8(images), pix)
    for p, size in zip(pix, sizes):
        buf = io.BytesIO()
        Image.fromarray(p).save(buf, format="PNG", compress_level=9, optimize=False)
        assert len(buf.getvalue()) == size
    # uint8 arrays channels last, and grey [B, H, W], are taken as they are
    assert np.array_equal(png_size(pix), sizes)
    grey = np.zeros((2, 32, 32), np.uint8)
    grey[1] = np.random.default_rng(0).integers(0, 256, (32, 32))
    g = png_size(grey)
    assert g[0] < 100 < 32 * 32 < g[1]                 # noise does not compress, a constant does


def test_png_size_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        png_size(np.zeros((2, 8, 8, 3), np.float32))
    with pytest.raises(TypeError, match="uint8"):
        png_size(np.zeros((2, 3, 8, 8), np.int32))
    with pytest.raises(ValueError, match="NaN"):
        png_size(torch.full((1, 3, 4, 4), float("nan")))


# -- loading errors ------------------------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore:The `local_dir_use_symlinks` argument is deprecated:UserWarning")
def test_loader_errors_say_what_to_do(tmp_path, sd_folder):
    with pytest.raises(ValueError, match="schedule"):
        load_stable_diffusion(sd_folder, device="cpu", schedule="cosine")
    (tmp_path / "unet").mkdir()
    with pytest.raises(FileNotFoundError, match="lacks vae"):
        load_stable_diffusion(tmp_path, device="cpu")
    with pytest.raises(FileNotFoundError, match="No folder"):
        load_stable_diffusion(str(tmp_path / "nowhere"), device="cpu")
    # offline, a hub id that is not cached fails at once with advice
    with pytest.raises(OSError, match="Hugging Face Hub"):
        load_stable_diffusion("mempkg-tests/no-such-model", device="cpu")


def test_encoders_reject_bad_input(sd, images):
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        sd.encode_images(images * 127.5 + 127.5)
    with pytest.raises(ValueError, match="multiples of 2"):
        sd.encode_images(images[:, :, :15, :15])
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        sd.encode_images(images[:, :1])
    with pytest.raises(ValueError, match="strings"):
        sd.encode_prompts([])


def test_a_v_prediction_scheduler_is_refused(tmp_path):
    from diffusers import DDIMScheduler

    from mempkg.models.stable_diffusion import StableDiffusion

    v = DDIMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                      prediction_type="v_prediction")
    with pytest.raises(ValueError, match="v_prediction"):
        StableDiffusion(torch.nn.Identity(), torch.nn.Identity(), torch.nn.Identity(), None, v)
