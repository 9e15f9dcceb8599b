# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Three lenses on one model
#
# **Question.** Each paper in this book measures memorization with its own instrument: the local
# intrinsic dimension FLIPD {cite}`ross2024geometric,kamkari2024flipd` (a memorized image sits on
# a collapsed, low-dimensional piece of the model's manifold), the volume growth $L$ of a small
# sphere carried along the probability-flow ODE {cite}`hasegawa2025volume` (a memorized image
# draws a large region of noise onto itself), and the per-noise memorization of the denoiser in
# the danger zone {cite}`dodson2026calm` (at medium noise a memorizing denoiser snaps its input
# onto a training image). No paper sets its measure beside the others' on the same model. Here
# one model, one training set whose ground truth we plant, and every lens on every training
# image: **do the lenses agree on which images are memorized, which detects them best, and what
# does each cost?**

# %% tags=["parameters"]
profile = None      # "tiny", "quick" or "full"; None: $MEMPKG_PROFILE, else "quick"
seed = 0            # training, sampling, noise and probe seed
device = "auto"     # "auto" picks CUDA when present
settings = {}       # any setting of mempkg/book/profiles.py CHAPTERS["three_lenses"] (a dataclass), e.g. {"n_t0": 8}
# the main knobs, as parameters of their own (papermill -p NAME VALUE); None keeps the profile's value
train_steps = None  # training steps of the EDM denoiser
volume_axes = None  # volume growth: axes of the sphere
volume_steps = None  # volume growth: Euler steps of the ODE
volume_radius = None  # volume growth: radius of the sphere
flipd_probes = None  # FLIPD's Hutchinson probes; the exact trace: -y 'settings: {flipd_probes: null}'
n_generations = None  # samples drawn for the memorized-by-generation labels
# a reader's own model (None: the chapter trains its own on a training set with planted duplicates)
model = None        # a diffusers DDPMPipeline (unconditional, pixel space): hub id or folder, read on EDM's clock
train_images = None  # with model: a folder of the images it was trained on (the images every lens scores)
heldout_images = None  # with model: a folder of images it never saw (the danger zone, membership)

# %% tags=["hide-input"]
import time
from dataclasses import asdict

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown, display

import mempkg.book.profiles
from mempkg.book import plots
from mempkg.core.digests import content_digest
from mempkg.data.images import load_images
from mempkg.estimators.lid import find_knee, flipd_curve
from mempkg.estimators.memorization import auroc
from mempkg.estimators.regimes import danger_zone, weight_and_coverage
from mempkg.models.edm import EDMLoss, EDMPrecond, sample_edm, train_edm_cached
from mempkg.models.networks import unet_eps
from mempkg.models.views import EDMView, VPView
from mempkg.studies.lenses import (
    LENS_LABELS,
    LENSES,
    base_lens,
    detection_power,
    duplicated_training_set,
    forward_seconds,
    lens_label,
    lens_scores,
    memorized_by_generation,
    network_evaluations,
    one_step_sweep,
    oriented,
    pareto_front,
    per_image_seeds,
    percentile_ranks,
    rank_correlation,
    rank_disagreements,
    spearman_matrix,
    timed,
)
from mempkg.studies.readers import describe_model, reader_pixel_inputs

NB = "05_three_lenses"
P = mempkg.book.profiles.resolve(profile, device)
S = P.settings("three_lenses", settings, train_steps=train_steps, volume_axes=volume_axes,
               volume_steps=volume_steps, volume_radius=volume_radius, flipd_probes=flipd_probes,
               n_generations=n_generations)
cache = P.cache(NB)
plots.style()
start = time.time()
display(P.banner("three_lenses"))

# %% [markdown]
# ```{admonition} Digits, not CIFAR-10, under the CPU profiles
# :class: warning
# The `tiny` and `quick` profiles run on scikit-learn's 8x8 handwritten digits ($D = 64$) with the
# small `digits` UNet of chapters 02 and 03, so that the whole chapter fits a 2-core CPU. The `full`
# profile runs the same design on CIFAR-10 with the DDPM UNet and needs a CUDA GPU and internet
# for the download.
# ```
#
# ## One model, and a training set whose answer we know
#
# The training set is built from the first `n_singletons` + `n_per_count` x 5 images of the training
# split: `n_per_count` of them, **drawn at random**, appear $k$ times each for $k \in$ `counts`
# (2, 4, 8, 16, 32), the rest once. Drawing the duplicated images at random makes duplication
# independent of what an image looks like, so a lens can only find them through the model. The
# test split is the held-out set. The model is the EDM-preconditioned {cite}`karras2022edm`
# `digits` UNet of chapter 03 ($\sigma_\mathrm{data}$ about the pixel standard deviation of the digits),
# trained on the rows with duplicates for `train_steps` steps.
#
# Every lens that asks whether an output *copies* an image compares it with the **de-duplicated**
# training images: against the rows themselves a duplicated image's second-nearest neighbour is its
# own copy, at distance 0, and nothing could ever count as a copy of it.

