"""Image sets by name: digits and CIFAR-10, overfit subsets and planted duplicates.

The von Mises circle toy is in :mod:`mempkg.data.toy`.

**Image sets** (:func:`load_images`) come as an :class:`ImageSet`: ``x`` ``[N, C, H, W]``
float32 in [-1, 1], the labels, and the data set's own indices, so that any subset can be
named and reproduced. Known names (:data:`IMAGE_SETS`):

* ``digits`` -- scikit-learn's bundled 8x8 digits (1,797 images, D = 64, values 0..16 mapped
  by x / 16 * 2 - 1). It has no official split; here ``train`` = indices 0..999 and ``test`` =
  1000..1796 (the split used in ``../shared/papers/NOTES.md``). Offline, always available.
* ``cifar10`` -- CIFAR-10 (50,000 train / 10,000 test, 3x32x32, D = 3,072), read from the
  "python version" folder ``<root>/cifar-10-batches-py`` by the reader here, every file md5-checked
  against the official sums (or the ``md5=`` a stand-in passes) before it is unpickled; ``root``
  defaults to ``$MEMPKG_DATA``, else ``~/.cache/mempkg/data``. ``download=True`` fetches the official
  archive once (md5-checked).

The "2^7" groups of Hasegawa & Yasuda (the first 64 training images as-is and flipped, and
64 held-out images likewise) come from :func:`overfit_subset`.

Layer: data (imports mempkg.core only).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import Tensor

from ..core.files import file_digest
from ..core.progress import bar as progress_bar
from .fetch import center_crop_resize, default_data_root, load_image

# -- image data sets ------------------------------------------------------------------------

IMAGE_SETS = ("digits", "cifar10")
SPLITS = ("train", "test")

DIGITS_N_TRAIN = 1000          # digits: train = indices 0..999, test = 1000..1796 (no official split)

# The official CIFAR-10 "python version" archive and its files' md5 sums (the same torchvision checks).
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_TGZ_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_FILES = {               # file -> md5, in the order the images are numbered
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}
CIFAR10_SPLIT_FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
DOWNLOAD_TIMEOUT_S = 60.0      # per socket operation, not for the whole 163 MB


@dataclass
class ImageSet:
    """Images of one split of a named data set, with the data set's own indices.

    Attributes:
        x: ``[N, C, H, W]`` float32 in [-1, 1], channels first.
        labels: ``[N]`` long class labels.
        indices: ``[N]`` long, each image's index in its split of the data set (for digits, the
            index in scikit-learn's array), so a subset can be named and reproduced.
        name, split: where the images come from.
        flipped: ``[N]`` bool, True where the image is the horizontal flip of the original
            (all False unless built by :meth:`with_flips`).
    """

    x: Tensor
    labels: Tensor
    indices: Tensor
    name: str
    split: str
    flipped: Optional[Tensor] = None

    def __post_init__(self):
        if self.x.dim() != 4:
            raise ValueError(f"ImageSet.x must be [N, C, H, W], got shape {tuple(self.x.shape)}.")
        n = self.x.shape[0]
        if self.flipped is None:
            self.flipped = torch.zeros(n, dtype=torch.bool)
        for field_name in ("labels", "indices", "flipped"):
            v = getattr(self, field_name)
            if v.shape != (n,):
                raise ValueError(f"ImageSet.{field_name} must have shape ({n},), got {tuple(v.shape)}.")

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W)."""
        return tuple(self.x.shape[1:])

    def subset(self, positions) -> "ImageSet":
        """The images at ``positions`` (an int sequence, a range, a slice, a long or bool tensor),
        keeping their indices, labels and flip markers: ``ds.subset(range(64))`` is the first 64."""
        if isinstance(positions, slice):
            pos = torch.arange(len(self))[positions]
        else:
            pos = torch.as_tensor(list(positions) if isinstance(positions, range) else positions)
            if pos.dtype == torch.bool:
                if pos.shape != (len(self),):
                    raise ValueError(f"A boolean subset mask needs shape ({len(self)},), got {tuple(pos.shape)}.")
                pos = pos.nonzero().flatten()
            pos = pos.long()
        if pos.dim() != 1:
            raise ValueError(f"subset positions must be one-dimensional, got shape {tuple(pos.shape)}.")
        if len(pos) and (pos.min() < -len(self) or pos.max() >= len(self)):
            raise IndexError(f"subset positions must lie in [0, {len(self)}) (or count from the end), "
                             f"got {pos.min().item()}..{pos.max().item()}.")
        return ImageSet(self.x[pos], self.labels[pos], self.indices[pos], self.name, self.split, self.flipped[pos])

    def with_flips(self) -> "ImageSet":
        """The images, then their horizontal flips (2N rows; indices and labels repeated,
        ``flipped`` marking the second half)."""
        return ImageSet(with_flips(self.x), self.labels.repeat(2), self.indices.repeat(2), self.name, self.split,
                        torch.cat([self.flipped, ~self.flipped]))


