"""A tiny Stable Diffusion: a text-conditional eps-UNet on 1 x 8 x 8 pixels, its training and sampling.

* :class:`TinyStableDiffusion` -- a diffusers ``UNet2DConditionModel`` with a learned caption encoder
  (:class:`CaptionEncoder`) and **the interface of** :class:`mempkg.models.stable_diffusion.StableDiffusion`
  (``sde``, ``eps``, ``score``, ``timestep``, ``encode_prompts``, ``null_cond``, ``encode_images``,
  ``data_shape``), on SD's own discrete schedule (:func:`sd_schedule`), so that every estimator of the
  book runs on both.
* :func:`train_tiny_sd`, :func:`train_tiny_sd_cached` -- SD's objective (eps-loss at integer timesteps,
  captions dropped with probability ``p_uncond``) through :func:`mempkg.models.train.train_loop`.
* :func:`generate` -- a guided deterministic DDIM sampler from caption embeddings.

Layer: models (imports core and models).
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import numpy as np
import torch
from torch import Tensor, nn

from ..core.protocol import modules_of
from ..core.schedules import DiscreteVPSchedule, schedule_of
from ..core.tensors import bcast, check_choice
from .stable_diffusion import ConditionalEpsModel
from .train import TrainResult, train_loop

__all__ = ["SD_BETAS", "CaptionEncoder", "TinyStableDiffusion", "generate", "sd_schedule", "train_tiny_sd",
           "train_tiny_sd_cached"]

# -- SD's noise schedule --------------------------------------------------------------------------

SD_BETAS = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")


def sd_schedule() -> DiscreteVPSchedule:
    """Stable Diffusion v1's training schedule, built from a diffusers scheduler with SD's config:
    sqrt(beta_n) linear from sqrt(0.00085) to sqrt(0.012) over N = 1000 steps ("scaled_linear"),
    alpha_bar_n = prod_{k <= n} (1 - beta_k); t_n = (n + 1) / N (see :class:`DiscreteVPSchedule`)."""
    from diffusers import DDIMScheduler  # heavy: diffusers takes seconds to import

    return DiscreteVPSchedule.from_scheduler(DDIMScheduler(**SD_BETAS))


# -- the model --------------------------------------------------------------------------------------

class CaptionEncoder(nn.Module):
    """Token ids ``[B, L]`` -> caption embedding ``[B, L, E]``: a learned vector per word and per position,
    then LayerNorm (the shape of CLIP's last hidden state, which SD's cross-attention reads). Pads have a
    learned embedding too, so the empty caption is a learned "null" condition, as SD's ``""`` is."""

    def __init__(self, n_words: int, max_len: int, embed_dim: int):
        super().__init__()
        self.token = nn.Embedding(n_words, embed_dim)
        self.position = nn.Parameter(0.02 * torch.randn(max_len, embed_dim))
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, tokens: Tensor) -> Tensor:
        return self.norm(self.token(tokens) + self.position[: tokens.shape[1]])


