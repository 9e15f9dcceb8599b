"""The images and captions a run scores: listing, reading, resizing, per-image seeds (layer: cli)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image

from ..data.fetch import center_crop_resize, load_image
from .args import UserError, error_reason, note

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def list_images(folder, recursive: bool = False) -> list[tuple[str, Path]]:
    """(name relative to ``folder`` with '/', path) of every image file, sorted by name; a bad folder fails early."""
    root = Path(folder).expanduser()
    if not root.exists():
        raise UserError(f"--images {folder}: no such folder.")
    if not root.is_dir():
        raise UserError(f"--images {folder} is a file, not a folder; give the folder that holds the images.")
    walk = root.rglob("*") if recursive else root.iterdir()
    files, others = [], 0
    for p in walk:
        rel = p.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not p.is_file():
            continue
        if p.suffix.lower() in IMAGE_SUFFIXES:
            files.append((rel.as_posix(), p))
        else:
            others += 1
    if not files:
        hint = ""
        if not recursive and any(q.is_dir() and any(r.suffix.lower() in IMAGE_SUFFIXES for r in q.rglob("*"))
                                 for q in root.iterdir()):
            hint = " Its subfolders hold images: pass --recursive."
        raise UserError(f"--images {folder} holds no image files (looked for {' '.join(IMAGE_SUFFIXES)}; "
                        f"found {others} other file(s)).{hint}")
    return sorted(files)


def check_readable(path: Path) -> Optional[str]:
    """None if Pillow identifies the file as an image (it reads the header only), else why not."""

    try:
        with Image.open(path):
            pass
    except Exception as e:          # Pillow raises OSError, SyntaxError, ValueError, DecompressionBombError...
        return error_reason(e)
    return None


def load_pixels(path: Path, size: Optional[int], channels: int = 3):
    """uint8 ``[H, W, C]`` pixels of an image file: RGB (transparency laid over white) or grey for C = 1,
    centre-cropped and resized to ``size`` x ``size`` as :func:`mempkg.data.fetch.center_crop_resize` does
    (``size=None``: the file's own pixels)."""

    im = load_image(path)
    if size is not None:
        im = center_crop_resize([im], int(size), output="pil")[0]
    if channels == 1:
        im = im.convert("L")
    arr = np.asarray(im, dtype=np.uint8)
    return arr[..., None] if arr.ndim == 2 else arr


def read_captions(path, names: list[str]) -> dict[str, str]:
    """{file: caption} for every image name from a CSV with columns file,caption (whitespace runs in a
    caption, newlines included, become one space, as CLIP's tokenizer does anyway)."""
    import pandas as pd  # heavy: pandas takes about a second to import

    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"--captions {path}: no such file.")
    try:
        df = pd.read_csv(p, dtype=str, keep_default_na=False)
    except Exception as e:
        raise UserError(f"--captions {path} cannot be read as CSV ({error_reason(e)}); it needs a header line "
                        "'file,caption' and one row per image.") from None
    cols = {str(c).strip().lower(): c for c in df.columns}
    missing = [c for c in ("file", "caption") if c not in cols]
    if missing:
        raise UserError(f"--captions {path} lacks the column(s) {', '.join(missing)} (it has: "
                        f"{', '.join(map(str, df.columns)) or 'nothing'}); it needs a header line 'file,caption' "
                        "and one row per image.")
    files = [f.strip() for f in df[cols["file"]]]
    caps = [" ".join(str(c).split()) for c in df[cols["caption"]]]
    seen, dup = set(), []
    for f in files:
        if f in seen:
            dup.append(f)
        seen.add(f)
    if dup:
        raise UserError(f"--captions {path} gives {len(set(dup))} file(s) more than one caption "
                        f"(e.g. {dup[0]!r}); keep one row per image.")
    table = dict(zip(files, caps))
    lacking = [n for n in names if n not in table]
    if lacking:
        shown = ", ".join(lacking[:3]) + (", ..." if len(lacking) > 3 else "")
        raise UserError(f"{len(lacking)} of {len(names)} images have no caption in --captions {path} ({shown}); "
                        "its file column must name each image as it is relative to --images.")
    extra = len(set(table) - set(names))
    if extra:
        note(f"note: {extra} row(s) of {path} name files that are not among the images; they are not used.")
    return {n: table[n] for n in names}


def image_seed(seed: int, name: str) -> int:
    """The seed of one image's random draws: 63 bits of sha256("<seed>/<file name>")."""
    return int.from_bytes(hashlib.sha256(f"{int(seed)}/{name}".encode()).digest()[:8], "little") >> 1