def with_flips(x: Tensor) -> Tensor:
    """``[N, ..., W]`` -> ``[2N, ..., W]``: the images, then their horizontal flips ``x.flip(-1)``."""
    return torch.cat([x, x.flip(-1)], dim=0)


def load_images(name: str, split: str = "train", root: str | Path | None = None,
                download: bool = False, md5: Optional[dict] = None) -> ImageSet:
    """One split of an image data set by name, as an :class:`ImageSet` in [-1, 1].

    Args:
        name: one of :data:`IMAGE_SETS` (``"digits"``, ``"cifar10"``; see the module docstring).
        split: ``"train"`` or ``"test"``.
        root: folder holding downloaded data sets (default :func:`default_data_root`); unused by digits.
        download: fetch a missing data set from its official source (needs internet).
        md5: CIFAR-10 only: ``{file: md5}`` the batch files must have (default :data:`CIFAR10_FILES`, the
            official sums). Every file is checked before it is unpickled; a stand-in copy (tests) passes its own.
    Returns:
        digits: ``x`` ``[1000, 1, 8, 8]`` (train) or ``[797, 1, 8, 8]`` (test);
        cifar10: ``[50000, 3, 32, 32]`` (train) or ``[10000, 3, 32, 32]`` (test).
    """
    if name not in IMAGE_SETS:
        raise ValueError(f"Unknown image data set {name!r}; known: {', '.join(IMAGE_SETS)}.")
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r} for {name!r}; choose 'train' or 'test'.")
    if name == "digits":
        return _load_digits(split)
    return _load_cifar10(split, Path(root).expanduser() if root is not None else default_data_root(), download,
                         CIFAR10_FILES if md5 is None else dict(md5))


def _load_digits(split: str) -> ImageSet:
    from sklearn.datasets import load_digits  # heavy: scikit-learn takes about a second to import

    d = load_digits()                      # bundled with scikit-learn: no network
    idx = np.arange(DIGITS_N_TRAIN) if split == "train" else np.arange(DIGITS_N_TRAIN, len(d.target))
    x = torch.tensor(d.images[idx] / 16.0 * 2.0 - 1.0, dtype=torch.float32)[:, None]
    return ImageSet(x, torch.as_tensor(d.target[idx], dtype=torch.long), torch.as_tensor(idx, dtype=torch.long),
                    "digits", split)



def _uint8_to_unit(data: np.ndarray) -> Tensor:
    """uint8 [N, C, H, W] -> float32 in [-1, 1], v / 255 * 2 - 1 (exact inverse: round((x + 1) * 127.5))."""
    return torch.from_numpy(np.ascontiguousarray(data)).to(torch.float32).div_(255.0).mul_(2.0).sub_(1.0)


