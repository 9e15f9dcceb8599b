"""A reader's own model and images, for the chapters that take them (layer: studies).

Chapters 02 (volume growth) and 05 (the three lenses) run on a pretrained unconditional pixel-space model
when given ``model`` (a diffusers hub id or folder, read by :mod:`mempkg.models.pretrained` as the command
line reads it) and folders of its training images and of images it never saw. :func:`reader_pixel_inputs`
loads and checks all of it. Chapter 04 runs on a text-conditional (Stable Diffusion family) model with a
folder of memorized images, folders of non-memorized ones and their captions (:func:`reader_captioned_sets`).
:func:`describe_model` says what a run used, from the model itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pandas as pd
from torch import nn

from ..core.digests import content_digest
from ..core.protocol import modules_of
from ..data.captioned import EvalSet
from ..data.images import IMAGE_SUFFIXES, ImageSet, OverfitSubset, load_image_folder, overfit_subset_of
from ..models.pretrained import ModelInfo, load_pretrained

__all__ = ["ReaderInputs", "describe_model", "reader_captioned_sets", "reader_pixel_inputs"]


@dataclass
class ReaderInputs:
    """A reader's model with its images: ``train`` (all of the training folder), ``heldout`` (the other
    folder, or None), ``subset`` (the first ``n`` of each with flips, as the chapter's 2^7 groups)."""

    model: nn.Module
    info: ModelInfo
    train: ImageSet
    heldout: Optional[ImageSet]
    subset: Optional[OverfitSubset]


def reader_pixel_inputs(model: str, train_images, heldout_images=None, n: Optional[int] = None,
                        device: str = "auto", chapter: str = "this chapter") -> ReaderInputs:
    """Load a pretrained unconditional pixel-space pipeline and the image folders a chapter compares.

    Images are centre-cropped and resized to the model's own side and channels. Raises ``ValueError``
    naming what is missing: no ``train_images``, a Stable Diffusion pipeline (a latent, text-conditional
    model: chapter 04 and the command line read those), images of another size than the model's.
    """
    if train_images is None:
        raise ValueError(f"{chapter} with model={model!r} needs train_images: a folder of the images the model "
                         "was trained on (and heldout_images: a folder of images it never saw).")
    net, info = load_pretrained(model, device=device)
    if info.kind != "ddpm":
        raise ValueError(f"{chapter} reads an unconditional pixel-space DDPM pipeline; {model!r} is a Stable "
                         "Diffusion pipeline (latent, text-conditional): use chapter 04 or `python -m mempkg score`.")
    C, H, W = net.data_shape
    train = load_image_folder(train_images, H, C)
    heldout = load_image_folder(heldout_images, H, C) if heldout_images is not None else None
    subset = overfit_subset_of(train, heldout, n or min(len(train), len(heldout))) if heldout is not None else None
    return ReaderInputs(net, info, train, heldout, subset)


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