# %%
if model is None:           # the chapter's own EDM model on a training set with planted duplicates
    train_split = load_images(S.data, "train", download=S.download, md5=S.data_md5)
    heldout = load_images(S.data, "test", download=S.download, md5=S.data_md5)
    dup = duplicated_training_set(train_split, S.n_singletons, S.n_per_count, S.counts, seed=S.dup_seed)
    U, copies = dup.unique.x, dup.copies.numpy()
    shape = train_split.image_shape
    build = lambda: EDMPrecond(unet_eps(shape, S.preset, seed=seed), sigma_data=S.sigma_data)  # noqa: E731
    net, history = train_edm_cached(cache, "edm", build, dict(preset=S.preset, shape=list(shape), seed=seed),
                                    dup.train.x, S.train_steps, loss=EDMLoss(sigma_data=S.sigma_data), seed=seed,
                                    device=P.device, lr=S.lr, batch_size=S.batch_size)
    counts_table = pd.DataFrame([{"copies k": k, "distinct images": int((copies == k).sum()),
                                  "training rows": int(k * (copies == k).sum())} for k in np.unique(copies)])
    display(counts_table.set_index("copies k").T)
    display(Markdown(f"{len(U)} distinct training images, {len(dup.train)} training rows, {len(heldout)} held-out "
                     f"images; the `{S.preset}` UNet has {sum(p.numel() for p in net.parameters()) / 1e6:.2f} M "
                     f"parameters and ends training at a loss of {np.mean(history['losses'][-100:]):.3f} "
                     "(mean of the last 100 steps)."))
    about = describe_model(net, f"trained here: the EDM `{S.preset}` UNet on {len(dup.train)} {S.data} rows")
else:                       # the reader's model (read on EDM's clock) and folders; no planted truth
    given = reader_pixel_inputs(model, train_images, heldout_images, device=P.device, chapter="Chapter 05")
    if given.heldout is None:
        raise ValueError("Chapter 05 with model= needs heldout_images too: the danger zone and the membership test "
                         "read images the model never saw.")
    net, about = EDMView(given.model), describe_model(given.model, model)
    U, heldout, shape, dup = given.train.x, given.heldout, given.model.data_shape, None
    copies = np.ones(len(U), dtype=int)        # no duplication counts are known for a reader's training set
    display(Markdown(f"> **This run reads the reader's model `{model}`** ({about['n_parameters'] / 1e6:.2f} M "
                     f"parameters, weights `{about['weights_digest']}`) on EDM's clock (sigma from "
                     f"{net.sde.sigma_min:.3g} to {net.sde.sigma_max:.3g}), its {len(U)} training images "
                     f"`{train_images}` and {len(heldout)} held-out images `{heldout_images}`. No duplication counts "
                     "are known: the lenses are judged against the images its own samples copy (the reference by "
                     "generation), and the sections about the planted duplicates say so."))

# %% [markdown]
# ## Which training images does the model memorize? The reference answer
#
# Two answers are known here. The **planted truth** is the duplication count: an image that appears
# $k \ge$ `planted_k` times is the positive class. It is fixed before training and shares nothing with
# any lens, so it is **the chapter's headline**. The **reference by generation** is found the way
# Carlini et al. {cite}`carlini2023extracting` extract training data: generate `n_generations` samples
# from noise with EDM's deterministic Heun sampler (`sample_steps` steps), and call a training image
# **memorized** when some sample copies it -- its nearest distinct training image is closer than a
# third of the second nearest. This is memorization as extraction attacks see it, but it is not
# independent of every lens: the one-step lens and the reproduction lens below use **the same
# nearest-neighbour copy test** ($d_1 < d_2/3$ against the distinct training images), and the
# reproduction lens runs **the same Heun sampler**, so their agreement with this reference is partly by
# construction. Every lens is judged on both answers, from the training image alone.

# %%
generation = cache.get("generations", dict(asdict(S), seed=seed), lambda: timed(lambda: sample_edm(
    net, S.n_generations, shape, S.sample_steps, seed=seed + 1, device=P.device)), inputs={"model": net})
samples = generation["value"]
memorized, n_copying = memorized_by_generation(samples, U)
memorized, n_copying = memorized.numpy(), n_copying.numpy()
copy_rate = float((n_copying.sum()) / len(samples))
if model is not None and not 0 < memorized.sum() < len(U):
    raise ValueError(f"Chapter 05 on {model}: its {len(samples)} samples copy {int(memorized.sum())} of its {len(U)} "
                     "training images, so there is no memorized class (or no other class) to judge the lenses "
                     "against; draw more samples (-p n_generations N) or give the images the model was trained on.")
by_count = pd.DataFrame([{"copies k": k, "images": int((copies == k).sum()),
                          "memorized (found by generation)": float(memorized[copies == k].mean()),
                          "samples copying it, mean": float(n_copying[copies == k].mean())}
                         for k in np.unique(copies)]).set_index("copies k")
display(by_count.round(3))

fig, axes = plt.subplots(1, 2, figsize=(12, 2.6))
plots.image_grid(axes[0], samples[:48], n_cols=16, title="generated samples")
order = np.argsort(-n_copying)
plots.image_grid(axes[1], U[order[:48]], n_cols=16, title="the training images copied most often")
plots.savefig(fig, P.name, NB, "generations")
plt.show()
display(Markdown(
    f"{100 * copy_rate:.0f}% of the {len(samples)} samples copy a training image; they cover "
    f"**{int(memorized.sum())} of the {len(U)}** distinct training images" + (": " if model is None else ". ")
    + (f"{100 * memorized[copies == 1].mean():.0f}% of the images seen once and "
       f"{100 * memorized[copies > 1].mean():.0f}% of the duplicated ones. " if model is None else "")
    + f"{int((n_copying == 1).sum())} of the memorized images were copied by a single sample: the reference is a "
    "finite-sample one, and more samples would find more of the rarely generated images."))

