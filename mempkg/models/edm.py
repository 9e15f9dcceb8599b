"""EDM: preconditioned denoisers, their loss and Heun sampler (Karras et al. 2022, "Elucidating the
Design Space of Diffusion-Based Generative Models"), as score models for the book's estimators.

EDM writes the diffusion with time = noise level, x_sigma = x0 + sigma z, and trains a
*denoiser* D(x; sigma) ~ E[x0 | x_sigma = x] instead of a score. The two are one object
(Tweedie; Karras eq. 3):

    s(x, sigma) = grad_x log p_sigma(x) = (D(x; sigma) - x) / sigma^2.

* :class:`EDMSchedule` -- the VE schedule in that parametrisation (psi = 1, sigma(t) = t), so
  that ``EDMPrecond(...).sde`` follows :mod:`mempkg.core.schedules`'s protocol and FLIPD
  (:func:`mempkg.estimators.lid.flipd`) and volume growth (:func:`mempkg.estimators.volume.volume_growth`) apply to
  EDM models unchanged.
* :class:`EDMPrecond` -- D(x; sigma) = c_skip x + c_out F(c_in x; c_noise) (Karras Table 1).
* :class:`EDMLoss` -- ln sigma ~ N(P_mean, P_std^2), weight lambda(sigma) (Table 1), and the
  *gap training* of Dodson et al. (2026): bands of sigma left out of training.
* :func:`train_edm`, :func:`train_edm_cached` -- the training loop (checkpoints that resume
  bit-exactly, as :func:`mempkg.models.train.train_dsm`).
* :func:`edm_sigmas`, :func:`heun_sampler`, :func:`sample_edm` -- Karras eq. 5 and Algorithm 1.

Defaults are EDM's CIFAR-10 settings (``../shared/papers/NOTES.md`` section 3): sigma_data = 0.5,
P_mean = -1.2, P_std = 1.2, sigma in [0.002, 80], rho = 7, 18 Heun steps (35 evaluations).

Layer: models (imports mempkg.core only).
"""

from __future__ import annotations

import math
import numbers
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch
from torch import Tensor, nn

from ..core.progress import bar as progress_bar
from ..core.protocol import call_net, check_score_model, modules_of
from ..core.schedules import EDMSchedule
from ..core.tensors import bcast, tensor_sha256, time_batch
from .train import TrainResult, train_loop

# -- the preconditioned denoiser ------------------------------------------------------------------

