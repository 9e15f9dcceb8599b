"""Planted verbatims in a tiny text-to-image model: Ross, Kamkari et al.'s Stable Diffusion test (Fig. 4) on a CPU.

Stable Diffusion and LAION cannot be downloaded here, so the chapter runs the *same pipeline* on a
model whose memorized set is known by construction:

* :func:`captioned_digits` -- the 1,000 training digits, each with a caption built from its class and a
  few attributes computed from its pixels (:class:`DigitDescriber`), except ``n_planted`` **planted
  verbatims**: images repeated ``n_copies`` times, each with its own unique caption of rare words (as
  LAION's verbatims are duplicated images with unusual captions, Webster 2023). Ground truth:
  memorized = planted. :func:`evaluation_sets` adds the non-memorized sets: other training images
  (seen once), held-out digits, and out-of-distribution photographs (:func:`ood_photos`,
  scikit-image's bundled pictures, grey and 8x8).
* :class:`Vocabulary`, :class:`CaptionEncoder` -- a word-level tokenizer padded to ``max_len`` and a
  learned embedding per token: captions -> ``cond`` ``[B, L, E]``, the empty caption is all pads.
* :class:`TinyStableDiffusion` -- a ``UNet2DConditionModel`` eps-network on 1 x 8 x 8 pixels with
  **the interface of** :class:`mempkg.models.stable_diffusion.StableDiffusion` (``sde``, ``eps``, ``score``,
  ``timestep``, ``encode_prompts``, ``null_cond``, ``encode_images``, ``data_shape``), on SD's own
  discrete schedule (:func:`sd_schedule`: "scaled_linear" betas 0.00085 -> 0.012, 1000 steps), so
  :func:`mempkg.estimators.lid.flipd`, :func:`mempkg.estimators.guidance.cfg_norm`,
  :func:`~mempkg.estimators.guidance.cfg_norm_generation`
  and :func:`mempkg.estimators.complexity.png_size` run on it unchanged.
* :func:`train_tiny_sd`, :func:`train_tiny_sd_cached` -- SD's training objective (eps-loss at integer
  timesteps, captions dropped with probability ``p_uncond`` for classifier-free guidance) through the
  shared seeded, resumable loop :func:`mempkg.models.train.train_loop`.
* :func:`generate` -- a guided DDIM sampler from captions.
* :func:`memorization_scores`, :func:`t0_sweep`, :func:`auroc_table` (:func:`auroc_se_table`: bootstrap
  standard errors) -- the five scores of Ross et al.'s
  Figure 4 for a set of (image, caption) pairs and their AUROCs, for *any* model with this interface
  (the chapter's ``full`` profile calls them on Stable Diffusion v1.5, with the LAION, COCO and Tuxemon
  images of :func:`laion_evaluation_sets`).

Layer: studies (imports core, estimators, models and data).
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
from torch import Tensor, nn

from ..core.progress import bar as progress_bar
from ..core.protocol import modules_of
from ..core.schedules import DiscreteVPSchedule, schedule_of
from ..core.tensors import bcast, check_choice, tensor_sha256
from ..data import fetch, laion
from ..data.fetch import center_crop_resize
from ..data.images import load_images
from ..estimators.complexity import png_size
from ..estimators.guidance import cfg_norm, cfg_norm_generation, eps_prediction, generation_times
from ..estimators.lid import flipd
from ..estimators.memorization import auroc_bootstrap, oriented, oriented_auroc
from ..models.stable_diffusion import ConditionalEpsModel
from ..models.train import TrainResult, train_loop

# -- SD's noise schedule --------------------------------------------------------------------------

SD_BETAS = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")


def sd_schedule() -> DiscreteVPSchedule:
    """Stable Diffusion v1's training schedule, built from a diffusers scheduler with SD's config:
    sqrt(beta_n) linear from sqrt(0.00085) to sqrt(0.012) over N = 1000 steps ("scaled_linear"),
    alpha_bar_n = prod_{k <= n} (1 - beta_k); t_n = (n + 1) / N (see :class:`DiscreteVPSchedule`)."""
    from diffusers import DDIMScheduler  # heavy: diffusers takes seconds to import

    return DiscreteVPSchedule.from_scheduler(DDIMScheduler(**SD_BETAS))


# -- captions ---------------------------------------------------------------------------------------

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


def _png_sizes(x: Tensor) -> np.ndarray:
    return png_size(x)


def captioned_digits(n_planted: int = 20, n_copies: int = 8, seed: int = 0, *, n_rare_words: int = 3,
                     planted_pool: str = "simpler_half", attributes: Sequence[str] = ATTRIBUTES) -> CaptionedDigits:
    """Build the captioned training set with planted verbatims (seeded: same arguments, same set).

    1. The 1,000 training digits get ordinary captions from :class:`DigitDescriber` (thresholds fitted
       on them); the held-out digits get theirs from the same describer.
    2. ``n_planted`` training images are drawn with ``numpy.random.default_rng(seed)`` from
       ``planted_pool``: ``"all"`` the training digits, or ``"simpler_half"`` the half with the
       smallest PNG size (LAION's memorized images are simpler than average; ``NOTES.md`` section 2).
    3. Each planted image gets a unique caption of ``n_rare_words`` distinct words of
       :data:`RARE_WORDS` (a distinct word set per image, in random order) and is repeated
       ``n_copies`` times; every other image appears once.
    """

    check_choice("planted_pool", planted_pool, PLANTED_POOLS)
    n_planted, n_copies, n_rare_words = int(n_planted), int(n_copies), int(n_rare_words)
    if n_copies < 1 or n_planted < 0 or not 1 <= n_rare_words <= MAX_LEN:
        raise ValueError(f"need n_planted >= 0, n_copies >= 1 and 1 <= n_rare_words <= {MAX_LEN}; got "
                         f"n_planted={n_planted}, n_copies={n_copies}, n_rare_words={n_rare_words}.")
    if math.comb(len(RARE_WORDS), n_rare_words) < n_planted:
        raise ValueError(f"{len(RARE_WORDS)} rare words make only {math.comb(len(RARE_WORDS), n_rare_words)} distinct "
                         f"{n_rare_words}-word captions, fewer than n_planted={n_planted}; raise n_rare_words.")
    train = load_images("digits", "train")
    heldout = load_images("digits", "test")
    describer = DigitDescriber.fit(train.x, train.labels)
    rng = np.random.default_rng(int(seed))

    if planted_pool == "simpler_half":
        pool = np.sort(np.argsort(_png_sizes(train.x), kind="stable")[: len(train) // 2])
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
        return _image_batch(self.x, 0, len(self) if n is None else min(int(n), len(self)), size)


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


# -- the model --------------------------------------------------------------------------------------

class CaptionEncoder(nn.Module):
    """Token ids ``[B, L]`` -> caption embedding ``[B, L, E]``: a learned vector per word and per position,
    then LayerNorm (the shape of CLIP's last hidden state, which SD's cross-attention reads). Pads have a
    learned embedding too, so the empty caption is a learned "null" condition, as SD's ``""`` is."""

    def __init__(self, n_words: int, max_len: int, embed_dim: int):
        super().__init__()
        self.token = nn.Embedding(n_words, embed_dim)
        self.position = nn.Parameter(0.02 * torch.randn(max_len, embed_dim))
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, tokens: Tensor) -> Tensor:
        return self.norm(self.token(tokens) + self.position[: tokens.shape[1]])


