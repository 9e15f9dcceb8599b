"""Stable Diffusion as a score model in latent space (Ross, Kamkari et al. 2024, Sec. 3 and Fig. 4).

The book's estimators (FLIPD in :mod:`mempkg.estimators.lid`, the CFG norms in :mod:`mempkg.estimators.guidance`) take
any object with an ``sde`` and ``score(x, t, cond=None)`` (:mod:`mempkg.models.adapters`). This module
turns a diffusers Stable Diffusion checkpoint into one:

* :class:`DiscreteVPSchedule` -- the VP schedule SD was trained with, read from the scheduler's own
  ``alphas_cumprod`` (SD v1: ``"scaled_linear"`` betas from 0.00085 to 0.012 over 1000 steps) and
  made continuous in t; :func:`linear_beta_schedule` is the FLIPD authors' linear-beta
  approximation of it (``../shared/papers/NOTES.md`` section 2).
* :class:`StableDiffusion` -- the latent score s(z, t | c) = -eps_theta(z, t, c) / sigma(t) of the
  UNet, with the VAE encoder (images -> latents) and the CLIP text encoder (captions -> ``cond``).
* :func:`load_stable_diffusion` -- builds it from a hub id or a local folder in diffusers' layout.
* images are prepared by :func:`mempkg.data.fetch.center_crop_resize` (PIL images -> [-1, 1] tensors,
  centre-cropped and resized to SD's 512 px).

Latents are D = 4 x 64 x 64 = 16,384-dimensional at 512 px. ``cond=None`` means the empty-prompt
embedding (SD's unconditional branch, trained by dropping captions), so unconditional FLIPD is
``flipd(model, z, t0)`` and conditional FLIPD ``flipd(model, z, t0, cond=model.encode_prompts(captions))``;
Ross et al. (Appendix A.1) use t0 = 0.1 and one Hutchinson probe for both.

Layer: models (imports mempkg.core only).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Optional, Sequence, Union

import torch
from torch import Tensor, nn

from ..core.devices import resolve_device
from ..core.hub import local_only
from ..core.schedules import SCHEDULES, schedule_of
from ..core.tensors import TimeLike, as_time, bcast, check_choice, times64

SD15 = "stable-diffusion-v1-5/stable-diffusion-v1-5"
COMPONENTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")


# -- readings of the noise schedule ---------------------------------------------------------------


def with_schedule(model, schedule: str):
    """The same networks read with another schedule: a shallow copy of ``model`` (a
    :class:`StableDiffusion` or the book's tiny stand-in) whose ``sde`` and UNet labels follow
    ``schedule``. Nothing is copied or retrained, so scores of the two readings differ only by the
    schedule: with ``"linear_beta"``, the FLIPD authors' sigma(t) and label n(t) = N t instead of
    the scheduler's sigma(t) and n(t) = N t - 1."""

    if not hasattr(model, "scheduler") or not hasattr(model, "schedule"):
        raise TypeError(f"{type(model).__name__} has no diffusers scheduler to read another schedule from.")
    view = copy.copy(model)              # shares the modules; sde and schedule are the view's own
    view.sde = schedule_of(model.scheduler, schedule)
    view.schedule = schedule
    return view


def equal_sigma_time(model, t: float, reading: str) -> tuple[float, float]:
    """The time on ``model``'s own schedule with the noise level that ``reading`` gives t:

        sigma = sigma_reading(t),    t' = model.sde.t_from_sigma(sigma)    -> (sigma, t').

    Used to read FLIPD where the authors did: Ross et al.'s t0 = 0.1 is a time under the
    linear-beta reading (sigma = 0.362), which SD's own ``alphas_cumprod`` reach at t' = 0.121
    (they give sigma = 0.323 at t = 0.1). ``reading`` equal to the model's own schedule returns
    (sigma(t), t). Works for :class:`StableDiffusion` and the book's tiny stand-in (anything with a
    diffusers ``scheduler`` and an ``sde`` with ``t_from_sigma``).
    """
    check_choice("reading", reading, SCHEDULES)
    if not hasattr(model, "scheduler") or not hasattr(model, "schedule"):
        raise TypeError(f"{type(model).__name__} has no diffusers scheduler to read another schedule from.")
    t = float(t)
    if reading == model.schedule:
        return float(model.sde.sigma(t)), t
    sigma = float(schedule_of(model.scheduler, reading).sigma(t))
    return sigma, float(model.sde.t_from_sigma(sigma))


# -- the score model ------------------------------------------------------------------------------

class ConditionalEpsModel:
    """eps, score and forward for a caption-conditioned eps-UNet (Stable Diffusion and the book's tiny
    stand-in share them). The host class provides ``unet`` (a ``UNet2DConditionModel``), ``sde``,
    ``schedule`` (one of :data:`SCHEDULES`), ``N`` (the number of training timesteps), ``null_cond(n)``,
    ``device`` and ``dtype``."""

    def timestep(self, t: TimeLike) -> Tensor:
        """The UNet label of time t: N t - 1 (``"scheduler"``) or N t (``"linear_beta"``, the authors')."""
        if self.schedule == "scheduler":
            return self.sde.timestep(t)
        return as_time(t) * self.N

    def eps(self, x: Tensor, t, cond: Optional[Tensor] = None) -> Tensor:
        """Predicted noise eps_theta(x, n(t), c) ``[B, *data_shape]`` in x's dtype; ``cond`` ``[B, L, E]`` or
        None (the empty caption)."""
        if cond is None:
            cond = self.null_cond(x.shape[0])
        elif not isinstance(cond, Tensor):
            raise TypeError(f"cond must be a tensor of text embeddings [B, L, E], got {type(cond).__name__}; "
                            "turn captions into embeddings with model.encode_prompts(captions).")
        if cond.dim() != 3 or cond.shape[0] != x.shape[0]:
            raise ValueError(f"cond has shape {tuple(cond.shape)} for {x.shape[0]} inputs; give one embedding "
                             "[L, E] per input (model.encode_prompts).")
        # labels in float32: fp16 cannot hold fractional labels near 1000
        label = self.timestep(times64(t, x)).to(device=self.device, dtype=torch.float32)
        out = self.unet(x.to(device=self.device, dtype=self.dtype), label,
                        encoder_hidden_states=cond.to(device=self.device, dtype=self.dtype)).sample
        return out.to(x.dtype)

    def score(self, x: Tensor, t, cond: Optional[Tensor] = None) -> Tensor:
        """s(x, t | c) = -eps_theta(x, n(t), c) / sigma(t), shape of x."""
        sigma = bcast(self.sde.sigma(times64(t, x)), x)
        return -self.eps(x, t, cond) / sigma

    def forward(self, x: Tensor, t, cond: Optional[Tensor] = None) -> Tensor:
        return self.score(x, t, cond)


class StableDiffusion(ConditionalEpsModel, nn.Module):
    """Stable Diffusion's latent noise model as a score model (see :mod:`mempkg.models.adapters`):

        s(z, t | c) = -eps_theta(z, n(t), c) / sigma(t),

    eps_theta the ``UNet2DConditionModel`` with ``encoder_hidden_states = c`` (CLIP text
    embeddings ``[B, L, E]``; L = 77, E = 768 for SD v1) and n(t) the UNet label of time t
    (N t - 1 with ``schedule="scheduler"``, N t with ``"linear_beta"``, as the FLIPD authors did).
    ``cond=None`` is the empty prompt "" (the unconditional model of classifier-free guidance).
    Data are VAE latents ``[B, *data_shape]``: use :meth:`encode_images`. ``data_shape`` is the
    UNet's native latent size (4 x 64 x 64, i.e. 512 px images, for SD v1.5); to score other image
    sizes set ``model.data_shape = (4, H // 8, W // 8)``. The networks are frozen and in eval mode
    (inference only); gradients still flow to the *input* latents, as FLIPD's trace needs.

    Args:
        unet, vae, text_encoder, tokenizer, scheduler: the pipeline's components.
        schedule: ``"scheduler"`` (the scheduler's ``alphas_cumprod``, :class:`DiscreteVPSchedule`;
            the default) or ``"linear_beta"`` (:func:`linear_beta_schedule`, to reproduce the authors).
        model_id: where the weights came from (recorded in :meth:`config`).
    """

    def __init__(self, unet: nn.Module, vae: nn.Module, text_encoder: nn.Module, tokenizer, scheduler,
                 schedule: str = "scheduler", model_id: Optional[str] = None):
        super().__init__()
        check_choice("schedule", schedule, SCHEDULES)
        prediction = getattr(scheduler.config, "prediction_type", "epsilon")
        if prediction != "epsilon":
            raise ValueError(f"The scheduler says the UNet predicts {prediction!r} (e.g. SD 2's v-prediction); "
                             "StableDiffusion reads it as an eps-prediction network (SD v1.x).")
        self.unet, self.vae, self.text_encoder = unet, vae, text_encoder
        self.tokenizer, self.scheduler = tokenizer, scheduler
        for m in (unet, vae, text_encoder):
            m.requires_grad_(False)
            m.eval()
        self.schedule = schedule
        self.model_id = model_id
        self.N = int(scheduler.config.num_train_timesteps)
        self.sde = schedule_of(scheduler, schedule)
        size = unet.config.sample_size
        h, w = (size, size) if isinstance(size, int) else tuple(size)
        self.data_shape = (int(unet.config.in_channels), int(h), int(w))
        self.scaling_factor = float(vae.config.scaling_factor)
        self._null: Optional[Tensor] = None            # cached empty-prompt embedding [1, L, E]

    def __repr__(self) -> str:
        return (f"StableDiffusion(model_id={self.model_id!r}, schedule={self.schedule!r}, "
                f"data_shape={self.data_shape}, device={self.device}, dtype={self.dtype})")

    def config(self) -> dict:
        """Plain-literal description, used in cache keys."""
        return {"kind": "stable_diffusion", "model_id": self.model_id, "schedule": self.schedule,
                "sde": self.sde.config(), "dtype": str(self.dtype).replace("torch.", "")}

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.unet.parameters()).dtype

    # -- text -----------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_prompts(self, prompts: Union[str, Sequence[str]], max_batch: int = 64) -> Tensor:
        """CLIP text embeddings of captions, as SD's pipeline makes them -> ``[B, L, E]``.

        Tokens are padded (with SD's pad token) and truncated to the tokenizer's
        ``model_max_length`` (77); the embedding is the text encoder's last hidden state (no
        attention mask and no clip skip, as in SD v1's pipeline).
        """
        if isinstance(prompts, str):
            prompts = [prompts]
        prompts = list(prompts)
        if not prompts or not all(isinstance(p, str) for p in prompts):
            raise ValueError("prompts must be a non-empty list of strings.")
        dev = next(self.text_encoder.parameters()).device
        out = []
        for start in range(0, len(prompts), max_batch):
            ids = self.tokenizer(prompts[start:start + max_batch], padding="max_length",
                                 max_length=self.tokenizer.model_max_length, truncation=True,
                                 return_tensors="pt").input_ids
            out.append(self.text_encoder(ids.to(dev))[0])
        return torch.cat(out)

    def null_cond(self, n: int) -> Tensor:
        """The empty prompt's embedding repeated n times -> ``[n, L, E]`` (computed once, cached)."""
        if self._null is None:
            self._null = self.encode_prompts([""])
        return self._null.to(self.device).repeat(int(n), 1, 1)

    # -- images ---------------------------------------------------------------------------------
    @property
    def vae_scale(self) -> int:
        """How many pixels one latent cell covers per side: 2^(number of VAE blocks - 1) (8 for SD)."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @torch.no_grad()
    def encode_images(self, images: Tensor, max_batch: int = 8) -> Tensor:
        """VAE latents of RGB images: the posterior *mean* times ``scaling_factor`` (no sampling, so the
        same image always gives the same latent) -> float32 ``[B, 4, H / f, W / f]`` (f = :attr:`vae_scale`).

        Args:
            images: ``[B, 3, H, W]`` in [-1, 1] (:func:`mempkg.data.fetch.center_crop_resize` makes them);
                H and W multiples of f.
            max_batch: images per VAE call.
        """
        if not isinstance(images, Tensor) or images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be a tensor [B, 3, H, W] of RGB images in [-1, 1], got "
                             f"{type(images).__name__} of shape {tuple(getattr(images, 'shape', ()))}.")
        lo, hi = float(images.min()), float(images.max())
        if lo < -1 - 1e-3 or hi > 1 + 1e-3:
            raise ValueError(f"images must lie in [-1, 1] (got values in [{lo:.3g}, {hi:.3g}]); "
                             "map 8-bit pixels p with p / 127.5 - 1.")
        f = self.vae_scale
        if images.shape[-1] % f or images.shape[-2] % f:
            raise ValueError(f"image height and width must be multiples of {f} (the VAE halves them "
                             f"{f.bit_length() - 1} times), got {tuple(images.shape[-2:])}; resize or crop first.")
        dev = next(self.vae.parameters()).device
        vdtype = next(self.vae.parameters()).dtype
        out = []
        for start in range(0, images.shape[0], int(max_batch)):
            x = images[start:start + max_batch].to(device=dev, dtype=vdtype)
            out.append((self.vae.encode(x).latent_dist.mean * self.scaling_factor).float())
        return torch.cat(out)

    @torch.no_grad()
    def decode_latents(self, z: Tensor, max_batch: int = 8) -> Tensor:
        """Images ``[B, 3, H, W]`` in [-1, 1] (float32, clamped) from latents ``[B, 4, h, w]``."""
        dev = next(self.vae.parameters()).device
        vdtype = next(self.vae.parameters()).dtype
        out = []
        for start in range(0, z.shape[0], int(max_batch)):
            zb = z[start:start + max_batch].to(device=dev, dtype=vdtype) / self.scaling_factor
            out.append(self.vae.decode(zb).sample.float().clamp(-1, 1))
        return torch.cat(out)


# -- loading ------------------------------------------------------------------------------------

def is_local(model_id) -> bool:
    """A folder path (absolute, relative with ./ or ~, or an existing folder) rather than a hub id "org/name"."""
    if isinstance(model_id, Path):
        return True
    s = str(model_id)
    return (Path(s).expanduser().exists() or Path(s).is_absolute() or s.startswith((".", "~"))
            or s.count("/") > 1)


def load_stable_diffusion(model_id: Union[str, Path] = SD15, device: str = "auto", dtype: Optional[torch.dtype] = None,
                          schedule: str = "scheduler", variant: Optional[str] = None) -> StableDiffusion:
    """Load a Stable Diffusion checkpoint as a :class:`StableDiffusion` score model.

    Each component is loaded with its class's ``from_pretrained(model_id, subfolder=...)``
    (``unet``: UNet2DConditionModel, ``vae``: AutoencoderKL, ``text_encoder``: CLIPTextModel,
    ``tokenizer``: CLIPTokenizer, ``scheduler``: the scheduler class named in its config), so a hub id
    (downloaded once into the Hugging Face cache) and a local folder in diffusers' layout both work.

    Args:
        model_id: hub id (default SD v1.5, ``"stable-diffusion-v1-5/stable-diffusion-v1-5"``; the old
            ``runwayml`` repo was removed) or a local folder.
        device: ``"auto"`` (CUDA when present, else CPU) or a torch device string (``"cpu"``, ``"cuda:1"``,
            ``"mps"`` on Apple silicon).
        dtype: ``None``: float16 on CUDA (SD's released weights; safe for inference), float32 elsewhere (CPU,
            MPS).
        schedule: ``"scheduler"`` or ``"linear_beta"`` (see :class:`StableDiffusion`).
        variant: a weights variant on the hub (e.g. ``"fp16"``).
    """
    check_choice("schedule", schedule, SCHEDULES)

    device = resolve_device(device)
    if dtype is None:
        dtype = torch.float16 if str(device).startswith("cuda") else torch.float32
    if is_local(model_id):
        folder = Path(model_id).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(f"No folder {folder}: give a local Stable Diffusion folder in diffusers' layout "
                                    f"(subfolders {', '.join(COMPONENTS)}) or a hub id such as {SD15!r}.")
        missing = [c for c in COMPONENTS if not (folder / c).is_dir()]
        if missing:
            raise FileNotFoundError(f"{folder} lacks {', '.join(missing)}: a Stable Diffusion folder needs the "
                                    f"subfolders {', '.join(COMPONENTS)} (as StableDiffusionPipeline.save_pretrained "
                                    "writes them).")
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel  # heavy: diffusers takes seconds to import
    from transformers import CLIPTextModel, CLIPTokenizer  # heavy: transformers takes seconds to import

    src = str(model_id)
    try:
        offline = not is_local(model_id) and local_only()        # no network: the local cache, at once
        kw = dict(torch_dtype=dtype, variant=variant, local_files_only=offline)
        unet = UNet2DConditionModel.from_pretrained(src, subfolder="unet", **kw)
        vae = AutoencoderKL.from_pretrained(src, subfolder="vae", **kw)
        text_encoder = CLIPTextModel.from_pretrained(src, subfolder="text_encoder", **kw)
        tokenizer = CLIPTokenizer.from_pretrained(src, subfolder="tokenizer", local_files_only=offline)
        import diffusers  # heavy: diffusers takes seconds to import

        sched_cfg = DDPMScheduler.load_config(src, subfolder="scheduler",      # any ConfigMixin reads it
                                              local_files_only=offline)
        scheduler = getattr(diffusers, sched_cfg["_class_name"]).from_config(sched_cfg)
    except (OSError, ValueError) as e:
        if is_local(model_id):
            raise
        raise OSError(f"Could not load {model_id!r} from the Hugging Face Hub ({type(e).__name__}: {e}). "
                      "Without internet, run once with internet to fill the cache (~/.cache/huggingface) or "
                      f"pass a local folder; the SD v1.5 id is {SD15!r}.") from e
    model = StableDiffusion(unet, vae, text_encoder, tokenizer, scheduler, schedule=schedule, model_id=str(model_id))
    return model.to(device)