def _load_cifar10(split: str, root: Path, download: bool, md5: dict) -> ImageSet:
    folder = root / CIFAR10_FOLDER
    missing = [f for f in CIFAR10_SPLIT_FILES[split] if not (folder / f).is_file()]
    if missing and download:
        _download_cifar10(root)
        missing = [f for f in CIFAR10_SPLIT_FILES[split] if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"CIFAR-10 ({split}) is not in {folder} (missing {', '.join(missing)}): fetch it with `python -c "
            "\"from mempkg.data.images import load_images; load_images('cifar10', download=True)\"` (needs internet; "
            f"offline, run that elsewhere and copy {CIFAR10_FOLDER}/ here), or set MEMPKG_DATA (or pass root=) "
            f"to a folder that holds {CIFAR10_FOLDER}/.")
    files = [folder / f for f in CIFAR10_SPLIT_FILES[split]]
    for f in files:                    # before unpickling: a pickle can run code, and a wrong file wrong numbers
        if f.name not in md5:
            raise ValueError(f"No md5 is given for {f.name}; pass md5={{file: md5}} for every CIFAR-10 batch file.")
        if _md5(f) != md5[f.name]:
            raise ValueError(f"{f} has md5 {_md5(f)}, expected {md5[f.name]}: it is not the official CIFAR-10 file "
                             "(truncated, altered, or another data set). Delete the folder and download it again "
                             "(load_images('cifar10', download=True)); a stand-in copy passes its own md5=.")
    data, labels = read_cifar10_batches(files)
    return ImageSet(_uint8_to_unit(data), torch.as_tensor(labels, dtype=torch.long),
                    torch.arange(len(labels), dtype=torch.long), "cifar10", split)


def read_cifar10_batches(files) -> tuple[np.ndarray, np.ndarray]:
    """Read CIFAR-10 "python version" batches in order -> (uint8 ``[N, 3, 32, 32]``, int64 ``[N]``).

    Each file is a pickle of a dict with ``b"data"`` (uint8 ``[n, 3072]``: 1,024 red, then
    green, then blue values, each plane row-major) and ``b"labels"`` (n ints). Pickles can run
    code: read only the official files (the download checks their md5).
    """
    data, labels = [], []
    for f in files:
        with open(f, "rb") as fh:
            entry = pickle.load(fh, encoding="bytes")
        try:
            d = np.asarray(entry[b"data"], dtype=np.uint8)
            lab = entry[b"labels"] if b"labels" in entry else entry[b"fine_labels"]
        except (KeyError, TypeError) as e:
            raise ValueError(f"{f} is not a CIFAR-10 python batch (no b'data' / b'labels').") from e
        if d.ndim != 2 or d.shape[1] != 3 * 32 * 32 or len(lab) != d.shape[0]:
            raise ValueError(f"{f}: expected data [n, 3072] and n labels, got data {d.shape} and {len(lab)} labels.")
        data.append(d.reshape(-1, 3, 32, 32))
        labels.append(np.asarray(lab, dtype=np.int64))
    return np.concatenate(data), np.concatenate(labels)


def _md5(path: Path) -> str:
    return file_digest(path, "md5")