# %% [markdown]
# ## Five lenses and their settings
#
# For every distinct training image $x$ (and `n_heldout_scored` held-out images, for reference):
#
# 1. **FLIPD** $= d + \sigma^2 [\operatorname{tr}\nabla s(x, \sigma) + \lVert s(x, \sigma)\rVert^2]$ at
#    $\sigma = t_0$, with $d$ the number of pixels (EDM's time is the noise level). Kamkari et al. read
#    FLIPD at the knee of the FLIPD($t_0$) curve; we take the knee (kneedle {cite}`satopaa2011kneedle`)
#    of the median curve of `n_curve` training images (`curve_probes` Hutchinson probes), then compute
#    FLIPD there with `flipd_probes` probes (`None`: the exact trace, $d$ vector-Jacobian products).
#    *Low* means memorized.
# 2. **Volume growth** $L$: the sum of the per-axis log-stretches of `volume_axes` axes of radius
#    `volume_radius` over `volume_steps` Euler steps of the PF-ODE, image to noise. Hasegawa & Yasuda's
#    grid is uniform in the time of a VP-SDE ($\beta$ from 0.1 to 20, $t$ up to 1); we run the EDM model
#    on that clock (`VPView`: the VP marginal at $t$ is the EDM one at $\sigma(t)/\alpha(t)$, scaled by
#    $\alpha(t)$ -- the same ODE), since a grid uniform in $\sigma$ would spend most steps at $\sigma \gg 1$.
#    The authors start their VP model at $t = 10^{-3}$, i.e. $\sigma \approx 0.01$; an EDM model trains
#    on $\ln\sigma \sim \mathcal{N}(-1.2, 1.2^2)$ and has barely seen that noise level (share printed below).
#    **We start at FLIPD's $t_0$** (`volume_t_start = None`), so the two local lenses read the model from
#    the same smallest noise level; the authors' start is shown as a variant. *High* means memorized,
#    the paper's direction.
# 3. **One-step copy rate** at the danger-zone $\sigma$: the share of `onestep_draws` noise draws $z$
#    for which $g = D(x + \sigma z; \sigma)$ copies $x$ itself, $\lVert g - x\rVert < \min_{j \ne x}
#    \lVert g - x_j\rVert / 3$. The danger zone is where Dodson et al.'s max posterior weight $W$ and
#    shell coverage $C$ (central 99% shell, as in chapter 03) of *this* training set, over the held-out
#    images, both exceed `threshold`; **we take its geometric centre**. *High* means memorized.
# 4. **Reproduction ratio**: start at $x + \sigma_\mathrm{start} z$ and run the deterministic Heun sampler
#    (`reproduction_steps` levels, $\rho = 7$) to 0; the ratio $\lVert g - x\rVert / \min_{j \ne x}\lVert g - x_j\rVert$
#    of the result, median over `reproduction_draws` draws. **$\sigma_\mathrm{start}$ is the same danger-zone
#    $\sigma$**, so the two Dodson-style lenses differ only in one step against the whole way down.
#    *Low* means reproduced (below 1/3: a copy).
# 5. **PNG size** of the image at zlib level 9: the complexity control of Ross et al. *Low* means
#    memorized.
#
# The directions are fixed here, before any result; no AUROC below is flipped after the fact. For a
# held-out image, which has no training image of its own, the one-step rate and the reproduction
# ratio ask whether the output copies *any* training image (Dodson et al.'s memorization of held-out
# inputs).

# %%
sigmas = np.geomspace(S.sigma_min, S.sigma_max, S.n_sigmas)
regimes = cache.get("regimes", dict(asdict(S), seed=seed), lambda: vars(weight_and_coverage(
    heldout.x[: S.n_test].to(P.device), U.to(P.device), sigmas, alpha=S.alpha, seed=seed)),
    inputs={"test": heldout.x[: S.n_test], "train": U})
lo, hi = danger_zone(sigmas, regimes["W"], regimes["C"], S.threshold)
if not np.isfinite(lo):
    raise RuntimeError(f"W and C never both exceed threshold={S.threshold} on sigma in [{S.sigma_min}, "
                       f"{S.sigma_max}]: there is no danger zone to take the one-step sigma from; lower `threshold` "
                       "or widen the sigma grid.")
sigma_dz = float(np.sqrt(lo * hi))

t0s = np.geomspace(S.t0_min, S.t0_max, S.n_t0)
curve = np.asarray(cache.get("flipd_curve", dict(asdict(S), seed=seed), lambda: flipd_curve(
    net, U[: S.n_curve].to(P.device), t0s, n_probes=S.curve_probes, seed=seed),
    inputs={"model": net, "x": U[: S.n_curve]}))
median_curve = np.median(curve, axis=1)
knee = find_knee(t0s, median_curve)
t0 = float(t0s[knee])
view = VPView(net)
edm_loss = EDMLoss(sigma_data=S.sigma_data)
sigma_authors = float(view.sde.sigma(1e-3) / view.sde.alpha(1e-3))      # EDM noise level at the authors' VP start

