"""Denoising score matching for the VP-SDE (Song et al. 2021, eq. 7; Ho et al. 2020 eps-loss).

    L(theta) = E_{t, x0, eps} | eps_theta(psi(t) x0 + sigma(t) eps, t) - eps |^2,

with t drawn uniformly or log-uniformly in [t_min, T]. Log-uniform draws spend more of the
budget at small t, where the score of a memorizing model is sharp and learned last
(``../shared/papers/NOTES.md``, von Mises toy: uniform t needs ~3x the steps).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Optional

import torch
from torch import Tensor, nn

from .progress import bar as progress_bar
from .sde import VPSDE, _bcast

T_SAMPLING = ("log-uniform", "uniform")


@dataclass
class TrainResult:
    """The trained network (raw weights), its EMA copy if requested, and the loss per step."""

    net: nn.Module
    ema: Optional[nn.Module] = None
    losses: list = field(default_factory=list)


def sample_times(n: int, t_min: float, T: float, how: str, generator: torch.Generator) -> Tensor:
    """n training times in [t_min, T], uniform or log-uniform -> Tensor[n]."""
    u = torch.rand(n, generator=generator)
    if how == "uniform":
        return t_min + (T - t_min) * u
    if how == "log-uniform":
        return torch.exp(math.log(t_min) + (math.log(T) - math.log(t_min)) * u)
    raise ValueError(f"Unknown t sampling {how!r}; choose one of {T_SAMPLING}.")


def train_dsm(net: nn.Module, sde: VPSDE, data: Tensor, n_steps: int, *, lr: float = 2e-4,
              batch_size: Optional[int] = None, n_noise: int = 1, t_min: float = 1e-3,
              t_sampling: str = "uniform", lr_schedule: str = "cosine", warmup: int = 0,
              grad_clip: Optional[float] = 1.0, ema_decay: Optional[float] = None, seed: int = 0,
              device: str | torch.device = "cpu", progress: bool = True, desc: str = "training") -> TrainResult:
    """Train an eps-prediction network ``net(x, t)`` by denoising score matching.

    Args:
        net: eps-network called as ``net(x, t)`` with ``x`` ``[B, ...]`` and ``t`` ``[B]``; trained in place.
        data: training set ``[N, ...]``.
        n_steps: optimiser steps.
        batch_size: images per step (``None``: the full training set every step).
        n_noise: noise draws per image per step (the batch holds ``batch_size * n_noise`` rows).
        t_sampling: ``"uniform"`` or ``"log-uniform"`` in [t_min, T].
        lr_schedule: ``"cosine"`` (decay to 0) or ``"constant"``, after ``warmup`` linear steps.
        ema_decay: keep an exponential moving average of the weights (returned as ``ema``).
        seed: seeds batches, times and noise; the network's initial weights are the caller's.
    Returns:
        :class:`TrainResult` with the loss of every step.
    """
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}.")
    if not (0 < t_min < sde.T):
        raise ValueError(f"t_min must lie in (0, {sde.T}), got {t_min}.")
    if t_sampling not in T_SAMPLING:
        raise ValueError(f"Unknown t sampling {t_sampling!r}; choose one of {T_SAMPLING}.")
    if lr_schedule not in ("cosine", "constant"):
        raise ValueError(f"Unknown lr_schedule {lr_schedule!r}; choose 'cosine' or 'constant'.")
    device = torch.device(device)
    net.to(device).train()
    data = data.to(device)
    N = data.shape[0]
    bs = N if batch_size is None else min(int(batch_size), N)
    g = torch.Generator().manual_seed(int(seed))
    opt = torch.optim.Adam(net.parameters(), lr=lr)

    def lr_at(step):
        if step < warmup:
            return (step + 1) / warmup
        if lr_schedule == "constant":
            return 1.0
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, n_steps - warmup)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    ema = copy.deepcopy(net).eval().requires_grad_(False) if ema_decay else None
    losses = []
    bar = progress_bar(range(n_steps), desc=desc, disable=not progress)
    for step in bar:
        idx = torch.arange(N) if bs == N else torch.randperm(N, generator=g)[:bs]
        x0 = data[idx.to(device)].repeat_interleave(n_noise, dim=0)
        t = sample_times(x0.shape[0], t_min, sde.T, t_sampling, g).to(device)
        eps = torch.randn(x0.shape, generator=g).to(device)
        xt = _bcast(sde.alpha(t), x0) * x0 + _bcast(sde.sigma(t), x0) * eps
        out = net(xt, t)
        out = out.sample if hasattr(out, "sample") else out
        loss = (out - eps).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip:
            nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
        opt.step()
        sched.step()
        if ema is not None:
            with torch.no_grad():
                for pe, p in zip(ema.parameters(), net.parameters()):
                    pe.lerp_(p, 1 - ema_decay)
        losses.append(loss.item())
        if step % max(1, n_steps // 50) == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
    net.eval()
    return TrainResult(net=net, ema=ema, losses=losses)
