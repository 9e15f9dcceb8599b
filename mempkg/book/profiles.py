"""Run profiles: named presets that say how much compute a chapter spends.

* ``tiny``  -- the test suite: seconds per notebook; numbers are smoke-test values only.
* ``quick`` -- the default book on a CPU: minutes per notebook; the papers' findings must show.
* ``full``  -- the papers' settings, for a CUDA machine with internet.

A notebook picks its profile from its papermill parameter ``profile``, else the environment
variable ``MEMPKG_PROFILE``, else ``quick``. Each chapter's settings are a frozen dataclass whose
defaults are ``quick``; ``CHAPTERS`` holds the three instances per chapter.

A reader overrides any of them without editing code: every chapter's parameters cell takes
``settings = {}`` (papermill ``-y "settings: {n_axes: 5}"``) and names its main knobs as parameters
of their own (``-p n_axes 5``); :meth:`Profile.settings` applies both with ``dataclasses.replace``,
refuses a field the chapter does not have (naming the valid ones), and the banner and the summary
list what was overridden.

Layer: book (imports every layer but the CLI).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Optional

import torch

from ..core import __version__
from ..core.devices import resolve_device
from ..core.files import write_json_atomic
from .cache import Cache, check_finite_summary
from .paths import results_dir

PROFILES = ("tiny", "quick", "full")

# ---------------------------------------------------------------------------------------------
# Chapter settings: one frozen dataclass per chapter, whose defaults are the `quick` profile.

@dataclass(frozen=True)
class ChapterSettings:
    """A chapter's settings: typed fields read as ``S.name``; ``dataclasses.replace`` makes a variant."""

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


@dataclass(frozen=True)
class VonMises(ChapterSettings):
    """Chapter 01: the von Mises toy of Ross, Kamkari et al. (Fig. 3)."""

    n_train: int = 100                  # training points on the circle
    kappa: float = 2.0                  # von Mises concentration (the authors' code default)
    min_gap: float = 1.0                # data: the first seed that isolates a point by >= min_gap rad
    data_seed_start: int = 0
    hidden: int = 128                   # eps-MLP: depth x hidden, SiLU, t_dim-d time embedding
    depth: int = 3
    t_dim: int = 64
    lr: float = 5e-3
    n_noise: int = 4                    # full batch, n_noise noise draws per point per step
    t_min: float = 1e-3
    t_sampling: str = "log-uniform"
    t0: float = 0.05                    # fixed FLIPD t0: Kamkari et al.'s default on synthetic data
    sampler: str = "sde"
    t_end: float = 1e-3
    n_plot_samples: int = 100
    copy_radius_sigmas: float = 3.0     # a copy: within this many sigma(t_end) of a training point
    train_steps: int = 8000
    n_samples: int = 2000
    sample_steps: int = 1000
    n_curve: int = 25
    # training seeds: the first chooses the knee t0, the others test the claim at that t0
    # 2026-12: quick with 4 seeds, 90 s of CPU on 1 thread (59 s with 3), mostly the 8000 training steps
    n_train_seeds: int = 4


@dataclass(frozen=True)
class VolumeGrowth(ChapterSettings):
    """Chapter 02: Hasegawa & Yasuda's volume growth on the 2^7 overfit."""

    data: str = "digits"                # the 2^7 groups, on 8x8 digits
    download: bool = False
    n_subset: int = 64
    preset: str = "digits"
    data_md5: Optional[dict] = None     # CIFAR-10: {file: md5} of the batch files; None: the official sums
    # 2026-12: 1500 steps at lr 2e-3, log-uniform t copy 89.6% of samples vs 92.0% for 3000 uniform steps at 1e-3
    lr: float = 2e-3
    warmup: int = 100
    batch_size: Optional[int] = None
    ema_decay: float = 0.999
    weights: str = "raw"
    t_sampling: str = "log-uniform"     # training times; "uniform" is the authors'
    radius: float = 0.05
    t_start: float = 1e-3
    t_end: float = 1.0
    method: str = "finite"
    loss_t: float = 0.01
    sample_steps: int = 200
    n_planted: int = 16
    n_copies: int = 16
    planted_seed: int = 0
    batch_size_planted: Optional[int] = 128
    ablation_radii: tuple = (0.001, 0.01, 0.05, 0.1)
    # 2026-12: the UNet at half the channels (digits_narrow) copies 21.4% of samples, not 90%
    train_steps: int = 1500
    n_samples: int = 500
    n_axes: int = 10
    n_steps: int = 100
    n_memorized_train: int = 1000
    planted_steps: int = 1500
    ablation_axes: tuple = (1, 10, 50)
    ablation_steps: tuple = (1, 10, 100)
    n_ablation: int = 32