class EDMPrecond(nn.Module):
    """EDM's preconditioned denoiser and its score (Karras et al. 2022, Table 1 and eq. 7):

        D(x; sigma) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x; c_noise(sigma)),
        c_skip = sigma_data^2 / (sigma^2 + sigma_data^2),   c_out = sigma sigma_data / sqrt(sigma^2 + sigma_data^2),
        c_in = 1 / sqrt(sigma^2 + sigma_data^2),           c_noise = ln(sigma) / 4,

        s(x, sigma) = (D(x; sigma) - x) / sigma^2
                    = -x / (sigma^2 + sigma_data^2) + sigma_data F / (sigma sqrt(sigma^2 + sigma_data^2)).

    The second form of the score is the first with c_skip - 1 = -sigma^2 / (sigma^2 + sigma_data^2)
    done by hand: no D - x cancellation at small sigma (FLIPD reads the score there).

    It is a score model (:mod:`mempkg.models.adapters`): ``sde`` is an :class:`EDMSchedule`, and time is the
    noise level, t = sigma. ``forward`` is ``denoise``, as in NVlabs/edm, so the module itself is the
    ``denoiser(y, sigma)`` that :func:`mempkg.estimators.regimes.noise_sweep` takes.

    Args:
        net: the raw network F, called as ``net(x, c_noise)`` with ``x`` ``[B, ...]`` and ``c_noise``
            ``[B]`` (plus the condition, see ``cond_key``); may return a tensor or an object with
            ``.sample`` (diffusers ``UNet2DModel``). c_noise spans [-1.55, 1.10] for sigma in
            [0.002, 80]. A diffusers UNet embeds it like EDM's DDPM++ does (sinusoids of frequency
            <= 1), so nearby sigmas get nearby embeddings. :class:`~mempkg.models.networks.MLPEps` multiplies
            its input by 1000 before its sinusoids (made for t in (0, 1]): c_noise then spans about
            2,650 embedding units, the same order as the 1,000 of t in (0, 1], so its embedding
            resolves sigma as finely as it resolves t; nothing needs rescaling (on a 2-D ring,
            2,000 steps: EDM loss 0.934 with c_noise as is, 0.973 with c_noise / 1000 or / 100).
        sigma_data: standard deviation of the data (0.5 for images in [-1, 1] in EDM; the bundled
            digits in [-1, 1] have ~0.75, NOTES.md section 3).
        sde: the schedule (default ``EDMSchedule()``: sigma in (0, 80]).
        cond_key: pass the condition as ``net(..., **{cond_key: cond})`` (``"class_labels"`` for
            ``UNet2DModel``); otherwise as a third positional argument.
    """

    def __init__(self, net: nn.Module, sigma_data: float = 0.5, sde: Optional[EDMSchedule] = None,
                 cond_key: Optional[str] = None):
        super().__init__()
        if not (isinstance(sigma_data, numbers.Real) and 0 < sigma_data < math.inf):
            raise ValueError(f"sigma_data must be a positive finite number (the data's standard deviation), "
                             f"got {sigma_data!r}.")
        if not callable(net):
            raise TypeError(f"net must be a network called as net(x, c_noise), got {type(net).__name__}.")
        self.net = net
        self.sigma_data = float(sigma_data)
        self.sde = sde if sde is not None else EDMSchedule()
        self.cond_key = cond_key

    def config(self) -> dict:
        """Plain-literal description of the preconditioning (the network is described by the caller)."""
        return {"precond": "edm", "sigma_data": self.sigma_data, "sde": self.sde.config(),
                "net": type(self.net).__name__}

    def coefficients(self, sigma: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(c_skip, c_out, c_in, c_noise) of Karras Table 1, each with the shape of ``sigma``."""
        sd2 = self.sigma_data**2
        c_skip = sd2 / (sigma**2 + sd2)
        c_out = sigma * self.sigma_data / (sigma**2 + sd2).sqrt()
        c_in = 1 / (sigma**2 + sd2).sqrt()
        c_noise = sigma.log() / 4
        return c_skip, c_out, c_in, c_noise

    def _sigma(self, sigma, x: Tensor) -> Tensor:
        """A float or [B] tensor of noise levels as a [B] tensor on x's device and dtype, checked > 0."""
        sigma = time_batch(sigma, x)
        if not torch.all(torch.isfinite(sigma) & (sigma > 0)):
            raise ValueError("sigma must be positive and finite (the denoiser is not defined at sigma = 0; "
                             "samplers take their last step to 0 with an Euler step instead).")
        return sigma

    def F(self, x: Tensor, sigma, cond: Optional[Tensor] = None) -> Tensor:
        """The raw network's output F(c_in x; c_noise), shape of x (``sigma`` float or [B])."""
        sigma = self._sigma(sigma, x)
        _, _, c_in, c_noise = self.coefficients(sigma)
        y = bcast(c_in, x) * x
        out = call_net(self.net, y, c_noise, cond, self.cond_key)
        if out.shape != x.shape:
            raise ValueError(f"net returned shape {tuple(out.shape)} for input {tuple(x.shape)}; F must keep "
                             "the shape of its input.")
        return out

    def denoise(self, x: Tensor, sigma, cond: Optional[Tensor] = None) -> Tensor:
        """D(x; sigma) = c_skip x + c_out F(c_in x; c_noise), shape of x; ``sigma`` float or [B]."""
        sigma = self._sigma(sigma, x)
        c_skip, c_out, _, _ = self.coefficients(sigma)
        return bcast(c_skip, x) * x + bcast(c_out, x) * self.F(x, sigma, cond)

    def score(self, x: Tensor, t, cond: Optional[Tensor] = None) -> Tensor:
        """s(x, t) = (D(x; sigma) - x) / sigma^2 with sigma = t, in the cancellation-free form above."""
        sigma = self._sigma(t, x)
        sd2 = self.sigma_data**2
        a = bcast(-1 / (sigma**2 + sd2), x)
        b = bcast(self.sigma_data / (sigma * (sigma**2 + sd2).sqrt()), x)
        return a * x + b * self.F(x, sigma, cond)

    def forward(self, x: Tensor, sigma, cond: Optional[Tensor] = None) -> Tensor:
        return self.denoise(x, sigma, cond)


# -- the loss, with gap training ------------------------------------------------------------------

def _normal_cdf(z: Tensor) -> Tensor:
    return torch.special.ndtr(z)


def _parse_gap(gap) -> tuple[tuple[float, float], ...]:
    """``None``, one band ``(lo, hi)`` or a list of bands -> sorted tuple of checked bands."""
    if gap is None:
        return ()
    if isinstance(gap, (tuple, list)) and len(gap) == 2 and all(isinstance(v, numbers.Real) for v in gap):
        gap = [gap]
    try:
        bands = [(float(lo), float(hi)) for lo, hi in gap]
    except (TypeError, ValueError):
        raise ValueError(f"gap must be None, one band (sigma_lo, sigma_hi) or a list of such bands, "
                         f"got {gap!r}.") from None
    for lo, hi in bands:
        if not (0 <= lo < hi) or math.isnan(hi):
            raise ValueError(f"A gap band (sigma_lo, sigma_hi) needs 0 <= sigma_lo < sigma_hi (hi may be inf), "
                             f"got ({lo:g}, {hi:g}).")
    return tuple(sorted(bands))


class EDMLoss:
    """EDM's training loss (Karras et al. 2022, Table 1 and eq. 8), with optional gap bands:

        ln sigma ~ N(P_mean, P_std^2),   n ~ N(0, I),   y = x0 + sigma n,
        lambda(sigma) = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2,
        loss = lambda(sigma) |D(y; sigma) - x0|^2      (per pixel; training takes the mean).

    lambda c_out^2 = 1, so the loss is |F - F_target|^2 and F's target has unit variance per pixel
    when the data has standard deviation sigma_data (Karras App. B.6): a network that outputs 0
    scores 1 in expectation at every sigma.

    **Gap training** (Dodson et al. 2026, "2k-Gap" skips sigma in [1, 5]). ``gap=(sigma_lo,
    sigma_hi)`` or a list of such bands draws sigma from the same log-normal *conditioned on lying
    outside* the bands, by inverse-CDF sampling (exact, one uniform per draw, deterministic per
    seed): with u ~ U(0, 1 - m), m the log-normal mass of the bands, u is moved past each band's
    CDF interval [Phi(z_lo), Phi(z_hi)] in turn (z = (ln sigma - P_mean) / P_std) and
    sigma = exp(P_mean + P_std Phi^{-1}(u)). Overlapping bands are merged. Without a gap the same
    formula with m = 0 is used, so every draw is a function of one uniform.

    The paper's "2k-Dummy" control is not described. The intended reading here is *another gap
    value*: a band that removes the same share of training outside the danger zone, so that Gap vs
    Dummy isolates *where* the excluded noise levels are from *how much* is excluded. Choose it with
    :meth:`sigma_cdf` / :meth:`sigma_quantile`, e.g. the same mass just below the danger zone
    ``(loss.sigma_quantile(loss.sigma_cdf(lo) - m), lo)`` with ``m = EDMLoss(gap=(1, 5)).excluded_mass``,
    or the same log-width (ln 5) elsewhere, e.g. ``(5, 25)``; the chapter states its choice.
    """

    def __init__(self, P_mean: float = -1.2, P_std: float = 1.2, sigma_data: float = 0.5, gap=None):
        if not (isinstance(P_mean, numbers.Real) and math.isfinite(P_mean)):
            raise ValueError(f"P_mean must be a finite number, got {P_mean!r}.")
        if not (isinstance(P_std, numbers.Real) and 0 < P_std < math.inf):
            raise ValueError(f"P_std must be a positive finite number, got {P_std!r}.")
        if not (isinstance(sigma_data, numbers.Real) and 0 < sigma_data < math.inf):
            raise ValueError(f"sigma_data must be a positive finite number (the data's standard deviation), "
                             f"got {sigma_data!r}.")
        self.P_mean, self.P_std, self.sigma_data = float(P_mean), float(P_std), float(sigma_data)
        self.gap = _parse_gap(gap)
        merged: list[list[float]] = []
        for lo, hi in self.gap:
            if merged and lo <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        # each band's interval of the standard log-normal's CDF, in float64
        self._cdf_bands = [(float(self.sigma_cdf(lo)), float(self.sigma_cdf(hi))) for lo, hi in merged]
        self.excluded_mass = sum(b - a for a, b in self._cdf_bands)
        if self.excluded_mass >= 1 - 1e-9:
            raise ValueError(f"The gap bands {list(self.gap)} exclude (almost) every sigma of "
                             f"ln sigma ~ N({self.P_mean}, {self.P_std}^2); leave some noise levels to train on.")

    def __repr__(self) -> str:
        gap = f", gap={list(self.gap)}" if self.gap else ""
        return f"EDMLoss(P_mean={self.P_mean}, P_std={self.P_std}, sigma_data={self.sigma_data}{gap})"

    def config(self) -> dict:
        """Plain-literal description, used in checkpoints and cache keys."""
        return {"loss": "edm", "P_mean": self.P_mean, "P_std": self.P_std, "sigma_data": self.sigma_data,
                "gap": [list(b) for b in self.gap]}

    def sigma_cdf(self, sigma) -> Tensor:
        """P(sigma' <= sigma) under the *untruncated* log-normal, Phi((ln sigma - P_mean) / P_std) (float64)."""
        s = torch.as_tensor(sigma, dtype=torch.float64)
        return _normal_cdf((s.log() - self.P_mean) / self.P_std)

    def sigma_quantile(self, p) -> Tensor:
        """Inverse of :meth:`sigma_cdf`: exp(P_mean + P_std Phi^{-1}(p)), p in [0, 1] (float64)."""
        p = torch.as_tensor(p, dtype=torch.float64)
        if torch.any((p < 0) | (p > 1)):
            raise ValueError("sigma_quantile needs probabilities in [0, 1].")
        return torch.exp(self.P_mean + self.P_std * torch.special.ndtri(p))

    def sample_sigma(self, n: int, generator: torch.Generator) -> Tensor:
        """n noise levels from the (gap-truncated) log-normal -> Tensor[n] (float64, CPU)."""
        u = torch.rand(n, generator=generator, dtype=torch.float64) * (1 - self.excluded_mass)
        for a, b in self._cdf_bands:                 # ascending, disjoint: shift past each excluded interval
            u = torch.where(u >= a, u + (b - a), u)
        # rand is in [0, 1): keep Phi^{-1} finite at the (2^-53-probable) ends
        u = u.clamp(torch.finfo(torch.float64).tiny, 1 - torch.finfo(torch.float64).eps)
        return torch.exp(self.P_mean + self.P_std * torch.special.ndtri(u))

    def weight(self, sigma: Tensor) -> Tensor:
        """lambda(sigma) = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2."""
        return (sigma**2 + self.sigma_data**2) / (sigma * self.sigma_data) ** 2

    def __call__(self, precond: EDMPrecond, x0: Tensor, generator: torch.Generator,
                 cond: Optional[Tensor] = None) -> Tensor:
        """Per-pixel weighted loss lambda(sigma) (D(x0 + sigma n; sigma) - x0)^2 -> shape of x0.

        sigma (one per row) and n are drawn from ``generator`` (a CPU generator: the same draws on
        every device), in that order.
        """
        if getattr(precond, "sigma_data", self.sigma_data) != self.sigma_data:
            raise ValueError(f"The loss has sigma_data={self.sigma_data} but the preconditioner has "
                             f"{precond.sigma_data}; pass EDMLoss(sigma_data={precond.sigma_data}) so that "
                             "lambda(sigma) c_out(sigma)^2 = 1.")
        sigma = self.sample_sigma(x0.shape[0], generator).to(dtype=x0.dtype, device=x0.device)
        n = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)
        y = x0 + bcast(sigma, x0) * n
        D = precond.denoise(y, sigma, cond)
        return bcast(self.weight(sigma), x0) * (D - x0) ** 2


