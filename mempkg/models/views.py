"""Views that read a score model on another schedule's clock (layer: models).

:class:`VPView` reads an EDM model (time = sigma) as a VP-SDE model, so estimators written on
VP time (volume growth's Euler grid, FLIPD's t0) apply to EDM networks unchanged; :class:`EDMView` reads a
VP model (a DDPM pipeline included) on EDM's clock, so the EDM lenses (Heun sampling, the one-step
denoiser) apply to VP networks.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

from ..core.protocol import modules_of
from ..core.schedules import VPSDE, EDMSchedule
from ..core.tensors import bcast, time_batch, times64

__all__ = ["EDMView", "VPView"]


class VPView:
    """An EDM score model (time = sigma, :class:`~mempkg.core.schedules.EDMSchedule`) read on a VP-SDE's clock.

    The VP marginal at time t is the VE one at sigma_ve(t) = sigma(t) / alpha(t), scaled by alpha(t):
    x_vp = alpha x_ve, so p_t^vp(x) = alpha^-D p^ve_{sigma_ve}(x / alpha) and

        s_vp(x, t) = s_ve(x / alpha(t), sigma(t) / alpha(t)) / alpha(t).

    Both describe the same probability-flow ODE; only the clock (and a constant scale) differ. An
    Euler grid that is uniform in VP time -- Hasegawa & Yasuda's, used by
    :func:`mempkg.estimators.volume.volume_growth` -- spends its steps where VP models change, rather than a
    grid uniform in sigma, most of whose steps would fall at sigma >> 1. FLIPD is unchanged by
    the view: sigma_vp^2 tr grad s_vp = sigma_ve^2 tr grad s_ve at the matching times.
    """

    def __init__(self, model, sde: Optional[VPSDE] = None):
        if not hasattr(model, "score"):
            raise TypeError(f"VPView wraps a score model with score(x, sigma); got {type(model).__name__}.")
        self.model = modules_of(model) if modules_of(model) is not None else model
        self._score = model.score
        self.sde = sde if sde is not None else VPSDE()
        self.sigma_max = float(getattr(getattr(model, "sde", None), "sigma_max", math.inf))

    @property
    def t_max(self) -> float:
        """The last VP time at which the view reads the model within its noise range: the time of the
        model's ``sigma_max`` (EDM: 80, VP t ~ 0.93), else the VP-SDE's end T. (At t = 1 the VP-SDE with
        beta up to 20 reads sigma ~ 152, a noise level an EDM model never saw.)"""
        return float(self.sde.T) if math.isinf(self.sigma_max) else min(float(self.sde.T), self.time_of(self.sigma_max))

    def time_of(self, sigma: float) -> float:
        """The VP time t at which the view reads the EDM model at noise level ``sigma`` = sigma(t) / alpha(t).

        With B(t) the integrated beta, sigma_vp^2 = 1 - e^-B and alpha^2 = e^-B, so sigma^2 = e^B - 1 and
        sigma_vp = sigma / sqrt(1 + sigma^2)."""
        if not sigma > 0:
            raise ValueError(f"sigma must be positive, got {sigma}.")
        return float(self.sde.t_from_sigma(float(sigma) / (1 + float(sigma) ** 2) ** 0.5))

    def score(self, x: Tensor, t, cond: Optional[Tensor] = None) -> Tensor:
        tb = time_batch(t, x).double()
        if float(tb.max()) > self.t_max * (1 + 1e-9):
            raise ValueError(f"VPView read at VP time {float(tb.max()):.4g}, past t_max = {self.t_max:.4g} where the "
                             f"model's noise range ends (sigma_max = {self.sigma_max:g}); end the ODE at view.t_max.")
        a = self.sde.alpha(tb)
        sigma_ve = (self.sde.sigma(tb) / a).to(x.dtype)
        ab = bcast(a, x)
        return self._score(x / ab, sigma_ve, cond=cond) / ab


class EDMView:
    """A VP score model (a DDPM pipeline, :class:`~mempkg.core.schedules.VPSDE` or a discrete schedule) read on
    EDM's clock, time = sigma = sigma_vp(t) / alpha(t): the converse of :class:`VPView`.

    With x_ve = x_vp / alpha(t) the same probability flow is read as a variance-exploding one, and

        s_ve(x, sigma) = alpha s_vp(alpha x, t(sigma)),   alpha = 1 / sqrt(1 + sigma^2),
        D(x; sigma) = x + sigma^2 s_ve(x, sigma)          (the denoiser, Karras et al. eq. 3),

    where t(sigma) solves sigma_vp(t) = sigma / sqrt(1 + sigma^2) on the model's own schedule. ``sde`` is an
    :class:`~mempkg.core.schedules.EDMSchedule` from the model's noise range: sigma_min at its first time
    (a discrete schedule's first timestep, else ``t_min``), sigma_max at its end T. The EDM lenses (Heun
    sampling, the one-step denoiser, FLIPD at a sigma) then apply to VP models unchanged.
    """

    def __init__(self, model, t_min: float = 1e-3):
        if not hasattr(model, "score") or not hasattr(model, "sde"):
            raise TypeError(f"EDMView wraps a VP score model (score(x, t) and sde); got {type(model).__name__}.")
        self.vp = model
        self.model = modules_of(model) if modules_of(model) is not None else model
        vp = model.sde
        first = 1.0 / vp.N if hasattr(vp, "N") else float(t_min)     # a discrete schedule: its first timestep
        ratio = lambda t: float(vp.sigma(t) / vp.alpha(t))           # noqa: E731   sigma_vp / alpha at VP time t
        self.sde = EDMSchedule(sigma_min=ratio(first), sigma_max=ratio(float(vp.T)))
        self.data_shape = getattr(model, "data_shape", None)

    def time_of(self, sigma) -> Tensor:
        """The VP time at which the model is read for the EDM noise level ``sigma`` (float64)."""
        s = torch.as_tensor(sigma, dtype=torch.float64)
        return self.vp.sde.t_from_sigma(s / torch.sqrt(1 + s ** 2))

    def score(self, x: Tensor, sigma, cond: Optional[Tensor] = None) -> Tensor:
        sb = times64(sigma, x)
        if float(sb.max()) > self.sde.sigma_max * (1 + 1e-6):          # float32 sigmas round up by ~1e-7
            raise ValueError(f"EDMView read at sigma {float(sb.max()):.4g}, past the model's sigma_max = "
                             f"{self.sde.sigma_max:.4g} (the end of its schedule).")
        a = 1 / torch.sqrt(1 + sb ** 2)
        ab = bcast(a, x)
        return self.vp.score(x * ab, self.time_of(sb), cond=cond) * ab

    def denoise(self, x: Tensor, sigma, cond: Optional[Tensor] = None) -> Tensor:
        """D(x; sigma) = x + sigma^2 s_ve(x, sigma)."""
        return x + bcast(time_batch(sigma, x), x) ** 2 * self.score(x, sigma, cond=cond)

    __call__ = denoise