class TinyStableDiffusion(ConditionalEpsModel, nn.Module):
    """A text-conditional eps-model on 1 x 8 x 8 pixels with :class:`~mempkg.models.stable_diffusion.StableDiffusion`'s
    interface, so every estimator of the book runs on both:

        s(x, t | c) = -eps_theta(x, n(t), c) / sigma(t),   n(t) = N t - 1,   c = CaptionEncoder(tokens) [B, L, E],

    on SD's schedule (:func:`sd_schedule`). eps_theta is a diffusers ``UNet2DConditionModel``: two levels
    (8 x 8 without attention, 4 x 4 with self- and cross-attention, and the cross-attention middle
    block), ``layers_per_block`` ResNet blocks per level. ``cond=None`` is the empty caption. Images
    are the data (``encode_images`` is the identity: no VAE); ``data_shape`` = (1, 8, 8).

    Unlike :class:`StableDiffusion` the networks are trainable (:func:`train_tiny_sd` trains the UNet
    and the caption encoder jointly); estimators put them in eval mode themselves.

    Args:
        vocab: the :class:`Vocabulary` of the captions.
        embed_dim: E, the caption embedding width (= the UNet's ``cross_attention_dim``).
        block_out_channels, layers_per_block, attention_head_dim, norm_num_groups: the UNet's.
        seed: fixes the initial weights without touching the global random state.
    """

    def __init__(self, vocab: Optional[Vocabulary] = None, embed_dim: int = 32, block_out_channels=(32, 64),
                 layers_per_block: int = 1, attention_head_dim: int = 8, norm_num_groups: int = 8,
                 image_shape=(1, 8, 8), seed: Optional[int] = None):
        super().__init__()
        from diffusers import UNet2DConditionModel  # heavy: diffusers takes seconds to import

        self.vocab = vocab if vocab is not None else Vocabulary()
        C, H, W = (int(v) for v in image_shape)
        self.data_shape = (C, H, W)
        self.arch = dict(embed_dim=int(embed_dim), block_out_channels=[int(c) for c in block_out_channels],
                         layers_per_block=int(layers_per_block), attention_head_dim=int(attention_head_dim),
                         norm_num_groups=int(norm_num_groups), image_shape=[C, H, W])
        levels = len(block_out_channels)
        if levels < 2 or H % 2 ** (levels - 1) or W % 2 ** (levels - 1):
            raise ValueError(f"block_out_channels {tuple(block_out_channels)} needs >= 2 levels and H, W multiples "
                             f"of {2 ** (levels - 1)}; got {H}x{W}.")
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.random.default_generator.manual_seed(int(seed))     # CPU only
            self.text = CaptionEncoder(len(self.vocab), self.vocab.max_len, int(embed_dim))
            self.unet = UNet2DConditionModel(
                sample_size=(H, W) if H != W else H, in_channels=C, out_channels=C,
                layers_per_block=int(layers_per_block), block_out_channels=tuple(int(c) for c in block_out_channels),
                down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (levels - 1),
                up_block_types=("CrossAttnUpBlock2D",) * (levels - 1) + ("UpBlock2D",),
                cross_attention_dim=int(embed_dim), attention_head_dim=int(attention_head_dim),
                norm_num_groups=int(norm_num_groups))
        from diffusers import DDIMScheduler  # heavy: diffusers takes seconds to import

        self.scheduler = DDIMScheduler(**SD_BETAS)     # SD v1's training schedule (see sd_schedule)
        self.schedule = "scheduler"                      # with_schedule(model, "linear_beta") reads it as the authors
        self.sde = schedule_of(self.scheduler, self.schedule)
        self.N = self.sde.N

    def __repr__(self) -> str:
        n = sum(p.numel() for p in self.parameters())
        return f"TinyStableDiffusion({n:,} parameters, {self.vocab}, data_shape={self.data_shape})"

    def config(self) -> dict:
        """Plain-literal description, used in cache keys."""
        return {"kind": "tiny_stable_diffusion", **self.arch, "vocab": self.vocab.config(), "sde": self.sde.config()}

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    # -- text and images ------------------------------------------------------------------------
    @torch.no_grad()
    def encode_prompts(self, prompts) -> Tensor:
        """Caption embeddings ``[B, L, E]`` of a caption or a list of captions (the vocabulary's words only)."""
        return self.text(self.vocab.encode(prompts).to(self.device)).detach()

    def null_cond(self, n: int) -> Tensor:
        """The empty caption's embedding repeated n times -> ``[n, L, E]`` (recomputed: the encoder is trainable)."""
        return self.encode_prompts([""]).repeat(int(n), 1, 1)

    @torch.no_grad()
    def encode_images(self, images: Tensor) -> Tensor:
        """The identity (pixel-space model, no VAE): images ``[B, *data_shape]`` in [-1, 1] -> float32 on the device."""
        if not isinstance(images, Tensor) or tuple(images.shape[1:]) != self.data_shape or images.dim() != 4:
            raise ValueError(f"images must be a tensor [B, {', '.join(map(str, self.data_shape))}], got shape "
                             f"{tuple(getattr(images, 'shape', ()))}.")
        if not images.is_floating_point() or images.min() < -1.001 or images.max() > 1.001:
            raise ValueError("images must be floats in [-1, 1].")
        return images.float().to(self.device)

    def decode_latents(self, z: Tensor) -> Tensor:
        """The identity clamped to [-1, 1] (StableDiffusion decodes latents with its VAE here)."""
        return z.float().clamp(-1, 1).cpu()


