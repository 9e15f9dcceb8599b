"""Noise schedules of diffusion SDEs: one family, one place (layer: core).

Every schedule used by the book's estimators has an *affine* drift, so its transition
kernel is Gaussian (Song et al. 2021, eq. 29; Kamkari et al. 2024, eq. 2):

    p_{t|0}(x_t | x_0) = N(x_t; psi(t) x_0, sigma(t)^2 I).

A schedule object gives ``beta(t)``, ``alpha(t)`` (the mean scale psi(t)), ``sigma(t)``,
``t_from_sigma`` and the probability-flow velocity. Estimators only rely on these. The family:

* :class:`VPSDE` -- the variance-preserving SDE with a linear beta (Song et al. 2021);
* :class:`EDMSchedule` -- EDM/VE, time = sigma, psi = 1 (Karras et al. 2022);
* :class:`DiscreteVPSchedule` -- a discrete DDPM/Stable Diffusion schedule (``alphas_cumprod``)
  read as a continuous VP schedule; :func:`schedule_of` builds it from a diffusers scheduler.
"""

from __future__ import annotations

import hashlib
import math
from typing import Callable

import torch
from torch import Tensor

from .tensors import TimeLike, as_time, bcast, check_choice

__all__ = ["DiscreteVPSchedule", "EDMSchedule", "SCHEDULES", "SDES", "VPSDE", "get_sde", "linear_beta_schedule",
           "schedule_of"]


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
        t = as_time(t)
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def B(self, t: TimeLike) -> Tensor:
        """Integrated beta, B(t) = int_0^t beta(s) ds."""
        t = as_time(t)
        return self.beta_min * t + 0.5 * t**2 * (self.beta_max - self.beta_min)

    def alpha(self, t: TimeLike) -> Tensor:
        """Mean scale psi(t) = exp(-B(t)/2) of the transition kernel."""
        return torch.exp(-0.5 * self.B(t))

    def sigma(self, t: TimeLike) -> Tensor:
        """Standard deviation sigma(t) = sqrt(1 - exp(-B(t))) of the transition kernel."""
        return torch.sqrt(-torch.expm1(-self.B(t)))

    def t_from_sigma(self, sigma: TimeLike) -> Tensor:
        """Inverse of ``sigma(t)``: solves 1/2 (beta_max - beta_min) t^2 + beta_min t = -log(1 - sigma^2)."""
        sigma = as_time(sigma)
        if torch.any((sigma <= 0) | (sigma >= 1)):
            raise ValueError("VPSDE.t_from_sigma needs 0 < sigma < 1 (the VP schedule never reaches sigma = 1).")
        b = -torch.log1p(-sigma**2)
        d = self.beta_max - self.beta_min
        return (-self.beta_min + torch.sqrt(self.beta_min**2 + 2 * d * b)) / d

    def check_time(self, t: TimeLike, name: str = "t") -> None:
        """Raise a clear error unless every t lies in (0, T]."""
        tt = as_time(t)
        if torch.any(~torch.isfinite(tt)) or torch.any(tt <= 0) or torch.any(tt > self.T):
            bad = tt.min().item() if torch.any(tt <= 0) else tt.max().item()
            raise ValueError(f"{name}={bad:g} is outside the schedule's time range (0, {self.T:g}]; "
                             f"pick {name} in (0, {self.T:g}] (FLIPD uses small values such as 0.01-0.3).")

    # -- dynamics -------------------------------------------------------------------
    def marginal_prob(self, x0: Tensor, t: TimeLike) -> tuple[Tensor, Tensor]:
        """Mean psi(t) x0 and std sigma(t) of p_{t|0}; t broadcast over the batch dimension."""
        a, s = bcast(self.alpha(t), x0), bcast(self.sigma(t), x0)
        return a * x0, s

    def prior_sampling(self, shape, generator: torch.Generator | None = None, device=None) -> Tensor:
        """Draw from the prior N(0, I) (sigma(T) ~ 1 for the default schedule)."""
        return torch.randn(shape, generator=generator, device=device)

    def probability_flow(self, x: Tensor, t: TimeLike, score: Tensor) -> Tensor:
        """Velocity of the probability-flow ODE (Song et al. 2021, eq. 13):

            dx/dt = -1/2 beta(t) x - 1/2 beta(t) s(x, t).
        """
        b = bcast(self.beta(t), x)
        return -0.5 * b * (x + score)


