"""Local intrinsic dimension of a diffusion model's manifold: FLIPD (Kamkari et al. 2024).

For a diffusion with transition kernel N(psi(t) x0, sigma(t)^2 I) and score s(x, t),

    FLIPD(x, t0) = D + sigma(t0)^2 [ tr grad s(psi(t0) x, t0) + |s(psi(t0) x, t0)|^2 ]   (FLIPD paper, eq. 9)

with the score evaluated at the *scaled clean point* psi(t0) x: no noise is drawn. With an
eps-network (s = -eps / sigma) this is D - sigma tr(d eps / dy) + |eps|^2 at y = psi(t0) x.
Ross, Kamkari et al. (2024) read memorization as FLIPD ~ 0 at a training point: the model's
manifold has collapsed onto the point. FLIPD can be negative or exceed D with a trained
network; rankings are what the memorization experiments use.

The trace is exact (D Jacobian-vector products, one per basis vector) when ``n_probes`` is
None, or Hutchinson's estimate tr A ~ 1/K sum_k v_k^T A v_k with K seeded probes.
Rows (image, tangent) are batched together and processed ``max_batch`` at a time.

Layer: estimators (imports mempkg.core only).
"""

from __future__ import annotations

import time
from typing import Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from ..core.progress import announce_eta, bar
from ..core.protocol import autodiff_safe_attention, check_inputs, modules_of
from ..core.tensors import check_choice, image_seeds

PROBES = ("rademacher", "gaussian")
METHODS = ("jvp", "vjp")


def _probes(shape, n: int, kind: str, seed: int) -> Tensor:
    """[n, *shape] probes with E[v v^T] = I, drawn on the CPU so every device gets the same ones."""
    g = torch.Generator().manual_seed(int(seed))
    if kind == "gaussian":
        return torch.randn((n, *shape), generator=g, dtype=torch.float64)
    return torch.randint(0, 2, (n, *shape), generator=g).to(torch.float64) * 2 - 1


def _score_and_quadratic(model, y: Tensor, v: Tensor, t0: float, cond, method: str):
    """s(y) and v^T (grad s)(y) v for matched rows y [R, ...], v [R, ...] -> ([R, ...], [R])."""
    if method == "jvp":
        f = lambda y_: model.score(y_, t0, cond=cond)   # noqa: E731
        with autodiff_safe_attention(modules_of(model)), torch.no_grad():
            s, Jv = torch.func.jvp(f, (y,), (v,))
        return s, (v * Jv).flatten(1).sum(1)
    # reverse mode: v^T J (J^T v = grad of <s, v>); works with any attention kernel
    with torch.enable_grad():
        y_ = y.detach().requires_grad_(True)
        s = model.score(y_, t0, cond=cond)
        (vJ,) = torch.autograd.grad(s, y_, grad_outputs=v)
    return s.detach(), (vJ * v).flatten(1).sum(1)