# -- training ---------------------------------------------------------------------------------------

T_SAMPLING = ("uniform", "log-uniform")


def train_tiny_sd(model: TinyStableDiffusion, ds: CaptionedDigits, n_steps: int, *, p_uncond: float = 0.1,
                  t_sampling: str = "uniform", lr: float = 1e-3, batch_size: Optional[int] = 128, n_noise: int = 1,
                  lr_schedule: str = "cosine", warmup: int = 0, grad_clip: Optional[float] = 1.0,
                  ema_decay: Optional[float] = None, seed: int = 0, device="cpu", progress: bool = True,
                  desc: str = "training", checkpoint=None, checkpoint_every: int = 1000,
                  callback: Optional[Callable[[int, float], None]] = None) -> TrainResult:
    """Train the UNet and the caption encoder of ``model`` (in place) with Stable Diffusion's objective:

        n ~ U{0, ..., N - 1},  eps ~ N(0, I),  x_n = sqrt(alpha_bar_n) x0 + sqrt(1 - alpha_bar_n) eps,
        c = CaptionEncoder(tokens), replaced by the empty caption with probability p_uncond,
        loss = | eps_theta(x_n, n, c) - eps |^2   (mean over pixels and batch; Ho et al. 2020, eq. 14).

    The caption dropout trains the unconditional model that classifier-free guidance and the CFG norms
    need (SD v1 dropped 10% of captions). ``t_sampling="log-uniform"`` draws t = (n + 1) / N
    log-uniformly in [1/N, 1] instead (rounded to the integer step): more of the budget at small t.

    The loop is :func:`mempkg.models.train.train_loop` (batches of ``batch_size`` rows of ``ds``, Adam, LR schedule,
    gradient clipping, EMA, checkpoints that resume bit-exactly); each step draws from the private
    generator seeded by ``seed``: the batch, then the caption-dropout coins, the timesteps, the noise.
    Same seed (and device), same weights and losses.
    """
    if not isinstance(model, TinyStableDiffusion):
        raise TypeError(f"train_tiny_sd trains a TinyStableDiffusion, got {type(model).__name__}.")
    if not isinstance(ds, CaptionedDigits):
        raise TypeError(f"ds must be a CaptionedDigits data set (captioned_digits(...)), got {type(ds).__name__}.")
    if int(n_steps) < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}.")
    if not 0 <= float(p_uncond) < 1:
        raise ValueError(f"p_uncond must lie in [0, 1), got {p_uncond}.")
    check_choice("t_sampling", t_sampling, T_SAMPLING)
    if ds.vocab.words != model.vocab.words or ds.vocab.max_len != model.vocab.max_len:
        raise ValueError("the data set's vocabulary differs from the model's; build the model with vocab=ds.vocab.")
    if tuple(ds.x.shape[1:]) != model.data_shape:
        raise ValueError(f"the data set's images are {tuple(ds.x.shape[1:])}, the model's {model.data_shape}.")
    D = int(np.prod(model.data_shape))
    N = model.N
    alphas_cumprod = model.sde.alphas_cumprod.float()

    def step_loss(rows: Tensor, g: torch.Generator) -> Tensor:
        B = rows.shape[0]
        x0 = rows[:, :D].reshape(B, *model.data_shape)
        tokens = rows[:, D:].round().long()
        drop = (torch.rand(B, generator=g) < p_uncond).to(rows.device)
        tokens = torch.where(drop[:, None], torch.zeros_like(tokens), tokens)      # id 0 = pad: the empty caption
        if t_sampling == "uniform":
            n = torch.randint(0, N, (B,), generator=g)
        else:
            t = torch.exp(math.log(1 / N) * torch.rand(B, generator=g, dtype=torch.float64))
            n = (t * N - 1).round().long().clamp(0, N - 1)
        eps = torch.randn(x0.shape, generator=g).to(rows.device)
        ab = alphas_cumprod[n].to(rows.device)
        xt = bcast(ab.sqrt(), x0) * x0 + bcast((1 - ab).sqrt(), x0) * eps
        out = model.unet(xt, n.to(rows.device).float(), encoder_hidden_states=model.text(tokens)).sample
        return (out - eps).pow(2).mean()

    def settings(bs: int) -> dict:
        return dict(trainer="tiny_sd", n_steps=int(n_steps), p_uncond=float(p_uncond), t_sampling=t_sampling,
                    lr=float(lr), batch_size=int(bs), n_noise=int(n_noise), lr_schedule=lr_schedule, warmup=int(warmup),
                    grad_clip=float(grad_clip) if grad_clip else None,
                    ema_decay=float(ema_decay) if ema_decay else None, seed=int(seed), model=model.config())

    return train_loop(model, step_loss, ds.training_tensor(), int(n_steps), settings=settings, lr=lr,
                      batch_size=batch_size, n_noise=n_noise, lr_schedule=lr_schedule, warmup=warmup,
                      grad_clip=grad_clip, ema_decay=ema_decay, seed=seed, device=device, progress=progress,
                      desc=desc, checkpoint=checkpoint, checkpoint_every=checkpoint_every, callback=callback)


