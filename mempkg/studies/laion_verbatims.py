"""Chapter 04: FLIPD, the CFG norms and PNG size on memorized against other images (Ross, Kamkari et al.).

For an image x (for Stable Diffusion its latent z) with caption c, five scores (Fig. 4, Appendix A.1):

* conditional and unconditional FLIPD at t0 (:func:`mempkg.estimators.lid.flipd`; low: memorized);
* the CFG norm of the real image, |eps(x_t0, t0 | c) - eps(x_t0, t0 | empty)| after a few Euler steps
  of the conditional PF-ODE (:func:`mempkg.estimators.guidance.cfg_norm`; high: memorized), and beside
  it the same as the authors' code runs it (:func:`~mempkg.estimators.guidance.cfg_norm_authors`);
* Wen et al.'s CFG norm of the caption from noise (:func:`~mempkg.estimators.guidance.cfg_norm_generation`);
* the PNG size (:func:`mempkg.estimators.complexity.png_size`; the complexity control);

and the AUROC of each for the memorized set against the others, on one of three runs: the tiny Stable
Diffusion of :mod:`mempkg.models.tiny_sd` trained on captioned digits with planted verbatims
(:mod:`mempkg.data.captioned`; ``tiny``/``quick``), Stable Diffusion v1.5 on Webster's LAION verbatims
against LAION-Aesthetics, COCO and Tuxemon (``full``), or a reader's pipeline and image folders.
:func:`run` adds the copies generated from the memorized captions, the t0 dependence, the two readings of
SD's schedule, the authors' CFG-norm procedure and its start time, and the shuffled-caption control.

Layer: studies (imports core, estimators, models, data).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional, Sequence

import numpy as np
import pandas as pd
import torch

from ..core.progress import bar as progress_bar
from ..core.tensors import check_choice
from ..data.captioned import (ATTRIBUTE_WORDS, CLASS_WORDS, NON_MEMORIZED, PAD, TEMPLATE_WORDS, CaptionedDigits,
                              captioned_digits, evaluation_sets, image_batch, laion_evaluation_sets)
from ..estimators.complexity import png_size
from ..estimators.guidance import T_START_AUTHORS, cfg_norm, cfg_norm_authors, cfg_norm_generation, ode_start_time
from ..estimators.lid import flipd
from ..estimators.memorization import (auroc_bootstrap, auroc_bootstrap_se, auroc_se_table, auroc_table, copies,
                                       nearest_neighbours, oriented, oriented_auroc)
from ..models.pretrained import load_pretrained
from ..models.stable_diffusion import equal_sigma_time, load_stable_diffusion, with_schedule
from ..models.tiny_sd import generate, train_tiny_sd_cached
from .readers import describe_model, reader_captioned_sets, reader_source, reader_text_model

__all__ = ["METRICS", "METRIC_LABELS", "AuthorsCfg", "LaionVerbatimsResult", "Reproduction", "Sets", "T0Sweep",
           "authors_cfg_norms", "load_sets", "memorization_scores", "run", "t0_sweep"]

METRICS = ("flipd_cond", "flipd_uncond", "cfg_norm", "cfg_norm_generation", "png_size")
METRIC_LABELS = {"flipd_cond": "FLIPD, conditional", "flipd_uncond": "FLIPD, unconditional",
                 "cfg_norm": "CFG norm (real image)", "cfg_norm_generation": "CFG norm (generation, Wen)",
                 "png_size": "PNG size (bytes)"}
SWEPT = ("cfg_norm", "flipd_cond", "flipd_uncond")
POOLED = "all non-memorized"
# the real-image CFG norm as the authors' code runs it, and with the book's start noise level instead
AUTHORS = "cfg_norm:authors"
AUTHORS_BOOK_START = "cfg_norm:authors, book's start"
SMALL_T0 = 0.1                  # Ross et al., App. A.1: "stable (and good) across all ... timesteps (t <= 0.1)"
# Ross et al., Sec. 3 and Fig. 4d; the 99.2% is the workshop poster's figure (NOTES.md)
PAPER = {"flipd_cond": "high 90s (99.2% on the poster)", "flipd_uncond": "high 90s", "cfg_norm": "high 90s",
         "cfg_norm_generation": "not reported", "png_size": "\"comparatively poor\" (no number)"}


# -- the five scores of Ross et al.'s Figure 4 ------------------------------------------------------

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
    (:class:`~mempkg.models.tiny_sd.TinyStableDiffusion`, or SD itself). ``images``: a tensor ``[B, C, H, W]``
    in [-1, 1], or image files / PIL images, centre-cropped and resized to ``image_size`` one batch at a time
    (:func:`mempkg.data.captioned.image_batch`). The probes of a batch starting at image ``i`` are seeded by
    ``seed + i``. ``metrics`` selects which of :data:`METRICS` to compute.
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
        x = image_batch(images, start, stop, image_size)
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
            z = model.encode_images(image_batch(images, start, stop, image_size))
            c = model.encode_prompts(captions[start:stop])
            per["flipd_cond"].append(flipd(model, z, float(t0), n_probes, cond=c, seed=seed + start))
            per["flipd_uncond"].append(flipd(model, z, float(t0), n_probes, cond=model.null_cond(len(z)),
                                             seed=seed + start))
            per["cfg_norm"].append(cfg_norm(model, z, c, t0=float(t0), n_steps=cfg_steps, t_start=cfg_t_start))
        for m in rows:
            rows[m].append(torch.cat(per[m]))
    return {m: torch.stack(v).double().numpy() for m, v in rows.items()}


def authors_cfg_norms(model, images, captions: Sequence[str], t_starts: dict, *, t0: float = 0.01, n_steps: int = 3,
                      batch_size: int = 64, image_size: Optional[int] = None) -> dict:
    """The real-image CFG norm as Ross et al.'s code computes it
    (:func:`mempkg.estimators.guidance.cfg_norm_authors`: ``n_steps`` Euler steps on the authors' grid,
    one step past ``t0``) from each start time of ``t_starts`` -> {name: float64 [B]}. ``model`` is read
    on the authors' clock (``with_schedule(model, "linear_beta")``); images and batches as in
    :func:`memorization_scores`."""

    captions = list(captions)
    if len(captions) != len(images):
        raise ValueError(f"{len(images)} images but {len(captions)} captions; give one caption per image.")
    out = {name: [] for name in t_starts}
    for start in range(0, len(captions), int(batch_size)):
        stop = min(start + int(batch_size), len(captions))
        z = model.encode_images(image_batch(images, start, stop, image_size))
        c = model.encode_prompts(captions[start:stop])
        for name, t_start in t_starts.items():
            out[name].append(cfg_norm_authors(model, z, c, t0=t0, n_steps=n_steps, t_start=t_start))
    return {name: torch.cat(v).double().numpy() for name, v in out.items()}


# -- results ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sets:
    """The model scored and the evaluation sets, the memorized set first."""

    model: object                   # a score model with StableDiffusion's interface
    source: str                     # "tiny_sd", "stable_diffusion" or "reader"
    sets: dict                      # set name -> EvalSet
    memorized: str                  # the memorized set's name
    image_size: Optional[int]       # the side image files are resized to; None for the digits (tensors)
    data: Optional[CaptionedDigits]  # tiny/quick: the training set with its planted verbatims
    history: Optional[dict]         # tiny/quick: {"losses": [...]} of the training
    fetch: Optional[dict]           # full: per set, the fetch report (requested, retrieved, missing, used)
    about: pd.DataFrame             # what the run read: the training set, the reader's files or the fetch report
    table: pd.DataFrame             # per set: images, memorized, example captions
    previews: dict                  # set name -> its first 8 images [8, C, H, W]


@dataclass(frozen=True)
class Reproduction:
    """Samples from the memorized captions against the training images (the copy test d1 < d2 / 3)."""

    memorized: torch.Tensor         # [n_show, C, H, W] the memorized images shown
    generated: torch.Tensor         # [n_show, C, H, W] one guided DDIM sample from each of their captions
    table: pd.DataFrame             # captions sampled, own image nearest, copies, median d1/d2


@dataclass(frozen=True)
class T0Sweep:
    """Conditional and unconditional FLIPD and the real-image CFG norm at several t0."""

    t0s: tuple                      # the model's own times
    auroc: dict                     # metric -> DataFrame [t0, set] of AUROCs (and "all non-memorized")
    table: pd.DataFrame             # every metric's AUROCs, indexed by t0 and its sigma
    readings: pd.DataFrame          # per t0: sigma under both readings, AUROCs, Spearman, mean |change|
    reading_gap: pd.DataFrame       # how far the readings lie apart; the authors' read-out against ours
    stability: pd.DataFrame         # the CFG norm's pooled AUROC +- s.e. at every t0 <= 0.1, and their range


@dataclass(frozen=True)
class AuthorsCfg:
    """The real-image CFG norm as the book computes it beside Ross et al.'s code, and the start time's effect."""

    scores: dict                    # set name -> {AUTHORS | AUTHORS_BOOK_START: float64 [n]}
    procedures: pd.DataFrame        # per procedure: clock, start, steps, read-out, pooled AUROC +- s.e., Spearman
    start: pd.DataFrame             # per set and pooled: Spearman between the two start times, medians


@dataclass(frozen=True)
class LaionVerbatimsResult:
    """What chapter 04 shows: the sets, the noise levels, the scores and AUROCs, the controls, the summary."""

    sets: Sets
    noise: pd.DataFrame             # the times and noise levels the headline scores are read at
    scores: dict                    # set name -> {metric: float64 [n]}
    auroc: pd.DataFrame             # metric x (each non-memorized set, "all non-memorized")
    auroc_se: pd.DataFrame          # their stratified bootstrap standard errors
    reproduction: Reproduction
    sweep: T0Sweep
    authors_cfg: AuthorsCfg
    control: pd.DataFrame           # per set: real-image CFG norm with own and shuffled captions, distances
    paper: pd.DataFrame             # per metric: the paper's AUROC, ours pooled with two-s.e. bounds
    setup: pd.DataFrame             # the run's setup where it differs from the paper's
    summary: dict                   # the chapter's summary.json (without verdicts and seconds)


# -- the model and the sets ---------------------------------------------------------------------------

def _training_table(ds: CaptionedDigits, net) -> pd.DataFrame:
    per_caption = pd.Series(ds.train_captions).value_counts()          # distinct training images per caption
    ordinary = per_caption.drop(index=ds.planted_captions)
    rows = {"distinct training digits": len(ds.train), "training rows": len(ds),
            "planted verbatims": len(ds.planted), "copies of each planted image": ds.n_copies,
            "share of rows that are planted copies (%)": round(100 * len(ds.planted) * ds.n_copies / len(ds), 1),
            "distinct ordinary captions": len(ordinary),
            "training images per ordinary caption, mean": round(float(ordinary.mean()), 2),
            "training images per ordinary caption, median": float(ordinary.median()),
            "ordinary captions naming a single image": int((ordinary == 1).sum()),
            "training images per planted caption": int(per_caption[ds.planted_captions].max()),
            "model": repr(net)}
    return pd.DataFrame({"value": pd.Series(rows, dtype=object)})


def load_sets(settings, *, seed: int, device, cache, model=None, memorized_images=None, nonmemorized_images=None,
              captions=None, model_factory=None) -> Sets:
    """The model and the sets: a reader's pipeline (``model``) or factory's model (``model_factory``) and folders,
    the tiny Stable Diffusion trained on captioned digits (``settings.model == "tiny_sd"``), or SD v1.5 on the
    LAION sets."""
    S = settings
    ds = history = fetch = None
    reader = reader_source(model, model_factory, "Chapter 04")
    if reader is not None:               # the reader's model and images, read as `python -m mempkg score` reads them
        if None in (memorized_images, nonmemorized_images, captions):
            raise ValueError(f"Chapter 04 with {'model' if model is not None else 'model_factory'}= needs "
                             "memorized_images, nonmemorized_images and captions (a CSV file,caption for every "
                             "image).")
        if model_factory is not None:    # StableDiffusion's interface, images resized to the side it reads
            net, image_size = reader_text_model(model_factory, device)
        else:
            net, info = load_pretrained(model, device=device)
            if info.kind != "stable_diffusion":
                raise ValueError(f"Chapter 04 reads a text-conditional Stable Diffusion-family pipeline; {model!r} is "
                                 "an unconditional pixel-space model (chapters 02 and 05 take those).")
            image_size = info.native_size
        sets = reader_captioned_sets(memorized_images, nonmemorized_images, captions)
        about = pd.DataFrame({"value": pd.Series({
            "model": reader, "memorized images": str(memorized_images),
            "non-memorized images": str(nonmemorized_images), "captions": str(captions),
            "image side (px)": image_size}, dtype=object)})
    elif S.model == "tiny_sd":
        ds = captioned_digits(S.n_planted, S.n_copies, seed, n_rare_words=S.n_rare_words,
                              planted_pool=S.planted_pool, complexity=png_size)
        sets = evaluation_sets(ds, S.n_per_set, seed, ood_crops_per_side=S.ood_crops_per_side,
                               ood_faces=S.ood_faces)
        net, history = train_tiny_sd_cached(
            cache, "tiny_sd", ds, S.train_steps, seed=seed, device=device, lr=S.lr, batch_size=S.batch_size,
            p_uncond=S.p_uncond, t_sampling=S.t_sampling,
            model_kwargs=dict(embed_dim=S.embed_dim, block_out_channels=S.block_out_channels))
        image_size = None
        about = _training_table(ds, net)
    else:
        # The paper's run: the real sets (downloaded once into $MEMPKG_DATA) and SD v1.5 (weights from the Hub).
        sets, fetch = laion_evaluation_sets(
            S.n_laion, S.n_coco, S.n_tuxemon, S.oversample, seed, webster_path=S.webster_path,
            laion_path=S.laion_path, coco_path=S.coco_path, tuxemon_path=S.tuxemon_path,
            timeout=S.fetch_timeout)
        net = load_stable_diffusion(S.sd_model_id, device=device)
        image_size = S.image_size
        about = pd.DataFrame(fetch).T[["requested", "retrieved", "missing", "used", "reason_counts"]]
    memorized = next(iter(sets))            # the memorized set comes first
    table = pd.DataFrame([{"set": name, "images": len(s), "memorized": name == memorized,
                           "example captions": " | ".join(s.captions[:2])} for name, s in sets.items()])
    previews = {name: s.images(8, 128 if image_size else None) for name, s in sets.items()}
    source = "reader" if reader is not None else S.model
    return Sets(net, source, sets, memorized, image_size, ds, history, fetch, about, table, previews)


# -- the experiment -----------------------------------------------------------------------------------

def _noise_table(net, t0, cfg_t0, t0_reading, flipd_sigma, t0_flipd, cfg_sigma, cfg_t0_model, cfg_t_start):
    return pd.DataFrame({
        f"t given ({t0_reading} reading)": [t0, cfg_t0],
        "sigma there (read at)": [flipd_sigma, cfg_sigma],
        "t on the model's schedule": [t0_flipd, cfg_t0_model],
        "UNet label": [float(net.timestep(t0_flipd)), float(net.timestep(cfg_t0_model))],
        "sigma the model's schedule gives at t given": [float(net.sde.sigma(t0)), float(net.sde.sigma(cfg_t0))],
        "Euler steps start at t": [np.nan, cfg_t_start],
    }, index=["FLIPD", "CFG norm (real image)"]).round(5)


def _reproduction(S, sets: Sets, cache, seed: int) -> tuple[Reproduction, torch.Tensor, torch.Tensor]:
    """The reproduction, whether each sample's nearest training image is its caption's own, the copy flags."""
    net, image_size = sets.model, sets.image_size
    mem = sets.sets[sets.memorized].head(S.n_show)
    gen = cache.get("generations", dict(asdict(S), seed=seed, set=sets.memorized), lambda: generate(
        net, net.encode_prompts(mem.captions), S.sample_steps, S.sample_guidance, seed=seed),
        inputs={"model": net, "captions": list(mem.captions)})
    gen_images = net.decode_latents(gen.to(net.device)).cpu() if image_size else gen
    if image_size:                                    # SD: compare at 128 px against the memorized set itself
        gen_images = torch.nn.functional.interpolate(gen_images, size=128, mode="area")
        reference, own = mem.images(size=128), torch.arange(len(mem))
    else:                                             # digits: against all distinct training images
        reference, own = sets.data.train.x, sets.data.planted[: len(mem)]
    flag, nearest, ratio = copies(gen_images, reference)
    own_nn = (nearest == own)
    table = pd.DataFrame({"value": pd.Series({
        "memorized captions sampled": len(mem), "nearest training image is the caption's own": int(own_nn.sum()),
        "copies of their own image (d1 < d2 / 3)": int((flag & own_nn).sum()),
        "median d1 / d2": round(float(ratio.median()), 3)}, dtype=object)})
    return Reproduction(mem.images(size=128 if image_size else None), gen_images, table), own_nn, flag


def _sweep_aurocs(sweep: dict, memorized: str, k: int, m: str) -> pd.Series:
    return auroc_table({name: {m: np.asarray(sw[m])[k]} for name, sw in sweep.items()}, memorized, [m]).iloc[0]


def run(settings, *, seed: int, device, cache, model=None, memorized_images=None, nonmemorized_images=None,
        captions=None, t0: float = 0.1, n_probes: Optional[int] = 1, cfg_t0: float = 0.01, cfg_steps: int = 3,
        t0_reading: str = "linear_beta", n_boot: int = 1000, profile: str = "",
        model_factory: Optional[str] = None) -> LaionVerbatimsResult:
    """Chapter 04 in one call: the sets, the five scores and their AUROCs, the controls and the summary.

    Args:
        settings: a :class:`mempkg.book.profiles.LaionVerbatims` (any object with its fields).
        seed: data, training, probe and noise seed.
        device: where the model runs.
        cache: ``cache.get(name, params, compute, inputs=...)`` and ``cache.model(...)``
            (:class:`mempkg.book.cache.Cache`).
        model, memorized_images, nonmemorized_images, captions: a reader's Stable Diffusion-family pipeline
            (hub id or folder), a folder of images it memorized, a folder (or a dict of set name -> folder)
            of images it did not, and a CSV ``file,caption`` for every image (:func:`reader_captioned_sets`).
        model_factory: instead of ``model``, ``"package.module:function"`` returning a model with
            :class:`~mempkg.models.stable_diffusion.StableDiffusion`'s interface
            (:func:`~mempkg.studies.readers.reader_text_model`); the same folders and captions.
        t0: FLIPD's read-out time under the ``t0_reading`` of SD's schedule (Appendix A.1: 0.1).
        n_probes: Hutchinson probes (None: the exact trace).
        cfg_t0, cfg_steps: the real-image CFG norm's Euler steps to cfg_t0 (A.1: 3 steps to 0.01).
        t0_reading: ``"linear_beta"`` (the authors' code) or ``"scheduler"`` (SD's alphas_cumprod).
        n_boot: bootstrap resamples of the AUROCs' standard errors.
        profile: the profile's name, for the tables' headers.
    """
    S = settings
    sets = load_sets(S, seed=seed, device=device, cache=cache, model=model, memorized_images=memorized_images,
                     nonmemorized_images=nonmemorized_images, captions=captions, model_factory=model_factory)
    net, memorized, image_size, ds = sets.model, sets.memorized, sets.image_size, sets.data
    n_nonmem = sum(len(s) for name, s in sets.sets.items() if name != memorized)
    n_params = sum(p.numel() for p in net.parameters())     # the model actually used (UNet, text encoder, VAE)
    about = describe_model(net, model or model_factory or (S.sd_model_id if S.model == "stable_diffusion" else
                                                            "trained here"))

    # 1. the noise levels the scores are read at
    flipd_sigma, t0_flipd = equal_sigma_time(net, t0, t0_reading)
    cfg_sigma, cfg_t0_model = equal_sigma_time(net, cfg_t0, t0_reading)
    cfg_t_start = ode_start_time(net)
    noise = _noise_table(net, t0, cfg_t0, t0_reading, flipd_sigma, t0_flipd, cfg_sigma, cfg_t0_model, cfg_t_start)

    # 2. the five scores and their AUROCs
    score_params = dict(asdict(S), seed=seed, t0=t0, t0_reading=t0_reading, t0_flipd=t0_flipd, n_probes=n_probes,
                        cfg_t0=cfg_t0, cfg_t0_model=cfg_t0_model, cfg_t_start=cfg_t_start, cfg_steps=cfg_steps)
    scores = {name: cache.get(f"scores_{i}", dict(score_params, set=name), lambda: memorization_scores(
        net, s.x, s.captions, t0=t0_flipd, n_probes=n_probes, cfg_t0=cfg_t0_model, cfg_steps=cfg_steps,
        cfg_t_start=cfg_t_start, gen_steps=S.gen_steps,
        gen_samples=S.gen_samples, guidance_scale=S.guidance_scale, seed=seed, batch_size=S.eval_batch_size,
        image_size=image_size), inputs={"model": net, **s.inputs()})
        for i, (name, s) in enumerate(sets.sets.items())}
    scores = {name: {m: np.asarray(v) for m, v in sc.items()} for name, sc in scores.items()}
    table = auroc_table(scores, memorized, METRICS)
    se = auroc_se_table(scores, memorized, METRICS, n_boot=n_boot, seed=seed)
    pooled, pooled_se = table[POOLED], se[POOLED]

    # 3. do the memorized captions reproduce their images?
    reproduction, own_nn, flag = _reproduction(S, sets, cache, seed)

    # 4. the t0 dependence, on the scheduler's reading and on the authors' linear-beta reading
    from scipy.stats import spearmanr  # heavy: scipy.stats takes about a second to import

    sweep_sets = {name: s.head(S.n_sweep) for name, s in sets.sets.items()}
    sweep = {name: cache.get(f"sweep_{i}", dict(score_params, set=name), lambda: t0_sweep(
        net, s.x, s.captions, S.sweep_t0s, n_probes=n_probes, cfg_steps=cfg_steps, cfg_t_start=cfg_t_start, seed=seed,
        batch_size=S.eval_batch_size, image_size=image_size), inputs={"model": net, **s.inputs()})
        for i, (name, s) in enumerate(sweep_sets.items())}
    t0s = S.sweep_t0s
    sweep_auroc = {m: pd.DataFrame([_sweep_aurocs(sweep, memorized, k, m) for k in range(len(t0s))], index=t0s)
                   for m in SWEPT}
    sweep_table = (pd.concat({METRIC_LABELS[m]: df for m, df in sweep_auroc.items()}, axis=1)
                   .set_index(pd.Index([f"{t:g} (sigma {float(net.sde.sigma(t)):.3f})" for t in t0s], name="t0"))
                   .round(3))
    authors = with_schedule(net, "linear_beta")
    sweep_lb = {name: cache.get(f"sweep_linear_beta_{i}", dict(score_params, set=name, schedule="linear_beta",
                                                              cfg_t_start_linear_beta=cfg_t_start),
                                lambda: t0_sweep(authors, s.x, s.captions, t0s, n_probes=n_probes, cfg_steps=cfg_steps,
                                                 cfg_t_start=cfg_t_start, seed=seed,
                                                 batch_size=S.eval_batch_size, image_size=image_size),
                                inputs={"model": authors, **s.inputs()})
                for i, (name, s) in enumerate(sweep_sets.items())}
    sched_rows, auroc_change = [], 0.0
    for k, t0_k in enumerate(t0s):
        row = {"t0": t0_k, "sigma (scheduler)": float(net.sde.sigma(t0_k)),
               "sigma (linear beta)": float(authors.sde.sigma(t0_k))}
        for m in ("flipd_cond", "flipd_uncond", "cfg_norm"):
            both = {reading: _sweep_aurocs(sw, memorized, k, m)[POOLED]
                    for reading, sw in (("scheduler", sweep), ("linear beta", sweep_lb))}
            a = np.concatenate([np.asarray(v[m])[k] for v in sweep.values()])
            b = np.concatenate([np.asarray(v[m])[k] for v in sweep_lb.values()])
            auroc_change = max(auroc_change, abs(both["scheduler"] - both["linear beta"]))
            row[f"{METRIC_LABELS[m]}: AUROC scheduler / linear beta"] = \
                f"{both['scheduler']:.3f} / {both['linear beta']:.3f}"
            row[f"{METRIC_LABELS[m]}: Spearman"] = float(spearmanr(a, b).statistic)
            row[f"{METRIC_LABELS[m]}: mean |change|"] = float(np.abs(b - a).mean())
        sched_rows.append(row)
    sched = pd.DataFrame(sched_rows).set_index("t0")
    min_spearman = float(sched.filter(like="Spearman").min().min())
    t_grid = torch.linspace(1e-3, 1, 1000, dtype=torch.float64)
    sig_gap = (authors.sde.sigma(t_grid) - net.sde.sigma(t_grid)).abs()
    gap = {"largest sigma gap between the readings": float(sig_gap.max()),
           "... at t": float(t_grid[sig_gap.argmax()]),
           "largest sigma gap for t <= 0.01": float(sig_gap[t_grid <= 0.01].max()),
           "lowest Spearman correlation over the sweep": min_spearman,
           "largest change of a pooled AUROC": float(auroc_change)}
    if t0 in t0s and t0_reading == "linear_beta":       # the authors' exact read-out against ours at the same sigma
        k = t0s.index(t0)
        mine = {name: {m: scores[name][m][: len(s)] for m in ("flipd_cond", "flipd_uncond")}
                for name, s in sweep_sets.items()}
        theirs = {name: {m: np.asarray(v[m])[k] for m in mine[name]} for name, v in sweep_lb.items()}
        a_mine, a_theirs = (auroc_table(d, memorized, ["flipd_cond", "flipd_uncond"])[POOLED]
                            for d in (mine, theirs))
        for who, aurocs in ((f"the authors' read-out (label {float(authors.timestep(t0)):.0f})", a_theirs),
                            (f"ours at the same sigma (label {float(net.timestep(t0_flipd)):.1f})", a_mine)):
            for m in ("flipd_cond", "flipd_uncond"):
                gap[f"{who}: pooled AUROC, {METRIC_LABELS[m]}"] = float(aurocs[m])
    readings = sched.round(4).T.rename(columns=lambda t: f"t0 = {t:g}")
    stability, small_t0 = _small_t0_stability(sweep, memorized, t0s, net, n_boot, seed)
    t0_result = T0Sweep(tuple(t0s), sweep_auroc, sweep_table, readings,
                        pd.DataFrame({"value": pd.Series(gap)}).round(4), stability)

    # 5. the real-image CFG norm as Ross et al.'s code computes it, beside ours, and its start time
    cfg_t0_authors = cfg_t0 if t0_reading == "linear_beta" else float(authors.sde.t_from_sigma(cfg_sigma))
    t_start_book = float(authors.sde.t_from_sigma(net.sde.sigma(cfg_t_start)))   # the book's start noise level
    starts = {AUTHORS: T_START_AUTHORS, AUTHORS_BOOK_START: t_start_book}
    authors_scores = {name: cache.get(f"cfg_authors_{i}", dict(score_params, set=name, cfg_t0_authors=cfg_t0_authors,
                                                                t_starts=starts), lambda: authors_cfg_norms(
        authors, s.x, s.captions, starts, t0=cfg_t0_authors, n_steps=cfg_steps, batch_size=S.eval_batch_size,
        image_size=image_size), inputs={"model": authors, **s.inputs()})
        for i, (name, s) in enumerate(sets.sets.items())}
    authors_scores = {name: {m: np.asarray(v) for m, v in sc.items()} for name, sc in authors_scores.items()}
    authors_cfg, authors_summary = _authors_cfg(net, authors, authors_scores, scores, memorized, starts,
                                                cfg_t_start, cfg_t0_model, cfg_t0_authors, cfg_steps,
                                                float(pooled["cfg_norm"]), float(pooled_se["cfg_norm"]), n_boot, seed)

    # 6. the control: captions shuffled within each set, and distances to the training digits
    control_sets = {name: s.head(S.n_sweep) for name, s in sets.sets.items()}
    shuffled = {name: cache.get(f"cfg_shuffled_{i}", dict(score_params, set=name), lambda: memorization_scores(
        net, s.x, [s.captions[j] for j in np.random.default_rng([seed, i]).permutation(len(s))], cfg_t0=cfg_t0_model,
        cfg_steps=cfg_steps, cfg_t_start=cfg_t_start, seed=seed, batch_size=S.eval_batch_size, image_size=image_size,
        metrics=["cfg_norm"], progress=False)["cfg_norm"], inputs={"model": net, **s.inputs()})
        for i, (name, s) in enumerate(control_sets.items())}
    mem_cfg = scores[memorized]["cfg_norm"]
    rows = []
    for name, s in control_sets.items():
        own_cfg = scores[name]["cfg_norm"][: len(s)]
        row = {"set": name, "median CFG norm, own captions": np.median(own_cfg),
               "median CFG norm, shuffled captions": np.median(np.asarray(shuffled[name]))}
        if name != memorized:
            for label, neg in (("own captions", own_cfg), ("shuffled captions", np.asarray(shuffled[name]))):
                row[f"AUROC, {label}"] = oriented_auroc("cfg_norm", mem_cfg, neg)
                row[f"s.e., {label}"] = auroc_bootstrap_se("cfg_norm", mem_cfg, neg, n_boot, seed)
            row["AUROC drop when shuffled"] = row["AUROC, own captions"] - row["AUROC, shuffled captions"]
            row["two combined s.e."] = 2 * np.hypot(row["s.e., own captions"], row["s.e., shuffled captions"])
        if not image_size:          # distance to the nearest *other* training image (the memorized ones are in it)
            d, _ = nearest_neighbours(s.x, ds.train.x, k=2)
            row["median distance to the training set"] = float(
                d[:, 1 if name.startswith(("memorized", "training")) else 0].median())
        rows.append(row)
    control = pd.DataFrame(rows).set_index("set")

    # 7. the paper against this run, and where the run differs from the paper's setup
    paper = pd.DataFrame({"paper (SD v1.5, AUROC)": PAPER,
                          f"this run ({profile}), vs all non-memorized": pooled.round(3).to_dict(),
                          "bootstrap s.e.": pooled_se.round(3).to_dict(),
                          "AUROC - 2 s.e.": (pooled - 2 * pooled_se).round(3).to_dict(),
                          "AUROC + 2 s.e.": (pooled + 2 * pooled_se).round(3).to_dict(),
                          "lowest vs one set": table.drop(columns=POOLED).min(axis=1).round(3).to_dict(),
                          "rank": pooled.rank(ascending=False, method="min").astype(int).to_dict()}
                         ).rename(index=METRIC_LABELS)
    setup = _setup_table(S, sets, scores, control, n_params, n_probes, net)

    summary = {
        "model": sets.source,
        "model_description": about,
        "n_parameters": int(n_params),
        "auroc_flipd_cond": float(pooled["flipd_cond"]),
        "auroc_flipd_uncond": float(pooled["flipd_uncond"]),
        "auroc_cfg_norm": float(pooled["cfg_norm"]),
        "auroc_cfg_norm_generation": float(pooled["cfg_norm_generation"]),
        "auroc_png": float(pooled["png_size"]),
        "auroc_se_flipd_cond": float(pooled_se["flipd_cond"]),
        "auroc_se_flipd_uncond": float(pooled_se["flipd_uncond"]),
        "auroc_se_cfg_norm": float(pooled_se["cfg_norm"]),
        "auroc_se_cfg_norm_generation": float(pooled_se["cfg_norm_generation"]),
        "auroc_se_png": float(pooled_se["png_size"]),
        "auroc_per_set": {m: {k: float(v) for k, v in row.items()} for m, row in table.iterrows()},
        "auroc_se_per_set": {m: {k: float(v) for k, v in row.items()} for m, row in se.iterrows()},
        "auroc_cfg_norm_by_t0": {f"{t:g}": float(v) for t, v in sweep_auroc["cfg_norm"][POOLED].items()},
        "auroc_flipd_cond_by_t0": {f"{t:g}": float(v) for t, v in sweep_auroc["flipd_cond"][POOLED].items()},
        "auroc_flipd_uncond_by_t0": {f"{t:g}": float(v) for t, v in sweep_auroc["flipd_uncond"][POOLED].items()},
        "n_memorized": len(sets.sets[memorized]),
        "n_nonmemorized": n_nonmem,
        "n_per_set": {name: len(s) for name, s in sets.sets.items()},
        "t0": t0, "t0_reading": t0_reading, "flipd_sigma": flipd_sigma, "t0_flipd": t0_flipd,
        "n_probes": n_probes if n_probes is not None else 0, "cfg_t0": cfg_t0, "cfg_sigma": cfg_sigma,
        "cfg_t0_model": cfg_t0_model, "cfg_t_start": cfg_t_start, "cfg_steps": cfg_steps, "n_boot": n_boot,
        "reproduced_fraction": float((flag & own_nn).float().mean()),
        "own_nearest_fraction": float(own_nn.float().mean()),
        "linear_beta_max_auroc_change": float(auroc_change),
        "linear_beta_min_spearman": min_spearman,
        **authors_summary,
        **small_t0,
        "fetch": sets.fetch or {},
    }
    return LaionVerbatimsResult(sets, noise, scores, table, se, reproduction, t0_result, authors_cfg, control, paper,
                                setup, summary)


def _small_t0_stability(sweep: dict, memorized: str, t0s, net, n_boot: int, seed: int) -> tuple[pd.DataFrame, dict]:
    """The real-image CFG norm's pooled AUROC at every sweep t0 <= :data:`SMALL_T0` with its stratified bootstrap
    s.e. (every t0 resampled with the same images), and the range max - min with the bootstrap s.e. of the
    difference between those two t0s -> (table, summary keys; None where fewer than two t0 are <= 0.1)."""
    ks = [k for k, t in enumerate(t0s) if t <= SMALL_T0 * (1 + 1e-9)]
    if len(ks) < 2:             # no range to measure: the scorecard leaves the row undecided
        return pd.DataFrame(), {"cfg_auroc_by_t0": None, "cfg_auroc_range_t0_le_0_1": None,
                                "cfg_auroc_range_t0_le_0_1_se": None}
    pos = np.stack([np.asarray(sweep[memorized]["cfg_norm"])[k] for k in ks])                      # [L, n_pos]
    neg = np.stack([np.concatenate([np.asarray(v["cfg_norm"])[k] for name, v in sweep.items() if name != memorized])
                    for k in ks])                                                                  # [L, n_neg]
    auc = np.array([oriented_auroc("cfg_norm", p, q) for p, q in zip(pos, neg)])
    labels = np.r_[np.ones(pos.shape[1], bool), np.zeros(neg.shape[1], bool)]
    boot = auroc_bootstrap(oriented("cfg_norm", np.concatenate([pos, neg], axis=1)), labels, n_boot, seed)
    se = boot.std(0, ddof=1)
    hi, lo = int(auc.argmax()), int(auc.argmin())
    spread, spread_se = float(auc[hi] - auc[lo]), float((boot[:, hi] - boot[:, lo]).std(ddof=1))
    t_small = [float(t0s[k]) for k in ks]
    sigmas = [float(net.sde.sigma(t)) for t in t_small]
    rows = {f"t0 = {t:g} (sigma {sg:.3f})": {"AUROC, vs all non-memorized": a, "bootstrap s.e.": e}
            for t, sg, a, e in zip(t_small, sigmas, auc, se)}
    rows[f"largest - smallest (t0 = {t_small[hi]:g} - {t_small[lo]:g})"] = {"AUROC, vs all non-memorized": spread,
                                                                            "bootstrap s.e.": spread_se}
    summary = {"cfg_auroc_by_t0": {"t0": t_small, "sigma": sigmas, "auroc": [float(a) for a in auc],
                                   "se": [float(e) for e in se]},
               "cfg_auroc_range_t0_le_0_1": spread, "cfg_auroc_range_t0_le_0_1_se": spread_se}
    return pd.DataFrame.from_dict(rows, orient="index").round(4), summary


def _authors_cfg(net, authors, authors_scores: dict, scores: dict, memorized: str, starts: dict, cfg_t_start: float,
                 cfg_t0_model: float, cfg_t0_authors: float, cfg_steps: int, auroc_book: float, se_book: float,
                 n_boot: int, seed: int) -> tuple[AuthorsCfg, dict]:
    """The book's and the authors' CFG-norm procedures side by side, and the start time's effect on the
    authors' -> (result, summary keys)."""
    from scipy.stats import spearmanr  # heavy: scipy.stats takes about a second to import

    names = list(starts)
    aurocs = auroc_table(authors_scores, memorized, names)[POOLED]
    ses = auroc_se_table(authors_scores, memorized, names, n_boot=n_boot, seed=seed)[POOLED]
    pooled = {m: np.concatenate([sc[m] for sc in authors_scores.values()]) for m in names}
    book = np.concatenate([scores[name]["cfg_norm"] for name in authors_scores])
    rho = {m: float(spearmanr(pooled[m], pooled[AUTHORS]).statistic) for m in names}
    rho_book = float(spearmanr(book, pooled[AUTHORS]).statistic)

    def procedure(model, clock, t_start, t_end, t_read, auroc, se, spearman):
        return {"clock (UNet label)": clock, "start t": t_start, "sigma at start": float(model.sde.sigma(t_start)),
                "UNet label at start": float(model.timestep(t_start)), "Euler steps": cfg_steps,
                "step h": (t_end - t_start) / cfg_steps, "steps end at t": t_end,
                "sigma where they end": float(model.sde.sigma(t_end)), "read-out t": t_read,
                "sigma at read-out": float(model.sde.sigma(t_read)),
                "UNet label at read-out": float(model.timestep(t_read)),
                "AUROC, vs all non-memorized": auroc, "bootstrap s.e.": se, "Spearman with the authors' code": spearman}

    h = {m: (cfg_t0_authors - t) / (cfg_steps - 1) for m, t in starts.items()}
    rows = {"this book": procedure(net, "SD's scheduler (N t - 1)", cfg_t_start, cfg_t0_model, cfg_t0_model,
                                   auroc_book, se_book, rho_book)}
    for m, label in ((AUTHORS, "the authors' code"), (AUTHORS_BOOK_START, "the authors' code, the book's start")):
        rows[label] = procedure(authors, "linear beta (N t)", starts[m], cfg_t0_authors + h[m], cfg_t0_authors,
                                float(aurocs[m]), float(ses[m]), rho[m])
    procedures = pd.DataFrame(rows).map(lambda v: round(v, 5) if isinstance(v, float) else v)

    start_rows = {}
    for name, sc in [*authors_scores.items(), ("all images", pooled)]:
        start_rows[name] = {"images": len(sc[AUTHORS]),
                            "Spearman, start t = 1e-4 vs the book's start": float(
                                spearmanr(sc[AUTHORS], sc[AUTHORS_BOOK_START]).statistic),
                            "median CFG norm, start t = 1e-4": float(np.median(sc[AUTHORS])),
                            "median CFG norm, the book's start": float(np.median(sc[AUTHORS_BOOK_START]))}
    start = pd.DataFrame.from_dict(start_rows, orient="index").round(4)
    summary = {"auroc_cfg_norm_authors": float(aurocs[AUTHORS]), "auroc_cfg_norm_authors_se": float(ses[AUTHORS]),
               "auroc_cfg_norm_authors_book_start": float(aurocs[AUTHORS_BOOK_START]),
               "auroc_cfg_norm_authors_book_start_se": float(ses[AUTHORS_BOOK_START]),
               "cfg_start_spearman": rho[AUTHORS_BOOK_START], "cfg_authors_spearman": rho_book,
               "cfg_t_start_authors": float(starts[AUTHORS]),
               "cfg_t_start_book_linear_beta": float(starts[AUTHORS_BOOK_START]),
               "cfg_t0_authors": float(cfg_t0_authors)}
    return AuthorsCfg(authors_scores, procedures, start), summary


