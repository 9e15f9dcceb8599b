"""Captioned digits with planted verbatims: the data of chapter 04's stand-in for LAION.

* :class:`Vocabulary` -- the caption language (template, class, attribute and rare words) and its
  word-level tokenizer: a caption -> ``max_len`` token ids, the empty caption all pads.
* :class:`DigitDescriber` -- ordinary captions written from the pixels: thickness, width, slant, class.
* :func:`captioned_digits` -- the 1,000 training digits, each with its caption, except ``n_planted``
  planted verbatims: images repeated ``n_copies`` times, each with a unique caption of rare words
  (as LAION's verbatims are duplicated images with unusual captions, Webster 2023). Ground truth:
  memorized = planted.
* :func:`evaluation_sets` -- the memorized set and three non-memorized ones (training digits seen
  once, held-out digits, out-of-distribution photographs from :func:`ood_photos`), as :class:`EvalSet` s;
  :func:`laion_evaluation_sets` -- Ross, Kamkari et al.'s LAION, COCO and Tuxemon sets (``full`` profile).

Layer: data (imports core and data).
"""

from __future__ import annotations

import hashlib
import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import skimage.data as skdata
import torch
from skimage.color import rgb2gray, rgba2rgb
from skimage.transform import resize
from torch import Tensor

from ..core.tensors import check_choice, tensor_sha256
from . import fetch, laion
from .fetch import center_crop_resize
from .images import load_images

__all__ = ["ATTRIBUTES", "LAION_SETS", "MEMORIZED", "NON_MEMORIZED", "RARE_WORDS", "CaptionedDigits", "DigitDescriber",
           "EvalSet", "Vocabulary", "captioned_digits", "evaluation_sets", "image_batch", "laion_evaluation_sets",
           "ood_photos"]

# -- the caption language ---------------------------------------------------------------------------

PAD = "<pad>"
TEMPLATE_WORDS = ("a", "digit")
CLASS_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# attribute -> (word for the lowest third, word for the highest third); the middle third says nothing
ATTRIBUTE_WORDS = {"thickness": ("thin", "thick"), "width": ("narrow", "wide"), "slant": ("backslanted", "slanted")}
ATTRIBUTES = tuple(ATTRIBUTE_WORDS)
# Words no ordinary caption uses: the planted verbatims' captions are made of them.
RARE_WORDS = ("quokka", "zephyr", "obsidian", "marmalade", "tundra", "saffron", "gargoyle", "nebula", "kumquat",
              "lagoon", "walrus", "origami", "pumice", "yodel", "juniper", "cobalt", "fjord", "mango", "quasar",
              "velvet", "wombat", "xylophone", "ember", "harbor", "igloo", "jasmine", "kiwi", "lantern", "mosaic",
              "nutmeg", "opal", "pagoda")
VOCABULARY = (PAD,) + TEMPLATE_WORDS + CLASS_WORDS + tuple(w for pair in ATTRIBUTE_WORDS.values() for w in pair) \
    + RARE_WORDS
MAX_LEN = 8           # "a thick wide slanted digit seven" has 6 words


