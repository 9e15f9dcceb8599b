"""Adapters that turn networks into score models (layer: models).

:class:`EpsModel` wraps any eps-prediction network ``net(x, t_label)`` with the identity
s(x, t) = -eps(x, t) / sigma(t); :func:`image_score_model` does it for the book's pixel UNets;
:class:`DDPMScoreModel` reads a diffusers ``DDPMPipeline`` (or its UNet and scheduler) on the
scheduler's own discrete schedule. The protocol they follow is in :mod:`mempkg.core.protocol`.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from ..core.protocol import call_net
from ..core.schedules import VPSDE, DiscreteVPSchedule
from ..core.tensors import bcast, time_batch, times64

__all__ = ["DDPMScoreModel", "EpsModel", "image_score_model"]


class EpsModel(nn.Module):
    """Score model from an eps-prediction network: s(x, t) = -eps_theta(x, t) / sigma(t).

    Args:
        net: called as ``net(x, t * time_scale)`` (or with the condition, see ``cond_key``);
            may return a tensor or an object with ``.sample`` (diffusers models).
        sde: the noise schedule the network was trained with.
        time_scale: multiplies the continuous time before it is fed to the network
            (999 for DDPM-style UNets trained on labels t * 999, as Hasegawa & Yasuda do).
        cond_key: if given, the condition is passed as ``net(..., **{cond_key: cond})``
            (``"class_labels"`` for ``UNet2DModel``, ``"encoder_hidden_states"`` for
            ``UNet2DConditionModel``); otherwise as a third positional argument.
    """

    def __init__(self, net: nn.Module, sde: VPSDE, time_scale: float = 1.0, cond_key: Optional[str] = None):
        super().__init__()
        self.net = net
        self.sde = sde
        self.time_scale = float(time_scale)
        self.cond_key = cond_key

    def eps(self, x: Tensor, t, cond: Optional[Tensor] = None) -> Tensor:
        """Predicted noise eps_theta(x, t), shape of x."""
        label = time_batch(t, x) * self.time_scale
        return call_net(self.net, x, label, cond, self.cond_key)

    def score(self, x: Tensor, t, cond: Optional[Tensor] = None) -> Tensor:
        sigma = bcast(self.sde.sigma(time_batch(t, x)), x)
        return -self.eps(x, t, cond) / sigma

    def forward(self, x: Tensor, t, cond: Optional[Tensor] = None) -> Tensor:
        return self.score(x, t, cond)


# -- image eps-networks (diffusers UNet2DModel) -----------------------------------------------


def image_score_model(unet: nn.Module, sde: VPSDE) -> EpsModel:
    """Score model of an image eps-network trained on time labels t * 999 (DDPM-style, as
    Hasegawa & Yasuda do): s(x, t) = -eps_theta(x, 999 t) / sigma(t).

    :func:`mempkg.models.train.train_dsm` trains through the returned :class:`EpsModel` (it calls
    ``eps``), so training and evaluation feed the network the same labels.
    """
    return EpsModel(unet, sde, time_scale=999)


class DDPMScoreModel(nn.Module):
    """Score model of a trained diffusers eps-prediction ``UNet2DModel`` and its DDPM-style scheduler
    (what ``DDPMPipeline.save_pretrained`` writes: ``unet/`` and ``scheduler/``):

        s(x, t) = -eps_theta(x, n(t)) / sigma(t),    n(t) = N t - 1,

    on the scheduler's own schedule (:class:`mempkg.core.schedules.DiscreteVPSchedule`: training
    timestep n sits at t = (n + 1) / N, so every training noise level is hit exactly). ``x`` is
    ``[B, C, H, W]`` in the network's pixel range ([-1, 1] for diffusers' pipelines); the network runs
    on its own device and dtype, ``x`` and the score keep theirs. A class-conditional UNet (``num_class_embeds``
set) takes its class labels as ``cond`` [B], passed as ``class_labels``. Frozen and in eval mode.
    """

    def __init__(self, unet: nn.Module, scheduler):
        super().__init__()

        prediction = getattr(scheduler.config, "prediction_type", "epsilon")
        if prediction != "epsilon":
            raise ValueError(f"The scheduler says the network predicts {prediction!r}; DDPMScoreModel reads it "
                             "as an eps-prediction network (prediction_type 'epsilon').")
        # a class-conditional UNet (num_class_embeds or class_embed_type set) reads cond as its class_labels
        self.conditional = bool(getattr(unet.config, "num_class_embeds", None)
                                or getattr(unet.config, "class_embed_type", None))
        self.unet = unet.requires_grad_(False).eval()
        self.sde = DiscreteVPSchedule.from_scheduler(scheduler)
        size = unet.config.sample_size
        h, w = (size, size) if isinstance(size, int) else tuple(size)
        self.data_shape = (int(unet.config.in_channels), int(h), int(w))

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.unet.parameters()).dtype

    def _t64(self, t, x: Tensor) -> Tensor:
        # the schedule is read in float64 whatever x's dtype (float16 would move t0 = 0.01 visibly)
        return times64(t, x)

    def eps(self, x: Tensor, t, cond: Optional[Tensor] = None) -> Tensor:
        """Predicted noise eps_theta(x, n(t)) (``cond``: the class labels [B] of a class-conditional UNet),
        shape and dtype of x."""
        if self.conditional and cond is None:
            raise ValueError("This UNet is class-conditional: call it with cond = the class labels [B].")
        if not self.conditional and cond is not None:
            raise ValueError("This UNet is unconditional: call it with cond=None.")
        label = self.sde.timestep(self._t64(t, x)).to(device=self.device, dtype=torch.float32)
        extra = {"class_labels": cond.to(self.device)} if self.conditional else {}
        out = self.unet(x.to(device=self.device, dtype=self.dtype), label, **extra).sample
        return out.to(device=x.device, dtype=x.dtype)

    def score(self, x: Tensor, t, cond: Optional[Tensor] = None) -> Tensor:
        sigma = bcast(self.sde.sigma(self._t64(t, x)), x)
        return -self.eps(x, t, cond) / sigma

    def forward(self, x: Tensor, t, cond: Optional[Tensor] = None) -> Tensor:
        return self.score(x, t, cond)
