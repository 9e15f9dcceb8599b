"""Samplers for score models on a VP schedule.

Every sampler has the same signature ``(model, x, ts, cond=None, ...)`` (k-diffusion
style): ``x`` is the starting state at ``ts[0]`` and the result is the state at ``ts[-1]``;
:func:`sample` draws the prior, builds the grid and finishes with a Tweedie denoising step.

Layer: models (imports mempkg.core only).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from ..core.progress import bar as progress_bar
from ..core.protocol import check_score_model, modules_of

SAMPLERS = ("sde", "ode")


@torch.no_grad()
def reverse_sde(model, x: Tensor, ts: Tensor, cond=None, generator: Optional[torch.Generator] = None,
                progress: bool = False) -> Tensor:
    """Euler-Maruyama on the reverse-time SDE (Song et al. 2021, eq. 6), t decreasing:

        x <- x + [1/2 beta x + beta s(x, t)] dt + sqrt(beta dt) z,   dt = t_k - t_{k+1} > 0.
    """
    for k in progress_bar(range(len(ts) - 1), disable=not progress, desc="sampling", unit="step"):
        t, dt = float(ts[k]), float(ts[k] - ts[k + 1])
        beta = float(model.sde.beta(t))
        s = model.score(x, t, cond=cond)
        z = torch.randn(x.shape, generator=generator).to(x)
        x = x + (0.5 * beta * x + beta * s) * dt + (beta * dt) ** 0.5 * z
    return x


@torch.no_grad()
def probability_flow(model, x: Tensor, ts: Tensor, cond=None, progress: bool = False) -> Tensor:
    """Heun's method on the probability-flow ODE dx/dt = -1/2 beta(t) (x + s(x, t)) (eq. 13)."""
    v = lambda x_, t_: model.sde.probability_flow(x_, t_, model.score(x_, t_, cond=cond))  # noqa: E731
    for k in progress_bar(range(len(ts) - 1), disable=not progress, desc="sampling", unit="step"):
        t, t_next = float(ts[k]), float(ts[k + 1])
        h = t_next - t
        d = v(x, t)
        x_pred = x + h * d
        x = x + 0.5 * h * (d + v(x_pred, t_next))
    return x


@torch.no_grad()
def tweedie(model, x: Tensor, t: float, cond=None) -> Tensor:
    """Posterior mean E[x0 | x_t = x] = (x + sigma^2 s(x, t)) / psi(t) (Tweedie's formula)."""
    a, s = float(model.sde.alpha(t)), float(model.sde.sigma(t))
    return (x + s**2 * model.score(x, t, cond=cond)) / a


def sample(model, n: int, shape, *, n_steps: int = 500, t_end: float = 1e-3, method: str = "sde",
           seed: int = 0, cond=None, device: str | torch.device = "cpu", progress: bool = True) -> Tensor:
    """Draw ``n`` samples of per-sample ``shape``: prior at T, ``n_steps`` steps on a uniform
    grid down to ``t_end``, then Tweedie's denoising step -> Tensor[n, *shape] on the CPU."""
    check_score_model(model)
    if method not in SAMPLERS:
        raise ValueError(f"Unknown sampler {method!r}; choose one of {SAMPLERS}.")
    model.sde.check_time(t_end, "t_end")
    mod = modules_of(model)
    if mod is not None:
        mod.eval()
    g = torch.Generator().manual_seed(int(seed))
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    x = torch.randn((n, *shape), generator=g).to(device)
    ts = torch.linspace(model.sde.T, t_end, n_steps + 1, dtype=torch.float64)
    if method == "sde":
        x = reverse_sde(model, x, ts, cond=cond, generator=g, progress=progress)
    else:
        x = probability_flow(model, x, ts, cond=cond, progress=progress)
    return tweedie(model, x, t_end, cond=cond).cpu()
