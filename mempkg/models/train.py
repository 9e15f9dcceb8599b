"""Denoising score matching for the VP-SDE (Song et al. 2021, eq. 7; Ho et al. 2020 eps-loss).

    L(theta) = E_{t, x0, eps} | eps_theta(psi(t) x0 + sigma(t) eps, t) - eps |^2,

with t drawn uniformly or log-uniformly in [t_min, T]. Log-uniform draws spend more of the
budget at small t, where the score of a memorizing model is sharp and learned last
(``../shared/papers/NOTES.md``, von Mises toy: uniform t needs ~3x the steps).

**Resuming.** With ``checkpoint=path`` a run saves everything it needs to continue every
``checkpoint_every`` steps and at the end (atomically: temporary file, fsync, ``os.replace``)
and, when the file exists at the start, continues from it. A resumed run ends with exactly
the weights and losses of an uninterrupted one (same seed, same device): the batch/time/noise
generator, the global RNG (dropout), the optimiser, the LR schedule and the EMA are all saved.
The file also records the run's settings (hyper-parameters, schedule, a hash of the training
data and of the network's initial weights); a checkpoint from a different run is never
resumed silently: :class:`CheckpointMismatch` says what differs.

Layer: models (imports mempkg.core only).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import torch
from torch import Tensor, nn

from ..core.files import atomic_write
from ..core.progress import bar as progress_bar
from ..core.schedules import VPSDE
from ..core.tensors import bcast, tensor_sha256
from .adapters import EpsModel

CHECKPOINT_FORMAT = 1

T_SAMPLING = ("log-uniform", "uniform")


@dataclass
class TrainResult:
    """The trained network (raw weights), its EMA copy if requested, and the loss per step."""

    net: nn.Module
    ema: Optional[nn.Module] = None
    losses: list = field(default_factory=list)
    resumed_from: int = 0          # the step a checkpoint let this run start at (0: from scratch)


class CheckpointMismatch(ValueError):
    """A training checkpoint was written by a run with other settings."""


def sample_times(n: int, t_min: float, T: float, how: str, generator: torch.Generator) -> Tensor:
    """n training times in [t_min, T], uniform or log-uniform -> Tensor[n]."""
    u = torch.rand(n, generator=generator)
    if how == "uniform":
        return t_min + (T - t_min) * u
    if how == "log-uniform":
        return torch.exp(math.log(t_min) + (math.log(T) - math.log(t_min)) * u)
    raise ValueError(f"Unknown t sampling {how!r}; choose one of {T_SAMPLING}.")


def _dropout_seed(seed: int) -> int:
    """Seed of the global RNG during training (dropout), derived from ``seed`` but not equal to
    it, so that its stream is not the batch generator's."""
    return int(hashlib.sha256(f"mempkg.train_dsm.dropout.{int(seed)}".encode()).hexdigest()[:15], 16)


def load_checkpoint(path: str | Path) -> dict:
    """A training checkpoint written by :func:`train_dsm` or :func:`mempkg.models.edm.train_edm` (tensors on the
    CPU)."""
    try:
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as e:                                   # noqa: BLE001 -- any unreadable file
        raise ValueError(f"Cannot read the training checkpoint {path} ({type(e).__name__}: {e}); "
                         "delete it to train from scratch.") from e
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a mempkg training checkpoint (format {CHECKPOINT_FORMAT}); "
                         "delete it or pass another checkpoint path.")
    return state


