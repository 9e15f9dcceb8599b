"""The result cache: expensive work keyed by the parameters and the content of its inputs.

``results/<profile>/<notebook>/<name>-<key>.pt`` holds a value, ``<name>-<key>.json`` its record
(parameters, versions, device, threads, seconds, sha256 of the data file). Both are written
atomically and the record last, so an interrupted run leaves nothing that a later run trusts; a data
file whose hash no longer matches its record is recomputed. Values are what
``torch.load(weights_only=True)`` reads: tensors, numbers, strings and nested lists and dicts of them.

The key holds what a result means (parameters, seeds, content digests of inputs), not the machine:
a value is served to a run with another thread count, and its record says what computed it.

Layer: book (imports every layer but the CLI).
"""

from __future__ import annotations

import hashlib
import json
import math
import pickle
import platform
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..core import __version__
from ..core.digests import architecture_digest, content_digest
from ..core.files import atomic_write, file_digest, jsonable, write_json_atomic
from ..models.train import TrainResult


def _json_record(obj):
    """``obj`` for a JSON record: non-finite floats (e.g. a gap band up to sigma = inf) become strings."""
    obj = jsonable(obj)
    if isinstance(obj, dict):
        return {k: _json_record(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_json_record(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return repr(obj)
    return obj


def _storable(obj):
    """The value as ``torch.load(weights_only=True)`` can read it back: numpy arrays and numpy
    scalars become tensors and Python numbers, recursively through dicts, lists and tuples."""
    if isinstance(obj, dict):
        return {k: _storable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_storable(v) for v in obj)
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _sha256(path: Path) -> str:
    return file_digest(path, "sha256")


def param_key(name: str, params: dict) -> str:
    """16 hex digits of sha256 over the name, the canonical JSON of the parameters and the package version."""
    blob = json.dumps({"name": name, "params": jsonable(params), "mempkg": __version__},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def with_inputs(params: dict, inputs: dict | None) -> dict:
    """``params`` with the content digests of ``inputs`` under the key ``"inputs"`` (unchanged when None)."""
    if not inputs:
        return params
    if "inputs" in params:
        raise ValueError("params may not hold a key 'inputs': it is where the inputs' digests go.")
    return dict(params, inputs={k: content_digest(v) for k, v in sorted(inputs.items())})


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
        except (OSError, ValueError, RuntimeError, json.JSONDecodeError, pickle.UnpicklingError):
            return None

    def save(self, name: str, params: dict, value, seconds: float | None = None) -> Path:
        """Store ``value``; ``seconds`` (what computing it took) goes into the record."""
        data, record = self.paths(name, params)
        atomic_write(data, lambda f: torch.save(value, f))
        write_json_atomic(record, {
            "name": name, "params": _json_record(params), "file": data.name, "sha256": _sha256(data),
            "mempkg_version": __version__, "torch_version": torch.__version__,
            "device": self.device or "cpu", "python": platform.python_version(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "seconds": None if seconds is None else round(float(seconds), 3), "threads": torch.get_num_threads(),
        })
        return data

    def get(self, name: str, params: dict, compute: Callable[[], Any], *, inputs: dict | None = None):
        """The cached value of ``compute()`` under ``name`` and ``params``, computed and stored when absent.

        ``inputs`` names what ``compute`` reads -- ``{"model": model, "x": images}`` -- and their content
        digests (:func:`mempkg.core.digests.content_digest`: weights and schedule of a model, bytes of a
        tensor) join the key: another model or other images are never served a cached result.
        """
        params = with_inputs(params, inputs)
        value = self.load(name, params)
        if value is not None:
            self.hits += 1
            return value
        self.misses += 1
        start = time.perf_counter()
        value = _storable(compute())        # what a later run will load, so both runs see the same types
        self.save(name, params, value, seconds=time.perf_counter() - start)
        return value

    def checkpoint_path(self, name: str, params: dict) -> Path:
        """``<name>-<key>.checkpoint.pt`` beside the cached result (same key): where a long training
        run keeps its progress (``train_dsm(..., checkpoint=cache.checkpoint_path(name, params))``)
        until :meth:`model` has cached the final weights and deletes it."""
        data, _ = self.paths(name, params)
        return data.with_name(f"{data.stem}.checkpoint.pt")

    def model_params(self, params: dict, build: Callable[[], torch.nn.Module]) -> dict:
        """``params`` with the :func:`~mempkg.core.digests.architecture_digest` of ``build()`` under
        ``"architecture"``: the key :meth:`model` stores a trained network under. A preset's name in ``params``
        says which network was meant; the digest says which one was built, so that editing a preset (a norm's
        eps, a channel count) trains again instead of serving the old weights. Pass the same to
        :meth:`checkpoint_path` for the network's training checkpoint."""
        digest = architecture_digest(build())
        if params.get("architecture", digest) != digest:
            raise ValueError(f"params['architecture'] is {params['architecture']!r}, but build() makes a network "
                             f"of architecture {digest!r}; pass the params without it.")
        return dict(params, architecture=digest)

    def model(self, name: str, params: dict, build: Callable[[], torch.nn.Module],
              fit: Callable[[torch.nn.Module], Any], *, weights: str = "raw", keep_checkpoint: bool = False):
        """A trained network: ``build()`` makes it, ``fit(net)`` trains it in place -> (net, history).

        ``fit`` returns either a history dict (e.g. ``{"losses": [...]}``) or the
        :class:`~mempkg.models.train.TrainResult` of :func:`~mempkg.models.train.train_dsm`; then the history is
        ``{"losses": ...}`` and, when it kept an EMA, the EMA weights are stored beside the raw ones.
        Stored as ``{"state_dict", "history"}`` plus ``"ema_state_dict"`` when there is one.

        Args:
            weights: ``"raw"`` (the optimiser's weights; what Hasegawa & Yasuda evaluate) or ``"ema"``
                (the moving average): which stored weights the returned network holds. Both come
                from the same cached run, so switching costs no training.
            keep_checkpoint: keep the training checkpoint at :meth:`checkpoint_path` once the final
                weights are cached (by default it is deleted then: the cache holds the result).
        The key is ``params`` with the architecture of ``build()`` (:meth:`model_params`). A long ``fit`` can
        resume after an interruption: pass ``checkpoint=cache.checkpoint_path(name, cache.model_params(params,
        build))`` to ``train_dsm`` inside it.
        """
        if weights not in ("raw", "ema"):
            raise ValueError(f"weights must be 'raw' or 'ema', got {weights!r}.")
        params = self.model_params(params, build)

        def compute():
            net = build()
            out = fit(net)
            stored = {}
            if isinstance(out, TrainResult):
                if out.ema is not None:
                    stored["ema_state_dict"] = {k: v.detach().cpu() for k, v in out.ema.state_dict().items()}
                out = {"losses": list(out.losses)}
            stored.update(state_dict={k: v.detach().cpu() for k, v in net.state_dict().items()}, history=out)
            return stored
        stored = self.get(name, params, compute)
        ckpt = self.checkpoint_path(name, params)
        if not keep_checkpoint and ckpt.exists():
            ckpt.unlink()
        if weights == "ema" and "ema_state_dict" not in stored:
            raise ValueError(f"The cached model {name!r} has no EMA weights: train it with ema_decay set and "
                             "return train_dsm's TrainResult from fit, or ask for weights='raw'.")
        net = build()
        net.load_state_dict(stored["ema_state_dict" if weights == "ema" else "state_dict"])
        return net.eval(), stored["history"]


def check_finite_summary(summary: dict) -> None:
    """Raise if a summary holds a non-finite number (a silent NaN must not reach the book)."""
    for k, v in summary.items():
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"summary value {k!r} is {v}; a chapter's headline numbers must be finite.")
