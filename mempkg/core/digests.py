"""Content digests of what a computation reads: tensors, arrays, networks and score models (layer: core).

A cached result is reused only for the same inputs, so its key holds what identifies them by content,
never by name or path: the bytes of a tensor, the state dict of a network (with the schedule it is read
on), a list of such. :func:`content_digest` gives 16 hex digits of sha256 for any of them. A network's
digest is remembered until one of its parameters changes in place (torch counts in-place writes), so a
run that reads the digest of a large model many times hashes its weights once.

A network is more than its weights: a GroupNorm's eps, a dropout rate or diffusers' time-embedding flags
change what it computes and live outside the state dict. :func:`architecture_digest` identifies that part
(the module tree as printed, the ``config`` of every diffusers model in it, the state dict's names, dtypes
and shapes); :func:`module_digest` holds it beside the weights, and a cached trained network is keyed by
it, so that editing a preset retrains instead of serving the old weights under the old name.
"""

from __future__ import annotations

import hashlib
import json
import weakref
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from .files import file_digest
from .protocol import modules_of
from .tensors import tensor_sha256

__all__ = ["architecture_digest", "content_digest", "module_digest"]

_MODULE_DIGESTS: "weakref.WeakKeyDictionary[nn.Module, tuple]" = weakref.WeakKeyDictionary()


def _versions(module: nn.Module) -> tuple:
    # data_ptr and the in-place write counter of every tensor: any change to the weights changes this
    return tuple((t.data_ptr(), t._version) for t in module.state_dict().values())


def _plain_config(config) -> dict:
    # a diffusers model's config without its bookkeeping ("_diffusers_version", "_use_default_values", ...)
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dict(config).items() if not str(k).startswith("_")}


def architecture_digest(module: nn.Module) -> str:
    """sha256 (16 hex digits) of what a network is, apart from its weights' values: its class, its module tree
    as ``repr`` prints it (layer sizes, norms' eps, dropout rates, activations), the ``config`` of every
    submodule that has a dict-like one (diffusers' models: time-embedding flags and the like, which ``repr``
    does not show) and the names, dtypes and shapes of its state dict. Two builds of the same architecture
    with other initial weights have the same digest."""
    h = hashlib.sha256(f"{type(module).__module__}.{type(module).__qualname__}|{module!r}|".encode())
    for name, sub in module.named_modules():
        config = getattr(sub, "config", None)
        if hasattr(config, "items") and hasattr(config, "keys"):
            h.update(f"config {name}|{json.dumps(_plain_config(config), sort_keys=True, default=str)}|".encode())
    for key, t in module.state_dict().items():
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
    return h.hexdigest()[:16]


def module_digest(module: nn.Module) -> str:
    """sha256 (16 hex digits) of a network: its :func:`architecture_digest` and its state dict (names, dtypes,
    shapes, bytes)."""
    versions = _versions(module)
    known = _MODULE_DIGESTS.get(module)
    if known is not None and known[0] == versions:
        return known[1]
    h = hashlib.sha256(f"{architecture_digest(module)}|".encode())
    h.update(tensor_sha256(dict(module.state_dict())).encode())
    digest = h.hexdigest()[:16]
    _MODULE_DIGESTS[module] = (versions, digest)
    return digest


def content_digest(obj) -> str:
    """16 hex digits identifying ``obj`` by content.

    Tensors and arrays by their bytes, dtype and shape; a network by :func:`module_digest`; a score model
    by the network inside it and its schedule's ``config()`` (the same weights read on another schedule
    give other scores); a file (a ``pathlib.Path``) by its bytes; lists, tuples and dicts by their items; numbers and strings by value; another
    object of the package (an exact score, the empirical denoiser, a schedule) by its public attributes.
    """
    h = hashlib.sha256()
    if isinstance(obj, Tensor):
        h.update(b"tensor|" + tensor_sha256(obj).encode())
    elif isinstance(obj, np.ndarray):
        h.update(b"array|" + tensor_sha256(torch.from_numpy(np.ascontiguousarray(obj))).encode())
    elif isinstance(obj, nn.Module) and not hasattr(obj, "sde"):
        h.update(b"module|" + module_digest(obj).encode())
    elif hasattr(obj, "sde") and hasattr(obj, "score") and modules_of(obj) is not None:
        config = obj.sde.config() if hasattr(obj.sde, "config") else content_digest(obj.sde)
        h.update(f"model|{type(obj).__name__}|{module_digest(modules_of(obj))}|"
                 f"{json.dumps(config, sort_keys=True)}".encode())
    elif isinstance(obj, Path):                         # a file: by its bytes, never by its name
        h.update(b"file|" + file_digest(obj).encode())
    elif isinstance(obj, (list, tuple)):
        h.update(b"list|" + "|".join(content_digest(o) for o in obj).encode())
    elif isinstance(obj, dict):
        h.update(b"dict|" + "|".join(f"{k}={content_digest(v)}" for k, v in sorted(obj.items())).encode())
    elif obj is None or isinstance(obj, (bool, int, float, str)):
        h.update(f"value|{obj!r}".encode())
    elif hasattr(obj, "__dict__") and not callable(obj) or type(obj).__module__.startswith("mempkg."):
        # a plain object of the package (an exact score, the empirical denoiser, a schedule): its attributes
        public = {k: v for k, v in vars(obj).items() if not k.startswith("_")}
        h.update(f"object|{type(obj).__qualname__}|{content_digest(public)}".encode())
    else:
        raise TypeError(f"Cannot identify a {type(obj).__name__} by content; pass tensors, arrays, networks, "
                        "score models, or lists and dicts of them.")
    return h.hexdigest()[:16]