def equal_mass_bands(loss: EDMLoss, band: tuple[float, float],
                     max_per_side: Optional[int] = None) -> list[tuple[float, float]]:
    """Tile the sigma axis into bands that each hold the log-normal mass of ``band`` -> sorted list.

    With a = F(sigma_lo), b = F(sigma_hi) (F = :meth:`EDMLoss.sigma_cdf`) and m = b - a, the edges
    are F^{-1}(a - k m) below and F^{-1}(b + k m) above, k = 1, 2, ...; the end bands run to
    sigma = 0 and to infinity and hold what is left, merged into their neighbour when less than m / 2
    (except next to ``band``, which is never changed).
    ``band`` itself is one of the tiles. Used for a sweep of gap-training bands that each withhold the
    same share of the training noise levels, so that only their *position* differs.
    ``max_per_side`` keeps only that many tiles on each side of ``band`` (the nearest ones).
    """
    lo, hi = (float(v) for v in band)
    if not (0 < lo < hi < math.inf):
        raise ValueError(f"band must be (sigma_lo, sigma_hi) with 0 < sigma_lo < sigma_hi < inf, got {band!r}.")
    a, b = float(loss.sigma_cdf(lo)), float(loss.sigma_cdf(hi))
    m = b - a
    if m <= 1e-12:
        raise ValueError(f"band {band!r} holds no mass under {loss!r}.")
    below, p = [], a
    while p - m > m / 2:                    # a full band fits and leaves at least m / 2 below it
        p -= m
        below.append(p)
    above, q = [], b
    while q + m < 1 - m / 2:
        q += m
        above.append(q)
    cdf_edges = [0.0] + below[::-1] + [a, b] + above + [1.0]
    sig = [0.0] + [float(loss.sigma_quantile(c)) for c in cdf_edges[1:-1]] + [math.inf]
    i = len(below) + 1
    sig[i], sig[i + 1] = lo, hi             # the band's own edges, exactly
    # an end remainder next to the band itself is kept as a (smaller) band rather than merged
    tiles = list(zip(sig[:-1], sig[1:]))
    if max_per_side is not None:
        tiles = tiles[max(i - int(max_per_side), 0): i + int(max_per_side) + 1]
    return tiles