class EDMSchedule:
    """The variance-exploding schedule in EDM's parametrisation, time t = sigma (Karras eq. 4 with
    s(t) = 1, sigma(t) = t; Song et al. 2021's VE SDE):

        dx = sqrt(d sigma^2/dt) dW = sqrt(2 t) dW,     p_{t|0}(x_t | x0) = N(x_t; x0, t^2 I),
        psi(t) = alpha(t) = 1,   sigma(t) = t,   beta(t) = g(t)^2 = d sigma^2/dt = 2 t.

    ``beta`` is the squared diffusion coefficient g(t)^2, as it is for :class:`~mempkg.core.schedules.VPSDE`
    (whose g^2 is its beta); unlike VP the drift is 0, so the probability-flow velocity is

        dx/dt = -1/2 g(t)^2 s(x, t) = -t s(x, t) = (x - D(x; t)) / t       (Karras eq. 3 and Alg. 1).

    Estimators that only use ``alpha``, ``sigma`` and ``probability_flow`` (FLIPD with psi = 1,
    volume growth) work unchanged; :func:`mempkg.models.sampling.reverse_sde` assumes VP's drift
    -1/2 beta x and does not apply (use :func:`heun_sampler`).

    Times live in (0, T] with T = sigma_max; ``sigma_min`` is where samplers stop (the last
    nonzero level of :func:`edm_sigmas`), not a bound on t. ``t`` may be a float or a tensor;
    results have its shape (floats give 0-d float64 tensors).
    """

    def __init__(self, sigma_min: float = 0.002, sigma_max: float = 80.0):
        if not (0 < sigma_min < sigma_max < math.inf):
            raise ValueError(f"EDMSchedule needs 0 < sigma_min < sigma_max < inf, got sigma_min={sigma_min}, "
                             f"sigma_max={sigma_max}.")
        self.sigma_min = float(sigma_min)
        self.sigma_max = float(sigma_max)
        self.T = self.sigma_max

    def __repr__(self) -> str:
        return f"EDMSchedule(sigma_min={self.sigma_min}, sigma_max={self.sigma_max})"

    def config(self) -> dict:
        """Plain-literal description, used in cache keys."""
        return {"kind": "edm", "sigma_min": self.sigma_min, "sigma_max": self.sigma_max, "T": self.T}

    def beta(self, t: TimeLike) -> Tensor:
        """Squared diffusion coefficient g(t)^2 = d sigma(t)^2 / dt = 2 t (the drift is 0)."""
        return 2.0 * as_time(t)

    def alpha(self, t: TimeLike) -> Tensor:
        """Mean scale psi(t) = 1: VE adds noise without shrinking the data."""
        return torch.ones_like(as_time(t))

    def sigma(self, t: TimeLike) -> Tensor:
        """Noise level sigma(t) = t."""
        return as_time(t).clone()

    def t_from_sigma(self, sigma: TimeLike) -> Tensor:
        """Inverse of ``sigma(t)``: the identity (sigma > 0)."""
        sigma = as_time(sigma)
        if torch.any(~(sigma > 0)):
            raise ValueError("EDMSchedule.t_from_sigma needs sigma > 0.")
        return sigma.clone()

    def check_time(self, t: TimeLike, name: str = "t") -> None:
        """Raise a clear error unless every t (= sigma) lies in (0, T]."""
        tt = as_time(t)
        if torch.any(~torch.isfinite(tt)) or torch.any(tt <= 0) or torch.any(tt > self.T):
            bad = tt.min().item() if torch.any(tt <= 0) else tt.max().item()
            raise ValueError(f"{name}={bad:g} is outside the EDM schedule's range (0, {self.T:g}]; time is the "
                             f"noise level sigma here, so pick {name} in (0, {self.T:g}] (for FLIPD a small "
                             f"sigma such as 0.01-0.1 in data units).")

    def marginal_prob(self, x0: Tensor, t: TimeLike) -> tuple[Tensor, Tensor]:
        """Mean x0 and std sigma(t) = t of p_{t|0}; t broadcast over the batch dimension."""
        return x0, bcast(self.sigma(t), x0)

    def prior_sampling(self, shape, generator: torch.Generator | None = None, device=None) -> Tensor:
        """Draw from the prior N(0, sigma_max^2 I) (Karras Algorithm 1, line 1)."""
        return self.sigma_max * torch.randn(shape, generator=generator, device=device)

    def probability_flow(self, x: Tensor, t: TimeLike, score: Tensor) -> Tensor:
        """Velocity of the probability-flow ODE, dx/dt = -1/2 g(t)^2 s = -t s(x, t) (drift 0)."""
        return -bcast(as_time(t), x) * score