fig, axes = plt.subplots(1, 2, figsize=(12, 3.4))
axes[0].plot(sigmas, regimes["W"], label="W (max posterior weight)")
axes[0].plot(sigmas, regimes["C"], ls="--", label="C (shell coverage)")
axes[0].axvspan(lo, hi, color="tab:red", alpha=0.12, label="danger zone")
axes[0].axvline(sigma_dz, color="tab:red", label=f"sigma used = {sigma_dz:.3g}")
axes[0].set_xlabel("sigma")
q = np.percentile(curve, [25, 75], axis=1)
axes[1].fill_between(t0s, q[0], q[1], alpha=0.2, label="interquartile range")
name = f"median of {S.n_curve} training images"
plots.flipd_curves(axes[1], t0s, {name: median_curve}, t0=t0, knees={name: knee}, dims=(0, int(np.prod(shape))))
for ax in axes:
    ax.set_xscale("log")
    ax.legend(fontsize=7)
plots.savefig(fig, P.name, NB, "settings")
plt.show()
display(Markdown(
    f"Danger zone of this training set: **sigma in [{lo:.3g}, {hi:.3g}]** (threshold {S.threshold}); the one-step "
    f"rate and the reproduction start at its centre, **sigma = {sigma_dz:.3g}**. The knee of the median FLIPD curve "
    f"puts **t0 = {t0:.3g}**, so volume growth starts at VP time {view.time_of(t0):.3g} (the authors': 0.001, where "
    f"the model is read at sigma = {sigma_authors:.3g}"
    + (f"; EDM training draws a noise level that small {100 * float(edm_loss.sigma_cdf(sigma_authors)):.2f}% "
       f"of the time, against {100 * float(edm_loss.sigma_cdf(t0)):.1f}% at or below t0)." if model is None else
       "; the reader's model was trained on its own schedule's noise levels).")))

# %% [markdown]
# Every lens is run once over all scored images, timed, and stored with its timing; in the same
# computation one batched forward pass $D(x; \sigma)$ over the same images is timed, the unit in
# which costs are given below. Each image draws its probes, axes and noise from its own seed (from
# the run's `seed` and the image's position), so its scores do not depend on which other images are
# scored with it; the variants and the sweep below see the same draws.
#
# Three cheaper or paper-faithful **variants** run on the training images as well: FLIPD with **one**
# Hutchinson probe (Ross et al.'s setting), volume growth with **one axis and one step** (Hasegawa &
# Yasuda's efficiency claim), and volume growth from the **authors' start** $t = 10^{-3}$.

# %%
scored_heldout = heldout.subset(range(min(S.n_heldout_scored, len(heldout))))
x_all = torch.cat([U, scored_heldout.x])
own = torch.cat([torch.arange(len(U)), -torch.ones(len(scored_heldout), dtype=torch.long)])
image_seed = per_image_seeds(seed, [(0, i) for i in range(len(U))] + [(1, i) for i in range(len(scored_heldout))])
lens_settings = dict(t0=t0, n_probes=S.flipd_probes, sigma=sigma_dz, onestep_draws=S.onestep_draws,
                sigma_start=sigma_dz, reproduction_steps=S.reproduction_steps,
                reproduction_draws=S.reproduction_draws, volume_axes=S.volume_axes,
                volume_steps=S.volume_steps, volume_radius=S.volume_radius,
                volume_t_start=S.volume_t_start, volume_t_end=S.volume_t_end)
result = cache.get("lens_scores", dict(asdict(S), seed=seed, seeding="per image", **lens_settings), lambda: dict(
    lens_scores(net, x_all.to(P.device), U.to(P.device), own, seed=image_seed, **lens_settings),
    forward_seconds=forward_seconds(net, x_all.to(P.device), sigma_dz)), inputs={"model": net, "x": x_all, "train": U})
variants = {"flipd:1 probe": dict(n_probes=1), "volume:N=1, K=1": dict(volume_axes=1, volume_steps=1),
            "volume:t_start=1e-3": dict(volume_t_start=1e-3)}
variant_keys = {"flipd:1 probe": "flipd_1probe", "volume:N=1, K=1": "volume_1axis_1step",
                "volume:t_start=1e-3": "volume_authors_start"}        # their names in summary.json
variant_key = dict(asdict(S), seed=seed, seeding="per image", variants=variants, **lens_settings)
variant_result = cache.get("variant_scores", variant_key, lambda: {
    name: lens_scores(net, U.to(P.device), U.to(P.device), torch.arange(len(U)), seed=image_seed[: len(U)],
                      lenses=(base_lens(name),), **dict(lens_settings, **change)) for name, change in variants.items()},
    inputs={"model": net, "train": U})
scores = {k: np.asarray(result[k], dtype=float)[: len(U)] for k in LENSES}
scores_heldout = {k: np.asarray(result[k], dtype=float)[len(U):] for k in LENSES}
all_scores = scores | {name: np.asarray(v[base_lens(name)], dtype=float) for name, v in variant_result.items()}
seconds = result["seconds"] | {name: v["seconds"][base_lens(name)] for name, v in variant_result.items()}
evaluations = {name: network_evaluations(base_lens(name), dict(lens_settings, **variants.get(name, {})),
                                         int(np.prod(shape)))
               for name in all_scores}

