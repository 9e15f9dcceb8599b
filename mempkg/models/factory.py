"""A reader's own model from a function of theirs: ``"package.module:function"`` (layer: models).

Anything the diffusers readers of :mod:`mempkg.models.pretrained` do not cover -- an NVlabs/edm checkpoint, a
k-diffusion model, a research codebase's network -- enters the chapters and the command line through a
*model factory*: a function, importable as ``package.module:function``, that builds and returns a score model
(the protocol of :mod:`mempkg.core.protocol`: ``sde`` and ``score(x, t, cond=None)``). It is called with
``device=`` when it takes that keyword, else with no arguments, and the object it returns is checked before
any estimator runs::

    # my_models.py, on the Python path
    def edm_cifar(device="cpu"):
        D = load_my_edm_net().to(device).eval()
        return mempkg.EDMDenoiser(D, sigma_data=0.5, data_shape=(3, 32, 32))

    python -m mempkg score --model-factory my_models:edm_cifar --images train/ --metric flipd --out f.csv

:func:`load_factory_model` does the import, the call and the checks; every failure is a :class:`FactoryError`
that says what to fix. ``needs`` names the attributes a caller reads beyond the protocol: pixel-space
chapters read ``data_shape``; chapter 04 and the ``cfgnorm`` metric read a text-conditional latent model's
``encode_images`` and ``encode_prompts``, as :class:`~mempkg.models.stable_diffusion.StableDiffusion` has.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence

from ..core.protocol import check_score_model

__all__ = ["FactoryError", "TEXT_CONDITIONAL", "factory_function", "image_side", "is_text_conditional",
           "load_factory_model"]


TEXT_CONDITIONAL = ("encode_images", "encode_prompts")    # what a latent, text-conditional model adds


SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


class FactoryError(ValueError):
    """A model factory that cannot be imported, called, or does not return a score model: the message says
    what is wrong and what to do."""


def is_text_conditional(model) -> bool:
    """Whether ``model`` is a latent, text-conditional score model (it encodes images and prompts)."""
    return all(callable(getattr(model, a, None)) for a in TEXT_CONDITIONAL)


def image_side(model) -> Optional[int]:
    """The pixel side of the square images ``model`` reads: ``model.image_size`` when set; else, for a latent
    model, its latent side times the pixels one latent cell covers (``data_shape[-1] * vae_scale``, as
    :class:`~mempkg.models.stable_diffusion.StableDiffusion` has); for a pixel model ``data_shape[-1]``; None
    when none of these is known."""
    side = getattr(model, "image_size", None)
    shape = getattr(model, "data_shape", None)
    if side is None and shape is not None:
        if is_text_conditional(model):
            scale = getattr(model, "vae_scale", None)
            side = None if scale is None else int(shape[-1]) * int(scale)
        else:
            side = int(shape[-1])
    return None if side is None else int(side)


def factory_function(spec: str) -> Callable:
    """The function named by ``"package.module:function"`` (a dotted attribute path after the colon), imported
    from the Python path; the current folder is searched too, as ``python -m`` does."""
    if not isinstance(spec, str) or not SPEC.match(spec.strip()):
        raise FactoryError(f"model_factory {spec!r} is not of the form 'package.module:function' (e.g. "
                           "'my_models:edm_cifar', a function in my_models.py that returns a score model).")
    module_name, attr = spec.strip().split(":")
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        obj = importlib.import_module(module_name)
    except ImportError as e:
        raise FactoryError(f"model_factory {spec!r}: cannot import {module_name!r} ({type(e).__name__}: {e}). Put "
                           "its folder on PYTHONPATH or install it.") from e
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise FactoryError(f"model_factory {spec!r}: {module_name} has no {attr!r}.")
        obj = getattr(obj, part)
    if not callable(obj):
        raise FactoryError(f"model_factory {spec!r}: {attr} is a {type(obj).__name__}, not a function.")
    return obj


def load_factory_model(spec: str, device: str = "cpu", needs: Sequence[str] = ()):
    """Import and call the factory ``spec`` (with ``device=`` when it takes that keyword) and check what it
    returns: the score-model protocol, then every attribute in ``needs``
    (e.g. ``("data_shape",)`` or :data:`TEXT_CONDITIONAL`). Returns the model."""
    fn = factory_function(spec)
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):              # a builtin or C function: call it bare
        params = {}
    takes_device = "device" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
    model = fn(device=device) if takes_device else fn()
    try:
        check_score_model(model)
    except TypeError as e:
        raise FactoryError(f"model_factory {spec!r} returned something that is not a score model: {e}") from None
    missing = [a for a in needs if getattr(model, a, None) is None]
    if missing:
        what = {"data_shape": "data_shape = (C, H, W), the per-image shape it reads",
                "encode_images": "encode_images(x) -> latents, for images [B, 3, H, W] in [-1, 1]",
                "encode_prompts": "encode_prompts(list of str) -> the text condition"}
        raise FactoryError(f"model_factory {spec!r} returned a {type(model).__name__} without "
                           + "; ".join(what.get(a, a) for a in missing) + ". Set it on the object it returns.")
    return model