@dataclass(frozen=True)
class ThreeRegimes(ChapterSettings):
    """Chapter 03: Dodson et al.'s three noise regimes and gap training."""

    data: str = "digits"
    download: bool = False
    preset: str = "digits"
    sigma_data: float = 0.75            # digits in [-1, 1] have std ~0.75
    data_md5: Optional[dict] = None     # CIFAR-10: {file: md5} of the batch files; None: the official sums
    n_small: int = 128
    n_emp: int = 1000
    sigma_min: float = 0.01
    sigma_max: float = 20.0
    w_points: str = "train"             # Def. 4.1; "heldout": the book's earlier reading
    n_w_points: Optional[int] = None    # training points W averages over; None: all
    shell: str = "laurent_massart"      # Eq. 6 with shell_c; "chi2": the central 1 - alpha band
    shell_c: float = 5.0
    alpha: float = 0.01
    threshold: float = 0.5              # the book's rule: the paper picks the zone by eye
    zone_thresholds: tuple = (0.3, 0.5, 0.7)
    zone_shell_cs: tuple = (2.0, 5.0, 10.0)
    lr: float = 1e-3
    batch_size: int = 128
    swap_steps: int = 18                # the paper's Euler grid: rho 7, sigma 80 to 0.002
    swap_n: int = 256                   # generations per row of the swap table
    gap_class: int = 3                  # gap training on one class of the training split
    gap_n_train: Optional[int] = None
    # 2026-12-07: at 1,500 steps the baseline still copies 58/38/46% (3 seeds; one 2,000-step model: 86%),
    # and three seeds per arm add 7.5 min to chapter 03 (paired runs, 1 thread each, quick)
    gap_train_steps: int = 1500
    gap_batch_size: int = 64
    gap_max_per_side: int = 1           # the gap band and one band each side
    gap_seeds: int = 3                  # baseline, gap and dummy each trained with this many seeds
    n_generations: int = 500
    sample_steps: int = 18
    fd_features: str = "classifier"
    classifier_steps: int = 600
    n_sigmas: int = 40
    n_test: int = 797
    # 2026-12: the UNet at half the channels cuts every copy rate to a fifth or less and loses a verdict
    train_steps: int = 3000


@dataclass(frozen=True)
class LaionVerbatims(ChapterSettings):
    """Chapter 04: FLIPD, the CFG norm and PNG size on memorized vs other images."""

    model: str = "tiny_sd"              # tiny/quick: TinyStableDiffusion on captioned digits with planted verbatims
    n_planted: int = 20
    n_copies: int = 8
    n_rare_words: int = 3
    planted_pool: str = "simpler_half"
    n_per_set: Optional[int] = 200
    ood_crops_per_side: int = 2
    ood_faces: bool = True
    embed_dim: int = 32
    # 2026-12: at half the channels ((16, 32)) 10% of memorized captions' images are reproduced, not 60%
    block_out_channels: tuple = (32, 64)
    train_steps: int = 1500
    batch_size: int = 128
    lr: float = 1e-3
    p_uncond: float = 0.1
    t_sampling: str = "uniform"
    gen_steps: int = 1                  # Wen et al.'s CFG norm, from noise
    gen_samples: int = 4
    guidance_scale: float = 7.5
    # t0 dependence; four t0 <= 0.1, where Ross et al. (App. A.1) find the scores stable
    sweep_t0s: tuple = (0.003, 0.01, 0.03, 0.1, 0.3, 0.5)
    n_sweep: Optional[int] = None       # images per set in the sweep; None: all
    n_show: int = 20
    sample_steps: int = 50
    sample_guidance: float = 3.0
    eval_batch_size: int = 64
    # full: Stable Diffusion v1.5 on Webster's LAION verbatims and LAION-Aesthetics / COCO / Tuxemon
    sd_model_id: str = "stable-diffusion-v1-5/stable-diffusion-v1-5"
    image_size: int = 512
    n_laion: int = 2000
    n_coco: int = 2000
    n_tuxemon: Optional[int] = None
    oversample: float = 1.5
    webster_path: Optional[str] = None  # local copies of the full profile's sources (None: the Hub)
    laion_path: Optional[str] = None
    coco_path: Optional[str] = None
    tuxemon_path: Optional[str] = None
    fetch_timeout: float = 10.0