class Vocabulary:
    """Word-level tokenizer: a caption -> ``max_len`` token ids, words first, then pads (id 0).

    Captions are lower-cased and split on white space; the empty caption is all pads (the
    unconditional "prompt" of classifier-free guidance, as SD's ``""``). A word outside the
    vocabulary or a caption longer than ``max_len`` words is an error, not silently dropped: its
    embedding would never have been trained.
    """

    def __init__(self, words: Sequence[str] = VOCABULARY, max_len: int = MAX_LEN):
        words = tuple(words)
        if not words or words[0] != PAD or len(set(words)) != len(words):
            raise ValueError(f"words must start with {PAD!r} and hold no duplicates.")
        if int(max_len) < 1:
            raise ValueError(f"max_len must be a positive number of tokens, got {max_len}.")
        self.words, self.max_len = words, int(max_len)
        self.index = {w: i for i, w in enumerate(words)}

    def __len__(self) -> int:
        return len(self.words)

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} words, max_len={self.max_len})"

    def config(self) -> dict:
        return {"words_sha256": hashlib.sha256("\n".join(self.words).encode()).hexdigest()[:16],
                "n_words": len(self), "max_len": self.max_len}

    def encode(self, captions: Sequence[str]) -> Tensor:
        """Captions -> long ``[B, max_len]``."""
        if isinstance(captions, str):
            captions = [captions]
        captions = list(captions)
        if not captions or not all(isinstance(c, str) for c in captions):
            raise ValueError("captions must be a non-empty list of strings.")
        out = torch.zeros(len(captions), self.max_len, dtype=torch.long)
        for i, c in enumerate(captions):
            ws = c.lower().split()
            if len(ws) > self.max_len:
                raise ValueError(f"caption {c!r} has {len(ws)} words; this vocabulary holds at most {self.max_len}.")
            unknown = [w for w in ws if w not in self.index or w == PAD]
            if unknown:
                raise ValueError(f"caption {c!r} uses words outside the vocabulary: {unknown}; captions of this model "
                                 "may only use its vocabulary (model.vocab.words).")
            out[i, :len(ws)] = torch.tensor([self.index[w] for w in ws], dtype=torch.long)
        return out

    def decode(self, tokens: Tensor) -> list[str]:
        """Token ids ``[B, L]`` -> captions (pads dropped)."""
        return [" ".join(self.words[int(i)] for i in row if int(i) != 0) for row in tokens]


@dataclass
class DigitDescriber:
    """Captions from pixels: "a [thin|thick] [narrow|wide] [backslanted|slanted] digit <class>".

    With ink m = (x + 1) / 2 on the 8 x 8 grid (pixel coordinates u across, v down) and weights
    w = m / sum m, the attributes of an image are

        thickness = sum m                      (ink mass),
        width     = sqrt(sum w (u - u_bar)^2)  (horizontal spread),
        slant     = cov_w(u, v) / var_w(v)     (horizontal shift per row going down: the shear),

    and each says its low word below its training tertile ``lo``, its high word above ``hi``,
    nothing in between. Thresholds are fitted on the training digits and used for every image,
    held-out and out-of-distribution ones included. The class word is the label, or, for an
    image without one, the nearest class mean of the training digits (what the vocabulary can
    say about a photograph).
    """

    lo: dict = field(default_factory=dict)
    hi: dict = field(default_factory=dict)
    centroids: Optional[Tensor] = None          # [10, 1, 8, 8]

    @staticmethod
    def measure(x: Tensor) -> dict:
        """The attribute values of images ``[B, 1, H, W]`` in [-1, 1] -> {attribute: float64 [B]}."""
        m = ((x.double()[:, 0] + 1) / 2).clamp_min(0)
        H, W = m.shape[1:]
        v, u = torch.meshgrid(torch.arange(H, dtype=torch.float64), torch.arange(W, dtype=torch.float64), indexing="ij")
        mass = m.sum((1, 2))
        w = m / mass.clamp_min(1e-12)[:, None, None]
        ub, vb = (w * u).sum((1, 2)), (w * v).sum((1, 2))
        du, dv = u - ub[:, None, None], v - vb[:, None, None]
        return {"thickness": mass, "width": (w * du**2).sum((1, 2)).sqrt(),
                "slant": (w * du * dv).sum((1, 2)) / (w * dv**2).sum((1, 2)).clamp_min(1e-12)}

    @classmethod
    def fit(cls, x: Tensor, labels: Tensor) -> "DigitDescriber":
        """Tertile thresholds and class means from training digits ``[N, 1, H, W]`` with labels ``[N]``."""
        vals = cls.measure(x)
        lo = {a: float(torch.quantile(v, 1 / 3)) for a, v in vals.items()}
        hi = {a: float(torch.quantile(v, 2 / 3)) for a, v in vals.items()}
        cents = torch.stack([x[labels == k].mean(0) for k in range(len(CLASS_WORDS))])
        return cls(lo, hi, cents)

    def classify(self, x: Tensor) -> Tensor:
        """Nearest class mean -> long ``[B]``."""
        d = torch.cdist(x.flatten(1).double(), self.centroids.flatten(1).double())
        return d.argmin(1)

    def captions(self, x: Tensor, labels: Optional[Tensor] = None, attributes: Sequence[str] = ATTRIBUTES) -> list[str]:
        """One caption per image ``[B, 1, H, W]``; ``labels`` ``[B]`` or None (nearest class mean)."""
        for a in attributes:
            check_choice("attribute", a, ATTRIBUTES)
        vals = self.measure(x)
        labels = self.classify(x) if labels is None else torch.as_tensor(labels)
        out = []
        for i in range(x.shape[0]):
            words = ["a"]
            for a in attributes:
                low, high = ATTRIBUTE_WORDS[a]
                if vals[a][i] < self.lo[a]:
                    words.append(low)
                elif vals[a][i] > self.hi[a]:
                    words.append(high)
            words += ["digit", CLASS_WORDS[int(labels[i])]]
            out.append(" ".join(words))
        return out


