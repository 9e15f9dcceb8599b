"""The result cache: expensive work keyed by the parameters that produced it.

Files live under ``results/<profile>/<notebook>/`` as ``<name>-<key>.pt`` plus a record
``<name>-<key>.json`` (parameters, package and torch versions, device, the data file's
sha256). Both are written atomically (temporary file, fsync, ``os.replace``) and the record
is written *last*: a run killed at any moment leaves either nothing, a stray temporary
file, or a data file without a record -- none of which is trusted on the next run. A data
file whose hash no longer matches its record is recomputed too.

Cached values are what ``torch.load(weights_only=True)`` accepts: tensors, numbers,
strings and (nested) lists/dicts of them. Trained networks are stored as state dicts.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from . import __version__


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _atomic_write(path: Path, write: Callable[[Any], None], mode: str = "wb") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)            # mkstemp makes 0600; give results the usual mode
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json_atomic(path: Path, obj) -> Path:
    """Write ``obj`` as indented JSON, atomically; NaN/inf are refused (summaries must be finite JSON)."""
    text = json.dumps(_jsonable(obj), indent=2, sort_keys=True, allow_nan=False)
    _atomic_write(Path(path), lambda f: f.write(text + "\n"), mode="w")
    return Path(path)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def param_key(name: str, params: dict) -> str:
    """16 hex digits of sha256 over the name, the canonical JSON of the parameters and the package version."""
    blob = json.dumps({"name": name, "params": _jsonable(params), "mempkg": __version__},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class Cache:
    """A folder of cached results. ``get(name, params, compute)`` returns the cached value or
    computes, stores and returns it; ``hits`` and ``misses`` count what happened."""

    def __init__(self, root: Path | str, device: str | None = None):
        self.root = Path(root)
        self.device = device
        self.hits = 0
        self.misses = 0

    def paths(self, name: str, params: dict) -> tuple[Path, Path]:
        if not name or any(c in name for c in "/\\ "):
            raise ValueError(f"Cache names must be non-empty and free of slashes and spaces, got {name!r}.")
        stem = f"{name}-{param_key(name, params)}"
        return self.root / f"{stem}.pt", self.root / f"{stem}.json"

    def load(self, name: str, params: dict):
        """The cached value, or ``None`` when absent or not trustworthy."""
        data, record = self.paths(name, params)
        if not (data.is_file() and record.is_file()):
            return None
        try:
            rec = json.loads(record.read_text())
            if rec.get("sha256") != _sha256(data):
                return None
            return torch.load(data, map_location="cpu", weights_only=True)
        except (OSError, ValueError, RuntimeError, json.JSONDecodeError):
            return None

    def save(self, name: str, params: dict, value) -> Path:
        data, record = self.paths(name, params)
        _atomic_write(data, lambda f: torch.save(value, f))
        write_json_atomic(record, {
            "name": name, "params": params, "file": data.name, "sha256": _sha256(data),
            "mempkg_version": __version__, "torch_version": torch.__version__,
            "device": self.device or "cpu", "python": platform.python_version(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        })
        return data

    def get(self, name: str, params: dict, compute: Callable[[], Any]):
        value = self.load(name, params)
        if value is not None:
            self.hits += 1
            return value
        self.misses += 1
        value = compute()
        self.save(name, params, value)
        return value

    def model(self, name: str, params: dict, build: Callable[[], torch.nn.Module],
              fit: Callable[[torch.nn.Module], dict]):
        """A trained network: ``build()`` makes it, ``fit(net)`` trains it in place and returns a
        history dict (e.g. losses). Stored as ``{"state_dict", "history"}`` -> (net, history)."""
        def compute():
            net = build()
            history = fit(net)
            return {"state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
                    "history": history}
        stored = self.get(name, params, compute)
        net = build()
        net.load_state_dict(stored["state_dict"])
        return net.eval(), stored["history"]


def check_finite_summary(summary: dict) -> None:
    """Raise if a summary holds a non-finite number (a silent NaN must not reach the book)."""
    for k, v in summary.items():
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"summary value {k!r} is {v}; a chapter's headline numbers must be finite.")