@dataclass(frozen=True)
class ThreeLenses(ChapterSettings):
    """Chapter 05: three memorization lenses on one model with planted duplicates."""

    data: str = "digits"
    download: bool = False
    preset: str = "digits"
    sigma_data: float = 0.75
    lr: float = 1e-3
    batch_size: int = 128
    data_md5: Optional[dict] = None     # CIFAR-10: {file: md5} of the batch files; None: the official sums
    n_singletons: int = 800             # training set: n_singletons + n_per_count images per k in counts
    n_per_count: int = 4
    counts: tuple = (2, 4, 8, 16, 32)
    dup_seed: int = 0
    planted_k: int = 2                  # headline positive class: duplicated >= planted_k times
    n_test: int = 797
    n_heldout_scored: int = 100
    n_generations: int = 4000           # the reference: memorized = copied by some sample
    sample_steps: int = 18
    sigma_min: float = 0.01             # danger zone, as chapter 03
    sigma_max: float = 20.0
    n_sigmas: int = 40
    alpha: float = 0.01
    threshold: float = 0.5
    t0_min: float = 0.005               # FLIPD's t0: knee of the median curve
    t0_max: float = 2.0
    n_t0: int = 12
    n_curve: int = 64
    curve_probes: int = 4
    flipd_probes: Optional[int] = None  # None: exact trace (D VJPs)
    volume_axes: int = 4
    volume_steps: int = 25
    volume_radius: float = 0.05
    volume_t_end: Optional[float] = None    # None: the VP time of sigma_max
    volume_t_start: Optional[float] = None  # None: the VP time of FLIPD's t0
    onestep_draws: int = 16
    reproduction_steps: int = 18
    reproduction_draws: int = 3
    sweep_sigma_min: float = 0.05       # the one-step rate at other sigmas (a check)
    sweep_sigma_max: float = 5.0
    n_sweep: int = 12
    n_boot: int = 200
    n_show: int = 4
    # 2026-12: 0.625 of the steps at 2x lr copies 18 images, not 50; half the channels, 12
    train_steps: int = 4000


@dataclass(frozen=True)
class Performance(ChapterSettings):
    """Chapter 06: the estimators' cost against the authors' loops and the forward-pass limit."""

    t0: float = 0.05                    # FLIPD read-out
    exact_max_dim: int = 64             # exact trace only for D <= exact_max_dim
    cfg_t0: float = 0.01                # Ross et al.'s CFG norm: cfg_steps Euler steps to t0
    cfg_steps: int = 3
    wc_sigmas: int = 64
    wc_naive_sigmas: int = 2
    cost_models: tuple = ("mlp_2", "unet_1x8x8", "unet_3x32x32", "tiny_sd")
    headline_model: str = "unet_3x32x32"
    batch: int = 16
    n_axes: int = 4
    n_steps: int = 2
    n_sigmas: int = 2
    n_train: int = 1000
    volume_models: tuple = ("mlp_64", "unet_1x8x8")
    volume_images: int = 8
    volume_axes: int = 50
    volume_steps: int = 5
    wc_train: int = 10_000
    wc_train_sizes: tuple = (1000, 2000, 5000, 10_000)
    wc_queries: int = 500
    wc_dim: int = 3072
    repeats: int = 3


_CIFAR = dict(data="cifar10", download=True, preset="ddpm_cifar10")