# %% [markdown]
# ## Each lens against the duplication count
#
# One dot per image; the held-out images (never seen in training) on the left, then the
# training images by how often they appear. Red: memorized by the reference (a generated sample
# copies it); grey: not. A black bar marks each group's median. A lens that tracks memorization
# moves steadily with the count and separates red from grey among the singletons.

# %%
groups = ["held\nout"] + [str(k) for k in np.unique(copies)]
fig, axes = plt.subplots(1, len(LENSES), figsize=(17, 3.4))
rng = np.random.default_rng(seed)
for ax, lens in zip(axes, LENSES):
    ax.scatter(rng.uniform(-0.25, 0.25, len(scores_heldout[lens])), scores_heldout[lens], s=5, color="tab:blue")
    for i, k in enumerate(np.unique(copies), start=1):
        m = copies == k
        ax.scatter(i + rng.uniform(-0.25, 0.25, m.sum()), scores[lens][m], s=5,
                   c=np.where(memorized[m], "tab:red", "0.6"))
    med = [np.median(scores_heldout[lens])] + [np.median(scores[lens][copies == k]) for k in np.unique(copies)]
    ax.plot(range(len(groups)), med, color="k", marker="_", ms=18, ls="none")
    ax.set_xticks(range(len(groups)), groups)
    ax.set_xlabel("copies in training")
    ax.set_title(LENS_LABELS[lens], fontsize=9)
    if lens == "reproduction":                     # a ratio: log scale, the copy threshold 1/3 marked
        ax.set_yscale("log")
        ax.axhline(1 / 3, color="k", ls=":", lw=0.8)
plots.savefig(fig, P.name, NB, "lenses_by_count")
plt.show()
trend = {k: rank_correlation(copies, oriented(k, scores[k])) for k in LENSES} if model is None else None
display(Markdown("Spearman correlation of each oriented score with the duplication count over the training images: "
                 + ", ".join(f"{LENS_LABELS[k]} {v:.2f}" for k, v in trend.items()) + "." if trend else
                 "No duplication counts are known for the reader's training set: every image is shown once above."))

# %% [markdown]
# ## Detection power
#
# The AUROC of each lens, read in its stated direction, for three questions over the same images:
# the training images duplicated at least `planted_k` times against the other training images (the
# planted truth; **the headline**, since no lens shares anything with it), the memorized training images
# against the others (the reference by generation, which shares its copy test with the one-step and
# reproduction lenses), and the training against the held-out images (membership). Standard errors come from
# `n_boot` bootstrap resamples of the images; a lens is **as good as the best** when its AUROC is
# within two standard errors of the difference (same resamples) of the best one's. The variants
# run on the training images only.

# %%
positive, positive_class = ((copies >= S.planted_k, f"duplicated {S.planted_k}+ times") if model is None else
                            (memorized.astype(bool), "memorized by generation"))        # the reader: no planted truth
gen_reason = None if 0 < memorized.sum() < len(U) else (
    f"the reference found {int(memorized.sum())} memorized images of {len(U)} under profile {P.name}: one class only")
power = detection_power(all_scores, positive, n_boot=S.n_boot, seed=seed)
power_gen = None if gen_reason else detection_power(all_scores, memorized, n_boot=S.n_boot, seed=seed)
if gen_reason:
    display(Markdown(f"**Undecided against the reference by generation**: {gen_reason}."))
member = np.r_[np.ones(len(U), bool), np.zeros(len(scored_heldout), bool)]
power_member = detection_power({k: np.r_[scores[k], scores_heldout[k]] for k in LENSES}, member,
                               n_boot=S.n_boot, seed=seed)
auroc_table = pd.DataFrame({
    f"{positive_class} vs not: AUROC": power["auroc"], "s.e.": power["se"],
    "as good as the best": power["as_good_as_best"],
    "memorized by generation vs not": power_gen["auroc"] if power_gen is not None else np.nan,
    "training vs held-out": power_member["auroc"]}).loc[list(all_scores)]
auroc_table.index = [lens_label(k) for k in auroc_table.index]
display(auroc_table.round(3))

# %% [markdown]
# ### Is the danger zone the right noise level for the one-step lens?
#
# The one-step lens is read at one noise level chosen from the data alone, before looking at the model.
# As a check on that choice (not a replacement for it), the same rate at `n_sweep` other noise levels,
# with the same noise draws.

# %%
sweep_sigmas = np.geomspace(S.sweep_sigma_min, S.sweep_sigma_max, S.n_sweep)
sweep = np.asarray(cache.get("onestep_sweep", dict(asdict(S), seed=seed, seeding="per image"), lambda: one_step_sweep(
    net, U.to(P.device), U.to(P.device), torch.arange(len(U)), sweep_sigmas, S.onestep_draws,
    seed=image_seed[: len(U)]), inputs={"model": net, "train": U}))
sweep_auroc = {name: [auroc(r[pos], r[~pos]) for r in sweep] for name, pos in
               ((positive_class, positive), ("memorized by generation", memorized))
               if 0 < pos.sum() < len(pos)}
