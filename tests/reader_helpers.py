"""What the tests of a reader's own model share: folders of random images, and captioned folders for chapter 04."""

from pathlib import Path

import numpy as np
from PIL import Image


def image_folder(folder: Path, n: int, seed: int, size: int = 12) -> Path:
    """``n`` RGB noise images ``000.png`` ... of side ``size`` (pixels seeded by ``seed``) in a new ``folder``."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{i:03d}.png")
    return folder


def captioned_folders(root: Path, n: int, size: int, memorized: str, other: str) -> tuple[Path, Path, Path]:
    """A memorized and a non-memorized folder of ``n`` images each under ``root`` (names unique across both) and
    ``captions.csv`` for all of them; ``memorized`` and ``other`` are caption formats taking ``{i}`` and ``{f}``
    (the file). Returns (memorized folder, non-memorized folder, captions file)."""
    mem, non = image_folder(root / "mem", n, 2, size=size), image_folder(root / "non", n, 3, size=size)
    for i, f in enumerate(sorted(non.iterdir())):
        f.rename(non / f"non_{i}.png")
    rows = [f"{f.name},{memorized.format(i=i, f=f)}" for i, f in enumerate(sorted(mem.iterdir()))]
    rows += [f"{f.name},{other.format(i=i, f=f)}" for i, f in enumerate(sorted(non.iterdir()))]
    (root / "captions.csv").write_text("file,caption\n" + "\n".join(rows) + "\n")
    return mem, non, root / "captions.csv"