def train_dsm(net: nn.Module, sde: VPSDE, data: Tensor, n_steps: int, *, lr: float = 2e-4,
              batch_size: Optional[int] = None, n_noise: int = 1, t_min: float = 1e-3,
              t_sampling: str = "uniform", lr_schedule: str = "cosine", warmup: int = 0,
              grad_clip: Optional[float] = 1.0, ema_decay: Optional[float] = None, seed: int = 0,
              device: str | torch.device = "cpu", progress: bool = True, desc: str = "training",
              checkpoint: str | Path | None = None, checkpoint_every: int = 1000,
              callback: Optional[Callable[[int, float], None]] = None) -> TrainResult:
    """Train an eps-prediction network ``net(x, t)`` by denoising score matching.

    Args:
        net: eps-network called as ``net(x, t)`` with ``x`` ``[B, ...]`` and ``t`` ``[B]``; trained in place.
            An :class:`~mempkg.models.adapters.EpsModel` (e.g. from ``image_score_model``) is trained through
            its ``eps(x, t)``, so the network sees the labels ``t * time_scale`` it is evaluated with.
        data: training set ``[N, ...]``.
        n_steps: optimiser steps.
        batch_size: images per step (``None``: the full training set every step).
        n_noise: noise draws per image per step (the batch holds ``batch_size * n_noise`` rows).
        t_sampling: ``"uniform"`` or ``"log-uniform"`` in [t_min, T].
        lr_schedule: ``"cosine"`` (decay to 0) or ``"constant"``, after ``warmup`` linear steps.
        ema_decay: keep an exponential moving average of the weights (returned as ``ema``).
        seed: seeds batches, times and noise (a private generator) and, through a seed derived from
            it, the global RNG that dropout draws from while training (the caller's global RNG state
            is restored afterwards); the network's initial weights are the caller's.
        checkpoint: file to save the full training state to every ``checkpoint_every`` steps and at
            the end, and to resume from when it exists (see the module docstring). A checkpoint of a
            run with other settings raises :class:`CheckpointMismatch` (delete it to start over).
        callback: ``callback(step, loss)`` after every step (``step`` counts completed steps) and its
            checkpoint; an exception raised from it stops training, which resumes from the last
            checkpoint when called again.
    Returns:
        :class:`TrainResult` with the loss of every step (all ``n_steps`` of them after a resume).
    """
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}.")
    if not (0 < t_min < sde.T):
        raise ValueError(f"t_min must lie in (0, {sde.T}), got {t_min}.")
    if t_sampling not in T_SAMPLING:
        raise ValueError(f"Unknown t sampling {t_sampling!r}; choose one of {T_SAMPLING}.")
    eps_net = net.eps if isinstance(net, EpsModel) else net

    def step_loss(x0: Tensor, g: torch.Generator) -> Tensor:
        # eps-loss at x_t = psi(t) x0 + sigma(t) eps; t, then eps, drawn from g (after the batch)
        t = sample_times(x0.shape[0], t_min, sde.T, t_sampling, g).to(x0.device)
        eps = torch.randn(x0.shape, generator=g).to(x0.device)
        xt = bcast(sde.alpha(t), x0) * x0 + bcast(sde.sigma(t), x0) * eps
        out = eps_net(xt, t)
        out = out.sample if hasattr(out, "sample") else out
        return (out - eps).pow(2).mean()

    def settings(bs: int) -> dict:
        return dict(
            n_steps=int(n_steps), lr=float(lr), batch_size=int(bs), n_noise=int(n_noise), t_min=float(t_min),
            t_sampling=t_sampling, lr_schedule=lr_schedule, warmup=int(warmup),
            grad_clip=float(grad_clip) if grad_clip else None, ema_decay=float(ema_decay) if ema_decay else None,
            seed=int(seed), sde=sde.config() if hasattr(sde, "config") else repr(sde),
            net=type(net).__name__, time_scale=getattr(net, "time_scale", None))

    return train_loop(net, step_loss, data, n_steps, settings=settings, lr=lr, batch_size=batch_size,
                      n_noise=n_noise, lr_schedule=lr_schedule, warmup=warmup, grad_clip=grad_clip,
                      ema_decay=ema_decay, seed=seed, device=device, progress=progress, desc=desc,
                      checkpoint=checkpoint, checkpoint_every=checkpoint_every, callback=callback)