class DiscreteVPSchedule(VPSDE):
    """The discrete DDPM schedule of a trained model, as a continuous VP schedule on t in (0, 1].

    A DDPM-style model is trained on N integer timesteps n = 0..N-1 with
    x_n = sqrt(alpha_bar_n) x_0 + sqrt(1 - alpha_bar_n) eps (Ho et al. 2020, eq. 4). We place
    timestep n at time

        t_n = (n + 1) / N,    i.e.  n(t) = N t - 1   (the label the UNet is fed),

    so that t = 0 is the clean data (alpha_bar = 1) and t = 1 the last training step. Between the
    knots t_k = k / N (k = 0..N; B_0 = 0, B_k = -log alpha_bar_{k-1}) the integrated beta
    B(t) = -log alpha_bar(t) is interpolated linearly, which makes

        beta(t) = dB/dt = N (B_{k+1} - B_k) = -N log(1 - beta_k)  ~  N beta_k   on [t_k, t_{k+1}),
        psi(t) = alpha(t) = exp(-B(t) / 2),   sigma(t)^2 = 1 - exp(-B(t)),

    the VP-SDE with piecewise-constant beta that passes through every training noise level
    exactly (Song et al. 2021, Appendix B: beta(t) = N beta_n). For t < 1/N the UNet is queried at
    labels in (-1, 0), which it never saw: keep t >= 1/N (sigma >= sqrt(beta_0)) where it matters.

    Args:
        alphas_cumprod: ``[N]`` cumulative products alpha_bar_n of a diffusers scheduler.
    """

    def __init__(self, alphas_cumprod: Tensor):
        ac = torch.as_tensor(alphas_cumprod, dtype=torch.float64).flatten()
        if ac.numel() < 2 or not torch.all((ac > 0) & (ac < 1)) or not torch.all(ac[1:] < ac[:-1]):
            raise ValueError("alphas_cumprod must be a decreasing sequence in (0, 1) with at least 2 entries.")
        self.alphas_cumprod = ac
        self.N = int(ac.numel())
        self.T = 1.0
        self.B_knots = torch.cat([torch.zeros(1, dtype=torch.float64), -torch.log(ac)])   # [N + 1], B at t = k / N

    @classmethod
    def from_scheduler(cls, scheduler) -> "DiscreteVPSchedule":
        """The schedule of a diffusers scheduler (anything with ``alphas_cumprod``)."""
        if not hasattr(scheduler, "alphas_cumprod"):
            raise TypeError(f"{type(scheduler).__name__} has no alphas_cumprod; pass a DDPM/DDIM/PNDM-style scheduler.")
        return cls(scheduler.alphas_cumprod)

    def __repr__(self) -> str:
        return f"DiscreteVPSchedule(N={self.N}, sigma(1/N)={float(self.sigma(1 / self.N)):.4f})"

    def config(self) -> dict:
        """Plain-literal description, used in cache keys (the schedule is identified by a digest)."""
        digest = hashlib.sha256(self.alphas_cumprod.numpy().tobytes()).hexdigest()[:16]
        return {"kind": "discrete_vp", "N": self.N, "alphas_cumprod_sha256": digest, "T": self.T}

    def _knot(self, t: TimeLike) -> tuple[Tensor, Tensor, Tensor]:
        """(t as float64, interval index k with t in [t_k, t_{k+1}], fraction within it)."""
        t = as_time(t)
        u = t.to(torch.float64) * self.N
        k = u.floor().clamp(0, self.N - 1)
        return t, k.long(), u - k

    def B(self, t: TimeLike) -> Tensor:
        """Integrated beta B(t) = -log alpha_bar(t), linear between the knots k / N."""
        t, k, frac = self._knot(t)
        Bk = self.B_knots.to(k.device)
        out = Bk[k] + frac * (Bk[k + 1] - Bk[k])
        return out.to(t.dtype) if t.is_floating_point() else out

    def beta(self, t: TimeLike) -> Tensor:
        """beta(t) = dB/dt, constant N (B_{k+1} - B_k) on each interval [k / N, (k + 1) / N)."""
        t, k, _ = self._knot(t)
        Bk = self.B_knots.to(k.device)
        out = self.N * (Bk[k + 1] - Bk[k])
        return out.to(t.dtype) if t.is_floating_point() else out

    def t_from_sigma(self, sigma: TimeLike) -> Tensor:
        """Inverse of ``sigma(t)``: B = -log(1 - sigma^2) located between the knots."""
        sigma = as_time(sigma)
        if torch.any((sigma <= 0) | (sigma >= 1)):
            raise ValueError("t_from_sigma needs 0 < sigma < 1.")
        b = -torch.log1p(-sigma.to(torch.float64) ** 2)
        if torch.any(b > self.B_knots[-1]):
            raise ValueError(f"sigma above the schedule's largest, {float(self.sigma(1.0)):.6f}.")
        Bk = self.B_knots.to(b.device)
        k = (torch.searchsorted(Bk, b.reshape(-1), right=False) - 1).clamp(0, self.N - 1).reshape(b.shape)
        t = (k + (b - Bk[k]) / (Bk[k + 1] - Bk[k])) / self.N
        return t.to(sigma.dtype) if sigma.is_floating_point() else t

    def timestep(self, t: TimeLike) -> Tensor:
        """The (fractional) UNet label n(t) = N t - 1 of time t."""
        return as_time(t) * self.N - 1

    def t_of_timestep(self, n) -> Tensor:
        """Time t_n = (n + 1) / N of integer timestep n (the inverse of :meth:`timestep`)."""
        return (torch.as_tensor(n, dtype=torch.float64) + 1) / self.N