class TinyStableDiffusion(ConditionalEpsModel, nn.Module):
    """A text-conditional eps-model on 1 x 8 x 8 pixels with :class:`~mempkg.models.stable_diffusion.StableDiffusion`'s
    interface, so every estimator of the book runs on both:

        s(x, t | c) = -eps_theta(x, n(t), c) / sigma(t),   n(t) = N t - 1,   c = CaptionEncoder(tokens) [B, L, E],

    on SD's schedule (:func:`sd_schedule`). eps_theta is a diffusers ``UNet2DConditionModel``: two levels
    (8 x 8 without attention, 4 x 4 with self- and cross-attention, and the cross-attention middle
    block), ``layers_per_block`` ResNet blocks per level. ``cond=None`` is the empty caption. Images
    are the data (``encode_images`` is the identity: no VAE); ``data_shape`` = (1, 8, 8).

    Unlike :class:`StableDiffusion` the networks are trainable (:func:`train_tiny_sd` trains the UNet
    and the caption encoder jointly); estimators put them in eval mode themselves.

    Args:
        vocab: the tokenizer of the captions (:class:`mempkg.data.captioned.Vocabulary`, or any object
            with ``words``, ``max_len``, ``encode(captions) -> [B, max_len]`` ids, ``config()`` and a length).
        embed_dim: E, the caption embedding width (= the UNet's ``cross_attention_dim``).
        block_out_channels, layers_per_block, attention_head_dim, norm_num_groups: the UNet's.
        seed: fixes the initial weights without touching the global random state.
    """

    def __init__(self, vocab, embed_dim: int = 32, block_out_channels=(32, 64),
                 layers_per_block: int = 1, attention_head_dim: int = 8, norm_num_groups: int = 8,
                 image_shape=(1, 8, 8), seed: Optional[int] = None):
        super().__init__()
        from diffusers import UNet2DConditionModel  # heavy: diffusers takes seconds to import

        if not (hasattr(vocab, "encode") and hasattr(vocab, "max_len")):
            raise TypeError("vocab must be the captions' tokenizer (mempkg.data.captioned.Vocabulary()), got "
                            f"{type(vocab).__name__}.")
        self.vocab = vocab
        C, H, W = (int(v) for v in image_shape)
        self.data_shape = (C, H, W)
        self.arch = dict(embed_dim=int(embed_dim), block_out_channels=[int(c) for c in block_out_channels],
                         layers_per_block=int(layers_per_block), attention_head_dim=int(attention_head_dim),
                         norm_num_groups=int(norm_num_groups), image_shape=[C, H, W])
        levels = len(block_out_channels)
        if levels < 2 or H % 2 ** (levels - 1) or W % 2 ** (levels - 1):
            raise ValueError(f"block_out_channels {tuple(block_out_channels)} needs >= 2 levels and H, W multiples "
                             f"of {2 ** (levels - 1)}; got {H}x{W}.")
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.random.default_generator.manual_seed(int(seed))     # CPU only
            self.text = CaptionEncoder(len(self.vocab), self.vocab.max_len, int(embed_dim))
            self.unet = UNet2DConditionModel(
                sample_size=(H, W) if H != W else H, in_channels=C, out_channels=C,
                layers_per_block=int(layers_per_block), block_out_channels=tuple(int(c) for c in block_out_channels),
                down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (levels - 1),
                up_block_types=("CrossAttnUpBlock2D",) * (levels - 1) + ("UpBlock2D",),
                cross_attention_dim=int(embed_dim), attention_head_dim=int(attention_head_dim),
                norm_num_groups=int(norm_num_groups))
        from diffusers import DDIMScheduler  # heavy: diffusers takes seconds to import

        self.scheduler = DDIMScheduler(**SD_BETAS)     # SD v1's training schedule (see sd_schedule)
        self.schedule = "scheduler"                      # with_schedule(model, "linear_beta") reads it as the authors
        self.sde = schedule_of(self.scheduler, self.schedule)
        self.N = self.sde.N

    def __repr__(self) -> str:
        n = sum(p.numel() for p in self.parameters())
        return f"TinyStableDiffusion({n:,} parameters, {self.vocab}, data_shape={self.data_shape})"

    def config(self) -> dict:
        """Plain-literal description, used in cache keys."""
        return {"kind": "tiny_stable_diffusion", **self.arch, "vocab": self.vocab.config(), "sde": self.sde.config()}

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    # -- text and images ------------------------------------------------------------------------
    @torch.no_grad()
    def encode_prompts(self, prompts) -> Tensor:
        """Caption embeddings ``[B, L, E]`` of a caption or a list of captions (the vocabulary's words only)."""
        return self.text(self.vocab.encode(prompts).to(self.device)).detach()

    def null_cond(self, n: int) -> Tensor:
        """The empty caption's embedding repeated n times -> ``[n, L, E]`` (recomputed: the encoder is trainable)."""
        return self.encode_prompts([""]).repeat(int(n), 1, 1)

    @torch.no_grad()
    def encode_images(self, images: Tensor) -> Tensor:
        """The identity (pixel-space model, no VAE): images ``[B, *data_shape]`` in [-1, 1] -> float32 on the device."""
        if not isinstance(images, Tensor) or tuple(images.shape[1:]) != self.data_shape or images.dim() != 4:
            raise ValueError(f"images must be a tensor [B, {', '.join(map(str, self.data_shape))}], got shape "
                             f"{tuple(getattr(images, 'shape', ()))}.")
        if not images.is_floating_point() or images.min() < -1.001 or images.max() > 1.001:
            raise ValueError("images must be floats in [-1, 1].")
        return images.float().to(self.device)

    def decode_latents(self, z: Tensor) -> Tensor:
        """The identity clamped to [-1, 1] (StableDiffusion decodes latents with its VAE here)."""
        return z.float().clamp(-1, 1).cpu()


# -- training ---------------------------------------------------------------------------------------

T_SAMPLING = ("uniform", "log-uniform")