def _setup_table(S, sets: Sets, scores: dict, control: pd.DataFrame, n_params: int, n_probes, net) -> pd.DataFrame:
    """The numbers the "What differs" section refers to."""
    png_all = np.concatenate([sc["png_size"] for sc in scores.values()])
    others = np.concatenate([scores[k]["png_size"] for k in scores if k != sets.memorized])
    rows = {"parameters (with text encoder and VAE)": int(n_params),
            "data shape": " x ".join(map(str, net.data_shape)),
            "Hutchinson probes": n_probes if n_probes is not None else "exact trace",
            "schedule steps N": int(net.N),
            "UNet label of t = 1e-4 (the authors' solver start) on the model's schedule":
                round(float(net.timestep(1e-4)), 2) if hasattr(net.sde, "t_of_timestep") else None,
            "PNG size, smallest (bytes)": int(png_all.min()), "PNG size, largest (bytes)": int(png_all.max()),
            "PNG size, median of the memorized set": float(np.median(scores[sets.memorized]["png_size"])),
            "PNG size, median of the other sets": float(np.median(others))}
    if sets.data is not None:
        ds = sets.data
        words = [w for w in ds.vocab.words if w != PAD]
        n_ordinary = len(TEMPLATE_WORDS) + len(CLASS_WORDS) + 2 * len(ATTRIBUTE_WORDS)
        rows.update({"training steps": S.train_steps, "images per non-memorized set, at most": S.n_per_set,
                     "vocabulary words": len(words), "... of ordinary captions": n_ordinary,
                     "... rare, of planted captions": len(words) - n_ordinary, "planted pool": ds.planted_pool})
        dist = control.get("median distance to the training set")
        if dist is not None:
            rows.update({f"median distance to the nearest training digit, {k}": round(float(dist[k]), 3)
                         for k in NON_MEMORIZED if k in dist})
    return pd.DataFrame({"value": pd.Series(rows, dtype=object)})
