"""Content digests of what a computation reads: tensors, arrays, networks and score models (layer: core).

A cached result is reused only for the same inputs, so its key holds what identifies them by content,
never by name or path: the bytes of a tensor, the state dict of a network (with the schedule it is read
on), a list of such. :func:`content_digest` gives 16 hex digits of sha256 for any of them. A network's
digest is remembered until one of its parameters changes in place (torch counts in-place writes), so a
run that reads the digest of a large model many times hashes its weights once.
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

__all__ = ["content_digest", "module_digest"]

_MODULE_DIGESTS: "weakref.WeakKeyDictionary[nn.Module, tuple]" = weakref.WeakKeyDictionary()


def _versions(module: nn.Module) -> tuple:
    # data_ptr and the in-place write counter of every tensor: any change to the weights changes this
    return tuple((t.data_ptr(), t._version) for t in module.state_dict().values())


def module_digest(module: nn.Module) -> str:
    """sha256 (16 hex digits) of a network's class and state dict (names, dtypes, shapes, bytes)."""
    versions = _versions(module)
    known = _MODULE_DIGESTS.get(module)
    if known is not None and known[0] == versions:
        return known[1]
    h = hashlib.sha256(f"{type(module).__module__}.{type(module).__qualname__}|".encode())
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