# -- training -----------------------------------------------------------------------------------

def train_edm(precond: EDMPrecond, data: Tensor, n_steps: int, *, loss: Optional[EDMLoss] = None,
              lr: float = 2e-4, batch_size: Optional[int] = None, n_noise: int = 1,
              lr_schedule: str = "cosine", warmup: int = 0, grad_clip: Optional[float] = 1.0,
              ema_decay: Optional[float] = None, seed: int = 0, device: str | torch.device = "cpu",
              progress: bool = True, desc: str = "training", checkpoint: str | Path | None = None,
              checkpoint_every: int = 1000, callback: Optional[Callable[[int, float], None]] = None) -> TrainResult:
    """Train an :class:`EDMPrecond` (its network, in place) with :class:`EDMLoss`.

    The loop, its options and its checkpoints are those of :func:`mempkg.models.train.train_dsm` (same
    defaults, so a chapter comparing the two changes only the loss); see its docstring. Each step
    draws, from one private generator seeded by ``seed``: the batch, then ``loss``'s sigma per row,
    then the noise. Same seed (and device), same losses and weights; a resumed run equals an
    uninterrupted one.

    Args:
        precond: the preconditioned denoiser; its ``net`` is trained. Must have the loss's sigma_data.
        data: training set ``[N, ...]``.
        n_steps: optimiser steps.
        loss: :class:`EDMLoss` (``None``: ``EDMLoss()``, EDM's defaults); pass ``gap=...`` for gap training.
        batch_size: images per step (``None``: the full training set every step).
        n_noise: noise draws per image per step.
        lr, lr_schedule, warmup, grad_clip, ema_decay, seed, device, progress, desc, checkpoint,
            checkpoint_every, callback: as in :func:`mempkg.models.train.train_dsm`.
    Returns:
        :class:`~mempkg.models.train.TrainResult` whose ``net`` is ``precond`` (and ``ema`` its EMA copy).
    """
    loss = EDMLoss() if loss is None else loss
    if not isinstance(precond, nn.Module) or not hasattr(precond, "denoise"):
        raise TypeError(f"train_edm trains an EDMPrecond (an nn.Module with `denoise`), got {type(precond).__name__}; "
                        "wrap the network as EDMPrecond(net, sigma_data).")
    if not isinstance(loss, EDMLoss):
        raise TypeError(f"loss must be an EDMLoss, got {type(loss).__name__}.")
    if getattr(precond, "sigma_data", loss.sigma_data) != loss.sigma_data:
        raise ValueError(f"loss.sigma_data={loss.sigma_data} differs from precond.sigma_data={precond.sigma_data}; "
                         f"pass EDMLoss(sigma_data={precond.sigma_data}, ...).")
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}.")
    if n_noise < 1:
        raise ValueError(f"n_noise must be >= 1, got {n_noise}.")

    def step_loss(x0: Tensor, g: torch.Generator) -> Tensor:
        return loss(precond, x0, g).mean()         # draws sigma per row, then the noise, from g

    def settings(bs: int) -> dict:
        return dict(
            trainer="edm", n_steps=int(n_steps), lr=float(lr), batch_size=int(bs), n_noise=int(n_noise),
            lr_schedule=lr_schedule, warmup=int(warmup), grad_clip=float(grad_clip) if grad_clip else None,
            ema_decay=float(ema_decay) if ema_decay else None, seed=int(seed), loss=loss.config(),
            precond=precond.config() if hasattr(precond, "config") else type(precond).__name__)

    # The loop, checkpoints and the forked, seeded global RNG (dropout) are train_dsm's.
    return train_loop(precond, step_loss, data, n_steps, settings=settings, lr=lr, batch_size=batch_size,
                      n_noise=n_noise, lr_schedule=lr_schedule, warmup=warmup, grad_clip=grad_clip,
                      ema_decay=ema_decay, seed=seed, device=device, progress=progress, desc=desc,
                      checkpoint=checkpoint, checkpoint_every=checkpoint_every, callback=callback)


