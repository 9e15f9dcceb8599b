"""Two calm ends and the wild middle (Dodson et al. 2026): where in noise memorization lives.

Data X ~ p in R^d, noisy Y = X + sigma Z, training set {x_1 .. x_N}. The *empirical optimal
denoiser* -- the posterior mean when the data distribution is the training set itself -- is

    m_sigma(y) = sum_i w_i(y, sigma) x_i,   w_i(y, sigma) = softmax_i(-|y - x_i|^2 / (2 sigma^2)).

Two quantities locate the regimes, both over held-out X:

* **max posterior weight** W_sigma = E[max_i w_i(X + sigma Z, sigma)] -- posterior concentration:
  ~1 when one training image explains the noisy query (small sigma), ~0 when many do;
* **Gaussian-shell coverage** C_sigma = P(X + sigma Z in union_i Sh_sigma(x_i)) -- whether the
  noisy query falls where training supervised the denoiser. The paper does not define the
  shell; here Sh_sigma(x_i) = {y : sigma r_lo <= |y - x_i| <= sigma r_hi}, with r_lo^2, r_hi^2 the
  alpha/2 and 1 - alpha/2 quantiles of chi^2_d: the central (1 - alpha) band of sigma |Z| around
  x_i, where noisy copies of x_i concentrate.

Small sigma: low coverage (queries fall outside every shell); large sigma: low concentration
(near-linear denoising); the **danger zone** is the middle band where both are high.

All sigmas are computed from one set of distances per noise draw: with q = x - x_i,

    |x + sigma z - x_i|^2 = |q|^2 + 2 sigma <q, z> + sigma^2 |z|^2,

so two matrix products per query chunk serve the whole sigma grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from .memorization import copies


def _flat(x: Tensor) -> Tensor:
    return x.reshape(x.shape[0], -1).double()


def squared_distances(queries: Tensor, train: Tensor) -> Tensor:
    """|q - x_i|^2 for every pair -> [Q, N] (float64), by |q|^2 - 2 q.x_i + |x_i|^2, clamped at 0."""
    q, r = _flat(queries), _flat(train)
    return (q.pow(2).sum(1, keepdim=True) - 2 * q @ r.T + r.pow(2).sum(1)).clamp_min(0)


def log_posterior_weights(y: Tensor, train: Tensor, sigma: float) -> Tensor:
    """log w_i(y, sigma) = log_softmax_i(-|y - x_i|^2 / (2 sigma^2)) -> [Q, N] (float64).

    In log space, so sigma = 1e-3 and sigma = 80 give neither NaN nor underflow."""
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}.")
    return torch.log_softmax(-squared_distances(y, train) / (2 * float(sigma) ** 2), dim=1)


class EmpiricalDenoiser:
    """The empirical optimal denoiser m_sigma(y) = sum_i w_i(y, sigma) x_i of a training set
    ``[N, ...]``; called as ``denoiser(y, sigma)`` with ``y`` ``[Q, ...]`` -> ``[Q, ...]``.
    Queries are processed ``chunk`` at a time."""

    def __init__(self, train: Tensor, chunk: int = 1024):
        self.train = train
        self.chunk = int(chunk)

    def __call__(self, y: Tensor, sigma: float) -> Tensor:
        flat = _flat(self.train)
        out = [torch.exp(log_posterior_weights(yc, self.train, sigma)) @ flat for yc in y.split(self.chunk)]
        return torch.cat(out).reshape(y.shape).to(y.dtype)


def shell_radii(d: int, alpha: float = 0.01) -> tuple[float, float]:
    """(r_lo, r_hi): sigma r_lo <= |sigma Z| <= sigma r_hi with probability 1 - alpha, Z ~ N(0, I_d)."""
    from scipy.stats import chi2

    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}.")
    return math.sqrt(chi2.ppf(alpha / 2, d)), math.sqrt(chi2.ppf(1 - alpha / 2, d))


@dataclass
class Regimes:
    """W_sigma and C_sigma on a grid of sigma (each ``[S]``), with the shell used."""

    sigmas: np.ndarray
    W: np.ndarray
    C: np.ndarray
    alpha: float
    r_lo: float
    r_hi: float

    def danger_zone(self, threshold: float = 0.5) -> tuple[float, float]:
        return danger_zone(self.sigmas, self.W, self.C, threshold)


def weight_and_coverage(heldout: Tensor, train: Tensor, sigmas: Sequence[float], alpha: float = 0.01,
                        n_draws: int = 1, seed: int = 0, chunk: int = 256) -> Regimes:
    """Max posterior weight W_sigma and shell coverage C_sigma over held-out points, every sigma at once.

    Args:
        heldout: X, ``[Q, ...]``; train: {x_i}, ``[N, ...]`` (same trailing shape).
        sigmas: the noise grid (S values > 0).
        alpha: the shell is the central (1 - alpha) band of sigma |Z| (see the module docstring).
        n_draws: noise draws Z per held-out point (the expectations average over them).
        seed: seeds the draws (CPU generator: the same on every device).
        chunk: held-out points per pass; memory is O(chunk * N) float64 per array.
    Returns:
        :class:`Regimes` with ``W`` and ``C`` of shape ``[S]``.
    """
    sig = np.asarray(sigmas, dtype=float)
    if sig.ndim != 1 or len(sig) == 0 or not np.all(sig > 0):
        raise ValueError("sigmas must be a non-empty 1-D sequence of positive numbers.")
    X, T = _flat(heldout), _flat(train)
    if X.shape[1] != T.shape[1]:
        raise ValueError(f"held-out points have {X.shape[1]} features, training points {T.shape[1]}.")
    d = X.shape[1]
    r_lo, r_hi = shell_radii(d, alpha)
    g = torch.Generator().manual_seed(int(seed))
    T = T.to(heldout.device)
    t2 = T.pow(2).sum(1)
    W = torch.zeros(len(sig), dtype=torch.float64)
    C = torch.zeros(len(sig), dtype=torch.float64)
    s_t = torch.tensor(sig, dtype=torch.float64)
    e_lo, e_hi = -0.5 * r_hi**2, -0.5 * r_lo**2
    for _ in range(int(n_draws)):
        for Xc in X.to(heldout.device).split(int(chunk)):
            Z = torch.randn(Xc.shape, generator=g, dtype=torch.float64).to(Xc.device)
            q2 = (Xc.pow(2).sum(1, keepdim=True) - 2 * Xc @ T.T + t2).clamp_min(0)   # |x - x_i|^2   [c, N]
            qz = (Xc * Z).sum(1, keepdim=True) - Z @ T.T                              # <x - x_i, z>  [c, N]
            z2 = Z.pow(2).sum(1, keepdim=True)                                        # |z|^2         [c, 1]
            e = torch.empty_like(q2)
            for j, s in enumerate(s_t.tolist()):
                # e_i = -(|q_i|^2 + 2 sigma <q_i, z>) / (2 sigma^2) = -|y - x_i|^2 / (2 sigma^2) + |z|^2 / 2:
                # the per-row constant cancels in the softmax. Written into one buffer, since the
                # sigma loop is memory-bound; log_softmax is a fused kernel (logsumexp is ~5x slower).
                torch.add(q2, qz, alpha=2 * s, out=e).mul_(-0.5 / (s * s))
                W[j] += torch.log_softmax(e, dim=1).amax(1).exp().sum().cpu()
                # y is in the shell of x_i iff -|y - x_i|^2 / (2 sigma^2) lies in [-r_hi^2/2, -r_lo^2/2],
                # whatever sigma. The nearest training point decides unless it lies inside the inner
                # radius; only those rows need a full scan.
                top = e.amax(1) - 0.5 * z2[:, 0]                       # -d_min^2 / (2 sigma^2)
                covered = (top >= e_lo) & (top <= e_hi)
                inner = top > e_hi
                if inner.any():
                    ei = e[inner] - 0.5 * z2[inner]
                    covered[inner] = ((ei >= e_lo) & (ei <= e_hi)).any(1)
                C[j] += covered.double().sum().cpu()
    n = X.shape[0] * int(n_draws)
    return Regimes(sig, (W / n).numpy(), (C / n).numpy(), float(alpha), r_lo, r_hi)


def danger_zone(sigmas, W, C, threshold: float = 0.5) -> tuple[float, float]:
    """The band of sigma where both W and C exceed ``threshold`` -> (sigma_low, sigma_high).

    The crossings are interpolated linearly in log sigma between grid points (the band spans
    only a few points of a log grid). Returns (nan, nan) when min(W, C) never reaches the
    threshold; the widest contiguous band is returned when there are several.
    """
    s, m = np.log(np.asarray(sigmas, float)), np.minimum(np.asarray(W, float), np.asarray(C, float))
    if not (s.shape == m.shape and s.ndim == 1 and len(s) >= 2):
        raise ValueError("danger_zone needs sigmas, W and C of the same length >= 2.")
    if np.any(np.diff(s) <= 0):
        raise ValueError("danger_zone needs strictly increasing sigmas.")
    above = m >= threshold
    if not above.any():
        return float("nan"), float("nan")
    runs, start = [], None
    for i, a in enumerate(above):
        if a and start is None:
            start = i
        if start is not None and (not a or i == len(above) - 1):
            runs.append((start, i if a else i - 1))
            start = None
    i0, i1 = max(runs, key=lambda r: s[r[1]] - s[r[0]])

    def cross(i, j):  # log-sigma where min(W, C) crosses the threshold between grid points i and j
        return s[i] + (threshold - m[i]) * (s[j] - s[i]) / (m[j] - m[i])

    lo = cross(i0 - 1, i0) if i0 > 0 else s[i0]
    hi = cross(i1, i1 + 1) if i1 < len(s) - 1 else s[i1]
    return float(np.exp(lo)), float(np.exp(hi))


@dataclass
class NoiseSweep:
    """Per-noise-level results of a denoiser: ``mse`` (per pixel, to the clean image) and
    ``mem_rate`` (fraction of outputs that copy a training image), each ``[S]``."""

    sigmas: np.ndarray
    mse: np.ndarray
    mem_rate: np.ndarray


@torch.no_grad()
def noise_sweep(denoiser: Callable[[Tensor, float], Tensor], x: Tensor, train: Tensor, sigmas: Sequence[float],
                n_draws: int = 1, seed: int = 0, ratio: float = 1 / 3, batch: int = 1024) -> NoiseSweep:
    """Denoise x + sigma Z at every sigma: MSE to x and the per-noise memorization rate.

    g = denoiser(x + sigma Z, sigma) is *memorized* when d_1NN(g) < ratio * d_2NN(g) against the
    training set (Dodson et al., after Carlini et al.). ``denoiser(y, sigma)`` is any callable
    (an :class:`EmpiricalDenoiser`, a trained model's ``denoise``); x is ``[B, ...]``.
    """
    g = torch.Generator().manual_seed(int(seed))
    sig = np.asarray(sigmas, float)
    mse, rate = np.zeros(len(sig)), np.zeros(len(sig))
    for _ in range(int(n_draws)):
        Z = torch.randn(x.shape, generator=g).to(x)
        for j, s in enumerate(sig):
            out = torch.cat([denoiser(xc + float(s) * zc, float(s)) for xc, zc in zip(x.split(batch), Z.split(batch))])
            mse[j] += float((out.double() - x.double()).pow(2).flatten(1).mean(1).sum())
            rate[j] += float(copies(out, train, ratio)[0].double().sum())
    n = x.shape[0] * int(n_draws)
    return NoiseSweep(sig, mse / n, rate / n)
