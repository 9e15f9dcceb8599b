"""CUDA against CPU on the same inputs, weights and seeds: every estimator gives the same numbers on a GPU.

Marked ``gpu`` (``pytest -m gpu``; ``make gpu-check`` runs them). Random draws (probes, axes, noise) come
from CPU generators in the package, so both devices see the same draws; the networks are the book's own
small ones with seeded weights. TF32 is switched off for these comparisons (it would round matmul inputs
to 10 mantissa bits, about 1e-3 relative); the tolerances are then float32's: a result that sums K terms
of size ~|v| differs by about sqrt(K) * 2^-24 |v| per reduction, and a few reductions chain, so
``rtol = 1e-4`` with a small ``atol`` covers every comparison below with a margin of ~10 over what float32
reordering produces, and still catches any real device bug (a wrong dtype, a lost gradient, a different
draw: all give errors of 1e-2 or more).

``MEMPKG_GPU_TEST_DEVICE=cpu`` runs the same comparisons CPU against CPU (to check the tests themselves on
a machine without a GPU).
"""

from __future__ import annotations

import os

import pytest
import torch

from mempkg import VPSDE, cfg_norm, cfg_norm_generation, flipd, volume_growth, weight_and_coverage
from mempkg.data.images import load_images
from mempkg.models.adapters import image_score_model
from mempkg.models.edm import EDMPrecond, edm_sigmas, heun_sampler
from mempkg.models.networks import unet_eps
from mempkg.data.captioned import Vocabulary
from mempkg.models.tiny_sd import TinyStableDiffusion

DEVICE = os.environ.get("MEMPKG_GPU_TEST_DEVICE") or ("cuda" if torch.cuda.is_available() else None)
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(DEVICE is None, reason="needs a CUDA GPU (or MEMPKG_GPU_TEST_DEVICE=cpu)")]
RTOL, ATOL = 1e-4, 1e-5


@pytest.fixture(autouse=True)
def no_tf32():
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


@pytest.fixture(scope="module")
def digits():
    return load_images("digits", "test").x[:6]


def pixel_model(device):
    return image_score_model(unet_eps((1, 8, 8), "digits", seed=0), VPSDE()).to(device).eval()


def both(fn):
    """fn(device) on the CPU and on DEVICE, as float64 CPU tensors."""
    return fn("cpu").double().cpu(), fn(DEVICE).double().cpu()


@pytest.mark.parametrize("n_probes, method", [(None, "vjp"), (None, "jvp"), (2, "vjp"), (2, "jvp")])
def test_flipd(digits, n_probes, method):
    cpu, dev = both(lambda d: flipd(pixel_model(d), digits.to(d), 0.05, n_probes=n_probes, method=method, seed=3))
    torch.testing.assert_close(dev, cpu, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("method", ["finite", "jvp"])
def test_volume_growth(digits, method):
    cpu, dev = both(lambda d: volume_growth(pixel_model(d), digits.to(d), n_axes=3, n_steps=4, method=method,
                                            seed=[1, 2, 3, 4, 5, 6]))
    torch.testing.assert_close(dev, cpu, rtol=RTOL, atol=1e-3)   # log-stretches: atol on sums of logs


def test_weight_and_coverage():
    train = load_images("digits", "train").x[:200]
    held = load_images("digits", "test").x[:40]
    sigmas = [0.05, 0.3, 1.0, 5.0]
    cpu, dev = (weight_and_coverage(held.to(d), train.to(d), sigmas, seed=0) for d in ("cpu", DEVICE))
    torch.testing.assert_close(torch.as_tensor(dev.W), torch.as_tensor(cpu.W), rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(torch.as_tensor(dev.C), torch.as_tensor(cpu.C), rtol=0, atol=0.05)  # counts of 40


def tiny_sd(device):
    torch.manual_seed(0)
    return TinyStableDiffusion(Vocabulary(), embed_dim=8, block_out_channels=[8, 16]).to(device).eval()


def test_cfg_norms(digits):
    model = tiny_sd("cpu")
    cond = model.encode_prompts(["a thick digit one"] * len(digits))
    cpu, dev = both(lambda d: cfg_norm(tiny_sd(d), digits.to(d), cond.to(d), t0=0.01, n_steps=3))
    torch.testing.assert_close(dev, cpu, rtol=RTOL, atol=ATOL)
    cpu, dev = both(lambda d: cfg_norm_generation(tiny_sd(d), cond.to(d), n_steps=2, seed=5))
    torch.testing.assert_close(dev, cpu, rtol=RTOL, atol=ATOL)


def test_edm_sampler_first_steps():
    def run(d):
        torch.manual_seed(0)
        net = EDMPrecond(unet_eps((1, 8, 8), "digits", seed=0), sigma_data=0.75).to(d).eval()
        x = 80.0 * torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(2))
        return heun_sampler(net, x.to(d), edm_sigmas(18)[:4])
    cpu, dev = both(run)
    torch.testing.assert_close(dev, cpu, rtol=RTOL, atol=1e-3)    # x at sigma ~40: atol relative to 80