fig, ax = plt.subplots(figsize=(7.5, 3.4))
for name, values in sweep_auroc.items():
    ax.plot(sweep_sigmas, values, marker="o", label=name)
ax.plot(sweep_sigmas, sweep.mean(1), color="0.5", ls=":", label="mean one-step copy rate")
ax.axvspan(lo, hi, color="tab:red", alpha=0.12, label="danger zone")
ax.axvline(sigma_dz, color="tab:red", label=f"sigma used = {sigma_dz:.3g}")
ax.axhline(0.5, color="0.6", lw=0.8)
ax.set_xscale("log")
ax.set_xlabel("sigma of the one-step test")
ax.set_ylabel("AUROC of the one-step rate")
ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
plots.savefig(fig, P.name, NB, "onestep_sigma")
plt.show()
best_sweep = float(sweep_sigmas[int(np.argmax(sweep_auroc[positive_class]))])
in_zone = (sweep_sigmas >= lo) & (sweep_sigmas <= hi)
zone_best = max((a for a, z in zip(sweep_auroc[positive_class], in_zone) if z), default=float("nan"))
display(Markdown(
    f"At the danger zone's centre the one-step AUROC is {power.loc['onestep', 'auroc']:.3f}; over the sweep it peaks "
    f"at **{max(sweep_auroc[positive_class]):.3f} at sigma = {best_sweep:.3g}**, "
    f"{'inside' if lo <= best_sweep <= hi else 'outside'} the danger zone [{lo:.3g}, {hi:.3g}]"
    + (f"; the best sweep point inside the zone reaches {zone_best:.3f}." if np.isfinite(zone_best) else
       "; no sweep point falls inside the zone.")))

# %% [markdown]
# ## Do the lenses agree?
#
# Spearman's rank correlation between every pair of lenses over the distinct training images, each
# score turned so that larger means memorized: $+1$ means two lenses order the images identically.

# %%
rho = spearman_matrix(scores)
fig, ax = plt.subplots(figsize=(6.5, 4.8))
plots.heatmap(ax, rho.values, [LENS_LABELS[k] for k in LENSES], LENSES, cmap="viridis", vmin=-1, vmax=1,
              cbar_label="Spearman rho (oriented scores)")
plots.savefig(fig, P.name, NB, "spearman")
plt.show()
pairs_rho = {(a, b): rho.loc[a, b] for i, a in enumerate(LENSES) for b in LENSES[i + 1:]}
(a_hi, b_hi), (a_lo, b_lo) = max(pairs_rho, key=pairs_rho.get), min(pairs_rho, key=pairs_rho.get)
display(Markdown(f"Most alike: {LENS_LABELS[a_hi]} and {LENS_LABELS[b_hi]} (rho = {pairs_rho[(a_hi, b_hi)]:.2f}); "
                 f"least alike: {LENS_LABELS[a_lo]} and {LENS_LABELS[b_lo]} (rho = {pairs_rho[(a_lo, b_lo)]:.2f}). "
                 "The papers' three measures: "
                 + ", ".join(f"{a}-{b} {rho.loc[a, b]:.2f}" for a, b in
                             (("flipd", "volume"), ("flipd", "onestep"), ("volume", "onestep"))) + "."))

# %% [markdown]
# ## What each lens costs
#
# Seconds per image as measured in this run (wall clock on the profile's device, when the value was
# computed; a re-run reads both from the cache), as a multiple of one batched forward pass of the model
# over the same images, and the network evaluations per image the settings imply (a reverse-mode
# vector-Jacobian product counts as one; it costs a forward and a backward pass). The reference itself --
# generating samples and testing them for copies -- is charged to the training images it labels.

# %%
unit = float(result["forward_seconds"])
cost = pd.DataFrame([{"lens": lens_label(k), "seconds per image": seconds[k], "x one forward pass": seconds[k] / unit,
                      "network evaluations per image": evaluations[k], "AUROC": power.loc[k, "auroc"],
                      "as good as the best": power.loc[k, "as_good_as_best"]} for k in all_scores]
                    + [{"lens": "reference: generation + copy test",
                        "seconds per image": generation["seconds"] / len(U),
                        "x one forward pass": generation["seconds"] / len(U) / unit,
                        "network evaluations per image": S.n_generations * (2 * S.sample_steps - 1) / len(U),
                        "AUROC": np.nan, "as good as the best": None}]).set_index("lens")
display(cost.round(4))

ties = [k for k in all_scores if power.loc[k, "as_good_as_best"]]
cheapest = min(ties, key=lambda k: seconds[k])
best = str(power["auroc"].idxmax())
front = pareto_front({k: seconds[k] for k in all_scores}, {k: power.loc[k, "auroc"] for k in all_scores})
fig, ax = plt.subplots(figsize=(6.5, 3.6))
ax.plot([seconds[k] / unit for k in front], [power.loc[k, "auroc"] for k in front], color="0.7", lw=4, alpha=0.5,
        zorder=0, label="cost/power front")
for k in all_scores:
    ax.errorbar(seconds[k] / unit, power.loc[k, "auroc"], yerr=power.loc[k, "se"], capsize=3, label=lens_label(k),
                marker="o" if k in LENSES else "s", mfc=None if k in LENSES else "none")