def train_tiny_sd(model: TinyStableDiffusion, ds, n_steps: int, *, p_uncond: float = 0.1,
                  t_sampling: str = "uniform", lr: float = 1e-3, batch_size: Optional[int] = 128, n_noise: int = 1,
                  lr_schedule: str = "cosine", warmup: int = 0, grad_clip: Optional[float] = 1.0,
                  ema_decay: Optional[float] = None, seed: int = 0, device="cpu", progress: bool = True,
                  desc: str = "training", checkpoint=None, checkpoint_every: int = 1000,
                  callback: Optional[Callable[[int, float], None]] = None) -> TrainResult:
    """Train the UNet and the caption encoder of ``model`` (in place) with Stable Diffusion's objective:

        n ~ U{0, ..., N - 1},  eps ~ N(0, I),  x_n = sqrt(alpha_bar_n) x0 + sqrt(1 - alpha_bar_n) eps,
        c = CaptionEncoder(tokens), replaced by the empty caption with probability p_uncond,
        loss = | eps_theta(x_n, n, c) - eps |^2   (mean over pixels and batch; Ho et al. 2020, eq. 14).

    The caption dropout trains the unconditional model that classifier-free guidance and the CFG norms
    need (SD v1 dropped 10% of captions). ``t_sampling="log-uniform"`` draws t = (n + 1) / N
    log-uniformly in [1/N, 1] instead (rounded to the integer step): more of the budget at small t.

    The loop is :func:`mempkg.models.train.train_loop` (batches of ``batch_size`` rows of ``ds``, Adam, LR schedule,
    gradient clipping, EMA, checkpoints that resume bit-exactly); each step draws from the private
    generator seeded by ``seed``: the batch, then the caption-dropout coins, the timesteps, the noise.
    Same seed (and device), same weights and losses.
    """
    if not isinstance(model, TinyStableDiffusion):
        raise TypeError(f"train_tiny_sd trains a TinyStableDiffusion, got {type(model).__name__}.")
    if not all(hasattr(ds, a) for a in ("x", "vocab", "training_tensor")):
        raise TypeError("ds must be a CaptionedDigits data set (mempkg.data.captioned.captioned_digits(...)), got "
                        f"{type(ds).__name__}.")
    if int(n_steps) < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}.")
    if not 0 <= float(p_uncond) < 1:
        raise ValueError(f"p_uncond must lie in [0, 1), got {p_uncond}.")
    check_choice("t_sampling", t_sampling, T_SAMPLING)
    if ds.vocab.words != model.vocab.words or ds.vocab.max_len != model.vocab.max_len:
        raise ValueError("the data set's vocabulary differs from the model's; build the model with vocab=ds.vocab.")
    if tuple(ds.x.shape[1:]) != model.data_shape:
        raise ValueError(f"the data set's images are {tuple(ds.x.shape[1:])}, the model's {model.data_shape}.")
    D = int(np.prod(model.data_shape))
    N = model.N
    alphas_cumprod = model.sde.alphas_cumprod.float()

    def step_loss(rows: Tensor, g: torch.Generator) -> Tensor:
        B = rows.shape[0]
        x0 = rows[:, :D].reshape(B, *model.data_shape)
        tokens = rows[:, D:].round().long()
        drop = (torch.rand(B, generator=g) < p_uncond).to(rows.device)
        tokens = torch.where(drop[:, None], torch.zeros_like(tokens), tokens)      # id 0 = pad: the empty caption
        if t_sampling == "uniform":
            n = torch.randint(0, N, (B,), generator=g)
        else:
            t = torch.exp(math.log(1 / N) * torch.rand(B, generator=g, dtype=torch.float64))
            n = (t * N - 1).round().long().clamp(0, N - 1)
        eps = torch.randn(x0.shape, generator=g).to(rows.device)
        ab = alphas_cumprod[n].to(rows.device)
        xt = bcast(ab.sqrt(), x0) * x0 + bcast((1 - ab).sqrt(), x0) * eps
        out = model.unet(xt, n.to(rows.device).float(), encoder_hidden_states=model.text(tokens)).sample
        return (out - eps).pow(2).mean()

    def settings(bs: int) -> dict:
        return dict(trainer="tiny_sd", n_steps=int(n_steps), p_uncond=float(p_uncond), t_sampling=t_sampling,
                    lr=float(lr), batch_size=int(bs), n_noise=int(n_noise), lr_schedule=lr_schedule, warmup=int(warmup),
                    grad_clip=float(grad_clip) if grad_clip else None,
                    ema_decay=float(ema_decay) if ema_decay else None, seed=int(seed), model=model.config())

    return train_loop(model, step_loss, ds.training_tensor(), int(n_steps), settings=settings, lr=lr,
                      batch_size=batch_size, n_noise=n_noise, lr_schedule=lr_schedule, warmup=warmup,
                      grad_clip=grad_clip, ema_decay=ema_decay, seed=seed, device=device, progress=progress,
                      desc=desc, checkpoint=checkpoint, checkpoint_every=checkpoint_every, callback=callback)