def train_loop(net: nn.Module, step_loss: Callable[[Tensor, torch.Generator], Tensor], data: Tensor, n_steps: int, *,
         settings: Callable[[int], dict], lr: float, batch_size: Optional[int], n_noise: int, lr_schedule: str,
         warmup: int, grad_clip: Optional[float], ema_decay: Optional[float], seed: int,
         device: str | torch.device, progress: bool, desc: str, checkpoint: str | Path | None,
         checkpoint_every: int, callback: Optional[Callable[[int, float], None]]) -> TrainResult:
    """The training loop shared by :func:`train_dsm` and :func:`mempkg.models.edm.train_edm`; only the loss differs.

    Each step draws a batch of ``bs = min(batch_size, N)`` rows of ``data`` ``[N, ...]`` (all of them,
    in order, when ``bs == N``; else ``randperm(N, generator=g)[:bs]``), repeats every row ``n_noise``
    times -> ``x0`` ``[bs * n_noise, ...]`` on ``device``, and minimises ``step_loss(x0, g)`` (a scalar;
    it draws its times/noise levels and noise from ``g``, the private CPU generator seeded by ``seed``,
    after the batch) with Adam at

        lr(step) = lr (step + 1) / warmup                                       for step < warmup,
                 = lr                                                           ("constant"),
                 = lr (1 + cos(pi (step - warmup) / max(1, n_steps - warmup))) / 2   ("cosine"),

    gradients clipped to norm ``grad_clip`` (if set), and the EMA (if ``ema_decay``) updated as
    ``ema <- ema + (1 - ema_decay) (net - ema)``. ``net`` (every parameter of it is trained, in place)
    ends in eval mode.

    ``settings(bs)`` gives the run's hyper-parameters (plain literals); it is called only with a
    ``checkpoint``, and the data's shape and hash and the hash of ``net``'s initial weights are
    appended to it. A checkpoint whose settings differ raises :class:`CheckpointMismatch`. The other
    arguments, the resuming and the RNG handling are as documented in :func:`train_dsm` (and the
    module docstring); the caller validates ``n_steps`` and its own options first.
    """
    if lr_schedule not in ("cosine", "constant"):
        raise ValueError(f"Unknown lr_schedule {lr_schedule!r}; choose 'cosine' or 'constant'.")
    if checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be >= 1, got {checkpoint_every}.")
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
    losses: list = []
    start, state = 0, None
    cuda = device.type == "cuda"
    rng_devices = [device.index if device.index is not None else torch.cuda.current_device()] if cuda else []
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if ckpt is not None:
        run_settings = _json_plain(dict(
            settings(bs), data_shape=list(data.shape), data_sha256=tensor_sha256(data),
            init_sha256=tensor_sha256(net.state_dict())))
        state = load_checkpoint(ckpt) if ckpt.exists() else None
        if state is not None:
            old = state["settings"]
            diff = [f"{k}: {old.get(k)!r} -> {run_settings.get(k)!r}"
                    for k in sorted(set(old) | set(run_settings)) if old.get(k) != run_settings.get(k)]
            if diff:
                raise CheckpointMismatch(f"The training checkpoint {ckpt} belongs to another run ({'; '.join(diff)}); "
                                         "delete it to train from scratch, or pass another checkpoint path.")
            net.load_state_dict(state["net"])
            if ema is not None:
                ema.load_state_dict(state["ema"])
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            g.set_state(state["generator"])
            losses = list(state["losses"])
            start = int(state["step"])

    def save(step):
        atomic_write(ckpt, lambda f: torch.save({
            "format": CHECKPOINT_FORMAT, "settings": run_settings, "step": step,
            "net": net.state_dict(), "ema": ema.state_dict() if ema is not None else None,
            "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "generator": g.get_state(),
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state(rng_devices[0]) if cuda else None,
            "losses": list(losses), "torch_version": str(torch.__version__)}, f))

    # Dropout draws from the global RNG: fork it (the caller's state comes back afterwards), seed it
    # from `seed`, and save/restore it with the checkpoint so that a resumed run draws the same masks.
    with torch.random.fork_rng(devices=rng_devices):
        if state is not None:
            torch.set_rng_state(state["rng_cpu"])
            if cuda and state.get("rng_cuda") is not None:
                torch.cuda.set_rng_state(state["rng_cuda"], rng_devices[0])
        else:
            torch.random.default_generator.manual_seed(_dropout_seed(seed))
            if cuda:
                torch.cuda.manual_seed(_dropout_seed(seed))
        steps = range(start, n_steps)               # empty when resuming a finished run's checkpoint
        bar = progress_bar(steps, desc=desc if start == 0 else f"{desc} (resumed at {start})", disable=not progress,
                           unit="step")
        for step in bar:
            idx = torch.arange(N) if bs == N else torch.randperm(N, generator=g)[:bs]
            x0 = data[idx.to(device)].repeat_interleave(n_noise, dim=0)
            loss = step_loss(x0, g)
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
                bar.set_postfix(loss=f"{losses[-1]:.4f}", refresh=False)
            if ckpt is not None and ((step + 1) % checkpoint_every == 0 or step + 1 == n_steps):
                save(step + 1)
            if callback is not None:
                callback(step + 1, losses[-1])
    net.eval()
    return TrainResult(net=net, ema=ema, losses=losses, resumed_from=start)


def _json_plain(obj):
    """``obj`` as plain JSON types (tuples become lists), so stored and fresh settings compare equal."""
    return json.loads(json.dumps(obj))


def train_cached(cache, name: str, build: Callable[[], nn.Module], net_config: dict, sde: VPSDE,
                 data: Tensor, n_steps: int, *, seed: int = 0, device: str | torch.device = "cpu",
                 weights: str = "raw", **train_kwargs):
    """Train with :func:`train_dsm` once and cache the weights; resume after an interruption.

    The cache key holds ``net_config`` (a plain description of what ``build()`` makes), the
    architecture of the network ``build()`` makes (:meth:`mempkg.book.cache.Cache.model_params`), the
    schedule, every training setting, the seed and a hash of the training data, so changing
    any of them trains a new model. Checkpoints go to ``cache.checkpoint_path`` while training.

    Returns:
        (network in eval mode holding the ``weights`` asked for -- ``"raw"`` or ``"ema"`` --,
        history ``{"losses": [...]}``).
    """
    settings = {k: v for k, v in train_kwargs.items() if k not in ("progress", "desc")}   # not results
    params = dict(net=net_config, sde=sde.config(), n_steps=int(n_steps), train=settings, seed=int(seed),
                  data_sha256=tensor_sha256(data), data_shape=list(data.shape))
    params = cache.model_params(params, build)           # the key holds the network as built
    ckpt = cache.checkpoint_path(name, params)

    def fit(net):
        return train_dsm(net, sde, data, n_steps, seed=seed, device=device, checkpoint=ckpt, desc=name,
                         **train_kwargs)

    net, history = cache.model(name, params, build, fit, weights=weights)
    return net.to(device).eval(), history