# -- the data set -----------------------------------------------------------------------------------

PLANTED_POOLS = ("all", "simpler_half")


@dataclass
class CaptionedDigits:
    """The training set of the planted-verbatim experiment and everything needed to evaluate it.

    Attributes:
        x: ``[M, 1, 8, 8]`` training rows in [-1, 1]: every training digit once, the planted ones
            ``n_copies`` times each (M = 1000 + n_planted (n_copies - 1)).
        captions: ``[M]`` the caption of every row.
        source: ``[M]`` long, the position in ``train`` of every row's image.
        train: the 1,000 distinct training digits (:class:`mempkg.data.images.ImageSet`);
            ``train_captions`` their captions (a planted image's is its unique caption).
        planted: ``[P]`` long, positions in ``train`` of the planted verbatims (sorted);
            ``planted_captions`` their captions, in the same order.
        heldout: the held-out digits (the test split); ``heldout_captions`` their captions.
        describer: the :class:`DigitDescriber` that wrote the ordinary captions.
        vocab: the :class:`Vocabulary` every caption uses.
    """

    x: Tensor
    captions: list
    source: Tensor
    train: object
    train_captions: list
    planted: Tensor
    planted_captions: list
    heldout: object
    heldout_captions: list
    describer: DigitDescriber
    vocab: Vocabulary
    n_copies: int
    seed: int
    planted_pool: str

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def is_planted(self) -> Tensor:
        """``[len(train)]`` bool: which distinct training images are planted."""
        mask = torch.zeros(len(self.train), dtype=torch.bool)
        mask[self.planted] = True
        return mask

    def tokens(self) -> Tensor:
        """Token ids of every row's caption -> long ``[M, max_len]``."""
        return self.vocab.encode(self.captions)

    def training_tensor(self) -> Tensor:
        """Images and token ids packed in one float tensor ``[M, D + max_len]`` (D = 64 pixels; ids are small
        integers, exact in float32), so the shared training loop can draw batches of (image, caption) rows."""
        return torch.cat([self.x.flatten(1), self.tokens().float()], dim=1)

    def config(self) -> dict:
        """Plain-literal description (cache keys)."""
        return {"n_rows": len(self), "n_planted": int(len(self.planted)), "n_copies": self.n_copies,
                "seed": self.seed, "planted_pool": self.planted_pool, "vocab": self.vocab.config(),
                "data_sha256": tensor_sha256(self.training_tensor())}