def train_tiny_sd_cached(cache, name: str, ds: CaptionedDigits, n_steps: int, *, model_kwargs: Optional[dict] = None,
                         seed: int = 0, device="cpu", weights: str = "raw", **train_kwargs):
    """Train :func:`train_tiny_sd` once and cache the weights (resuming after an interruption), as
    :func:`mempkg.models.edm.train_edm_cached` does. The network is ``TinyStableDiffusion(ds.vocab, seed=seed,
    **model_kwargs)``; the key holds its configuration, the data set's, every training setting and the seed.

    Returns:
        (the model in eval mode with the ``weights`` asked for -- ``"raw"`` or ``"ema"`` --, history
        ``{"losses": [...]}``).
    """
    model_kwargs = dict(model_kwargs or {})

    def build():
        return TinyStableDiffusion(ds.vocab, seed=seed, **model_kwargs)

    settings = {k: v for k, v in train_kwargs.items() if k not in ("progress", "desc")}   # not results
    params = dict(trainer="tiny_sd", model=build().config(), data=ds.config(), n_steps=int(n_steps), train=settings,
                  seed=int(seed))
    params = cache.model_params(params, build)           # the key holds the network as built
    ckpt = cache.checkpoint_path(name, params)

    def fit(model):
        return train_tiny_sd(model, ds, n_steps, seed=seed, device=device, checkpoint=ckpt, desc=name, **train_kwargs)

    model, history = cache.model(name, params, build, fit, weights=weights)
    return model.to(device).eval(), history