CHAPTERS: dict[str, dict[str, ChapterSettings]] = {
    "von_mises": {
        "tiny": VonMises(train_steps=300, n_samples=200, sample_steps=100, n_curve=6, n_train_seeds=2),
        "quick": VonMises(),
        "full": VonMises(train_steps=20000, n_samples=10000, sample_steps=2000, n_curve=41, n_train_seeds=5),
    },
    "volume_growth": {
        "tiny": VolumeGrowth(n_subset=8, lr=1e-3, t_sampling="uniform", batch_size_planted=None, train_steps=40,
                             n_samples=32, sample_steps=20, n_axes=2, n_steps=3, n_memorized_train=100,
                             planted_steps=40, n_planted=4, n_copies=4, ablation_axes=(1, 2), ablation_steps=(1, 2),
                             n_ablation=8),
        "quick": VolumeGrowth(),
        "full": VolumeGrowth(**_CIFAR, lr=2e-4, warmup=5000, batch_size=16, ema_decay=0.9999, t_sampling="uniform",
                             train_steps=400_000, n_samples=10_000, sample_steps=1000, n_axes=100, n_steps=1000,
                             n_memorized_train=50_000, planted_steps=400_000, n_planted=100, n_copies=100,
                             ablation_axes=(1, 10, 50, 100), ablation_steps=(1, 10, 100, 1000), n_ablation=128),
    },
    "three_regimes": {
        "tiny": ThreeRegimes(n_small=32, n_emp=100, n_sigmas=8, n_test=50, train_steps=30, gap_train_steps=20,
                             n_generations=64, sample_steps=6, classifier_steps=60, swap_n=32, gap_seeds=2),
        "quick": ThreeRegimes(),
        "full": ThreeRegimes(**_CIFAR, sigma_data=0.5, n_small=1000, sigma_min=0.002, sigma_max=80.0, n_sigmas=64,
                             n_test=10_000, train_steps=200_000, lr=2e-4, gap_class=1, gap_n_train=2000,
                             gap_train_steps=200_000, gap_batch_size=128, n_generations=10_000,
                             fd_features="inception", swap_n=1000, gap_seeds=5, n_w_points=1000),
    },
    "laion_verbatims": {
        "tiny": LaionVerbatims(n_planted=4, n_copies=4, n_per_set=12, ood_crops_per_side=0, ood_faces=False,
                               embed_dim=8, block_out_channels=(8, 16), train_steps=20, batch_size=32, gen_samples=1,
                               sweep_t0s=(0.01, 0.1), n_show=4, sample_steps=5, eval_batch_size=32),
        "quick": LaionVerbatims(),
        "full": LaionVerbatims(model="stable_diffusion", n_per_set=None, train_steps=0, n_sweep=256, n_show=8,
                               sample_guidance=7.5, eval_batch_size=16),
    },
    "three_lenses": {
        "tiny": ThreeLenses(n_singletons=20, n_per_count=2, train_steps=30, n_test=100, n_heldout_scored=10,
                            n_generations=64, sample_steps=6, n_sigmas=16, n_t0=5, n_curve=8, curve_probes=1,
                            flipd_probes=2, volume_axes=1, volume_steps=2, onestep_draws=2, reproduction_steps=3,
                            reproduction_draws=1, n_sweep=3, n_boot=20, n_show=2),
        "quick": ThreeLenses(),
        "full": ThreeLenses(**_CIFAR, sigma_data=0.5, lr=2e-4, n_singletons=2000, n_per_count=20,
                            train_steps=200_000, n_test=10_000, n_heldout_scored=1000, n_generations=20_000,
                            sigma_min=0.002, sigma_max=80.0, n_sigmas=64, n_t0=16, n_curve=256, curve_probes=8,
                            flipd_probes=16, volume_axes=10, volume_steps=100, sweep_sigma_max=20.0, n_boot=1000,
                            n_show=6),
    },
    "performance": {
        "tiny": Performance(cost_models=("mlp_2", "unet_1x8x8", "tiny_sd"), headline_model="unet_1x8x8", batch=4,
                            exact_max_dim=2, n_axes=2, n_steps=1, n_sigmas=1, n_train=50, volume_models=("mlp_64",),
                            volume_images=2, volume_axes=4, volume_steps=2, wc_train=400, wc_train_sizes=(200, 400),
                            wc_queries=50, wc_dim=64, wc_sigmas=8, repeats=1),
        "quick": Performance(),
        "full": Performance(cost_models=("mlp_2", "unet_1x8x8", "ddpm_cifar10", "tiny_sd"),
                            headline_model="ddpm_cifar10", batch=64, n_axes=10, n_steps=4, n_sigmas=4, n_train=50_000,
                            volume_models=("mlp_64", "unet_1x8x8", "ddpm_cifar10"), volume_steps=10,
                            wc_train_sizes=(1000, 2000, 5000, 10_000, 20_000, 50_000), wc_queries=1000,
                            wc_naive_sigmas=4),
    },
}


