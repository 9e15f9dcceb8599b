"""Stand-ins for what the `full` profile downloads, in the official formats, written by the tests."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np

CIFAR10_BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def write_cifar10(root: Path, n_per_train_batch: int = 8, n_test: int = 40, seed: int = 0) -> dict:
    """A CIFAR-10 "python version" folder ``root/cifar-10-batches-py`` (``data_batch_1..5``, ``test_batch``,
    ``batches.meta``) of random images; returns ``{file: md5}`` of the batches, the sums the loader is given."""
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    md5 = {}
    for f in CIFAR10_BATCHES:
        n = n_test if f == "test_batch" else n_per_train_batch
        x = rng.integers(0, 256, size=(n, 3 * 32 * 32), dtype=np.uint8)
        with open(folder / f, "wb") as fh:
            pickle.dump({b"batch_label": f"stand-in {f}".encode(), b"data": x,
                         b"labels": rng.integers(0, 10, size=n).tolist(), b"filenames": [b"x.png"] * n}, fh)
        md5[f] = hashlib.md5((folder / f).read_bytes()).hexdigest()
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog",
                                      b"horse", b"ship", b"truck"], b"num_cases_per_batch": n_per_train_batch,
                     b"num_vis": 3072}, fh)
    return md5