def flipd(model, x: Tensor, t0: float, n_probes: Optional[int] = None, cond: Optional[Tensor] = None,
          seed=0, probe: str = "rademacher", method: str = "vjp", max_batch: int = 4096, progress=False) -> Tensor:
    """FLIPD(x, t0) for every image of a batch -> Tensor[B] (float64, on the CPU).

    Args:
        model: a score model (``.sde`` and ``.score(x, t, cond=None)``; see :mod:`mempkg.models.adapters`).
        x: clean data ``[B, ...]`` in the model's data space.
        t0: time at which the score is read; must lie in (0, T] of ``model.sde``.
        n_probes: ``None`` for the exact trace (D JVPs per image), else the number of
            Hutchinson probes per image (1 is the memorization setting).
        cond: optional condition ``[B, ...]`` passed to ``model.score`` (e.g. a caption embedding).
        seed: seeds the probes; the same seed gives the same numbers. An int seeds the batch's
            B * K probes together; a sequence of B ints seeds each image's K probes on its own
            (its value then does not depend on the rest of the batch).
        probe: ``"rademacher"`` (lower variance) or ``"gaussian"``.
        method: ``"vjp"`` (reverse mode: one forward and one backward pass per tangent, ~2-3
            forward passes on CPU; the default) or ``"jvp"`` (forward mode through
            ``torch.func.jvp`` with the math attention kernel; slower on CPU, see
            ``benchmarks/flipd_cost.py``). Both give the same numbers.
        max_batch: most (image, tangent) rows sent through the model at once.
        progress: ``True`` (or a label) shows a bar that moves once per block of ``max_batch`` rows, on
            stderr, and prints the expected time after the first block when it will take more than a minute.
    """
    check_inputs(model, x, cond)
    check_choice("probe", probe, PROBES)
    check_choice("method", method, METHODS)
    if n_probes is not None and int(n_probes) < 1:
        raise ValueError(f"n_probes must be None (exact trace) or a positive integer, got {n_probes}.")
    model.sde.check_time(t0, "t0")
    t0 = float(t0)

    B, shape = x.shape[0], tuple(x.shape[1:])
    D = int(np.prod(shape))
    alpha, sigma = float(model.sde.alpha(t0)), float(model.sde.sigma(t0))
    y = alpha * x

    if n_probes is None:            # exact: tangents are the D basis vectors
        K = D
        tangents = torch.eye(D, dtype=x.dtype, device=x.device).reshape(D, *shape)
    else:
        K = int(n_probes)
        seeds = image_seeds(seed, B)
        tangents = (_probes(shape, B * K, probe, seed) if seeds is None
                    else torch.cat([_probes(shape, K, probe, s) for s in seeds]))
        tangents = tangents.to(dtype=x.dtype, device=x.device)

    trace = torch.zeros(B * K, dtype=torch.float64)
    snorm = torch.zeros(B, dtype=torch.float64)
    mod = modules_of(model)
    was_training = mod.training if mod is not None else False
    if mod is not None:
        mod.eval()
    try:
        starts = range(0, B * K, max_batch)
        desc = progress if isinstance(progress, str) else "FLIPD"
        t_begin = time.perf_counter()
        for i, start in enumerate(bar(starts, desc=desc, disable=not progress)):
            if i == 1 and progress:
                announce_eta(desc, time.perf_counter() - t_begin, 1, len(starts))
            rows = torch.arange(start, min(start + max_batch, B * K), device=x.device)
            img = rows // K
            v = tangents[rows % K] if n_probes is None else tangents[rows]
            c = cond[img] if cond is not None else None
            s, q = _score_and_quadratic(model, y[img], v, t0, c, method)
            trace[rows.cpu()] = q.detach().double().cpu()
            first = (rows % K == 0)                      # |s|^2 once per image
            if first.any():
                snorm[img[first].cpu()] = s[first].detach().double().flatten(1).pow(2).sum(1).cpu()
    finally:
        if mod is not None and was_training:
            mod.train()
    tr = trace.view(B, K).sum(1) if n_probes is None else trace.view(B, K).mean(1)
    return D + sigma**2 * (tr + snorm)


def flipd_curve(model, x: Tensor, t0s: Sequence[float], **kwargs) -> Tensor:
    """FLIPD over a grid of t0 -> Tensor[len(t0s), B]; keyword arguments go to :func:`flipd`."""
    return torch.stack([flipd(model, x, float(t0), **kwargs) for t0 in t0s])


def find_knee(t0s: Sequence[float], values: Sequence[float], log_x: bool = True) -> int:
    """Index of the knee of a curve by the kneedle rule (Satopaa et al. 2011).

    Both axes are rescaled to [0, 1] (x = log t0 when ``log_x``); the knee is the point
    farthest from the chord joining the curve's end points. Kamkari et al. choose t0 at
    the knee of FLIPD(t0); for a well-trained model FLIPD is flat around the true
    dimension to the left of it.
    """
    x = np.log(np.asarray(t0s, float)) if log_x else np.asarray(t0s, float)
    y = np.asarray(values, float)
    if x.shape != y.shape or x.size < 3:
        raise ValueError("find_knee needs matching t0s and values with at least 3 points.")
    if not np.all(np.isfinite(y)):
        raise ValueError("find_knee got non-finite FLIPD values.")
    xn = (x - x[0]) / (x[-1] - x[0])
    span = y.max() - y.min()
    yn = (y - y.min()) / span if span > 0 else np.zeros_like(y)
    chord = yn[0] + (yn[-1] - yn[0]) * xn
    return int(np.argmax(np.abs(yn - chord)))