# the notebook of each chapter, and the papermill parameters that point a chapter at a reader's model
NOTEBOOKS = {"von_mises": "01_von_mises", "volume_growth": "02_cifar10_overfit", "three_regimes": "03_three_regimes",
             "laion_verbatims": "04_laion_verbatims", "three_lenses": "05_three_lenses",
             "performance": "06_performance"}
READER_INPUTS = {
    "volume_growth": "-p model my_ddpm -p train_images train/ -p heldout_images heldout/",
    "three_lenses": "-p model my_ddpm -p train_images train/ -p heldout_images heldout/",
    "laion_verbatims": "-p model my_sd -p memorized_images memorized/ -p nonmemorized_images others/ "
                       "-p captions captions.csv",
}


def reexecute_markdown(chapter: str, profile: str) -> str:
    """A collapsible block with the exact commands that re-execute a chapter under ``profile`` and under ``full``,
    with the settings (and, where the chapter takes one, the reader's model) as papermill parameters, and where
    its source is (a link when ``$MEMPKG_BOOK_REPO`` names the repository, ``owner/name``)."""
    nb = NOTEBOOKS[chapter]
    src = f"notebooks/{nb}.py"
    repo = os.environ.get("MEMPKG_BOOK_REPO", "").strip()
    where = f"[`{src}`](https://github.com/{repo}/blob/main/{src})" if repo else f"`{src}` in the repository"
    convert = f"jupytext --to ipynb --set-kernel python3 -o - {src} \\\n  | papermill - {nb}.ipynb"
    lines = [f"{convert} -p profile {profile}"]
    if profile != "full":
        lines.append(f"{convert} -p profile full")
    key = fields(CHAPTERS[chapter][profile])[0].name                      # an example: any setting works
    value = getattr(CHAPTERS[chapter][profile], key)
    lines.append(f"{convert} -p profile {profile} -y \"settings: {{{key}: {json.dumps(value)}}}\"")
    if chapter in READER_INPUTS:
        lines.append(f"{convert} -p profile {profile} {READER_INPUTS[chapter]}   # your own model")
    return ("<details><summary>Re-execute this chapter</summary>\n\n"
            f"Source: {where}. From the repository's root, after `make venv` and "
            "`source .venv/bin/activate`:\n\n```bash\n" + "\n".join(lines) + "\n```\n\n</details>\n")