# -- generation -------------------------------------------------------------------------------------

@torch.no_grad()
def generate(model, cond: Tensor, n_steps: int = 50, guidance_scale: float = 3.0, seed: int = 0, *,
             clip_x0: bool = False, dtype: torch.dtype = torch.float32) -> Tensor:
    """Samples from captions by guided deterministic DDIM (Song, Meng & Ermon 2021, eta = 0):

        x_T ~ N(0, I),   eps_hat = eps(x, t | empty) + w [eps(x, t | c) - eps(x, t | empty)],
        x0_hat = (x - sigma(t) eps_hat) / alpha(t),   x_{t'} = alpha(t') x0_hat + sigma(t') eps_hat,

    on the grid t_k = T (1 - k / n_steps) of :func:`mempkg.estimators.guidance.generation_times` (the last step lands
    on x0_hat). ``clip_x0`` clamps x0_hat to [-1, 1] (diffusers' ``clip_sample`` for pixel models; SD's
    latents are not clipped). One sample per row of ``cond`` ``[B, L, E]``; the prior noise is drawn
    from a CPU generator seeded by ``seed``. Returns ``[B, *model.data_shape]`` on the CPU (for Stable
    Diffusion: latents; decode them with ``model.decode_latents``).
    """

    if not isinstance(cond, Tensor) or cond.dim() < 2:
        raise ValueError("cond must be caption embeddings [B, L, E] (model.encode_prompts(captions)).")
    ts = generation_times(model, n_steps).tolist()
    g = torch.Generator().manual_seed(int(seed))
    x = model.sde.prior_sampling((cond.shape[0], *model.data_shape), generator=g).to(device=cond.device, dtype=dtype)
    mod = modules_of(model)
    was_training = mod.training if mod is not None else False
    if mod is not None:
        mod.eval()
    try:
        for t, t_next in zip(ts[:-1], ts[1:]):
            e_u = eps_prediction(model, x, t, None)
            e = e_u + float(guidance_scale) * (eps_prediction(model, x, t, cond) - e_u)
            a, s = float(model.sde.alpha(t)), float(model.sde.sigma(t))
            x0 = (x - s * e) / a
            if clip_x0:
                x0 = x0.clamp(-1, 1)
            if t_next <= 0:
                x = x0
            else:
                x = float(model.sde.alpha(t_next)) * x0 + float(model.sde.sigma(t_next)) * e
    finally:
        if mod is not None and was_training:
            mod.train()
    return x.cpu()