def captioned_digits(n_planted: int = 20, n_copies: int = 8, seed: int = 0, *, n_rare_words: int = 3,
                     planted_pool: str = "simpler_half", attributes: Sequence[str] = ATTRIBUTES,
                     complexity: Optional[Callable[[Tensor], np.ndarray]] = None) -> CaptionedDigits:
    """Build the captioned training set with planted verbatims (seeded: same arguments, same set).

    1. The 1,000 training digits get ordinary captions from :class:`DigitDescriber` (thresholds fitted
       on them); the held-out digits get theirs from the same describer.
    2. ``n_planted`` training images are drawn with ``numpy.random.default_rng(seed)`` from
       ``planted_pool``: ``"all"`` the training digits, or ``"simpler_half"`` the half of smallest
       ``complexity`` (LAION's memorized images are simpler than average; ``NOTES.md`` section 2).
    3. Each planted image gets a unique caption of ``n_rare_words`` distinct words of
       :data:`RARE_WORDS` (a distinct word set per image, in random order) and is repeated
       ``n_copies`` times; every other image appears once.

    Args:
        complexity: images ``[N, 1, 8, 8]`` -> ``[N]`` numbers, the ``"simpler_half"`` pool's order
            (the chapter passes :func:`mempkg.estimators.complexity.png_size`); needed for that pool only.
    """

    check_choice("planted_pool", planted_pool, PLANTED_POOLS)
    n_planted, n_copies, n_rare_words = int(n_planted), int(n_copies), int(n_rare_words)
    if n_copies < 1 or n_planted < 0 or not 1 <= n_rare_words <= MAX_LEN:
        raise ValueError(f"need n_planted >= 0, n_copies >= 1 and 1 <= n_rare_words <= {MAX_LEN}; got "
                         f"n_planted={n_planted}, n_copies={n_copies}, n_rare_words={n_rare_words}.")
    if math.comb(len(RARE_WORDS), n_rare_words) < n_planted:
        raise ValueError(f"{len(RARE_WORDS)} rare words make only {math.comb(len(RARE_WORDS), n_rare_words)} distinct "
                         f"{n_rare_words}-word captions, fewer than n_planted={n_planted}; raise n_rare_words.")
    if planted_pool == "simpler_half" and complexity is None:
        raise ValueError("planted_pool='simpler_half' needs complexity, a function images -> per-image numbers "
                         "(mempkg.estimators.complexity.png_size).")
    train = load_images("digits", "train")
    heldout = load_images("digits", "test")
    describer = DigitDescriber.fit(train.x, train.labels)
    rng = np.random.default_rng(int(seed))

    if planted_pool == "simpler_half":
        pool = np.sort(np.argsort(np.asarray(complexity(train.x)), kind="stable")[: len(train) // 2])
    else:
        pool = np.arange(len(train))
    if n_planted > len(pool):
        raise ValueError(f"n_planted={n_planted} exceeds the {len(pool)} images of the pool {planted_pool!r}.")
    planted = np.sort(rng.choice(pool, size=n_planted, replace=False))
    word_sets: set = set()
    planted_captions = []
    while len(planted_captions) < n_planted:
        words = rng.choice(len(RARE_WORDS), size=n_rare_words, replace=False)
        key = frozenset(words.tolist())
        if key not in word_sets:
            word_sets.add(key)
            planted_captions.append(" ".join(RARE_WORDS[i] for i in words))

    train_captions = describer.captions(train.x, train.labels, attributes)
    for p, c in zip(planted, planted_captions):
        train_captions[int(p)] = c
    copies = np.ones(len(train), dtype=np.int64)
    copies[planted] = n_copies
    source = torch.from_numpy(np.repeat(np.arange(len(train)), copies))
    return CaptionedDigits(
        x=train.x[source].clone(), captions=[train_captions[int(i)] for i in source], source=source, train=train,
        train_captions=train_captions, planted=torch.from_numpy(planted).long(), planted_captions=planted_captions,
        heldout=heldout, heldout_captions=describer.captions(heldout.x, heldout.labels, attributes),
        describer=describer, vocab=Vocabulary(), n_copies=n_copies, seed=int(seed), planted_pool=planted_pool)


# Photographs that ship inside the scikit-image wheel (no download); synthetic test patterns are left out.
OOD_PHOTOS = ("astronaut", "brick", "camera", "chelsea", "clock", "coffee", "coins", "grass", "gravel",
              "hubble_deep_field", "immunohistochemistry", "moon", "page", "rocket", "text", "cell", "retina")


def _to_8x8(img: np.ndarray, size: int) -> np.ndarray:
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[-1] == 4:
        img = rgba2rgb(img)
    if img.ndim == 3:
        img = rgb2gray(img)
    img = img.astype(np.float64)
    if img.max() > 1.0:
        img = img / 255.0
    h, w = img.shape
    s = min(h, w)
    img = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    return resize(img, (size, size), anti_aliasing=True, mode="reflect")


def ood_photos(crops_per_side: int = 2, faces: bool = True, size: int = 8) -> tuple[Tensor, list]:
    """Out-of-distribution images: scikit-image's bundled photographs, grey, centre-cropped to a square
    and downscaled (anti-aliased) to ``size`` x ``size``, in [-1, 1] (bright = +1).

    Every photo of :data:`OOD_PHOTOS` gives its whole square and the ``crops_per_side``^2 tiles of it;
    ``faces=True`` adds the 200 25 x 25 crops of ``skimage.data.lfw_subset`` (100 faces of Labeled Faces
    in the Wild, 100 background patches). Returns (``[K, 1, size, size]`` float32, names ``[K]``).
    Needs scikit-image (a package, no download).
    """
    if int(crops_per_side) < 0:
        raise ValueError(f"crops_per_side must be >= 0, got {crops_per_side}.")
    images, names = [], []
    for name in OOD_PHOTOS:
        img = np.asarray(getattr(skdata, name)())
        images.append(_to_8x8(img, size))
        names.append(name)
        k = int(crops_per_side)
        if k >= 2:
            h, w = img.shape[:2]
            s = min(h, w)
            sq = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
            step = s // k
            for r, c in itertools.product(range(k), range(k)):
                images.append(_to_8x8(sq[r * step:(r + 1) * step, c * step:(c + 1) * step], size))
                names.append(f"{name}[{r},{c}]")
    if faces:
        for i, img in enumerate(skdata.lfw_subset()):
            images.append(_to_8x8(img, size))
            names.append(f"lfw_subset[{i}]")
    x = torch.from_numpy(np.stack(images)).float().mul(2).sub(1).clamp(-1, 1)[:, None]
    return x, names


# -- evaluation sets --------------------------------------------------------------------------------

def image_batch(images, start: int, stop: int, image_size: Optional[int]) -> Tensor:
    """Images ``start:stop`` as a tensor ``[B, C, H, W]`` in [-1, 1]: a slice of a tensor, or image files /
    PIL images centre-cropped and resized to ``image_size`` (:func:`mempkg.data.fetch.center_crop_resize`)."""
    if isinstance(images, Tensor):
        return images[start:stop]
    if image_size is None:
        raise ValueError("images given as files or PIL images need image_size (512 for Stable Diffusion v1).")
    return center_crop_resize(list(images[start:stop]), size=int(image_size))


@dataclass
class EvalSet:
    """Images with one caption each and an id per image: ``x`` is a tensor ``[B, C, H, W]`` in [-1, 1], or a
    list of image files (the LAION sets of the ``full`` profile, read one batch at a time)."""

    x: object
    captions: list
    ids: list

    def __len__(self) -> int:
        return len(self.x)

    def inputs(self) -> dict:
        """What the set's scores depend on, for a cache key (:meth:`mempkg.book.cache.Cache.get`): the image
        tensor, or the image files (by content, as ``pathlib.Path``), and the captions."""
        x = self.x if isinstance(self.x, Tensor) else [Path(p) for p in self.x]
        return {"x": x, "captions": list(self.captions)}

    def head(self, n: Optional[int]) -> "EvalSet":
        """The first ``n`` images (all when ``n`` is None)."""
        return self if n is None else EvalSet(self.x[:n], self.captions[:n], self.ids[:n])

    def images(self, n: Optional[int] = None, size: Optional[int] = None) -> Tensor:
        """The first ``n`` images as a tensor ``[n, C, H, W]`` in [-1, 1]; files are centre-cropped and resized
        to ``size`` (:func:`mempkg.data.fetch.center_crop_resize`)."""
        return image_batch(self.x, 0, len(self) if n is None else min(int(n), len(self)), size)


MEMORIZED = "memorized (planted)"
NON_MEMORIZED = ("training, seen once", "held-out digits", "OOD photos")


def evaluation_sets(ds: CaptionedDigits, n_per_set: Optional[int] = None, seed: int = 0, *,
                    ood_crops_per_side: int = 2, ood_faces: bool = True) -> dict:
    """The memorized set and the three non-memorized sets of the experiment, name -> :class:`EvalSet`:

    * :data:`MEMORIZED`: the planted images, captioned with their unique captions;
    * ``"training, seen once"``: the other training digits with their ordinary captions;
    * ``"held-out digits"``: the test split, captioned by the same describer;
    * ``"OOD photos"``: :func:`ood_photos`, captioned by the describer (class = nearest class mean).

    Each non-memorized set is subsampled to ``n_per_set`` images (None: all), drawn without
    replacement with ``default_rng(seed)`` and kept in their original order.
    """
    def pick(n_total):
        if n_per_set is None or n_per_set >= n_total:
            return np.arange(n_total)
        return np.sort(np.random.default_rng(int(seed)).choice(n_total, size=int(n_per_set), replace=False))

    planted = ds.planted.tolist()
    sets = {MEMORIZED: EvalSet(ds.train.x[ds.planted], list(ds.planted_captions), [f"train[{i}]" for i in planted])}
    planted_set = set(planted)
    others = [i for i in range(len(ds.train)) if i not in planted_set]
    pos = [others[j] for j in pick(len(others))]
    sets[NON_MEMORIZED[0]] = EvalSet(ds.train.x[pos], [ds.train_captions[i] for i in pos], [f"train[{i}]" for i in pos])
    pos = pick(len(ds.heldout)).tolist()
    sets[NON_MEMORIZED[1]] = EvalSet(ds.heldout.x[pos], [ds.heldout_captions[i] for i in pos],
                                     [f"test[{i}]" for i in pos])
    ox, names = ood_photos(ood_crops_per_side, ood_faces)
    pos = pick(len(ox)).tolist()
    sets[NON_MEMORIZED[2]] = EvalSet(ox[pos], ds.describer.captions(ox[pos]), [names[i] for i in pos])
    return sets


LAION_SETS = ("LAION verbatims (Webster MV)", "LAION-Aesthetics 6.5+", "COCO", "Tuxemon")


def laion_evaluation_sets(n_laion: int = 2000, n_coco: int = 2000, n_tuxemon: Optional[int] = None,
                          oversample: float = 1.5, seed: int = 0, *, webster_path=None, laion_path=None,
                          coco_path=None, tuxemon_path=None, cache_dir=None, timeout: float = 10.0,
                          progress: bool = True) -> tuple[dict, dict]:
    """Ross, Kamkari et al.'s Stable Diffusion sets (Sec. 3, Fig. 4) as :class:`EvalSet` s of image files, the
    memorized set first (``full`` profile; needs internet once, see :mod:`mempkg.data.laion`):

    * ``"LAION verbatims (Webster MV)"`` -- the 86 matching verbatims of Webster (2023)'s SD v1 ground truth;
    * ``"LAION-Aesthetics 6.5+"``, ``"COCO"`` -- ``ceil(oversample * n)`` records drawn with ``seed``, of which
      the first ``n`` whose image could be fetched are kept (many LAION URLs are dead);
    * ``"Tuxemon"`` -- all 251 images of ``diffusers/tuxemon`` (or ``n_tuxemon`` of them).

    ``webster_path``, ``laion_path``, ``coco_path`` and ``tuxemon_path`` read local copies instead of the
    Hub and the COCO archive (see each loader in :mod:`mempkg.data.laion`); the image URLs are fetched either way
    (``timeout`` seconds per request, :func:`mempkg.data.fetch.fetch_images`).

    Returns (name -> :class:`EvalSet`, name -> fetch report: requested, retrieved, missing with reasons, used).
    """

    records = {
        LAION_SETS[0]: laion.matching_verbatims(laion.load_webster_groundtruth(webster_path)),
        LAION_SETS[1]: laion.load_laion_aesthetics(math.ceil(oversample * n_laion), seed, path=laion_path),
        LAION_SETS[2]: laion.load_coco(math.ceil(oversample * n_coco), seed, path=coco_path),
        LAION_SETS[3]: laion.load_tuxemon(tuxemon_path, n_tuxemon, seed),
    }
    wanted = dict(zip(LAION_SETS, (None, n_laion, n_coco, None)))
    sets, reports = {}, {}
    for name, recs in records.items():
        got = fetch.fetch_images(recs, cache_dir=cache_dir, timeout=timeout, progress=progress)
        kept = got.records if wanted[name] is None else got.records.iloc[: wanted[name]]
        sets[name] = EvalSet(list(kept["path"]), list(kept["caption"]), list(kept["id"]))
        reports[name] = dict(got.report.as_dict(), used=len(kept))
    return sets, reports