def train_edm_cached(cache, name: str, build: Callable[[], EDMPrecond], net_config: dict, data: Tensor,
                     n_steps: int, *, loss: Optional[EDMLoss] = None, seed: int = 0,
                     device: str | torch.device = "cpu", weights: str = "raw", **train_kwargs):
    """Train with :func:`train_edm` once and cache the weights; resume after an interruption
    (the EDM twin of :func:`mempkg.models.train.train_cached`).

    ``build()`` makes the :class:`EDMPrecond` (network included); ``net_config`` describes it in
    plain literals. The key holds it, the architecture of what ``build()`` makes, the loss (gap included), every training setting, the seed and
    a hash of the data. Returns (the EDMPrecond in eval mode with the ``weights`` asked for --
    ``"raw"`` or ``"ema"`` --, history ``{"losses": [...]}``).
    """
    loss = EDMLoss() if loss is None else loss
    settings = {k: v for k, v in train_kwargs.items() if k not in ("progress", "desc")}   # not results
    params = dict(trainer="edm", net=net_config, loss=loss.config(), n_steps=int(n_steps), train=settings,
                  seed=int(seed), data_sha256=tensor_sha256(data), data_shape=list(data.shape))
    params = cache.model_params(params, build)           # the key holds the network as built
    ckpt = cache.checkpoint_path(name, params)

    def fit(precond):
        return train_edm(precond, data, n_steps, loss=loss, seed=seed, device=device, checkpoint=ckpt,
                         desc=name, **train_kwargs)

    precond, history = cache.model(name, params, build, fit, weights=weights)
    return precond.to(device).eval(), history


