"""The score-model protocol every estimator takes, and its checks (layer: core).

**The protocol.** Every estimator in the book takes a *score model*: any object with

* ``sde`` -- a noise schedule with ``alpha(t)`` (the mean scale psi(t)), ``sigma(t)`` and
  ``beta(t)`` (see :mod:`mempkg.core.schedules`), and
* ``score(x, t, cond=None) -> Tensor`` -- grad_x log p_t(x | cond) with the shape of ``x``,
  where ``x`` is ``[B, ...]`` and ``t`` a float or a ``[B]`` tensor.

Wrapping a new model takes a few lines. An eps-prediction network ``net(x, t_label)``
(a diffusers ``UNet2DModel`` included) becomes one with :class:`mempkg.models.adapters.EpsModel`,
using the identity s(x, t) = -eps(x, t) / sigma(t)::

    model = EpsModel(my_unet, VPSDE(), time_scale=999)   # DDPM-style integer-like labels
    lid = mempkg.flipd(model, images, t0=0.05)

Any other parametrisation only needs a ``score`` method; :mod:`mempkg.models.exact` holds exact
examples used as references in tests and chapters. :func:`check_score_model` says plainly what
an object lacks.
"""

from __future__ import annotations

import contextlib
from typing import Any, Optional, Protocol, runtime_checkable

from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel

__all__ = ["ScoreModel", "autodiff_safe_attention", "check_inputs", "check_score_model", "modules_of"]


@runtime_checkable
class ScoreModel(Protocol):
    """Anything with an ``sde`` and ``score(x, t, cond=None)`` (see the module docstring)."""

    sde: Any

    def score(self, x: Tensor, t, cond: Optional[Tensor] = None) -> Tensor: ...


def check_score_model(model) -> None:
    """Raise a clear error if ``model`` does not follow the score-model protocol."""
    missing = [a for a in ("sde", "score") if not hasattr(model, a)]
    if missing:
        raise TypeError(f"{type(model).__name__} is not a score model: it lacks {missing}. Wrap an "
                        "eps-prediction network with mempkg.models.adapters.EpsModel(net, sde), or give your "
                        "object an `sde` attribute and a `score(x, t, cond=None)` method.")
    for a in ("alpha", "sigma", "beta"):
        if not hasattr(model.sde, a):
            raise TypeError(f"{type(model).__name__}.sde lacks `{a}(t)`; use a schedule from mempkg.core.schedules.")


def check_inputs(model, x, cond=None) -> None:
    """The checks every estimator makes first: ``model`` follows the protocol, ``x`` is a batch
    ``[B, ...]`` of the model's data shape (when it declares ``data_shape``), and ``cond`` has one
    row per image."""
    check_score_model(model)
    if not isinstance(x, Tensor) or x.dim() < 2:
        raise ValueError(f"x must be a tensor [B, ...] with a batch dimension, got "
                         f"{type(x).__name__} of shape {tuple(getattr(x, 'shape', ()))}.")
    expected = getattr(model, "data_shape", None)
    if expected is not None and tuple(x.shape[1:]) != tuple(expected):
        raise ValueError(f"x has per-image shape {tuple(x.shape[1:])} but the model expects {tuple(expected)}.")
    if cond is not None and len(cond) != len(x):
        raise ValueError(f"cond has {len(cond)} rows for {len(x)} images; give one condition per image.")


@contextlib.contextmanager
def autodiff_safe_attention(module: Optional[nn.Module] = None):
    """Make forward-mode autodiff (JVPs) work through diffusers' attention.

    The fused kernels of ``scaled_dot_product_attention`` (flash, memory-efficient and the
    CPU flash kernel) have no forward-mode derivative, so the math kernel is forced; and
    under ``torch.func.jvp`` diffusers' attention output can be non-contiguous, which a
    later ``view`` rejects, so a forward hook makes every attention output contiguous.
    Reverse-mode VJPs need none of this.
    """

    hooks = []
    if module is not None:
        def _contiguous(_mod, _inp, out):
            if isinstance(out, Tensor):
                return out.contiguous()
            if isinstance(out, tuple):
                return tuple(o.contiguous() if isinstance(o, Tensor) else o for o in out)
            return out
        for m in module.modules():
            if type(m).__name__ in ("Attention", "AttentionBlock", "MultiheadAttention"):
                hooks.append(m.register_forward_hook(_contiguous))
    try:
        with sdpa_kernel(SDPBackend.MATH):
            yield
    finally:
        for h in hooks:
            h.remove()


def modules_of(model) -> Optional[nn.Module]:
    """The nn.Module inside a score model, if any (for hooks and eval mode)."""
    if isinstance(model, nn.Module):
        return model
    for name in ("net", "unet", "model"):
        m = getattr(model, name, None)
        if isinstance(m, nn.Module):
            return m
    return None


def call_net(net, x, label, cond=None, cond_key: Optional[str] = None):
    """``net(x, label)``, with ``cond`` passed third or as the keyword ``cond_key``; a diffusers output's
    ``.sample`` unwrapped. The one way every adapter calls the network it wraps."""
    if cond is None:
        out = net(x, label)
    elif cond_key is None:
        out = net(x, label, cond)
    else:
        out = net(x, label, **{cond_key: cond})
    return out.sample if hasattr(out, "sample") else out