def linear_beta_schedule(scheduler) -> VPSDE:
    """The FLIPD authors' approximation of SD's schedule (their ``StableDiffusionSde``):

        beta(t) linear from beta_min = N beta_start to beta_max = N beta_end   (0.85 -> 12 for SD v1),

    with the UNet fed the label N t. SD's betas are "scaled_linear" (sqrt(beta) linear), so this
    overestimates the noise in the middle of the range: sigma(0.3) = 0.73 against SD's 0.64.
    """
    cfg = scheduler.config
    N = int(cfg.num_train_timesteps)
    return VPSDE(beta_min=float(cfg.beta_start) * N, beta_max=float(cfg.beta_end) * N)


def schedule_of(scheduler, schedule: str = "scheduler") -> VPSDE:
    """The VP schedule that reads a model trained with ``scheduler``: ``"scheduler"`` its own
    ``alphas_cumprod`` (:class:`DiscreteVPSchedule`), ``"linear_beta"`` the FLIPD authors'
    approximation (:func:`linear_beta_schedule`)."""
    check_choice("schedule", schedule, SCHEDULES)
    return DiscreteVPSchedule.from_scheduler(scheduler) if schedule == "scheduler" else linear_beta_schedule(scheduler)


SCHEDULES = ("scheduler", "linear_beta")


SDES: dict[str, Callable[..., VPSDE]] = {"vp": VPSDE, "edm": EDMSchedule}


def get_sde(name: str = "vp", **kwargs):
    """Build a schedule by name: ``"vp"`` (:class:`VPSDE`) or ``"edm"`` (:class:`EDMSchedule`)."""
    if name not in SDES:
        raise ValueError(f"Unknown SDE {name!r}; choose one of {sorted(SDES)}.")
    return SDES[name](**kwargs)