# -- sampling -----------------------------------------------------------------------------------

def edm_sigmas(n_steps: int = 18, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0) -> Tensor:
    """Karras eq. 5 time steps, with a final 0 -> Tensor[n_steps + 1] (float64), decreasing:

        sigma_i = (sigma_max^(1/rho) + i / (N - 1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho,  i < N,
        sigma_N = 0,   N = n_steps.
    """
    if int(n_steps) != n_steps or n_steps < 2:
        raise ValueError(f"n_steps must be an integer >= 2 (sigma_max and sigma_min are both steps), got {n_steps}.")
    if not (0 < sigma_min < sigma_max < math.inf):
        raise ValueError(f"edm_sigmas needs 0 < sigma_min < sigma_max < inf, got {sigma_min}, {sigma_max}.")
    if not rho > 0:
        raise ValueError(f"rho must be positive, got {rho}.")
    i = torch.arange(int(n_steps), dtype=torch.float64)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    sigmas = (hi + i / (n_steps - 1) * (lo - hi)) ** rho
    return torch.cat([sigmas, torch.zeros(1, dtype=torch.float64)])


def _denoiser(model) -> Callable:
    """D(x; sigma) of a model with ``denoise``, or x + sigma^2 s(x, sigma) from a score model on an
    EDM schedule (Tweedie)."""
    if hasattr(model, "denoise"):
        return model.denoise
    check_score_model(model)
    if not isinstance(model.sde, EDMSchedule):
        raise TypeError(f"{type(model).__name__} has no `denoise` and its schedule is {model.sde!r}, not an "
                        "EDMSchedule: the EDM sampler needs time = sigma.")
    return lambda x, sigma, cond=None: x + float(sigma) ** 2 * model.score(x, sigma, cond=cond)


