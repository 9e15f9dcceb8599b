"""What the command-line tests share: the command in-process, the table it wrote, random images."""

import csv
from pathlib import Path

import numpy as np
from PIL import Image

from mempkg.cli.main import main


def run(*argv) -> int:
    """``python -m mempkg score ARGV`` in this process -> its exit code."""
    return main(["score", *map(str, argv)])


def read(path) -> list[dict]:
    """The rows of a CSV table written by the command, as dicts of strings."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def random_images(folder: Path, n: int, start: int = 0, size: tuple = (8, 8)) -> Path:
    """``n`` RGB noise images ``img_<i>.png`` (i from ``start``, pixels seeded by i) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + n):
        pixels = np.random.default_rng(i).integers(0, 256, (*size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"img_{i:02d}.png")
    return folder
