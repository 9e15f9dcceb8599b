"""Any EDM-form denoiser D(x, sigma) as a score model (layer: models).

:class:`EDMDenoiser` reads a callable ``D(x, sigma)`` -- the form of NVlabs/edm's ``EDMPrecond`` and of
k-diffusion's wrapped denoisers -- as a score model on EDM's clock (time = sigma), by Karras et al.'s eq. 3.
FLIPD applies to it directly; volume growth reads it through :class:`~mempkg.models.views.VPView`.
"""

from __future__ import annotations

import math
import numbers
from typing import Optional

import torch
from torch import Tensor

from ..core.protocol import call_net
from ..core.schedules import EDMSchedule
from ..core.tensors import bcast, time_batch

__all__ = ["EDMDenoiser"]


class EDMDenoiser:
    """Score model of a denoiser D(x; sigma) (Karras et al. 2022, eq. 3):

        s(x, sigma) = (D(x; sigma) - x) / sigma^2,     time t = sigma,   sde = EDMSchedule.

    ``D`` is called as ``D(x, sigma)`` with ``x`` ``[B, ...]`` and ``sigma`` ``[B]`` (plus the condition, see
    ``cond_key``) and returns the denoised ``[B, ...]`` (a tensor, or an object with ``.sample``). D - x is
    formed in D's dtype: in float32 it loses about 1e-7 / sigma^2 of its relative precision (1e-3 at
    sigma = 0.01), so read a float32 denoiser at t0 >= 0.01 or run it in float64.

    Args:
        D: the denoiser (an ``nn.Module`` or any callable).
        sigma_data: standard deviation of the data D was trained on (0.5 for images in [-1, 1] in EDM);
            recorded in ``config()``, it does not enter the score.
        sde: the noise range (default ``EDMSchedule()``: sigma in (0, 80]; give D's own sigma_max).
        cond_key: pass the condition as ``D(..., **{cond_key: cond})`` (``"class_labels"`` for NVlabs/edm);
            otherwise as a third positional argument.
        data_shape: the per-image shape D reads, checked by the estimators when given.
    """

    def __init__(self, D, sigma_data: float = 0.5, sde: Optional[EDMSchedule] = None,
                 cond_key: Optional[str] = None, data_shape: Optional[tuple] = None):
        if not callable(D):
            raise TypeError(f"D must be a denoiser called as D(x, sigma), got {type(D).__name__}.")
        if not (isinstance(sigma_data, numbers.Real) and 0 < sigma_data < math.inf):
            raise ValueError(f"sigma_data must be a positive finite number (the data's standard deviation), "
                             f"got {sigma_data!r}.")
        self.net = D                                  # named net so that modules_of finds an nn.Module
        self.sigma_data = float(sigma_data)
        self.sde = sde if sde is not None else EDMSchedule()
        self.cond_key = cond_key
        self.data_shape = tuple(data_shape) if data_shape is not None else None

    def config(self) -> dict:
        """Plain-literal description (the denoiser itself is described by the caller)."""
        return {"model": "edm_denoiser", "sigma_data": self.sigma_data, "sde": self.sde.config(),
                "D": type(self.net).__name__}

    def denoise(self, x: Tensor, sigma, cond: Optional[Tensor] = None) -> Tensor:
        """D(x; sigma), shape of x; ``sigma`` a float or ``[B]``, positive."""
        sigma = time_batch(sigma, x)
        if not torch.all(torch.isfinite(sigma) & (sigma > 0)):
            raise ValueError("sigma must be positive and finite (the score (D - x) / sigma^2 is not defined at 0).")
        out = call_net(self.net, x, sigma, cond, self.cond_key)
        if not isinstance(out, Tensor) or out.shape != x.shape:
            raise ValueError(f"D returned {type(out).__name__} of shape {tuple(getattr(out, 'shape', ()))} for "
                             f"input {tuple(x.shape)}; a denoiser keeps the shape of its input.")
        return out

    def score(self, x: Tensor, t, cond: Optional[Tensor] = None) -> Tensor:
        """s(x, t) = (D(x; sigma) - x) / sigma^2 with sigma = t, shape of x."""
        d = self.denoise(x, t, cond)
        sigma = bcast(time_batch(t, x), x).to(d.dtype)
        return ((d - x.to(d.dtype)) / sigma**2).to(x.dtype)

    def __call__(self, x: Tensor, sigma, cond: Optional[Tensor] = None) -> Tensor:
        return self.denoise(x, sigma, cond)