ax.axhline(0.5, color="0.6", ls=":", lw=1)
ax.set_xscale("log")
ax.set_xlabel("cost per image (multiples of one batched forward pass)")
ax.set_ylabel(f"AUROC, {positive_class} vs not")
ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
plots.savefig(fig, P.name, NB, "cost_vs_power")
plt.show()
display(Markdown(
    f"The best detector of the images {positive_class} is **{lens_label(best)}** (AUROC {power.loc[best, 'auroc']:.3f} "
    f"+- {power.loc[best, 'se']:.3f}, {seconds[best] / unit:.3g} forward passes per image); within two standard errors "
    f"of it: {', '.join(lens_label(k) for k in ties)}. The cheapest of these is **{lens_label(cheapest)}**, at "
    f"{seconds[cheapest] / unit:.3g} forward passes per image. Labelling the images by generation cost "
    f"{generation['seconds'] / len(U) / unit:.3g} forward passes per training image. On the **cost/power front** (no "
    "other lens or variant is both cheaper and more powerful), by increasing cost: "
    + ", ".join(f"{lens_label(k)} ({seconds[k] / unit:.3g} passes, AUROC {power.loc[k, 'auroc']:.3f})" for k in front)
    + "."))

# %% [markdown]
# ## Where the lenses disagree
#
# For the three pairs of the papers' own measures, the `n_show` training images that one lens ranks
# as far more memorized than the other does (by percentile rank of the oriented scores), in both
# directions. Each title gives the two percentile ranks (100 = most memorized by that lens; tied scores,
# such as every one-step rate of 0, share their mid-rank), the duplication count $k$ and the reference
# verdict (**M**: a generated sample copies it; **-**: none does).

# %%
pairs = [("flipd", "volume"), ("flipd", "onestep"), ("volume", "onestep")]
ranks = {k: percentile_ranks(k, scores[k]) for k in LENSES}
fig, axes = plt.subplots(2 * len(pairs), S.n_show, figsize=(1.7 * S.n_show, 2.1 * 2 * len(pairs)),
                         squeeze=False)
