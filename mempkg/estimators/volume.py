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
orthogonal. With N = D and r -> 0, "volume" is the Euler sum sum_k log |det(I + dt dv/du(x_k, t_k))|,
which tends to the integral of the divergence of the ODE's velocity, int div v dt =
log p_model(x) - log p_prior(x_T) (the instantaneous change of variables), only as n_steps grows:
log(1 + dt a) = dt a - (dt a)^2 / 2 + ..., so the sum differs from the integral at first order in
dt. For a Gaussian with variances (2, 1, 0.3, 0.05, 0.01) under the default VP-SDE, t from 1e-3 to
1, where int div v dt = 1/2 sum_j log(m_j(1) / m_j(1e-3)) with m_j = alpha^2 lam_j + sigma^2, the
sum is 2.5% below the integral at 100 steps and 0.25% at 1000 (``tests/test_volume.py`` measures
it). With N < D it is a top-N finite-time Lyapunov sum.

``method="finite"`` (the default) moves the N points on the sphere of radius r, the authors' finite
differences: it computes the paper's score at the paper's r, and it is the faster method (one
forward pass per point and step; ``notebooks/06_performance.py`` measures it against the jvp and
against the authors' loop). ``method="jvp"`` propagates the axes as tangent vectors,
W = q + dt (dv/du) q: the r -> 0 limit, with no cancellation error at tiny r, at several times the
cost of a forward pass per axis (forward-mode products with the math attention kernel).

Layer: estimators (imports mempkg.core only).
"""

from __future__ import annotations

import time
from typing import Optional

import torch
from torch import Tensor

from ..core.progress import announce_eta, bar
from ..core.protocol import autodiff_safe_attention, check_inputs, modules_of
from ..core.tensors import check_choice, image_seeds

METHODS = ("finite", "jvp")
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
                  t_start: float = 1e-3, t_end: float = 1.0, method: str = "finite", measure: str | tuple = "axes",
                  seed=0, cond: Optional[Tensor] = None, max_batch: int = 8192,
                  return_axes: bool = False, progress=False):
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
        method: ``"finite"`` (points on the sphere of radius r: the authors' score, and the faster)
            or ``"jvp"`` (tangent vectors: the r -> 0 limit).
        measure: ``"axes"`` (sum of per-axis log-stretches, the paper's score) or ``"volume"``
            (sum of log |R_ii|, the parallelotope's log-volume); a tuple of them returns
            ``{measure: [B, n_steps]}`` from one pass (the trajectory does not depend on the measure).
        seed: seeds the initial axes: one int for the batch, or a sequence of B ints, one per image
            (an image's axes then do not depend on the rest of the batch).
        cond: optional condition ``[B, ...]``, repeated for every axis.
        max_batch: most rows (image x axis) sent through the model at once.
        return_axes: also return the final unit axes ``[B, N, D]`` (for checks).
        progress: ``True`` (or a label) shows a bar that moves once per Euler step, on stderr, and prints
            the expected time after the first step when the run will take more than a minute.
    """
    check_inputs(model, x, cond)
    B, shape = x.shape[0], tuple(x.shape[1:])
    D = x[0].numel()
    if not (1 <= int(n_axes) <= D):
        raise ValueError(f"n_axes={n_axes} must lie in [1, D] with D = {D} (the data dimension); "
                         f"at most D axes can be orthonormal.")
    check_choice("method", method, METHODS)
    measures = (measure,) if isinstance(measure, str) else tuple(measure)
    if not measures:
        raise ValueError(f"measure must be one of {MEASURES} or a tuple of them, got {measure!r}.")
    for m in measures:
        check_choice("measure", m, MEASURES)
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
    growth = {m: torch.zeros(B, n_steps, dtype=torch.float64) for m in measures}
    per_chunk = max(1, max_batch // (N + 1))                    # images per model call

    desc = progress if isinstance(progress, str) else "volume growth"
    t_begin = time.perf_counter()
    for k in bar(range(n_steps), desc=desc, disable=not progress):
        if k == 1 and progress:
            announce_eta(desc, time.perf_counter() - t_begin, 1, n_steps)
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
        if "axes" in growth:
            growth["axes"][:, k] = W.norm(dim=2).log().sum(1).cpu()    # stretches before re-orthonormalising
        if "volume" in growth:
            growth["volume"][:, k] = r_diag.log().sum(1).cpu()
        axes, centre = Q, new_centre
    cum = {m: g.cumsum(1) for m, g in growth.items()}
    out = cum[measure] if isinstance(measure, str) else cum
    return (out, axes.cpu()) if return_axes else out


def gram_schmidt_longest_first(W: Tensor) -> tuple[Tensor, Tensor]:
    """Modified Gram-Schmidt of the rows of W [N, D], taken longest first, as a Python loop over rows.

    The authors' per-step re-orthonormalisation, written out: sort the stretched axes by length,
    then for i = 1..N subtract from w_(i) its projections on the unit axes e_1 .. e_(i-1) already
    made and normalise. Returns (E [N, D] orthonormal rows in that order, |w_(i)| [N] the lengths
    before orthonormalising, in the same order). :func:`volume_growth` gets the same basis from one
    batched QR of all images' axes; this loop is what that QR replaces.
    """
    lengths = W.norm(dim=1)
    order = sorted(range(W.shape[0]), key=lambda i: float(lengths[i]), reverse=True)
    basis: list[Tensor] = []
    for i in order:
        v = W[i].clone()
        for e in basis:
            v = v - torch.dot(v, e) * e
        basis.append(v / v.norm())
    return torch.stack(basis), lengths[order]


def volume_growth_reference(model, x: Tensor, n_axes: int, radius: float, n_steps: int,
                            t_start: float = 1e-3, t_end: float = 1.0, seed=0) -> Tensor:
    """The authors' loop (Hasegawa & Yasuda's ``growth_rate_calculator.py``), as a reference -> Tensor[B, n_steps].

    One image at a time; at each Euler step the centre and its N axis points x_k + r e_i go through
    the network in **one call** of N + 1 rows (the authors batch all axes of a step, in n_blocks
    blocks, and move the centre in a call of its own: merging the two saves a call per step, so this
    loop is if anything a little faster than theirs); the per-axis log-stretches
    log(|Phi_k(x_k + r e_i) - Phi_k(x_k)| / r) are summed (``measure="axes"``); then the stretched
    axes are re-orthonormalised by :func:`gram_schmidt_longest_first` and put back at radius r.

    It computes what ``volume_growth(..., method="finite", measure="axes")`` computes, from the same
    initial axes (same ``seed``), and differs only in how the work is batched: images one by one
    and a Python Gram-Schmidt, where :func:`volume_growth` sends all images' points through one
    call and orthonormalises by one batched QR. Gram-Schmidt runs in float64 here, as the QR does
    there, so that the two agree to float tolerance. No condition (``cond``) is supported.
    """
    check_inputs(model, x)
    B, shape = x.shape[0], tuple(x.shape[1:])
    D = x[0].numel()
    N, n_steps = int(n_axes), int(n_steps)
    dt = (t_end - t_start) / n_steps
    axes0 = _initial_axes(B, N, D, seed)
    out = torch.zeros(B, n_steps, dtype=torch.float64)
    for b in range(B):
        centre = x[b:b + 1].detach().clone()
        e = axes0[b].to(x.device)
        for k in range(n_steps):
            t = t_start + k * dt
            pts = torch.cat([centre, centre + radius * e.to(x.dtype).reshape(N, *shape)])
            with torch.no_grad():
                moved = pts + dt * _velocity(model, pts, t, None)          # the step's only network call
            diffs = (moved[1:] - moved[:1]).reshape(N, D).double()
            e, lengths = gram_schmidt_longest_first(diffs)
            out[b, k] = torch.log(lengths / radius).sum().cpu()
            centre = moved[:1]
    return out.cumsum(1)
