"""Volume growth along the probability-flow ODE (Hasegawa & Yasuda 2025).

How easily an image is reproduced is read from how much the probability-flow ODE, run
forward in time (image -> noise), expands a small sphere around it: a large expansion means
a large region of noise flows back onto the image. With the Euler step map

    Phi_k(u) = u + dt v(u, t_k),   v(u, t) = -1/2 beta(t) u - 1/2 beta(t) s(u, t),
    t_k = t_start + k dt,   dt = (t_end - t_start) / n_steps,   k = 0 .. n_steps - 1,

N orthonormal axes of length r around x are pushed through each step together with the centre,
their log-stretches are summed, and the axes are re-orthonormalised (longest first) back to
length r before the next step (Benettin's method for Lyapunov exponents):

    measure="axes"   (the paper's score):  L = sum_k sum_i log(|Phi_k(x_k + r q_i) - Phi_k(x_k)| / r)
    measure="volume" (log-volume):         L = sum_k sum_i log |R_ii| / r,   W = Q R (QR of the stretched axes)

By Hadamard's inequality "axes" >= "volume"; they agree when the stretched axes stay
orthogonal. With N = D and r -> 0, "volume" is the integral of the divergence of the ODE's
velocity, i.e. log p_model(x) - log p_prior(x_T) by the instantaneous change of variables;
with N < D it is a top-N finite-time Lyapunov sum.

``method="finite"`` moves the N points on the sphere (the authors' finite differences);
``method="jvp"`` propagates the axes as tangent vectors, W = q + dt (dv/du) q, the r -> 0 limit
with no cancellation error at tiny r.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from .models import autodiff_safe_attention, check_choice, check_inputs, image_seeds, modules_of

METHODS = ("jvp", "finite")
MEASURES = ("axes", "volume")


def _initial_axes(B: int, N: int, D: int, seed) -> Tensor:
    """[B, N, D] orthonormal axes from seeded Gaussian draws (CPU generator: same on every device),
    orthonormalised longest first like the authors' Gram-Schmidt. ``seed``: one int for the batch, or
    B ints, one per image."""
    seeds = image_seeds(seed, B)
    if seeds is not None:
        return torch.cat([_initial_axes(1, N, D, s) for s in seeds])
    g = torch.Generator().manual_seed(int(seed))
    draws = torch.randn(B, N, D, generator=g, dtype=torch.float64)
    Q, _ = _orthonormalise(draws)
    return Q


def _orthonormalise(W: Tensor) -> tuple[Tensor, Tensor]:
    """Gram-Schmidt of the rows of W [B, N, D], longest row first, via QR.

    Returns (Q [B, N, D] orthonormal rows, |diag R| [B, N]). Householder QR of the sorted columns
    spans the same nested subspaces as classical Gram-Schmidt in that order; with the signs fixed
    so that R_ii > 0, Q is exactly the Gram-Schmidt basis and R_ii are its lengths.
    """
    order = W.norm(dim=2).argsort(dim=1, descending=True)
    Ws = torch.gather(W, 1, order[..., None].expand_as(W))
    Q, R = torch.linalg.qr(Ws.transpose(1, 2), mode="reduced")      # [B, D, N], [B, N, N]
    r = R.diagonal(dim1=1, dim2=2)
    # Householder may flip an axis; Gram-Schmidt keeps each axis pointing along its stretched
    # vector. The sign matters for finite differences (x + r q and x - r q flow differently).
    sign = torch.where(r < 0, -1.0, 1.0).to(Q.dtype)
    return (Q * sign[:, None, :]).transpose(1, 2), r.abs()


def _velocity(model, u: Tensor, t: float, cond) -> Tensor:
    return model.sde.probability_flow(u, t, model.score(u, t, cond=cond))


def volume_growth(model, x: Tensor, n_axes: int = 100, radius: float = 0.05, n_steps: int = 1000,
                  t_start: float = 1e-3, t_end: float = 1.0, method: str = "jvp", measure: str = "axes",
                  seed=0, cond: Optional[Tensor] = None, max_batch: int = 8192,
                  return_axes: bool = False):
    """Cumulative log volume growth of every image -> Tensor[B, n_steps] (float64, CPU).

    Column k holds the growth after k + 1 Euler steps; the last column is the score L (the
    paper reports e^L). See the module docstring for the formulas.

    Args:
        model: a score model (``.sde``, ``.score(x, t, cond=None)``).
        x: images ``[B, ...]`` in the model's data space.
        n_axes: N, the number of axes (1 <= N <= D).
        radius: r, the sphere's radius in data units (only used by ``method="finite"``; the
            jvp limit does not depend on it).
        n_steps, t_start, t_end: the uniform Euler grid of the ODE, forward in time.
        method: ``"jvp"`` (tangent vectors) or ``"finite"`` (points on the sphere).
        measure: ``"axes"`` (sum of per-axis log-stretches, the paper's score) or ``"volume"``
            (sum of log |R_ii|, the parallelotope's log-volume).
        seed: seeds the initial axes: one int for the batch, or a sequence of B ints, one per image
            (an image's axes then do not depend on the rest of the batch).
        cond: optional condition ``[B, ...]``, repeated for every axis.
        max_batch: most rows (image x axis) sent through the model at once.
        return_axes: also return the final unit axes ``[B, N, D]`` (for checks).
    """
    check_inputs(model, x, cond)
    B, shape = x.shape[0], tuple(x.shape[1:])
    D = x[0].numel()
    if not (1 <= int(n_axes) <= D):
        raise ValueError(f"n_axes={n_axes} must lie in [1, D] with D = {D} (the data dimension); "
                         f"at most D axes can be orthonormal.")
    check_choice("method", method, METHODS)
    check_choice("measure", measure, MEASURES)
    if not radius > 0:
        raise ValueError(f"radius must be positive, got {radius}.")
    if int(n_steps) < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}.")
    model.sde.check_time(t_start, "t_start")
    model.sde.check_time(t_end, "t_end")
    if not t_start < t_end:
        raise ValueError(f"t_start={t_start} must be smaller than t_end={t_end}: the ODE runs image -> noise.")

    N, n_steps = int(n_axes), int(n_steps)
    dt = (t_end - t_start) / n_steps
    dtype, device = x.dtype, x.device
    mod = modules_of(model)
    if mod is not None:
        mod.eval()
    axes = _initial_axes(B, N, D, seed).to(device)              # unit axes, float64
    centre = x.detach().clone()
    growth = torch.zeros(B, n_steps, dtype=torch.float64)
    per_chunk = max(1, max_batch // (N + 1))                    # images per model call

    for k in range(n_steps):
        t = t_start + k * dt
        new_centre = torch.empty_like(centre)
        W = torch.empty(B, N, D, dtype=torch.float64, device=device)
        for s in range(0, B, per_chunk):
            sl = slice(s, min(s + per_chunk, B))
            b = sl.stop - sl.start
            c = centre[sl]
            q = axes[sl].to(dtype).reshape(b * N, *shape)
            cc = cond[sl].repeat_interleave(N, dim=0) if cond is not None else None
            if method == "finite":
                pts = torch.cat([c, c.repeat_interleave(N, dim=0) + radius * q])
                ccat = torch.cat([cond[sl], cc]) if cond is not None else None
                with torch.no_grad():
                    out = pts + dt * _velocity(model, pts, t, ccat)
                new_c = out[:b]
                diff = (out[b:].reshape(b, N, D) - new_c.reshape(b, 1, D)).double() / radius
            else:
                f = lambda u: _velocity(model, u, t, cc)        # noqa: E731
                with autodiff_safe_attention(mod), torch.no_grad():
                    _, Jq = torch.func.jvp(f, (c.repeat_interleave(N, dim=0),), (q,))
                    new_c = c + dt * _velocity(model, c, t, cond[sl] if cond is not None else None)
                diff = (q + dt * Jq).reshape(b, N, D).double()
            new_centre[sl] = new_c
            W[sl] = diff
        Q, r_diag = _orthonormalise(W)
        if measure == "axes":
            step = W.norm(dim=2).log().sum(1)                    # stretches before re-orthonormalising
        else:
            step = r_diag.log().sum(1)
        growth[:, k] = step.cpu()
        axes, centre = Q, new_centre
    cum = growth.cumsum(1)
    return (cum, axes.cpu()) if return_axes else cum


def volume_growth_reference(model, x: Tensor, n_axes: int, radius: float, n_steps: int,
                            t_start: float = 1e-3, t_end: float = 1.0, seed: int = 0,
                            axes_per_call: int = 1) -> Tensor:
    """The authors' approach, kept as a slow reference: one image at a time, the axes' points
    moved by finite differences in a per-axis loop, Python Gram-Schmidt longest first, per-axis
    log-stretches summed (``measure="axes"``). ``axes_per_call`` groups axis points into one
    model call (the authors' code uses blocks of n_axes / n_blocks). Same axes draw as
    :func:`volume_growth` -> Tensor[B, n_steps]."""
    B, shape = x.shape[0], tuple(x.shape[1:])
    D = x[0].numel()
    dt = (t_end - t_start) / n_steps
    axes0 = _initial_axes(B, n_axes, D, seed)
    out = torch.zeros(B, n_steps, dtype=torch.float64)
    for b in range(B):
        centre = x[b:b + 1].detach().clone()
        pts = centre + radius * axes0[b].to(x.dtype).reshape(n_axes, *shape)
        for k in range(n_steps):
            t = t_start + k * dt
            with torch.no_grad():
                new_centre = centre + dt * _velocity(model, centre, t, None)
                new_pts = torch.cat([p + dt * _velocity(model, p, t, None)
                                     for p in pts.split(max(1, int(axes_per_call)))])
            diffs = (new_pts - new_centre).reshape(n_axes, D).double()
            out[b, k] = sum(torch.log(diffs[i].norm() / radius) for i in range(n_axes))
            order = sorted(range(n_axes), key=lambda i: float(diffs[i].norm()), reverse=True)
            basis = []
            for i in order:
                v = diffs[i].clone()
                for e in basis:
                    v = v - torch.dot(v, e) * e
                basis.append(v / v.norm())
            pts = new_centre + radius * torch.stack(basis).to(x.dtype).reshape(n_axes, *shape)
            centre = new_centre
    return out.cumsum(1)
