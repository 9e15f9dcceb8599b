"""Run profiles: named presets that say how much compute a chapter spends.

* ``tiny``  -- the test suite: seconds per notebook; numbers are smoke-test values only.
* ``quick`` -- the default book on a CPU: minutes per notebook; the papers' findings must show.
* ``full``  -- the papers' settings, for a CUDA machine with internet.

A notebook picks its profile from its papermill parameter ``profile``, else the environment
variable ``MEMPKG_PROFILE``, else ``quick``. Each chapter's settings per profile live in
``CHAPTERS`` so that a reader sees every choice in one place.

A reader overrides any of them without editing code: every chapter's parameters cell takes
``settings = {}`` (papermill ``-y "settings: {n_axes: 5}"``) and names its main knobs as parameters
of their own (``-p n_axes 5``); :meth:`Profile.settings` merges both over the profile's values,
refuses a key the chapter does not have (naming the valid ones), and the banner and the summary
list what was overridden.

Layer: book (imports every layer but the CLI).
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..core import __version__
from ..core.devices import resolve_device
from ..core.files import write_json_atomic
from .cache import Cache, check_finite_summary
from .paths import results_dir

PROFILES = ("tiny", "quick", "full")

_VON_MISES_COMMON = dict(
    n_train=100, kappa=2.0, min_gap=1.0, data_seed_start=0,        # data: first seed isolating a point by >= 1 rad
    hidden=128, depth=3, t_dim=64,                                  # eps-MLP, 3 x 128, SiLU
    lr=5e-3, n_noise=4, t_min=1e-3, t_sampling="log-uniform",       # full batch, 4 noise draws per point per step
    t0=0.05,                                # fixed FLIPD t0: Kamkari et al.'s default on synthetic data (shown beside the knee)
    sampler="sde", t_end=1e-3, n_plot_samples=100,
    copy_radius_sigmas=3.0,                 # a copy: within this many sigma(t_end) of a training point (see chapter 01)
)

_VOLUME_DIGITS = dict(
    data="digits", download=False, n_subset=64, preset="digits",    # the 2^7 groups, on 8x8 digits
    data_md5=None,          # CIFAR-10: {file: md5} of the batch files; None: the official sums
    lr=1e-3, warmup=100, batch_size=None, ema_decay=0.999, weights="raw",
    t_sampling="uniform",   # training times: the authors' uniform t; "log-uniform" weights the small noise levels more
    radius=0.05, t_start=1e-3, t_end=1.0, method="finite", loss_t=0.01,
    sample_steps=200, n_planted=16, n_copies=16, planted_seed=0, batch_size_planted=None,
    ablation_radii=[0.001, 0.01, 0.05, 0.1],
)

_REGIMES_DIGITS = dict(
    data="digits", download=False, preset="digits", sigma_data=0.75,    # digits in [-1, 1] have std ~0.75
    data_md5=None,          # CIFAR-10: {file: md5} of the batch files; None: the official sums
    n_small=128, n_emp=1000, sigma_min=0.01, sigma_max=20.0, alpha=0.01, threshold=0.5,
    lr=1e-3, batch_size=128,
    # gap training: one class of the training split (held out: the same class of the test split)
    gap_class=3, gap_n_train=None, gap_train_steps=2000, gap_batch_size=64, gap_max_per_side=None,
    n_generations=500, sample_steps=18, fd_features="classifier", classifier_steps=600,
)

_LAION_VERBATIMS = dict(
    # tiny/quick: TinyStableDiffusion on captioned digits with planted verbatims (mempkg.studies.captioned)
    model="tiny_sd", n_planted=20, n_copies=8, n_rare_words=3, planted_pool="simpler_half",
    n_per_set=200, ood_crops_per_side=2, ood_faces=True,
    embed_dim=32, block_out_channels=[32, 64], train_steps=1500, batch_size=128, lr=1e-3, p_uncond=0.1,
    t_sampling="uniform",
    # scores (FLIPD's t0 and probes, the real-image CFG norm's t0 and steps are notebook parameters)
    gen_steps=1, gen_samples=4, guidance_scale=7.5,        # Wen et al.'s CFG norm, from noise
    sweep_t0s=[0.01, 0.03, 0.1, 0.3, 0.5], n_sweep=None,   # t0 dependence (n_sweep images per set; None: all)
    n_show=20, sample_steps=50, sample_guidance=3.0, eval_batch_size=64,
    # full: Stable Diffusion v1.5 on Webster's LAION verbatims and LAION-Aesthetics / COCO / Tuxemon (mempkg.data.laion)
    sd_model_id="stable-diffusion-v1-5/stable-diffusion-v1-5", image_size=512, n_laion=2000, n_coco=2000,
    n_tuxemon=None, oversample=1.5,
    # local copies of the full profile's sources (None: the Hub and COCO's archive), and the fetch timeout
    webster_path=None, laion_path=None, coco_path=None, tuxemon_path=None, fetch_timeout=10.0,
)

_PERFORMANCE = dict(
    # (1) cost per image in forward passes of the same model at the same batch (mempkg.book.perf.estimator_costs)
    t0=0.05, exact_max_dim=64,                       # FLIPD read-out; exact trace only for D <= exact_max_dim
    cfg_t0=0.01, cfg_steps=3,                         # Ross et al.'s CFG norm: 3 Euler steps to t0 = 0.01
    # (2) batched against reference (volume_speedup; regimes_cost at wc_train training points) and
    # (3) W and C against the training-set size (regimes_scaling over wc_train_sizes)
    wc_sigmas=64, wc_naive_sigmas=2,
)

_LENSES_DIGITS = dict(
    data="digits", download=False, preset="digits", sigma_data=0.75, lr=1e-3, batch_size=128,   # chapter 03's model
    data_md5=None,          # CIFAR-10: {file: md5} of the batch files; None: the official sums
    # training set: the first n_singletons + 5 n_per_count images; n_per_count of them appear k times per k in counts
    n_singletons=800, n_per_count=4, counts=[2, 4, 8, 16, 32], dup_seed=0,
    planted_k=2,                                               # headline positive class: duplicated >= planted_k times
    n_test=797, n_heldout_scored=100,                          # held-out images for W and C / scored by every lens
    n_generations=4000, sample_steps=18,                       # the reference: memorized = copied by some sample
    sigma_min=0.01, sigma_max=20.0, n_sigmas=40, alpha=0.01, threshold=0.5,   # danger zone, as chapter 03
    t0_min=0.005, t0_max=2.0, n_t0=12, n_curve=64, curve_probes=4,            # FLIPD's t0: knee of the median curve
    flipd_probes=None,                                         # None: exact trace (D = 64 VJPs)
    volume_axes=4, volume_steps=25, volume_radius=0.05, volume_t_end=None,   # None: the VP time of sigma_max (80)
    volume_t_start=None,                                       # None: the VP time of FLIPD's t0 (VPView.time_of)
    onestep_draws=16, reproduction_steps=18, reproduction_draws=3,
    sweep_sigma_min=0.05, sweep_sigma_max=5.0, n_sweep=12,     # the one-step rate at other sigmas (a check)
    n_boot=200, n_show=4,
)

CHAPTERS: dict[str, dict[str, dict]] = {
    "three_regimes": {
        "tiny": dict(_REGIMES_DIGITS, n_small=32, n_emp=100, n_sigmas=8, n_test=50, train_steps=30,
                     gap_train_steps=20, gap_max_per_side=1, n_generations=64, sample_steps=6, classifier_steps=60),
        # quick: training uncut; 2/3 of the steps at 2x lr cuts the gap models' copies by half or more, and the UNet
        # at half the channels (digits_narrow) cuts every copy rate to a fifth or less and loses a verdict
        # (benchmarks/training_cuts.py)
        "quick": dict(_REGIMES_DIGITS, n_sigmas=40, n_test=797, train_steps=3000,
                      gap_max_per_side=1),     # the gap band and one band each side, as `full` (3 models, not 5)
        "full": dict(_REGIMES_DIGITS, data="cifar10", download=True, preset="ddpm_cifar10", sigma_data=0.5,
                     n_small=1000, n_emp=1000, sigma_min=0.002, sigma_max=80.0, n_sigmas=64, n_test=10_000,
                     train_steps=200_000, lr=2e-4, gap_class=1, gap_n_train=2000, gap_train_steps=200_000,
                     gap_batch_size=128, gap_max_per_side=1, n_generations=10_000, fd_features="inception"),
    },
    "three_lenses": {
        "tiny": dict(_LENSES_DIGITS, n_singletons=20, n_per_count=2, train_steps=30, n_test=100, n_heldout_scored=10,
                     n_generations=64, sample_steps=6, n_sigmas=16, n_t0=5, n_curve=8, curve_probes=1, flipd_probes=2,
                     volume_axes=1, volume_steps=2, onestep_draws=2, reproduction_steps=3, reproduction_draws=1,
                     n_sweep=3, n_boot=20, n_show=2),
        # quick: training uncut; 0.625 of the steps at 2x lr copies 18 images, not 50, and the UNet at half the
        # channels (digits_narrow) 12 (benchmarks/training_cuts.py)
        "quick": dict(_LENSES_DIGITS, train_steps=4000),
        "full": dict(_LENSES_DIGITS, data="cifar10", download=True, preset="ddpm_cifar10", sigma_data=0.5, lr=2e-4,
                     n_singletons=2000, n_per_count=20, train_steps=200_000, n_test=10_000, n_heldout_scored=1000,
                     n_generations=20_000, sigma_min=0.002, sigma_max=80.0, n_sigmas=64, n_t0=16, n_curve=256,
                     curve_probes=8, flipd_probes=16, volume_axes=10, volume_steps=100, sweep_sigma_max=20.0,
                     n_boot=1000, n_show=6),
    },
    "volume_growth": {
        "tiny": dict(_VOLUME_DIGITS, n_subset=8, train_steps=40, n_samples=32, sample_steps=20, n_axes=2,
                     n_steps=3, n_memorized_train=100, planted_steps=40, n_planted=4, n_copies=4,
                     ablation_axes=[1, 2], ablation_steps=[1, 2], n_ablation=8),
        # quick: 1500 steps at lr 2e-3 with log-uniform times copy nearly as much as 3000 uniform steps at lr 1e-3
        # (89.6% of samples against 92.0%, measured by benchmarks/memorization_budget.py) in half the training;
        # the UNet at half the channels (digits_narrow) copies 21.4% (benchmarks/training_cuts.py)
        "quick": dict(_VOLUME_DIGITS, train_steps=1500, lr=2e-3, t_sampling="log-uniform", n_samples=500, n_axes=10,
                      n_steps=100, n_memorized_train=1000, planted_steps=1500, batch_size_planted=128,
                      ablation_axes=[1, 10, 50], ablation_steps=[1, 10, 100], n_ablation=32),
        "full": dict(_VOLUME_DIGITS, data="cifar10", download=True, preset="ddpm_cifar10", lr=2e-4, warmup=5000, batch_size=16,
                     ema_decay=0.9999, train_steps=400_000, n_samples=10_000, sample_steps=1000, n_axes=100,
                     n_steps=1000, n_memorized_train=50_000, planted_steps=400_000, batch_size_planted=128,
                     n_planted=100, n_copies=100,
                     ablation_axes=[1, 10, 50, 100], ablation_steps=[1, 10, 100, 1000], n_ablation=128),
    },
    "von_mises": {
        "tiny": dict(_VON_MISES_COMMON, train_steps=300, n_samples=200, sample_steps=100, n_curve=6, n_train_seeds=1),
        "quick": dict(_VON_MISES_COMMON, train_steps=8000, n_samples=2000, sample_steps=1000, n_curve=25, n_train_seeds=3),
        "full": dict(_VON_MISES_COMMON, train_steps=20000, n_samples=10000, sample_steps=2000, n_curve=41, n_train_seeds=5),
    },
    "laion_verbatims": {
        "tiny": dict(_LAION_VERBATIMS, n_planted=4, n_copies=4, n_per_set=12, ood_crops_per_side=0, ood_faces=False,
                     embed_dim=8, block_out_channels=[8, 16], train_steps=20, batch_size=32, gen_samples=1,
                     sweep_t0s=[0.01, 0.1], n_show=4, sample_steps=5, eval_batch_size=32),
        # quick: the tiny Stable Diffusion at half the channels ([16, 32]) reproduces 10% of the memorized captions'
        # images, not 60% (benchmarks/training_cuts.py)
        "quick": dict(_LAION_VERBATIMS),
        "full": dict(_LAION_VERBATIMS, model="stable_diffusion", n_per_set=None, train_steps=0, gen_samples=4,
                     n_sweep=256, n_show=8, sample_steps=50, sample_guidance=7.5, eval_batch_size=16),
    },
    "performance": {
        "tiny": dict(_PERFORMANCE, cost_models=["mlp_2", "unet_1x8x8", "tiny_sd"], headline_model="unet_1x8x8",
                     batch=4, exact_max_dim=2, n_axes=2, n_steps=1, n_sigmas=1, n_train=50,
                     volume_models=["mlp_64"], volume_images=2, volume_axes=4, volume_steps=2,
                     wc_train=400, wc_train_sizes=[200, 400], wc_queries=50, wc_dim=64, wc_sigmas=8, repeats=1),
        "quick": dict(_PERFORMANCE, cost_models=["mlp_2", "unet_1x8x8", "unet_3x32x32", "tiny_sd"],
                      headline_model="unet_3x32x32", batch=16, n_axes=4, n_steps=2, n_sigmas=2, n_train=1000,
                      volume_models=["mlp_64", "unet_1x8x8"], volume_images=8, volume_axes=50, volume_steps=5,
                      wc_train=10_000, wc_train_sizes=[1000, 2000, 5000, 10_000], wc_queries=500, wc_dim=3072,
                      repeats=3),
        "full": dict(_PERFORMANCE, cost_models=["mlp_2", "unet_1x8x8", "ddpm_cifar10", "tiny_sd"],
                     headline_model="ddpm_cifar10", batch=64, n_axes=10, n_steps=4, n_sigmas=4, n_train=50_000,
                     volume_models=["mlp_64", "unet_1x8x8", "ddpm_cifar10"], volume_images=8, volume_axes=50,
                     volume_steps=10, wc_train=10_000, wc_train_sizes=[1000, 2000, 5000, 10_000, 20_000, 50_000],
                     wc_queries=1000, wc_dim=3072, wc_naive_sigmas=4, repeats=3),
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
    key, value = next(iter(CHAPTERS[chapter][profile].items()))          # an example: any setting works
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

    def settings(self, chapter: str, overrides: dict | None = None, **knobs) -> dict:
        """A copy of the chapter's settings under this profile, with a reader's overrides merged in.

        Args:
            overrides: the parameters cell's ``settings`` dict: any key of ``CHAPTERS[chapter]``.
            **knobs: the cell's named knobs (``n_axes=n_axes, ...``); ``None`` keeps the profile's value.
        An unknown key, a knob that contradicts ``overrides``, or a value of the wrong kind (a string for
        a number, a list for a number, ...) is a ``ValueError`` that names the valid keys.
        """
        if chapter not in CHAPTERS:
            raise ValueError(f"Unknown chapter {chapter!r}; known: {sorted(CHAPTERS)}.")
        base = copy.deepcopy(CHAPTERS[chapter][self.name])
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
        unknown = sorted(set(merged) - set(base))
        if unknown:
            raise ValueError(
                f"Unknown setting{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} for chapter "
                f"{chapter!r}. Valid settings: {', '.join(sorted(base))}. Each is documented in "
                f"mempkg/book/profiles.py (CHAPTERS[{chapter!r}] and the dict it starts from) and the main ones in "
                "the chapter's parameters cell.")
        for k, v in merged.items():
            base[k] = _coerce(chapter, k, v, base[k])
        changed = {k: base[k] for k in merged if base[k] != CHAPTERS[chapter][self.name][k]}
        self.overridden[chapter] = changed
        return base

    def results(self, notebook: str) -> Path:
        """``results/<profile>/<notebook>/``."""
        return results_dir(self.name, notebook)

    def cache(self, notebook: str) -> Cache:
        return Cache(self.results(notebook), device=self.device)

    def banner(self, chapter: str):
        """A Markdown block for the top of a chapter: which profile produced it, on what, with which settings."""
        from IPython.display import Markdown  # optional (extra 'book'): only inside a notebook

        desc = {"tiny": "a smoke test: numbers are not meant to reproduce anything",
                "quick": "the CPU default of the book", "full": "the papers' settings"}[self.name]
        changed = self.overridden.get(chapter, {})
        defaults = CHAPTERS[chapter][self.name]
        settings = ", ".join(f"`{k}={v}`" for k, v in defaults.items() if k not in changed)
        text = (f"> **Produced with profile `{self.name}`** ({desc}) on device `{self.device}`, "
                f"torch {torch.__version__}, mempkg {__version__}.\n>\n")
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