# -- the memorization scores of Ross et al.'s Figure 4 ---------------------------------------------------

METRICS = ("flipd_cond", "flipd_uncond", "cfg_norm", "cfg_norm_generation", "png_size")
METRIC_LABELS = {"flipd_cond": "FLIPD, conditional", "flipd_uncond": "FLIPD, unconditional",
                 "cfg_norm": "CFG norm (real image)", "cfg_norm_generation": "CFG norm (generation, Wen)",
                 "png_size": "PNG size (bytes)"}


def _image_batch(images, start: int, stop: int, image_size: Optional[int]) -> Tensor:
    if isinstance(images, Tensor):
        return images[start:stop]

    if image_size is None:
        raise ValueError("images given as files or PIL images need image_size (512 for Stable Diffusion v1).")
    return center_crop_resize(list(images[start:stop]), size=int(image_size))


def memorization_scores(model, images, captions: Sequence[str], *, t0: float = 0.1, n_probes: Optional[int] = 1,
                        cfg_t0: float = 0.01, cfg_steps: int = 3, cfg_t_start: Optional[float] = None,
                        gen_steps: int = 1, gen_samples: int = 1,
                        guidance_scale: float = 7.5, seed: int = 0, batch_size: int = 64,
                        image_size: Optional[int] = None, metrics: Sequence[str] = METRICS,
                        progress: bool = True) -> dict:
    """Ross, Kamkari et al.'s five scores (Fig. 4, Appendix A.1) of (image, caption) pairs -> {metric: float64 [B]}:

    * ``flipd_cond`` -- :func:`mempkg.estimators.lid.flipd` of z = ``model.encode_images(x)`` at ``t0`` with
      c = ``model.encode_prompts(caption)`` (Hutchinson, ``n_probes``; the paper: t0 = 0.1, 1 probe);
    * ``flipd_uncond`` -- the same with the empty caption;
    * ``cfg_norm`` -- :func:`mempkg.estimators.guidance.cfg_norm` (``cfg_steps`` Euler steps of the conditional
      PF-ODE from ``cfg_t_start`` to ``cfg_t0``, then |eps(.|c) - eps(.|empty)|; the paper: 3 steps to
      0.01; ``cfg_t_start=None``: the schedule's first timestep, :func:`mempkg.estimators.guidance.ode_start_time`);
    * ``cfg_norm_generation`` -- Wen et al.'s :func:`mempkg.estimators.guidance.cfg_norm_generation` of the caption
      (from noise; ``gen_steps`` steps, ``gen_samples`` noise draws, guidance ``guidance_scale``);
    * ``png_size`` -- :func:`mempkg.estimators.complexity.png_size` of the image at zlib level 9.

    Works for any model with :class:`~mempkg.models.stable_diffusion.StableDiffusion`'s interface
    (:class:`TinyStableDiffusion`, or SD itself). ``images``: a tensor ``[B, C, H, W]`` in [-1, 1], or
    image files / PIL images, centre-cropped and resized to ``image_size`` one batch at a time
    (:func:`mempkg.data.fetch.center_crop_resize`). The probes of a batch starting at image ``i`` are
    seeded by ``seed + i``. ``metrics`` selects which of :data:`METRICS` to compute.
    """

    captions = list(captions)
    if len(captions) != len(images):
        raise ValueError(f"{len(images)} images but {len(captions)} captions; give one caption per image.")
    if len(captions) == 0:
        raise ValueError("memorization_scores needs at least one image.")
    for m in metrics:
        check_choice("metric", m, METRICS)
    out = {m: [] for m in metrics}
    for start in progress_bar(range(0, len(captions), int(batch_size)), desc="memorization scores",
                              disable=not progress):
        stop = min(start + int(batch_size), len(captions))
        x = _image_batch(images, start, stop, image_size)
        z = model.encode_images(x)
        c = model.encode_prompts(captions[start:stop])
        if "flipd_cond" in out:
            out["flipd_cond"].append(flipd(model, z, t0, n_probes, cond=c, seed=seed + start))
        if "flipd_uncond" in out:
            out["flipd_uncond"].append(flipd(model, z, t0, n_probes, cond=model.null_cond(len(z)), seed=seed + start))
        if "cfg_norm" in out:
            out["cfg_norm"].append(cfg_norm(model, z, c, t0=cfg_t0, n_steps=cfg_steps, t_start=cfg_t_start))
        if "cfg_norm_generation" in out:
            out["cfg_norm_generation"].append(cfg_norm_generation(
                model, c, n_steps=gen_steps, seed=seed, guidance_scale=guidance_scale, n_samples=gen_samples))
        if "png_size" in out:
            out["png_size"].append(torch.from_numpy(png_size(x)).double())
    return {m: torch.cat(v).double().numpy() for m, v in out.items()}


