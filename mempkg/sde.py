"""Noise schedules of diffusion SDEs.

Every schedule used by the book's estimators has an *affine* drift, so its transition
kernel is Gaussian (Song et al. 2021, eq. 29; Kamkari et al. 2024, eq. 2):

    p_{t|0}(x_t | x_0) = N(x_t; psi(t) x_0, sigma(t)^2 I).

A schedule object gives ``beta(t)``, ``alpha(t)`` (the mean scale psi(t)), ``sigma(t)``,
``t_from_sigma`` and the probability-flow velocity. Estimators only rely on these, so a
new schedule (EDM/VE in later chapters) is another small class with the same methods.
"""

from __future__ import annotations

from typing import Callable, Union

import torch
from torch import Tensor

TimeLike = Union[float, Tensor]


def _as_tensor(t: TimeLike) -> Tensor:
    return t if isinstance(t, Tensor) else torch.tensor(float(t), dtype=torch.float64)


class VPSDE:
    """Variance-preserving SDE with a linear beta (Song et al. 2021, Sec. 3.4).

        dx = -1/2 beta(t) x dt + sqrt(beta(t)) dW,   beta(t) = beta_min + t (beta_max - beta_min),
        B(t) = int_0^t beta = beta_min t + 1/2 t^2 (beta_max - beta_min),
        psi(t) = alpha(t) = exp(-B(t) / 2),   sigma(t)^2 = 1 - exp(-B(t)).

    Times live in (0, T] with T = 1. ``t`` may be a float or a tensor of any shape; the
    result has the shape (and, for tensors, the dtype and device) of ``t``; floats give
    0-d float64 tensors.
    """

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0, T: float = 1.0):
        if not (0 < beta_min < beta_max):
            raise ValueError(f"VPSDE needs 0 < beta_min < beta_max, got beta_min={beta_min}, beta_max={beta_max}.")
        self.beta_min = float(beta_min)
        self.beta_max = float(beta_max)
        self.T = float(T)

    def __repr__(self) -> str:
        return f"VPSDE(beta_min={self.beta_min}, beta_max={self.beta_max}, T={self.T})"

    def config(self) -> dict:
        """Plain-literal description, used in cache keys."""
        return {"kind": "vp", "beta_min": self.beta_min, "beta_max": self.beta_max, "T": self.T}

    # -- schedule -------------------------------------------------------------------
    def beta(self, t: TimeLike) -> Tensor:
        t = _as_tensor(t)
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def B(self, t: TimeLike) -> Tensor:
        """Integrated beta, B(t) = int_0^t beta(s) ds."""
        t = _as_tensor(t)
        return self.beta_min * t + 0.5 * t**2 * (self.beta_max - self.beta_min)

    def alpha(self, t: TimeLike) -> Tensor:
        """Mean scale psi(t) = exp(-B(t)/2) of the transition kernel."""
        return torch.exp(-0.5 * self.B(t))

    def sigma(self, t: TimeLike) -> Tensor:
        """Standard deviation sigma(t) = sqrt(1 - exp(-B(t))) of the transition kernel."""
        return torch.sqrt(-torch.expm1(-self.B(t)))

    def t_from_sigma(self, sigma: TimeLike) -> Tensor:
        """Inverse of ``sigma(t)``: solves 1/2 (beta_max - beta_min) t^2 + beta_min t = -log(1 - sigma^2)."""
        sigma = _as_tensor(sigma)
        if torch.any((sigma <= 0) | (sigma >= 1)):
            raise ValueError("VPSDE.t_from_sigma needs 0 < sigma < 1 (the VP schedule never reaches sigma = 1).")
        b = -torch.log1p(-sigma**2)
        d = self.beta_max - self.beta_min
        return (-self.beta_min + torch.sqrt(self.beta_min**2 + 2 * d * b)) / d

    def check_time(self, t: TimeLike, name: str = "t") -> None:
        """Raise a clear error unless every t lies in (0, T]."""
        tt = _as_tensor(t)
        if torch.any(~torch.isfinite(tt)) or torch.any(tt <= 0) or torch.any(tt > self.T):
            bad = tt.min().item() if torch.any(tt <= 0) else tt.max().item()
            raise ValueError(f"{name}={bad:g} is outside the schedule's time range (0, {self.T:g}]; "
                             f"pick {name} in (0, {self.T:g}] (FLIPD uses small values such as 0.01-0.3).")

    # -- dynamics -------------------------------------------------------------------
    def marginal_prob(self, x0: Tensor, t: TimeLike) -> tuple[Tensor, Tensor]:
        """Mean psi(t) x0 and std sigma(t) of p_{t|0}; t broadcast over the batch dimension."""
        a, s = _bcast(self.alpha(t), x0), _bcast(self.sigma(t), x0)
        return a * x0, s

    def prior_sampling(self, shape, generator: torch.Generator | None = None, device=None) -> Tensor:
        """Draw from the prior N(0, I) (sigma(T) ~ 1 for the default schedule)."""
        return torch.randn(shape, generator=generator, device=device)

    def probability_flow(self, x: Tensor, t: TimeLike, score: Tensor) -> Tensor:
        """Velocity of the probability-flow ODE (Song et al. 2021, eq. 13):

            dx/dt = -1/2 beta(t) x - 1/2 beta(t) s(x, t).
        """
        b = _bcast(self.beta(t), x)
        return -0.5 * b * (x + score)


def _bcast(v: Tensor, like: Tensor) -> Tensor:
    """Cast a 0-d or [B] schedule value to ``like``'s dtype/device, shaped [B, 1, ..., 1]."""
    v = v.to(dtype=like.dtype, device=like.device)
    if v.dim() == 0:
        return v
    return v.reshape(v.shape[0], *([1] * (like.dim() - 1)))


SDES: dict[str, Callable[..., VPSDE]] = {"vp": VPSDE}
# EDM/VE (time = sigma) lives in mempkg.edm, which imports this module: looked up lazily.
SDES["edm"] = lambda **kwargs: __import__("mempkg.edm", fromlist=["EDMSchedule"]).EDMSchedule(**kwargs)


def get_sde(name: str = "vp", **kwargs) -> VPSDE:
    """Build a schedule by name (``"vp"`` now; EDM/VE schedules register here later)."""
    if name not in SDES:
        raise ValueError(f"Unknown SDE {name!r}; choose one of {sorted(SDES)}.")
    return SDES[name](**kwargs)
