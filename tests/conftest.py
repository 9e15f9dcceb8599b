"""Shared test set-up: everything offline, small threads, deterministic."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture
def results_tmp(tmp_path, monkeypatch):
    """Send every result the package writes to a temporary folder."""
    monkeypatch.setenv("MEMPKG_RESULTS", str(tmp_path / "results"))
    return tmp_path / "results"


@pytest.fixture
def tiny_unet():
    """A diffusers UNet2DModel with attention on 1x8x8 images, seeded, in eval mode."""
    from diffusers import UNet2DModel

    torch.manual_seed(0)
    return UNet2DModel(
        sample_size=8, in_channels=1, out_channels=1, block_out_channels=(16, 32),
        down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        layers_per_block=1, norm_num_groups=8, attention_head_dim=8).eval()