def t0_sweep(model, images, captions: Sequence[str], t0s: Sequence[float], *, n_probes: Optional[int] = 1,
             cfg_steps: int = 3, cfg_t_start: Optional[float] = None, seed: int = 0, batch_size: int = 64,
             image_size: Optional[int] = None) -> dict:
    """Conditional and unconditional FLIPD and the real-image CFG norm at every t0 of ``t0s``
    -> {"flipd_cond" | "flipd_uncond" | "cfg_norm": float64 [len(t0s), B]} (settings as in
    :func:`memorization_scores`, whose FLIPD at t0 and CFG norm at cfg_t0 = t0 these rows equal)."""

    captions = list(captions)
    if len(captions) != len(images):
        raise ValueError(f"{len(images)} images but {len(captions)} captions; give one caption per image.")
    rows = {m: [] for m in ("flipd_cond", "flipd_uncond", "cfg_norm")}
    for t0 in t0s:
        per = {m: [] for m in rows}
        for start in range(0, len(captions), int(batch_size)):
            stop = min(start + int(batch_size), len(captions))
            z = model.encode_images(_image_batch(images, start, stop, image_size))
            c = model.encode_prompts(captions[start:stop])
            per["flipd_cond"].append(flipd(model, z, float(t0), n_probes, cond=c, seed=seed + start))
            per["flipd_uncond"].append(flipd(model, z, float(t0), n_probes, cond=model.null_cond(len(z)),
                                             seed=seed + start))
            per["cfg_norm"].append(cfg_norm(model, z, c, t0=float(t0), n_steps=cfg_steps, t_start=cfg_t_start))
        for m in rows:
            rows[m].append(torch.cat(per[m]))
    return {m: torch.stack(v).double().numpy() for m, v in rows.items()}


