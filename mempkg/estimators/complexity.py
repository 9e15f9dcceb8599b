"""Image complexity: PNG compression size (Ross, Kamkari et al. 2024, Fig. 4d).

Ross et al. check that LID does not detect memorization merely through image complexity by
comparing it with the PNG size at the maximum zlib compression (level 9; they used cv2). Simple
images compress to few bytes; noise does not compress at all.

Layer: estimators (imports mempkg.core only).
"""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image


def to_uint8(images) -> np.ndarray:
    """Images as uint8 pixels, channels last: ``[B, H, W]`` or ``[B, H, W, C]`` (C in 1, 3, 4).

    * uint8 arrays or tensors ``[B, H, W]`` or ``[B, H, W, C]`` are taken as they are;
    * float arrays or tensors ``[B, C, H, W]`` in [-1, 1] (the book's and SD's convention) become
      p = round(255 (x + 1) / 2) after clamping x to [-1, 1], as diffusers' image post-processing does,
      and are moved channels last (C = 1 gives ``[B, H, W]``).
    """
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    arr = np.asarray(images)
    if arr.dtype == np.uint8:
        if arr.ndim == 3 or (arr.ndim == 4 and arr.shape[-1] in (1, 3, 4)):
            return arr[..., 0] if arr.ndim == 4 and arr.shape[-1] == 1 else arr
        raise ValueError(f"uint8 images must be [B, H, W] or [B, H, W, C] with C in 1, 3, 4; got shape {arr.shape}.")
    if np.issubdtype(arr.dtype, np.floating):
        if arr.ndim != 4 or arr.shape[1] not in (1, 3, 4):
            raise ValueError(f"float images must be [B, C, H, W] in [-1, 1] with C in 1, 3, 4; got shape {arr.shape}.")
        if not np.all(np.isfinite(arr)):
            raise ValueError("float images contain NaN or infinite values.")
        pix = np.round((np.clip(arr.astype(np.float64), -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)
        pix = pix.transpose(0, 2, 3, 1)
        return pix[..., 0] if pix.shape[-1] == 1 else pix
    raise TypeError(f"images must be uint8 pixels or floats in [-1, 1], got dtype {arr.dtype}.")


def png_size(images, compress_level: int = 9) -> np.ndarray:
    """Bytes of each image saved as PNG at zlib ``compress_level`` (9 = maximum, Ross et al.'s) -> int64 [B].

    Pillow's encoder with ``optimize=False``; ``images`` as accepted by :func:`to_uint8`. The
    authors used cv2 (not installed here); both deflate with zlib at level 9, but the encoders may
    choose PNG row filters differently, so byte counts need not match theirs exactly.
    """

    if not 0 <= int(compress_level) <= 9:
        raise ValueError(f"compress_level must be in 0..9, got {compress_level}.")
    pix = to_uint8(images)
    sizes = np.empty(len(pix), dtype=np.int64)
    for i, p in enumerate(pix):
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(p)).save(buf, format="PNG", optimize=False,
                                                      compress_level=int(compress_level))
        sizes[i] = buf.tell()
    return sizes