def _download_cifar10(root: Path) -> None:
    """Fetch, md5-check and extract the official archive into ``root/cifar-10-batches-py``.

    Nothing half-done is ever left where the reader looks: the archive goes to a temporary
    file, is checked, extracted into a temporary folder, every batch is checked against its
    md5, and only then is the folder moved into place with one ``os.replace``.
    """
    root.mkdir(parents=True, exist_ok=True)
    folder = root / CIFAR10_FOLDER
    if folder.exists():
        raise FileExistsError(f"{folder} exists but is incomplete; delete it and call load_images('cifar10', "
                              "download=True) again.")

    fd, tgz = tempfile.mkstemp(prefix=".cifar-10-python.", suffix=".tar.gz.tmp", dir=root)
    out = os.fdopen(fd, "wb")
    tmpdir = None
    try:
        tmpdir = tempfile.mkdtemp(prefix=".cifar-10-extract.", dir=root)
        try:
            with out, urllib.request.urlopen(CIFAR10_URL, timeout=DOWNLOAD_TIMEOUT_S) as resp:
                size = int(resp.headers.get("Content-Length") or 0) or None
                h = hashlib.md5()
                with progress_bar(total=size, desc="CIFAR-10 download") as pbar:
                    for block in iter(lambda: resp.read(1 << 20), b""):
                        h.update(block)
                        out.write(block)
                        pbar.update(len(block))
                out.flush()
                os.fsync(out.fileno())
        except (urllib.error.URLError, OSError) as e:
            raise ConnectionError(f"Could not download CIFAR-10 from {CIFAR10_URL} ({e}); check the connection, "
                                  f"or download the archive elsewhere and extract it into {root}.") from e
        if h.hexdigest() != CIFAR10_TGZ_MD5:
            raise ValueError(f"The CIFAR-10 archive from {CIFAR10_URL} has md5 {h.hexdigest()}, expected "
                             f"{CIFAR10_TGZ_MD5} (a truncated or altered download); it was discarded, try again.")
        with tarfile.open(tgz, "r:gz") as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(tmpdir, filter="data")
            else:                                       # Python without extraction filters
                for m in tar.getmembers():
                    if m.name.startswith(("/", "..")) or ".." in Path(m.name).parts or not (m.isfile() or m.isdir()):
                        raise ValueError(f"Refusing to extract suspicious archive member {m.name!r}.")
                tar.extractall(tmpdir)
        extracted = Path(tmpdir) / CIFAR10_FOLDER
        for f, md5 in CIFAR10_FILES.items():
            if not (extracted / f).is_file() or _md5(extracted / f) != md5:
                raise ValueError(f"The CIFAR-10 archive's {f} is missing or fails its md5 check; it was discarded.")
        os.replace(extracted, folder)
    finally:
        out.close()
        if os.path.exists(tgz):
            os.unlink(tgz)
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)


