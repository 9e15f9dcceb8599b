"""Which device a run uses (layer: core): ``auto`` picks CUDA when torch sees a GPU, else the CPU; any torch
device string (Apple's ``mps`` included) is checked against what torch sees. ``auto`` never picks MPS: its
missing float64 kernels would fail the estimators' float64 steps, so a reader asks for it by name."""

from __future__ import annotations

import torch

__all__ = ["DEVICES", "mps_available", "resolve_device"]


DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")


def mps_available() -> bool:
    """Whether torch sees an Apple-silicon GPU (Metal Performance Shaders)."""
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def resolve_device(device: str = "auto") -> str:
    """``auto`` gives ``cuda`` when a GPU is visible, else ``cpu``; a device string
    (``cpu``, ``cuda``, ``cuda:1``, ``mps``) is returned as given once torch is seen to have it."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        kind = torch.device(str(device))
    except (RuntimeError, ValueError):
        raise ValueError(f"Unknown device {device!r}; choose one of {DEVICES}.") from None
    if kind.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (kind.index or 0) >= n:
            raise RuntimeError(f"device={device!r} was asked for but torch sees {n} CUDA GPU(s); use device='cpu' or "
                               "'auto'" + (f", or 'cuda:0' to 'cuda:{n - 1}'." if n else "."))
    elif kind.type == "mps" and not mps_available():
        raise RuntimeError(f"device={device!r} was asked for but torch sees no Apple MPS device; use 'cpu' or 'auto'.")
    elif kind.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"Unknown device {device!r}; choose one of {DEVICES}.")
    return str(device)