def auroc_bootstrap_se(metric: str, memorized, non_memorized, n_boot: int = 1000, seed: int = 0) -> float:
    """Stratified bootstrap standard error of :func:`~mempkg.estimators.memorization.oriented_auroc`."""
    pos, neg = np.asarray(memorized, float).ravel(), np.asarray(non_memorized, float).ravel()
    labels = np.r_[np.ones(len(pos), bool), np.zeros(len(neg), bool)]
    boot = auroc_bootstrap(oriented(metric, np.r_[pos, neg]), labels, n_boot, seed, stratified=True)
    return float(boot[:, 0].std(ddof=1))


def auroc_se_table(scores: dict, memorized: str, metrics: Sequence[str] = METRICS, n_boot: int = 1000,
                   seed: int = 0):
    """:func:`auroc_bootstrap_se` for every cell of :func:`auroc_table` (same rows and columns)."""
    import pandas as pd  # heavy: pandas takes about a second to import

    others = [s for s in scores if s != memorized]
    table = {}
    for m in metrics:
        pos = scores[memorized][m]
        row = {s: auroc_bootstrap_se(m, pos, scores[s][m], n_boot, seed) for s in others}
        row["all non-memorized"] = auroc_bootstrap_se(
            m, pos, np.concatenate([np.asarray(scores[s][m]) for s in others]), n_boot, seed)
        table[m] = row
    return pd.DataFrame.from_dict(table, orient="index")


def auroc_table(scores: dict, memorized: str, metrics: Sequence[str] = METRICS):
    """AUROC of every metric for the memorized set against each other set and against all of them pooled.

    Args:
        scores: set name -> {metric: [n] scores} (e.g. :func:`memorization_scores` per set).
        memorized: the name of the memorized set in ``scores``.
    Returns:
        A pandas DataFrame, rows = metrics, columns = the other sets, then ``"all non-memorized"``.
    """
    import pandas as pd  # heavy: pandas takes about a second to import

    if memorized not in scores:
        raise ValueError(f"no set {memorized!r} among {list(scores)}.")
    others = [s for s in scores if s != memorized]
    if not others:
        raise ValueError("auroc_table needs at least one non-memorized set.")
    table = {}
    for m in metrics:
        pos = scores[memorized][m]
        row = {s: oriented_auroc(m, pos, scores[s][m]) for s in others}
        row["all non-memorized"] = oriented_auroc(m, pos, np.concatenate([np.asarray(scores[s][m]) for s in others]))
        table[m] = row
    return pd.DataFrame.from_dict(table, orient="index")