shown = {}
for p, (a, b) in enumerate(pairs):
    for r, idx in enumerate(rank_disagreements(scores, a, b, S.n_show)):
        shown[(a, b, r)] = idx
        for c, i in enumerate(idx):
            ax = axes[2 * p + r, c]
            img = ((U[i].permute(1, 2, 0) + 1) / 2).clamp(0, 1)
            ax.imshow(img[..., 0] if shape[0] == 1 else img, cmap="gray_r" if shape[0] == 1 else None, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            ax.set_title(f"{a} {100 * ranks[a][i]:.0f} / {b} {100 * ranks[b][i]:.0f}\n"
                         f"k={copies[i]} {'M' if memorized[i] else '-'}", fontsize=7)
        axes[2 * p + r, 0].set_ylabel(f"{[a, b][r]} says\nmemorized", fontsize=8)
plt.tight_layout()
plots.savefig(fig, P.name, NB, "disagreements")
plt.show()
display(pd.DataFrame([{"pair": f"{a} vs {b}", "lens that calls them memorized": [a, b][r],
                       "images": len(idx), "memorized by the reference": int(memorized[idx].sum()),
                       "duplicated": int((copies[idx] > 1).sum()),
                       "median PNG size": float(np.median(scores["png"][idx]))}
                      for (a, b, r), idx in shown.items()]))
n_shown = sum(len(idx) for idx in shown.values())
n_shown_mem = sum(int(memorized[idx].sum()) for idx in shown.values())
display(Markdown(
    f"Of the {n_shown} panels, {n_shown_mem} show an image memorized by the reference "
    f"({100 * memorized.mean():.0f}% of all training images are); the median PNG size of all training images is "
    f"{np.median(scores['png']):.0f} bytes. "
    + ("The strongest disagreements are about images that no sample copies: the lenses order the unmemorized "
       "bulk differently more than they disagree about the memorized images."
       if n_shown_mem <= memorized.mean() * n_shown * 2 else
       "The strongest disagreements involve memorized images more often than their share: the lenses see "
       "different memorized images.")))

# %% [markdown]
# ## What the three lenses say together

# %%
main = power.loc[list(LENSES)].sort_values("auroc", ascending=False)
geometric = min(power_member.loc["flipd", "auroc"], power_member.loc["volume", "auroc"])
copy_based = max(power_member.loc["onestep", "auroc"], power_member.loc["reproduction", "auroc"])
points = [
    f"**Detection power** against the {'planted truth' if model is None else 'reference by generation'} "
    f"({positive_class} vs not, the headline): "
    + ", ".join(f"{LENS_LABELS[k]} {main.loc[k, 'auroc']:.3f}" for k in main.index) + "; against the reference by "
    "generation: " + (", ".join(f"{LENS_LABELS[k]} {power_gen.loc[k, 'auroc']:.3f}" for k in LENSES)
                      + " (the one-step and reproduction lenses share its copy test)" if power_gen is not None
                      else f"undecided ({gen_reason})") + ".",
    f"**Membership against memorization.** Training against held-out images: FLIPD "
    f"{power_member.loc['flipd', 'auroc']:.3f}, volume growth {power_member.loc['volume', 'auroc']:.3f}, one-step rate "
    f"{power_member.loc['onestep', 'auroc']:.3f}, reproduction ratio {power_member.loc['reproduction', 'auroc']:.3f}. "
    + ("The two geometric lenses tell seen images from unseen ones far better than the two copy-based lenses, which "
       "respond only where the model copies." if geometric > copy_based + 0.1 else
       "The geometric and the copy-based lenses separate seen from unseen images about equally here."),
    f"**Agreement**: the papers' three measures correlate at rho = {rho.loc['flipd', 'volume']:.2f} (FLIPD-volume), "
    f"{rho.loc['flipd', 'onestep']:.2f} (FLIPD-one-step) and {rho.loc['volume', 'onestep']:.2f} (volume-one-step) "
    "over the training images.",
    f"**Cost**: the cheapest lens as good as the best is {lens_label(cheapest)}; the cost/power front runs "
    + " -> ".join(lens_label(k) for k in front) + ".",
    f"**PNG size** reaches AUROC {power.loc['png', 'auroc']:.3f}"
    + (": the duplicated images were drawn at random, so it could only inform through a model that prefers simple "
       "images." if model is None else ": the complexity of the images themselves, with no model involved."),
]
display(Markdown("\n".join(f"- {line}" for line in points)))

# %% [markdown]
# ## What differs from the papers' setups
#
# - **Data and model** (`tiny`, `quick`): 8x8 digits and the small `digits` UNet with EDM
#   preconditioning instead of CIFAR-10 or Stable Diffusion; the duplicated training set is ours
#   (none of the papers plants duplicates with counts 2-32; with `n_per_count` images per count, each
#   count's median rests on a handful of images), as is the reference "memorized by generation" on
#   this model, which misses memorized images that no sample happened to copy. `full` runs the design
#   on CIFAR-10 with the DDPM UNet (never run for this book; its settings are a plan).
# - **FLIPD**: on an EDM model at $\sigma = t_0$ from the knee of the median curve, with the exact
#   trace under `quick`; Ross et al. used Stable Diffusion's latent VP schedule with a fixed $t_0$ and
#   one Hutchinson probe (the "1 probe" variant).
# - **Volume growth**: `volume_axes` axes and `volume_steps` steps (the paper: 100 and 1,000), on the
#   VP clock of an EDM model rather than on a VP-trained network, and starting at FLIPD's $t_0$ rather
#   than at $t = 10^{-3}$ (the authors' start is a variant above).
# - **One-step rate**: Dodson et al. measure the copy rate of *held-out* inputs per noise level; we
#   ask it of each *training* image at one noise level, the danger zone's centre, with our shell
#   definition (chapter 03) and W computed over the distinct training images (the shells do not
#   depend on multiplicity; W ignores it).
# - **Reproduction ratio** and the AUROC/Spearman/cost comparison are this book's; no paper reports them.

# %%
summary = {
    **{f"auroc_{k}": float(power.loc[k, "auroc"]) for k in LENSES},
    **{f"auroc_se_{k}": float(power.loc[k, "se"]) for k in LENSES},
    **{f"auroc_generation_{k}": None if power_gen is None else float(power_gen.loc[k, "auroc"]) for k in LENSES},
    **({f"auroc_generation_{k}_reason": gen_reason for k in LENSES} if gen_reason else {}),
    "planted_k": S.planted_k if model is None else None,
    **{f"auroc_member_{k}": float(power_member.loc[k, "auroc"]) for k in LENSES},
    **{f"spearman_{a}_{b}": float(rho.loc[a, b]) for i, a in enumerate(LENSES) for b in LENSES[i + 1:]},
    "spearman_oriented": True,
    **{f"cost_forward_passes_{k}": float(result["seconds"][k] / unit) for k in LENSES},
    **{f"seconds_per_image_{k}": float(result["seconds"][k]) for k in LENSES},
    "forward_pass_seconds_per_image": unit,
    **{f"auroc_{key}": float(power.loc[k, "auroc"]) for k, key in variant_keys.items()},
    **{f"cost_forward_passes_{key}": float(seconds[k] / unit) for k, key in variant_keys.items()},
    "pareto_front": [variant_keys.get(k, k) for k in front],
    "positive_class": positive_class,
    "cheapest_as_good_as_best": variant_keys.get(cheapest, cheapest),
    "best_lens": variant_keys.get(best, best),
    "n_unique": len(U), "n_rows": len(dup.train) if dup is not None else len(U), "n_memorized": int(memorized.sum()),
    "memorized_fraction_singletons": float(memorized[copies == 1].mean()),
    "memorized_fraction_duplicated": float(memorized[copies > 1].mean()) if model is None else None,
    "generation_copy_rate": copy_rate,
    "danger_zone_low": lo, "danger_zone_high": hi, "sigma_onestep": sigma_dz, "t0": t0,
    "onestep_best_sweep_sigma": best_sweep, "onestep_best_sweep_auroc": float(max(sweep_auroc[positive_class])),
    "onestep_best_sweep_auroc_in_zone": float(zone_best) if np.isfinite(zone_best) else None,
    "model": about,
    "data_digest": content_digest(x_all),
    "seconds": time.time() - start,
}
summary.update({f"{k}_reason": "the reader's training set has no planted duplicates" for k in
                ("planted_k", "memorized_fraction_duplicated") if model is not None})
P.write_summary(NB, summary, seed=seed)
summary