@dataclass(frozen=True)
class Profile:
    """A resolved profile: its name, the torch device, where a notebook's results go, and the settings a
    reader overrode (per chapter, filled by :meth:`settings`)."""

    name: str
    device: str
    overridden: dict = field(default_factory=dict, compare=False)

    def settings(self, chapter: str, overrides: dict | None = None, **knobs) -> ChapterSettings:
        """The chapter's settings under this profile, with a reader's overrides applied.

        Args:
            chapter: a key of ``CHAPTERS``.
            overrides: the parameters cell's ``settings`` dict: any field of the chapter's settings class.
            **knobs: the cell's named knobs (``n_axes=n_axes, ...``); ``None`` keeps the profile's value.
        Raises:
            ValueError: an unknown field (the message lists the valid ones), a knob that contradicts
                ``overrides``, or a value of the wrong kind.
        """
        if chapter not in CHAPTERS:
            raise ValueError(f"Unknown chapter {chapter!r}; known: {sorted(CHAPTERS)}.")
        base = CHAPTERS[chapter][self.name]
        if overrides is None:
            overrides = {}
        if not isinstance(overrides, dict):
            raise ValueError(f"settings must be a dict of setting -> value (papermill: -y \"settings: {{key: value}}\"), "
                             f"got {type(overrides).__name__}.")
        given = {k: v for k, v in knobs.items() if v is not None}
        for k, v in given.items():
            if k in overrides and overrides[k] != v:
                raise ValueError(f"Setting {k!r} is given twice with different values: settings[{k!r}] = "
                                 f"{overrides[k]!r} and the parameter {k} = {v!r}; give it once.")
        merged = dict(overrides, **given)
        valid = base.names()
        unknown = sorted(set(merged) - set(valid))
        if unknown:
            raise ValueError(
                f"Unknown setting{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} for chapter "
                f"{chapter!r}. Valid settings: {', '.join(sorted(valid))}. Each is documented in "
                f"mempkg/book/profiles.py ({type(base).__name__}) and the main ones in the chapter's parameters cell.")
        coerced = {k: _coerce(chapter, k, v, getattr(base, k)) for k, v in merged.items()}
        resolved = dataclasses.replace(base, **coerced)
        self.overridden[chapter] = {k: v for k, v in coerced.items() if v != getattr(base, k)}
        return resolved

    def results(self, notebook: str) -> Path:
        """``results/<profile>/<notebook>/``."""
        return results_dir(self.name, notebook)

    def cache(self, notebook: str) -> Cache:
        return Cache(self.results(notebook), device=self.device)

    def banner(self, chapter: str, **inputs):
        """A Markdown block for the top of a chapter: profile, device, versions, settings, and ``inputs``
        (the run's other parameters, e.g. ``seed=seed, model=model``; ``None`` values are left out)."""
        from IPython.display import Markdown  # optional (extra 'book'): only inside a notebook

        desc = {"tiny": "a smoke test: numbers are not meant to reproduce anything",
                "quick": "the CPU default of the book", "full": "the papers' settings"}[self.name]
        changed = self.overridden.get(chapter, {})
        defaults = dataclasses.asdict(CHAPTERS[chapter][self.name])
        settings = ", ".join(f"`{k}={v}`" for k, v in defaults.items() if k not in changed)
        text = (f"> **Produced with profile `{self.name}`** ({desc}) on device `{self.device}`, "
                f"torch {torch.__version__}, mempkg {__version__}.\n>\n")
        given = {k: v for k, v in inputs.items() if v is not None}
        if given:
            text += "> **Run with** " + ", ".join(f"`{k}={v}`" for k, v in given.items()) + ".\n>\n"
        if changed:
            text += ("> **Settings overridden by the reader:** "
                     + ", ".join(f"`{k}={v}` (profile: `{defaults[k]}`)" for k, v in changed.items())
                     + ". Numbers below are not the profile's.\n>\n> Other settings of this profile: ")
        else:
            text += "> Settings of this profile: "
        return Markdown(text + settings + ".\n\n" + reexecute_markdown(chapter, self.name))

    def write_summary(self, notebook: str, summary: dict, seed: int) -> Path:
        """Write ``results/<profile>/<notebook>/summary.json`` with ``profile`` and ``seed`` added."""
        out = dict(summary, profile=self.name, seed=int(seed), device=self.device,
                   settings_overridden={c: dict(v) for c, v in self.overridden.items() if v})
        check_finite_summary(out)
        return write_json_atomic(self.results(notebook) / "summary.json", out)


def _coerce(chapter: str, key: str, value, default):
    """``value`` in the kind of the profile's ``default`` (YAML gives lists for tuples, ints for floats)."""
    where = f"setting {key!r} of chapter {chapter!r}"
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{where} is true or false; got {value!r}.")
        return value
    if isinstance(default, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{where} is a number (profile: {default!r}); got {value!r}.")
        if isinstance(default, int) and isinstance(value, float) and not value.is_integer():
            raise ValueError(f"{where} is a whole number (profile: {default!r}); got {value!r}.")
        return type(default)(value) if isinstance(default, int) else float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ValueError(f"{where} is a string (profile: {default!r}); got {value!r}.")
        return value
    if isinstance(default, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where} is a list (profile: {list(default)!r}); got {value!r}.")
        return type(default)(value)
    return value


def resolve(profile: str | None = None, device: str = "auto") -> Profile:
    """The profile named by the argument, else ``$MEMPKG_PROFILE``, else ``quick``."""
    name = profile or os.environ.get("MEMPKG_PROFILE") or "quick"
    if name not in PROFILES:
        raise ValueError(f"Unknown profile {name!r}; choose one of {', '.join(PROFILES)} "
                         "(tiny: tests, quick: CPU book, full: the papers' settings on CUDA).")
    return Profile(name=name, device=resolve_device(device))
