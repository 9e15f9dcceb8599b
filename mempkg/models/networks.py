"""The book's small eps-prediction networks and their presets (layer: models).

:class:`MLPEps` for the toy and low-dimensional data; :func:`unet_eps` builds a diffusers
``UNet2DModel`` from a named preset (:data:`UNET_PRESETS`) for the pixel chapters.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor, nn

__all__ = ["MLPEps", "UNET_PRESETS", "timestep_embedding", "unet_eps"]


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10_000.0) -> Tensor:
    """Sinusoidal embedding of a [B] tensor of (scaled) times -> [B, dim] (Vaswani et al.)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=t.dtype) / half)
    args = t[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    return torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=1) if dim % 2 else emb


class MLPEps(nn.Module):
    """Small eps-prediction MLP for low-dimensional data: eps_theta(x, t).

    ``x`` is ``[B, *data_shape]``, ``t`` a ``[B]`` tensor of times in (0, 1] (scaled by
    1000 before the sinusoidal embedding, so that the small times where a memorizing
    score is sharp are resolved). ``depth`` hidden layers of width ``hidden`` with SiLU;
    ``seed`` fixes the initial weights without touching the global random state.
    """

    def __init__(self, data_shape, hidden: int = 128, depth: int = 3, t_dim: int = 64, seed: Optional[int] = None):
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.random.default_generator.manual_seed(int(seed))   # CPU only: CUDA's state stays the caller's
            self._build(data_shape, hidden, depth, t_dim)

    def _build(self, data_shape, hidden, depth, t_dim):
        self.data_shape = tuple(data_shape) if not isinstance(data_shape, int) else (data_shape,)
        self.t_dim = t_dim
        dim = math.prod(self.data_shape)
        layers, width = [], dim + t_dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        layers.append(nn.Linear(width, dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        emb = timestep_embedding(t * 1000.0, self.t_dim)
        h = torch.cat([x.reshape(x.shape[0], -1), emb.to(x.dtype)], dim=1)
        return self.net(h).reshape(x.shape)


# DDPM's time embedding (Ho et al. 2020): sin before cos and frequencies exp(-log(10^4) k / (half - 1)),
# i.e. diffusers' flip_sin_to_cos=False, freq_shift=1; GroupNorm eps 1e-6; one attention head.
_DDPM_STYLE = dict(flip_sin_to_cos=False, freq_shift=1, norm_eps=1e-6, attention_head_dim=None,
                   downsample_padding=0, act_fn="silu", time_embedding_type="positional")


UNET_PRESETS: dict[str, dict] = {
    # The DDPM CIFAR-10 UNet Hasegawa & Yasuda train (NOTES.md section 1): ch 128, channel
    # multipliers (1, 2, 2, 2), 2 residual blocks per level, attention at 16x16 (the second level
    # on the way down, the third on the way up, plus the middle block), dropout 0.1; 35,746,307
    # parameters at 3x32x32, the architecture of google/ddpm-cifar10-32.
    "ddpm_cifar10": dict(
        _DDPM_STYLE, block_out_channels=(128, 256, 256, 256), layers_per_block=2,
        down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=32, dropout=0.1),
    # A small UNet for 1x8x8 digits that trains in minutes on a 2-core CPU: two levels (8x8, 4x4),
    # attention at 4x4 and in the middle, one residual block per level, no dropout (the chapter
    # wants a model that memorizes); ~0.70 M parameters, ~18 steps/s at batch 128 on 2 CPU cores.
    "digits": dict(
        _DDPM_STYLE, block_out_channels=(32, 64), layers_per_block=1,
        down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=8, dropout=0.0),
    # The `digits` UNet at half the channels (16, 32): ~0.18 M parameters and a quarter of the arithmetic per step.
    # No profile uses it: what it costs the chapters' copies is noted at the quick settings (profiles.py).
    "digits_narrow": dict(
        _DDPM_STYLE, block_out_channels=(16, 32), layers_per_block=1,
        down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=8, dropout=0.0),
}


def unet_eps(image_shape, preset: str, seed: Optional[int] = None, **overrides):
    """A diffusers ``UNet2DModel`` eps-network for images of ``image_shape`` = (C, H, W).

    Args:
        image_shape: (C, H, W); input and output channels are C, ``sample_size`` is (H, W).
        preset: a key of :data:`UNET_PRESETS` (``"ddpm_cifar10"``, ``"digits"``, ``"digits_narrow"``).
        seed: fixes the initial weights without touching the global random state.
        overrides: ``UNet2DModel`` keyword arguments that replace the preset's (e.g. ``dropout=0.0``).
    Returns:
        ``UNet2DModel`` called as ``unet(x, t_label).sample`` with ``x`` ``[B, C, H, W]`` and
        ``t_label`` ``[B]``; wrap it with :func:`image_score_model` to get a score model.
    """
    from diffusers import UNet2DModel  # heavy: diffusers takes seconds to import

    if preset not in UNET_PRESETS:
        raise ValueError(f"Unknown UNet preset {preset!r}; known: {', '.join(UNET_PRESETS)}.")
    if len(tuple(image_shape)) != 3:
        raise ValueError(f"image_shape must be (C, H, W), got {tuple(image_shape)}.")
    C, H, W = (int(v) for v in image_shape)
    kwargs = dict(UNET_PRESETS[preset], **overrides)
    levels = len(kwargs["block_out_channels"])
    if H % 2 ** (levels - 1) or W % 2 ** (levels - 1):
        raise ValueError(f"Preset {preset!r} has {levels} resolution levels, so H and W must be multiples of "
                         f"{2 ** (levels - 1)}; got {H}x{W}.")
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.random.default_generator.manual_seed(int(seed))     # CPU only: CUDA's state stays the caller's
        return UNet2DModel(sample_size=(H, W) if H != W else H, in_channels=C, out_channels=C, **kwargs)
