"""Which device a run uses (layer: core): ``auto`` picks CUDA when torch sees a GPU."""

from __future__ import annotations

import torch

__all__ = ["DEVICES", "resolve_device"]


DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str = "auto") -> str:
    """``auto`` gives ``cuda`` when a GPU is visible, else ``cpu``."""
    if device not in DEVICES and not str(device).startswith("cuda:"):
        raise ValueError(f"Unknown device {device!r}; choose one of {DEVICES} (or 'cuda:N').")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device={device!r} was asked for but torch sees no CUDA GPU; use device='cpu' or 'auto'.")
    return device
