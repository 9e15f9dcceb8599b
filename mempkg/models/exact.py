"""Exact score models of known densities, the references estimators are tested against (layer: models).

:class:`GaussianScore` is a Gaussian N(mean, cov) diffused by a schedule (score in closed form);
:class:`EmpiricalScore` is the exact score of the training set's empirical distribution, the
model that memorizes perfectly (Dodson et al.'s and Ross, Kamkari et al.'s reference).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..core.schedules import VPSDE
from ..core.tensors import time_batch

__all__ = ["EmpiricalScore", "GaussianScore"]


class GaussianScore:
    """Exact score of data N(mean, cov) diffused by ``sde`` (cov may be singular).

    p_t = N(psi mean, Sigma_t), Sigma_t = psi^2 cov + sigma^2 I, so
    s(x, t) = -Sigma_t^{-1} (x - psi mean), computed in cov's eigenbasis
    (cov = U diag(lam) U^T, Sigma_t^{-1} = U diag(1 / (psi^2 lam + sigma^2)) U^T).
    ``x`` is ``[B, D]`` (or ``[B, ...]`` with D elements); float64 throughout.
    """

    def __init__(self, mean: Tensor, cov: Tensor, sde: VPSDE):
        cov = torch.as_tensor(cov, dtype=torch.float64)
        self.mean = torch.as_tensor(mean, dtype=torch.float64)
        lam, U = torch.linalg.eigh(0.5 * (cov + cov.T))
        self.lam, self.U = lam.clamp_min(0.0), U
        self.sde = sde

    def score(self, x: Tensor, t, cond=None) -> Tensor:
        shape = x.shape
        x = x.reshape(shape[0], -1)
        tb = time_batch(t, x)
        a, s = self.sde.alpha(tb)[:, None], self.sde.sigma(tb)[:, None]
        inv = 1.0 / (a**2 * self.lam + s**2)                       # [B, D] eigenvalues of Sigma_t^{-1}
        z = (x - a * self.mean) @ self.U                             # coordinates in the eigenbasis
        return (-(z * inv) @ self.U.T).reshape(shape)


class EmpiricalScore:
    """Exact score of the training set itself, p_0 = 1/N sum_i delta(x_i), diffused by ``sde``.

    p_t = 1/N sum_i N(psi x_i, sigma^2 I), so with posterior weights
    w_i(y) = softmax_i(-|y - psi x_i|^2 / (2 sigma^2)) (log-space softmax),

        s(y, t) = (psi sum_i w_i x_i - y) / sigma^2.

    This is the score a model that memorizes its training data perfectly would have.
    ``points`` is ``[N, ...]``; queries are ``[B, ...]`` with the same trailing shape.
    """

    def __init__(self, points: Tensor, sde: VPSDE):
        self.points = points.reshape(points.shape[0], -1)
        self.sde = sde

    def score(self, x: Tensor, t, cond=None) -> Tensor:
        shape = x.shape
        y = x.reshape(shape[0], -1)
        tb = time_batch(t, y)
        a, s = self.sde.alpha(tb)[:, None].to(y.dtype), self.sde.sigma(tb)[:, None].to(y.dtype)
        pts = self.points.to(y)
        d2 = (y[:, None, :] - a[:, :, None] * pts[None]).pow(2).sum(-1)   # [B, N]
        w = torch.softmax(-d2 / (2 * s**2), dim=1)
        return ((a * (w @ pts) - y) / s**2).reshape(shape)