@torch.no_grad()
def heun_sampler(model, x: Tensor, sigmas: Sequence[float] | Tensor, cond: Optional[Tensor] = None,
                 progress: bool = False) -> Tensor:
    """Karras Algorithm 1 (deterministic Heun on dx/dsigma = (x - D(x; sigma)) / sigma), x at sigmas[0]
    -> x at sigmas[-1]:

        d = (x - D(x; sigma_i)) / sigma_i,   x' = x + (sigma_{i+1} - sigma_i) d,
        if sigma_{i+1} > 0:  x' = x + (sigma_{i+1} - sigma_i) (d + (x' - D(x'; sigma_{i+1})) / sigma_{i+1}) / 2.

    The step to sigma = 0 is Euler's (it lands on D(x; sigma_i)). ``model`` has ``denoise(x, sigma,
    cond)`` (an :class:`EDMPrecond`) or is a score model on an :class:`EDMSchedule`.
    """
    D = _denoiser(model)
    sig = [float(s) for s in sigmas]
    if len(sig) < 2 or any(not (a > b) for a, b in zip(sig, sig[1:])) or sig[-1] < 0 or min(sig[:-1]) <= 0:
        raise ValueError("sigmas must decrease strictly, with every level > 0 except possibly the last = 0 "
                         "(use edm_sigmas).")
    for i in progress_bar(range(len(sig) - 1), disable=not progress, desc="sampling", unit="step"):
        t, t_next = sig[i], sig[i + 1]
        d = (x - D(x, t, cond)) / t
        x_next = x + (t_next - t) * d
        if t_next > 0:
            d_next = (x_next - D(x_next, t_next, cond)) / t_next
            x_next = x + (t_next - t) * 0.5 * (d + d_next)
        x = x_next
    return x