def train_tiny_sd_cached(cache, name: str, ds, n_steps: int, *, model_kwargs: Optional[dict] = None,
                         seed: int = 0, device="cpu", weights: str = "raw", **train_kwargs):
    """Train :func:`train_tiny_sd` once and cache the weights (resuming after an interruption), as
    :func:`mempkg.models.edm.train_edm_cached` does. The network is ``TinyStableDiffusion(ds.vocab, seed=seed,
    **model_kwargs)``; the key holds its configuration, the data set's, every training setting and the seed.

    Returns:
        (the model in eval mode with the ``weights`` asked for -- ``"raw"`` or ``"ema"`` --, history
        ``{"losses": [...]}``).
    """
    model_kwargs = dict(model_kwargs or {})

    def build():
        return TinyStableDiffusion(ds.vocab, seed=seed, **model_kwargs)

    settings = {k: v for k, v in train_kwargs.items() if k not in ("progress", "desc")}   # not results
    params = dict(trainer="tiny_sd", model=build().config(), data=ds.config(), n_steps=int(n_steps), train=settings,
                  seed=int(seed))
    params = cache.model_params(params, build)           # the key holds the network as built
    ckpt = cache.checkpoint_path(name, params)

    def fit(model):
        return train_tiny_sd(model, ds, n_steps, seed=seed, device=device, checkpoint=ckpt, desc=name, **train_kwargs)

    model, history = cache.model(name, params, build, fit, weights=weights)
    return model.to(device).eval(), history


# -- generation -------------------------------------------------------------------------------------

@torch.no_grad()
def generate(model, cond: Tensor, n_steps: int = 50, guidance_scale: float = 3.0, seed: int = 0, *,
             clip_x0: bool = False, dtype: torch.dtype = torch.float32) -> Tensor:
    """Samples from captions by guided deterministic DDIM (Song, Meng & Ermon 2021, eta = 0):

        x_T ~ N(0, I),   eps_hat = eps(x, t | empty) + w [eps(x, t | c) - eps(x, t | empty)],
        x0_hat = (x - sigma(t) eps_hat) / alpha(t),   x_{t'} = alpha(t') x0_hat + sigma(t') eps_hat,

    on the grid t_k = T (1 - k / n_steps), k = 0..n_steps (that of
    :func:`mempkg.estimators.guidance.generation_times`; the last step lands on x0_hat). ``clip_x0``
    clamps x0_hat to [-1, 1] (diffusers' ``clip_sample`` for pixel models; SD's latents are not clipped).
    ``model``: a conditional eps-model (:class:`TinyStableDiffusion`,
    :class:`~mempkg.models.stable_diffusion.StableDiffusion`). One sample per row of ``cond`` ``[B, L, E]``;
    the prior noise is drawn from a CPU generator seeded by ``seed``. Returns ``[B, *model.data_shape]`` on
    the CPU (for Stable Diffusion: latents; decode them with ``model.decode_latents``).
    """

    if not isinstance(cond, Tensor) or cond.dim() < 2:
        raise ValueError("cond must be caption embeddings [B, L, E] (model.encode_prompts(captions)).")
    if int(n_steps) < 1:
        raise ValueError(f"n_steps must be a positive number of steps, got {n_steps}.")
    ts = torch.linspace(float(getattr(model.sde, "T", 1.0)), 0.0, int(n_steps) + 1, dtype=torch.float64).tolist()
    g = torch.Generator().manual_seed(int(seed))
    x = model.sde.prior_sampling((cond.shape[0], *model.data_shape), generator=g).to(device=cond.device, dtype=dtype)
    mod = modules_of(model)
    was_training = mod.training if mod is not None else False
    if mod is not None:
        mod.eval()
    try:
        for t, t_next in zip(ts[:-1], ts[1:]):
            e_u = model.eps(x, t, None)
            e = e_u + float(guidance_scale) * (model.eps(x, t, cond) - e_u)
            a, s = float(model.sde.alpha(t)), float(model.sde.sigma(t))
            x0 = (x - s * e) / a
            if clip_x0:
                x0 = x0.clamp(-1, 1)
            if t_next <= 0:
                x = x0
            else:
                x = float(model.sde.alpha(t_next)) * x0 + float(model.sde.sigma(t_next)) * e
    finally:
        if mod is not None and was_training:
            mod.train()
    return x.cpu()