@dataclass
class OverfitSubset:
    """The "2^7" groups of Hasegawa & Yasuda: the first ``n`` training images (the model's
    whole training set) and the first ``n`` test images, each evaluated as-is and flipped.

    ``trained`` and ``heldout`` are :class:`ImageSet` s of ``2n`` rows (originals, then flips;
    ``indices`` and ``flipped`` say which image each row is). ``train_x`` (``[n, C, H, W]``,
    the unflipped training images) is what the model is trained on (with random flips if the
    chapter augments, as the authors' DDPM code did).
    """

    trained: ImageSet
    heldout: ImageSet
    n: int

    @property
    def train_x(self) -> Tensor:
        return self.trained.x[: self.n]

    def combined(self) -> tuple[ImageSet, Tensor]:
        """Both groups in one :class:`ImageSet` (trained first) and ``member`` ``[4n]`` bool
        (True for trained rows), the labels of a membership test."""
        t, h = self.trained, self.heldout
        both = ImageSet(torch.cat([t.x, h.x]), torch.cat([t.labels, h.labels]), torch.cat([t.indices, h.indices]),
                        t.name, "train+test", torch.cat([t.flipped, h.flipped]))
        member = torch.cat([torch.ones(len(t), dtype=torch.bool), torch.zeros(len(h), dtype=torch.bool)])
        return both, member


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def load_image_folder(folder: str | Path, size: int, channels: int = 3, n: Optional[int] = None) -> ImageSet:
    """The images of a folder (not its subfolders), sorted by file name, as an :class:`ImageSet`.

    Each image is converted to RGB (transparency over white), centre-cropped to a square and resized to
    ``size`` x ``size`` as for the command line and Stable Diffusion (:func:`mempkg.data.fetch.center_crop_resize`),
    then made grey when ``channels`` is 1. ``n`` keeps the first ``n`` files. ``indices`` number the files in
    name order; ``labels`` are all 0; ``name`` is the folder and ``split`` ``"folder"``; the file names are
    in ``files``. An empty folder or an unreadable image is a ``ValueError`` that names it.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ValueError(f"No folder {folder}: give a folder of images ({', '.join(IMAGE_SUFFIXES)}).")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if n is not None:
        files = files[: int(n)]
    if not files:
        raise ValueError(f"{folder} holds no image ({', '.join(IMAGE_SUFFIXES)}).")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels}.")
    images = []
    for f in files:
        try:
            images.append(load_image(f))
        except Exception as e:          # Pillow raises OSError, SyntaxError, ValueError, ...
            raise ValueError(f"{f} cannot be read as an image ({type(e).__name__}: {e}); remove or fix it.") from None
    x = center_crop_resize(images, int(size))                            # [N, 3, S, S] in [-1, 1]
    if channels == 1:                                                    # ITU-R 601 luma, as PIL's "L"
        x = (0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
    out = ImageSet(x.float().contiguous(), torch.zeros(len(files), dtype=torch.long),
                   torch.arange(len(files), dtype=torch.long), str(folder), "folder")
    out.files = [f.name for f in files]
    return out


def overfit_subset_of(train: ImageSet, heldout: ImageSet, n: int) -> OverfitSubset:
    """:func:`overfit_subset` of two given image sets: the first ``n`` of each, each with its flips (a
    reader's model: its training images and images it never saw)."""
    if n < 1:
        raise ValueError(f"overfit_subset_of needs n >= 1 images, got {n}.")
    if train.image_shape != heldout.image_shape:
        raise ValueError(f"The trained and held-out images differ in shape: {train.image_shape} and "
                         f"{heldout.image_shape}.")
    n = min(int(n), len(train), len(heldout))
    return OverfitSubset(train.subset(range(n)).with_flips(), heldout.subset(range(n)).with_flips(), n)


def overfit_subset(name: str, n: int = 64, root: str | Path | None = None, download: bool = False,
                   md5: Optional[dict] = None) -> OverfitSubset:
    """The first ``n`` training and the first ``n`` test images of ``name``, each with its flips.

    With ``name="cifar10"`` and ``n=64`` these are the paper's 2^7 = 128 trained and 128
    held-out evaluations (NOTES.md, section 1).
    """
    if n < 1:
        raise ValueError(f"overfit_subset needs n >= 1 images, got {n}.")
    train = load_images(name, "train", root, download, md5)
    test = load_images(name, "test", root, download, md5)
    if n > min(len(train), len(test)):
        raise ValueError(f"overfit_subset: n={n} exceeds the {name} split sizes "
                         f"(train {len(train)}, test {len(test)}).")
    return OverfitSubset(train.subset(range(n)).with_flips(), test.subset(range(n)).with_flips(), int(n))


@dataclass
class PlantedSet:
    """A training set in which a few images are repeated, so that memorization has a known
    ground truth (LAION's memorized images are heavily duplicated; Carlini et al. 2023).

    ``unique`` holds every distinct training image once; ``train`` is what the model is trained
    on: ``unique`` plus ``n_copies - 1`` extra copies of each planted image. ``planted`` [P] are
    positions in ``unique``.
    """

    unique: ImageSet
    train: ImageSet
    planted: Tensor
    n_copies: int


def plant_duplicates(images: ImageSet, n_planted: int, n_copies: int, seed: int = 0) -> PlantedSet:
    """Repeat ``n_planted`` images (chosen with ``seed``) ``n_copies`` times in total."""
    if not (0 < n_planted <= len(images)):
        raise ValueError(f"n_planted={n_planted} must lie in [1, {len(images)}].")
    if n_copies < 2:
        raise ValueError(f"n_copies must be >= 2 for a duplicate to exist, got {n_copies}.")
    g = torch.Generator().manual_seed(int(seed))
    planted = torch.randperm(len(images), generator=g)[:n_planted].sort().values
    extra = planted.repeat(n_copies - 1)
    train = images.subset(torch.cat([torch.arange(len(images)), extra]))
    return PlantedSet(images, train, planted, int(n_copies))
