"""Small tensor helpers that every layer uses (layer: core).

Times come as a float or a ``[B]`` tensor and schedule values are broadcast against a batch of
images; per-image seeds make an image's random draws independent of its batch; a content hash
identifies tensors (weights, data) in cache keys; :func:`check_choice` gives the one error
message for a bad option.
"""

from __future__ import annotations

import hashlib
from typing import Optional, Union

import numpy as np
import torch
from torch import Tensor

__all__ = ["TimeLike", "as_time", "bcast", "check_choice", "image_seeds", "time_batch", "times64",
           "tensor_sha256"]


TimeLike = Union[float, Tensor]


def as_time(t: TimeLike) -> Tensor:
    return t if isinstance(t, Tensor) else torch.tensor(float(t), dtype=torch.float64)


def bcast(v: Tensor, like: Tensor) -> Tensor:
    """Cast a 0-d or [B] schedule value to ``like``'s dtype/device, shaped [B, 1, ..., 1]."""
    v = v.to(dtype=like.dtype, device=like.device)
    if v.dim() == 0:
        return v
    return v.reshape(v.shape[0], *([1] * (like.dim() - 1)))


def check_choice(name: str, value, options) -> None:
    """Raise a clear error unless ``value`` is one of ``options``."""
    if value not in options:
        raise ValueError(f"Unknown {name} {value!r}; choose one of {tuple(options)}.")


def image_seeds(seed, B: int) -> Optional[list[int]]:
    """``None`` when ``seed`` is one int for the whole batch, else its B per-image seeds (a sequence of
    ints, length checked). With per-image seeds an image's random draws (probes, axes) depend only on
    its own seed, not on the batch it is in or its position there."""
    if isinstance(seed, (int, np.integer)) or (isinstance(seed, Tensor) and seed.dim() == 0):
        return None
    seeds = [int(s) for s in seed]
    if len(seeds) != B:
        raise ValueError(f"seed has {len(seeds)} entries for {B} images; give one int, or one seed per image.")
    return seeds


def time_batch(t, x: Tensor, dtype: Optional[torch.dtype] = None) -> Tensor:
    """A float or [B] tensor of times as a [B] tensor on x's device, in ``dtype`` (default: x's)."""
    t = torch.as_tensor(t, dtype=dtype or x.dtype, device=x.device)
    if t.dim() == 0:
        return t.expand(x.shape[0])
    if t.shape != (x.shape[0],):
        raise ValueError(f"t has shape {tuple(t.shape)}; expected a float or a tensor of shape ({x.shape[0]},).")
    return t


def times64(t, x: Tensor) -> Tensor:
    """A float or [B] tensor of times as a float64 [B] tensor on x's device: the schedule is read in
    double precision whatever x's dtype (a float32 t0 = 0.01 would shift sigma by ~1e-8 relative)."""
    return time_batch(t, x, torch.float64)


def tensor_sha256(tensors) -> str:
    """sha256 over the names, dtypes, shapes and bytes of a tensor or a ``{name: tensor}`` dict."""
    items = tensors.items() if isinstance(tensors, dict) else [("", tensors)]
    h = hashlib.sha256()
    for name, t in sorted(items, key=lambda kv: kv[0]):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
