"""A reader's own model and images, for the chapters that take them (layer: studies).

Chapters 02 (volume growth) and 05 (the three lenses) run on a pretrained unconditional pixel-space model
when given ``model`` (a diffusers hub id or folder, read by :mod:`mempkg.models.pretrained` as the command
line reads it) or ``model_factory`` (``"package.module:function"`` returning any score model with a
``data_shape``, :mod:`mempkg.models.factory`), and folders of its training images and of images it never
saw. :func:`reader_pixel_inputs` loads and checks all of it. Chapter 04 runs on a text-conditional (Stable
Diffusion family) model -- a pipeline, or a factory's model with :class:`~mempkg.models.stable_diffusion.
StableDiffusion`'s interface (:func:`reader_text_model`) -- with a folder of memorized images, folders of
non-memorized ones and their captions (:func:`reader_captioned_sets`). :func:`describe_model` says what a
run used, from the model itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pandas as pd

from ..core.devices import resolve_device
from ..core.digests import content_digest
from ..core.protocol import modules_of
from ..data.captioned import EvalSet
from ..data.images import IMAGE_SUFFIXES, ImageSet, OverfitSubset, load_image_folder, overfit_subset_of
from ..models.factory import TEXT_CONDITIONAL, image_side, is_text_conditional, load_factory_model
from ..models.pretrained import ModelInfo, load_pretrained

__all__ = ["ReaderInputs", "STABLE_DIFFUSION_INTERFACE", "describe_model", "reader_captioned_sets",
           "reader_pixel_inputs", "reader_source", "reader_text_model"]

# what chapter 04 reads of a text-conditional model beyond the protocol: StableDiffusion's interface
STABLE_DIFFUSION_INTERFACE = TEXT_CONDITIONAL + ("data_shape", "null_cond", "eps", "timestep", "decode_latents",
                                                 "scheduler", "schedule", "device", "parameters")


@dataclass
class ReaderInputs:
    """A reader's model with its images: ``train`` (all of the training folder), ``heldout`` (the other
    folder, or None), ``subset`` (the first ``n`` of each with flips, as the chapter's 2^7 groups)."""

    model: object                  # a score model with data_shape
    source: str                    # the hub id or folder, or the factory's "package.module:function"
    info: Optional[ModelInfo]      # what the pipeline's folder says; None for a factory's model
    train: ImageSet
    heldout: Optional[ImageSet]
    subset: Optional[OverfitSubset]


def reader_source(model, model_factory, chapter: str = "this chapter") -> Optional[str]:
    """The reader's model as a run records it: ``model`` (hub id or folder), ``model_factory``
    (``"package.module:function"``), or None when neither is given. Both at once is an error."""
    if model is not None and model_factory is not None:
        raise ValueError(f"{chapter} takes model= (a diffusers pipeline) or model_factory= ('package.module:function'"
                         f"), not both; got model={model!r} and model_factory={model_factory!r}. Drop one.")
    return str(model) if model is not None else (str(model_factory) if model_factory is not None else None)


def reader_pixel_inputs(model: Optional[str], train_images, heldout_images=None, n: Optional[int] = None,
                        device: str = "auto", chapter: str = "this chapter",
                        model_factory: Optional[str] = None) -> ReaderInputs:
    """Load a reader's unconditional pixel-space model and the image folders a chapter compares.

    The model is a pretrained diffusers pipeline (``model``) or what ``model_factory`` returns: any score
    model with ``data_shape = (C, H, H)``. Images are centre-cropped and resized to the model's own side and
    channels. Raises ``ValueError`` naming what is missing: no ``train_images``, both ``model`` and
    ``model_factory``, a text-conditional latent model (Stable Diffusion: chapter 04 and the command line read
    those), images of another size than the model's.
    """
    source = reader_source(model, model_factory, chapter)
    name = "model" if model is not None else "model_factory"
    if train_images is None:
        raise ValueError(f"{chapter} with {name}={source!r} needs train_images: a folder of the images the model "
                         "was trained on (and heldout_images: a folder of images it never saw).")
    if model_factory is not None:
        net, info = load_factory_model(model_factory, resolve_device(device), needs=("data_shape",)), None
        if is_text_conditional(net):
            raise ValueError(f"{chapter} reads an unconditional pixel-space model; model_factory {source!r} returned "
                             f"a {type(net).__name__}, a text-conditional model (it encodes images and prompts): "
                             "use chapter 04 or `python -m mempkg score`.")
        if len(net.data_shape) != 3 or net.data_shape[1] != net.data_shape[2]:
            raise ValueError(f"{chapter} reads square images: model_factory {source!r} returned a model with "
                             f"data_shape {tuple(net.data_shape)}; give data_shape = (C, H, H).")
    else:
        net, info = load_pretrained(model, device=device)
        if info.kind != "ddpm":
            raise ValueError(f"{chapter} reads an unconditional pixel-space DDPM pipeline; {model!r} is a Stable "
                             "Diffusion pipeline (latent, text-conditional): use chapter 04 or `python -m mempkg "
                             "score`.")
    C, H, W = net.data_shape
    train = load_image_folder(train_images, H, C)
    heldout = load_image_folder(heldout_images, H, C) if heldout_images is not None else None
    subset = overfit_subset_of(train, heldout, n or min(len(train), len(heldout))) if heldout is not None else None
    return ReaderInputs(net, source, info, train, heldout, subset)


def reader_text_model(model_factory: str, device: str = "auto", chapter: str = "Chapter 04"):
    """The text-conditional latent model ``model_factory`` returns, and the side of the images it reads -> (model,
    side in pixels).

    The model needs :data:`STABLE_DIFFUSION_INTERFACE` (a :class:`~mempkg.models.stable_diffusion.StableDiffusion`
    built from the reader's components has it all). The side is ``model.image_size`` when set, else
    ``data_shape[-1] * model.vae_scale`` (the latent side times the pixels one latent cell covers).
    """
    net = load_factory_model(model_factory, resolve_device(device), needs=("data_shape",))
    if not is_text_conditional(net):
        raise ValueError(f"{chapter} reads a text-conditional latent model (encode_images and encode_prompts); "
                         f"model_factory {model_factory!r} returned a {type(net).__name__}, an unconditional model: "
                         "chapters 02 and 05 take those.")
    missing = [a for a in STABLE_DIFFUSION_INTERFACE if not hasattr(net, a)]
    if missing:
        raise ValueError(f"{chapter} reads the interface of mempkg.StableDiffusion, and the {type(net).__name__} "
                         f"model_factory {model_factory!r} returned lacks {missing}: return a StableDiffusion built "
                         "from your pipeline's components (mempkg.load_stable_diffusion(folder), or "
                         "StableDiffusion(unet, vae, text_encoder, tokenizer, scheduler)).")
    side = image_side(net)
    if side is None:
        raise ValueError(f"{chapter} resizes the reader's images to the side the model reads: the model "
                         f"model_factory {model_factory!r} returned has neither image_size nor vae_scale; set "
                         "image_size (in pixels) on it.")
    return net, int(side)


def describe_model(model, source: str) -> dict:
    """What a run used, read from the model: its source (a hub id, a folder, or how the chapter made it),
    class, parameter count and the content digest of its weights and schedule."""
    net = modules_of(model)
    n_params = sum(p.numel() for p in net.parameters()) if net is not None else 0
    return {"source": str(source), "class": type(model).__name__, "n_parameters": int(n_params),
            "weights_digest": content_digest(model)}


def reader_captioned_sets(memorized_images, nonmemorized_images, captions) -> dict:
    """A reader's evaluation sets for chapter 04, the memorized set first: name -> :class:`EvalSet` of image
    files with one caption each.

    Args:
        memorized_images: a folder of images the model memorized.
        nonmemorized_images: a folder of images it did not, or a dict of set name -> folder (several
            non-memorized sets, as the chapter's LAION-Aesthetics, COCO and Tuxemon).
        captions: a CSV file with a header ``file,caption`` and one row per image of every folder (file names
            must be unique across the folders).
    """
    folders = {"memorized (the reader's)": memorized_images}
    folders.update(nonmemorized_images if isinstance(nonmemorized_images, dict)
                   else {"not memorized (the reader's)": nonmemorized_images})
    files = {}
    for name, folder in folders.items():
        folder = Path(str(folder)).expanduser()
        if not folder.is_dir():
            raise ValueError(f"No folder {folder} (set {name!r}): give folders of images ({', '.join(IMAGE_SUFFIXES)}).")
        found = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            raise ValueError(f"{folder} (set {name!r}) holds no image ({', '.join(IMAGE_SUFFIXES)}).")
        files[name] = found
    names = [p.name for fs in files.values() for p in fs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"File names repeat across the folders ({', '.join(repeated[:3])}): the captions file is "
                         "keyed by file name, so give every image its own name.")
    table = pd.read_csv(Path(str(captions)).expanduser(), dtype=str, keep_default_na=False)
    cols = {c.strip().lower(): c for c in table.columns}
    if not {"file", "caption"} <= set(cols):
        raise ValueError(f"{captions} needs the columns 'file' and 'caption'; it has {list(table.columns)}.")
    by_name = {Path(f).name: c for f, c in zip(table[cols["file"]], table[cols["caption"]])}
    missing = [n for n in names if not by_name.get(n, "").strip()]
    if missing:
        raise ValueError(f"{captions} gives no caption for {len(missing)} image(s), e.g. {missing[0]}; every image "
                         "needs one (chapter 04's scores are conditional).")
    return {name: EvalSet([str(p) for p in fs], [by_name[p.name] for p in fs], [p.name for p in fs])
            for name, fs in files.items()}