@torch.no_grad()
def euler_sampler(models, x: Tensor, sigmas: Sequence[float] | Tensor, cond: Optional[Tensor] = None,
                  states: bool = False) -> Tensor | list[Tensor]:
    """Euler steps on dx/dsigma = (x - D_i(x; sigma_i)) / sigma_i, x at sigmas[0] -> x at sigmas[-1]:

        x_{i+1} = x_i + (sigma_{i+1} - sigma_i) (x_i - D_i(x_i; sigma_i)) / sigma_i,

    with D_i the i-th of ``models`` (a sequence of one model per step) or ``models`` itself at every step:
    Dodson et al.'s sampler for handing one window of steps to another denoiser (Sec. 3, Table 1).
    ``states=True`` returns every x_i (``len(sigmas)`` tensors) instead of the last.
    """
    sig = [float(s) for s in sigmas]
    if len(sig) < 2 or any(not (a > b) for a, b in zip(sig, sig[1:])) or sig[-1] < 0 or min(sig[:-1]) <= 0:
        raise ValueError("sigmas must decrease strictly, with every level > 0 except possibly the last = 0 "
                         "(use edm_sigmas).")
    per_step = list(models) if isinstance(models, (list, tuple)) else [models] * (len(sig) - 1)
    if len(per_step) != len(sig) - 1:
        raise ValueError(f"euler_sampler needs one model per step: {len(sig) - 1} steps, {len(per_step)} models.")
    out = [x]
    for i, model in enumerate(per_step):
        t, t_next = sig[i], sig[i + 1]
        x = x + (t_next - t) * (x - _denoiser(model)(x, t, cond)) / t
        out.append(x)
    return out if states else x


def sample_edm(model, n: int, shape, n_steps: int = 18, *, sigma_min: Optional[float] = None,
               sigma_max: Optional[float] = None, rho: float = 7.0, seed: int = 0, cond: Optional[Tensor] = None,
               device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
               progress: bool = True) -> Tensor:
    """Draw ``n`` samples of per-sample ``shape``: x ~ N(0, sigma_max^2 I), then :func:`heun_sampler` on
    :func:`edm_sigmas` (``n_steps`` levels + 0; 2 n_steps - 1 evaluations) -> Tensor[n, *shape] on the CPU.

    ``sigma_min`` / ``sigma_max`` default to the model's schedule (0.002 and 80 for EDM).
    """
    sde = getattr(model, "sde", None)
    sigma_min = float(sigma_min if sigma_min is not None else getattr(sde, "sigma_min", 0.002))
    sigma_max = float(sigma_max if sigma_max is not None else getattr(sde, "sigma_max", 80.0))
    sigmas = edm_sigmas(n_steps, sigma_min, sigma_max, rho)
    mod = modules_of(model)
    if mod is not None:
        mod.eval()
    g = torch.Generator().manual_seed(int(seed))
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    x = (sigma_max * torch.randn((int(n), *shape), generator=g, dtype=torch.float64)).to(dtype=dtype, device=device)
    return heun_sampler(model, x, sigmas, cond=cond, progress=progress).cpu()
