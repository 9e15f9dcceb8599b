"""The score-model protocol, adapters that turn networks into it, and small networks.

**The protocol.** Every estimator in the book takes a *score model*: any object with

* ``sde`` -- a noise schedule with ``alpha(t)`` (the mean scale psi(t)), ``sigma(t)`` and
  ``beta(t)`` (see :mod:`mempkg.sde`), and
* ``score(x, t, cond=None) -> Tensor`` -- grad_x log p_t(x | cond) with the shape of ``x``,
  where ``x`` is ``[B, ...]`` and ``t`` a float or a ``[B]`` tensor.

Wrapping a new model takes a few lines. An eps-prediction network ``net(x, t_label)``
(a diffusers ``UNet2DModel`` included) becomes one with :class:`EpsModel`, using the
identity s(x, t) = -eps(x, t) / sigma(t)::

    model = EpsModel(my_unet, VPSDE(), time_scale=999)   # DDPM-style integer-like labels
    lid = mempkg.lid.flipd(model, images, t0=0.05)

Any other parametrisation only needs a ``score`` method; :class:`GaussianScore` and
:class:`EmpiricalScore` are exact examples used as references in tests and chapters.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Optional, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor, nn

from .sde import VPSDE, _bcast


@runtime_checkable
class ScoreModel(Protocol):
    """Anything with an ``sde`` and ``score(x, t, cond=None)`` (see the module docstring)."""

    sde: Any

    def score(self, x: Tensor, t, cond: Optional[Tensor] = None) -> Tensor: ...


def check_score_model(model) -> None:
    """Raise a clear error if ``model`` does not follow the score-model protocol."""
    missing = [a for a in ("sde", "score") if not hasattr(model, a)]
    if missing:
        raise TypeError(f"{type(model).__name__} is not a score model: it lacks {missing}. Wrap an "
                        "eps-prediction network with mempkg.models.EpsModel(net, sde), or give your "
                        "object an `sde` attribute and a `score(x, t, cond=None)` method.")
    for a in ("alpha", "sigma", "beta"):
        if not hasattr(model.sde, a):
            raise TypeError(f"{type(model).__name__}.sde lacks `{a}(t)`; use a schedule from mempkg.sde.")


def check_inputs(model, x, cond=None) -> None:
    """The checks every estimator makes first: ``model`` follows the protocol, ``x`` is a batch
    ``[B, ...]`` of the model's data shape (when it declares ``data_shape``), and ``cond`` has one
    row per image."""
    check_score_model(model)
    if not isinstance(x, Tensor) or x.dim() < 2:
        raise ValueError(f"x must be a tensor [B, ...] with a batch dimension, got "
                         f"{type(x).__name__} of shape {tuple(getattr(x, 'shape', ()))}.")
    expected = getattr(model, "data_shape", None)
    if expected is not None and tuple(x.shape[1:]) != tuple(expected):
        raise ValueError(f"x has per-image shape {tuple(x.shape[1:])} but the model expects {tuple(expected)}.")
    if cond is not None and len(cond) != len(x):
        raise ValueError(f"cond has {len(cond)} rows for {len(x)} images; give one condition per image.")


def check_choice(name: str, value, options) -> None:
    """Raise a clear error unless ``value`` is one of ``options``."""
    if value not in options:
        raise ValueError(f"Unknown {name} {value!r}; choose one of {tuple(options)}.")


def image_seeds(seed, B: int) -> Optional[list[int]]:
    """``None`` when ``seed`` is one int for the whole batch, else its B per-image seeds (a sequence of
    ints, length checked). With per-image seeds an image's random draws (probes, axes) depend only on
    its own seed, not on the batch it is in or its position there."""
    if isinstance(seed, (int, np.integer)) or (isinstance(seed, Tensor) and seed.dim() == 0):
        return None
    seeds = [int(s) for s in seed]
    if len(seeds) != B:
        raise ValueError(f"seed has {len(seeds)} entries for {B} images; give one int, or one seed per image.")
    return seeds


def _time_batch(t, x: Tensor, dtype: Optional[torch.dtype] = None) -> Tensor:
    """A float or [B] tensor of times as a [B] tensor on x's device, in ``dtype`` (default: x's)."""
    t = torch.as_tensor(t, dtype=dtype or x.dtype, device=x.device)
    if t.dim() == 0:
        return t.expand(x.shape[0])
    if t.shape != (x.shape[0],):
        raise ValueError(f"t has shape {tuple(t.shape)}; expected a float or a tensor of shape ({x.shape[0]},).")
    return t


class EpsModel(nn.Module):
    """Score model from an eps-prediction network: s(x, t) = -eps_theta(x, t) / sigma(t).

    Args:
        net: called as ``net(x, t * time_scale)`` (or with the condition, see ``cond_key``);
            may return a tensor or an object with ``.sample`` (diffusers models).
        sde: the noise schedule the network was trained with.
        time_scale: multiplies the continuous time before it is fed to the network
            (999 for DDPM-style UNets trained on labels t * 999, as Hasegawa & Yasuda do).
        cond_key: if given, the condition is passed as ``net(..., **{cond_key: cond})``
            (``"class_labels"`` for ``UNet2DModel``, ``"encoder_hidden_states"`` for
            ``UNet2DConditionModel``); otherwise as a third positional argument.
    """

    def __init__(self, net: nn.Module, sde: VPSDE, time_scale: float = 1.0, cond_key: Optional[str] = None):
        super().__init__()
        self.net = net
        self.sde = sde
        self.time_scale = float(time_scale)
        self.cond_key = cond_key

    def eps(self, x: Tensor, t, cond: Optional[Tensor] = None) -> Tensor:
        """Predicted noise eps_theta(x, t), shape of x."""
        label = _time_batch(t, x) * self.time_scale
        if cond is None:
            out = self.net(x, label)
        elif self.cond_key is None:
            out = self.net(x, label, cond)
        else:
            out = self.net(x, label, **{self.cond_key: cond})
        return out.sample if hasattr(out, "sample") else out

    def score(self, x: Tensor, t, cond: Optional[Tensor] = None) -> Tensor:
        sigma = _bcast(self.sde.sigma(_time_batch(t, x)), x)
        return -self.eps(x, t, cond) / sigma

    def forward(self, x: Tensor, t, cond: Optional[Tensor] = None) -> Tensor:
        return self.score(x, t, cond)


class GaussianScore:
    """Exact score of data N(mean, cov) diffused by ``sde`` (cov may be singular).

    p_t = N(psi mean, Sigma_t), Sigma_t = psi^2 cov + sigma^2 I, so
    s(x, t) = -Sigma_t^{-1} (x - psi mean), computed in cov's eigenbasis
    (cov = U diag(lam) U^T, Sigma_t^{-1} = U diag(1 / (psi^2 lam + sigma^2)) U^T).
    ``x`` is ``[B, D]`` (or ``[B, ...]`` with D elements); float64 throughout.
    """

    def __init__(self, mean: Tensor, cov: Tensor, sde: VPSDE):
        cov = torch.as_tensor(cov, dtype=torch.float64)
        self.mean = torch.as_tensor(mean, dtype=torch.float64)
        lam, U = torch.linalg.eigh(0.5 * (cov + cov.T))
        self.lam, self.U = lam.clamp_min(0.0), U
        self.sde = sde

    def score(self, x: Tensor, t, cond=None) -> Tensor:
        shape = x.shape
        x = x.reshape(shape[0], -1)
        tb = _time_batch(t, x)
        a, s = self.sde.alpha(tb)[:, None], self.sde.sigma(tb)[:, None]
        inv = 1.0 / (a**2 * self.lam + s**2)                       # [B, D] eigenvalues of Sigma_t^{-1}
        z = (x - a * self.mean) @ self.U                             # coordinates in the eigenbasis
        return (-(z * inv) @ self.U.T).reshape(shape)


class EmpiricalScore:
    """Exact score of the training set itself, p_0 = 1/N sum_i delta(x_i), diffused by ``sde``.

    p_t = 1/N sum_i N(psi x_i, sigma^2 I), so with posterior weights
    w_i(y) = softmax_i(-|y - psi x_i|^2 / (2 sigma^2)) (log-space softmax),

        s(y, t) = (psi sum_i w_i x_i - y) / sigma^2.

    This is the score a model that memorizes its training data perfectly would have.
    ``points`` is ``[N, ...]``; queries are ``[B, ...]`` with the same trailing shape.
    """

    def __init__(self, points: Tensor, sde: VPSDE):
        self.points = points.reshape(points.shape[0], -1)
        self.sde = sde

    def score(self, x: Tensor, t, cond=None) -> Tensor:
        shape = x.shape
        y = x.reshape(shape[0], -1)
        tb = _time_batch(t, y)
        a, s = self.sde.alpha(tb)[:, None].to(y.dtype), self.sde.sigma(tb)[:, None].to(y.dtype)
        pts = self.points.to(y)
        d2 = (y[:, None, :] - a[:, :, None] * pts[None]).pow(2).sum(-1)   # [B, N]
        w = torch.softmax(-d2 / (2 * s**2), dim=1)
        return ((a * (w @ pts) - y) / s**2).reshape(shape)


# -- networks -----------------------------------------------------------------------------

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


# -- image eps-networks (diffusers UNet2DModel) -----------------------------------------------

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
}


def unet_eps(image_shape, preset: str, seed: Optional[int] = None, **overrides):
    """A diffusers ``UNet2DModel`` eps-network for images of ``image_shape`` = (C, H, W).

    Args:
        image_shape: (C, H, W); input and output channels are C, ``sample_size`` is (H, W).
        preset: a key of :data:`UNET_PRESETS` (``"ddpm_cifar10"``, ``"digits"``).
        seed: fixes the initial weights without touching the global random state.
        overrides: ``UNet2DModel`` keyword arguments that replace the preset's (e.g. ``dropout=0.0``).
    Returns:
        ``UNet2DModel`` called as ``unet(x, t_label).sample`` with ``x`` ``[B, C, H, W]`` and
        ``t_label`` ``[B]``; wrap it with :func:`image_score_model` to get a score model.
    """
    from diffusers import UNet2DModel

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


def image_score_model(unet: nn.Module, sde: VPSDE) -> EpsModel:
    """Score model of an image eps-network trained on time labels t * 999 (DDPM-style, as
    Hasegawa & Yasuda do): s(x, t) = -eps_theta(x, 999 t) / sigma(t).

    :func:`mempkg.train.train_dsm` trains through the returned :class:`EpsModel` (it calls
    ``eps``), so training and evaluation feed the network the same labels.
    """
    return EpsModel(unet, sde, time_scale=999)


class DDPMScoreModel(nn.Module):
    """Score model of a trained diffusers eps-prediction ``UNet2DModel`` and its DDPM-style scheduler
    (what ``DDPMPipeline.save_pretrained`` writes: ``unet/`` and ``scheduler/``):

        s(x, t) = -eps_theta(x, n(t)) / sigma(t),    n(t) = N t - 1,

    on the scheduler's own schedule (:class:`mempkg.stable_diffusion.DiscreteVPSchedule`: training
    timestep n sits at t = (n + 1) / N, so every training noise level is hit exactly). ``x`` is
    ``[B, C, H, W]`` in the network's pixel range ([-1, 1] for diffusers' pipelines); the network runs
    on its own device and dtype, ``x`` and the score keep theirs. Frozen and in eval mode.
    """

    def __init__(self, unet: nn.Module, scheduler):
        super().__init__()
        from .stable_diffusion import DiscreteVPSchedule

        prediction = getattr(scheduler.config, "prediction_type", "epsilon")
        if prediction != "epsilon":
            raise ValueError(f"The scheduler says the network predicts {prediction!r}; DDPMScoreModel reads it "
                             "as an eps-prediction network (prediction_type 'epsilon').")
        if getattr(unet.config, "num_class_embeds", None) or getattr(unet.config, "class_embed_type", None):
            raise ValueError("This UNet is class-conditional; DDPMScoreModel wraps unconditional networks.")
        self.unet = unet.requires_grad_(False).eval()
        self.sde = DiscreteVPSchedule.from_scheduler(scheduler)
        size = unet.config.sample_size
        h, w = (size, size) if isinstance(size, int) else tuple(size)
        self.data_shape = (int(unet.config.in_channels), int(h), int(w))

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.unet.parameters()).dtype

    def _t64(self, t, x: Tensor) -> Tensor:
        # the schedule is read in float64 whatever x's dtype (float16 would move t0 = 0.01 visibly)
        from .stable_diffusion import _times64
        return _times64(t, x)

    def eps(self, x: Tensor, t, cond: Optional[Tensor] = None) -> Tensor:
        """Predicted noise eps_theta(x, n(t)), shape and dtype of x."""
        if cond is not None:
            raise ValueError("DDPMScoreModel is unconditional: call it with cond=None.")
        label = self.sde.timestep(self._t64(t, x)).to(device=self.device, dtype=torch.float32)
        out = self.unet(x.to(device=self.device, dtype=self.dtype), label).sample
        return out.to(device=x.device, dtype=x.dtype)

    def score(self, x: Tensor, t, cond: Optional[Tensor] = None) -> Tensor:
        sigma = _bcast(self.sde.sigma(self._t64(t, x)), x)
        return -self.eps(x, t, cond) / sigma

    def forward(self, x: Tensor, t, cond: Optional[Tensor] = None) -> Tensor:
        return self.score(x, t, cond)


# -- autodiff through attention ---------------------------------------------------------------

@contextlib.contextmanager
def autodiff_safe_attention(module: Optional[nn.Module] = None):
    """Make forward-mode autodiff (JVPs) work through diffusers' attention.

    The fused kernels of ``scaled_dot_product_attention`` (flash, memory-efficient and the
    CPU flash kernel) have no forward-mode derivative, so the math kernel is forced; and
    under ``torch.func.jvp`` diffusers' attention output can be non-contiguous, which a
    later ``view`` rejects, so a forward hook makes every attention output contiguous.
    Reverse-mode VJPs need none of this.
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel

    hooks = []
    if module is not None:
        def _contiguous(_mod, _inp, out):
            if isinstance(out, Tensor):
                return out.contiguous()
            if isinstance(out, tuple):
                return tuple(o.contiguous() if isinstance(o, Tensor) else o for o in out)
            return out
        for m in module.modules():
            if type(m).__name__ in ("Attention", "AttentionBlock", "MultiheadAttention"):
                hooks.append(m.register_forward_hook(_contiguous))
    try:
        with sdpa_kernel(SDPBackend.MATH):
            yield
    finally:
        for h in hooks:
            h.remove()


def modules_of(model) -> Optional[nn.Module]:
    """The nn.Module inside a score model, if any (for hooks and eval mode)."""
    if isinstance(model, nn.Module):
        return model
    for name in ("net", "unet", "model"):
        m = getattr(model, name, None)
        if isinstance(m, nn.Module):
            return m
    return None
