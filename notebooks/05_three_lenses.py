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
# "tiny", "quick" or "full"; None: $MEMPKG_PROFILE, else "quick"
profile = None
# training, sampling, noise and probe seed
seed = 0
# "auto" picks CUDA when present
device = "auto"
# any setting of mempkg/book/profiles.py CHAPTERS["three_lenses"] (a dataclass),
# e.g. {"n_t0": 8}
settings = {}
# The main knobs follow, as parameters of their own (papermill -p NAME VALUE);
# None keeps the profile's value.
# training steps of the EDM denoiser
train_steps = None
# volume growth: axes of the sphere
volume_axes = None
# volume growth: Euler steps of the ODE
volume_steps = None
# volume growth: radius of the sphere
volume_radius = None
# FLIPD's Hutchinson probes; the exact trace: -y 'settings: {flipd_probes: null}'
flipd_probes = None
# samples drawn for the memorized-by-generation labels
n_generations = None
# A reader's own model (None: the chapter trains its own on a training set with planted
# duplicates): a diffusers DDPMPipeline (unconditional, pixel space), hub id or folder,
# read on EDM's clock
model = None
# with model: a folder of the images it was trained on (the images every lens scores)
train_images = None
# with model: a folder of images it never saw (the danger zone, membership)
heldout_images = None
# instead of model: "package.module:function" returning a score model with data_shape
model_factory = None

# %% tags=["hide-input"]
import time

import matplotlib.pyplot as plt
from IPython.display import display

import mempkg.book.profiles
from mempkg.book import plots
from mempkg.studies import three_lenses

NB = "05_three_lenses"
P = mempkg.book.profiles.resolve(profile, device)
S = P.settings("three_lenses", settings, train_steps=train_steps, volume_axes=volume_axes,
               volume_steps=volume_steps, volume_radius=volume_radius, flipd_probes=flipd_probes,
               n_generations=n_generations)
plots.style()
start = time.time()
display(P.banner("three_lenses", seed=seed, model=model, model_factory=model_factory,
                 train_images=train_images, heldout_images=heldout_images))

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
#
# The whole experiment is one call, `mempkg.studies.three_lenses.run`; the sections below show its
# parts. Given a reader's `model`, it scores the reader's training images instead: no duplication
# counts are known there, so the lenses are judged against the images the model's own samples copy
# (the reference by generation), and the first table says which model and which images were read.
# Any other score model enters through `model_factory` with the same two folders; an `EDMDenoiser`
# is read on its own clock, anything else through `mempkg.EDMView`.

# %% tags=["hide-input"]
R = three_lenses.run(S, seed=seed, device=P.device, cache=P.cache(NB), model=model,
                     model_factory=model_factory, train_images=train_images,
                     heldout_images=heldout_images, profile=P.name)
summary = dict(R.summary)
display(R.data.table, R.data.counts)

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
#
# The first table gives, per duplication count, the share of images some sample copies; the second
# the samples' copy rate and how many memorized images a single sample found. The reference is a
# finite-sample one: more samples would find more of the rarely generated images.

# %% tags=["hide-input"]
display(R.reference.by_count.round(3), R.reference.table)
fig = plots.lens_reference(R)
plots.savefig(fig, P.name, NB, "generations")
plt.show()

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
#    on $\ln\sigma \sim \mathcal{N}(-1.2, 1.2^2)$, and the table below gives the share of its training
#    draws at or below that level. **We start at FLIPD's $t_0$** (`volume_t_start = None`), so the two
#    local lenses read the model from the same smallest noise level; the authors' start is shown as a
#    variant. *High* means memorized, the paper's direction.
# 3. **One-step copy rate** at the danger-zone $\sigma$: the share of `onestep_draws` noise draws $z$
#    for which $g = D(x + \sigma z; \sigma)$ copies $x$ itself, $\lVert g - x\rVert < \min_{j \ne x}
#    \lVert g - x_j\rVert / 3$. The danger zone is where Dodson et al.'s max posterior weight $W$ and
#    shell coverage $C$ of *this* training set, both over the held-out images and with the central 99%
#    chi-square shell (the book's earlier reading, which chapter 03 sets beside the paper's
#    definitions), both exceed `threshold`; **we take its geometric centre**. *High* means memorized.
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
# inputs). The figure shows where the danger zone and FLIPD's knee fall; the table gives the noise
# levels each lens reads.

# %% tags=["hide-input"]
fig = plots.lens_noise_levels(R)
plots.savefig(fig, P.name, NB, "settings")
plt.show()
R.levels.table

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
#
# ## Each lens against the duplication count
#
# One dot per image; the held-out images (never seen in training) on the left, then the
# training images by how often they appear. Red: memorized by the reference (a generated sample
# copies it); grey: not. A black bar marks each group's median. A lens that tracks memorization
# moves steadily with the count and separates red from grey among the singletons. The table gives
# the Spearman correlation of each oriented score with the duplication count (none for a reader's
# model, whose counts are unknown).

# %% tags=["hide-input"]
fig = plots.lenses_by_count(R, seed=seed)
plots.savefig(fig, P.name, NB, "lenses_by_count")
plt.show()
R.scores.trend

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
# run on the training images only. The first table gives each question's class sizes; a question
# with one class only is undecided, and its column of the second table is empty.

# %% tags=["hide-input"]
display(R.power.questions, R.power.table.round(3))

# %% [markdown]
# ### Is the danger zone the right noise level for the one-step lens?
#
# The one-step lens is read at one noise level chosen from the data alone, before looking at the model.
# As a check on that choice (not a replacement for it), the same rate at `n_sweep` other noise levels,
# with the same noise draws. Look at whether the curve peaks inside the shaded danger zone; the table
# gives the peak and the best point inside the zone.

# %% tags=["hide-input"]
fig = plots.onestep_sweep(R)
plots.savefig(fig, P.name, NB, "onestep_sigma")
plt.show()
R.sweep.table

# %% [markdown]
# ## Do the lenses agree?
#
# Spearman's rank correlation between every pair of lenses over the distinct training images, each
# score turned so that larger means memorized: $+1$ means two lenses order the images identically.
# The table lists the pairs from the most to the least alike, the papers' three measures marked.

# %% tags=["hide-input"]
fig = plots.lens_agreement(R)
plots.savefig(fig, P.name, NB, "spearman")
plt.show()
R.pairs.round(2)

# %% [markdown]
# ## What each lens costs
#
# Seconds per image as measured in this run (wall clock on the profile's device, when the value was
# computed; a re-run reads both from the cache), as a multiple of one batched forward pass of the model
# over the same images, and the network evaluations per image the settings imply (a reverse-mode
# vector-Jacobian product counts as one; it costs a forward and a backward pass). The reference itself --
# generating samples and testing them for copies -- is charged to the training images it labels.
# A lens is on the **cost/power front** when no other lens or variant is both cheaper and more
# powerful; the last table names the best lens and the cheapest one within two standard errors of it.

# %% tags=["hide-input"]
display(R.cost.table.round(4))
fig = plots.cost_vs_power(R)
plots.savefig(fig, P.name, NB, "cost_vs_power")
plt.show()
R.cost.choice.round(4)

# %% [markdown]
# ## Where the lenses disagree
#
# For the three pairs of the papers' own measures, the `n_show` training images that one lens ranks
# as far more memorized than the other does (by percentile rank of the oriented scores), in both
# directions. Each title gives the two percentile ranks (100 = most memorized by that lens; tied scores,
# such as every one-step rate of 0, share their mid-rank), the duplication count $k$ and the reference
# verdict (**M**: a generated sample copies it; **-**: none does). The table counts the memorized and
# duplicated images among each row's panels, with all training images as the last row: a row with a
# larger share of memorized images than that row shows the lenses seeing different memorized images,
# a smaller one shows them ordering the unmemorized bulk differently.

# %% tags=["hide-input"]
fig = plots.lens_disagreements(R)
plots.savefig(fig, P.name, NB, "disagreements")
plt.show()
R.disagreements.table

# %% [markdown]
# ## What the lenses say together
#
# One row per lens, best first by the headline AUROC: its power for the three questions and its cost.
# Compare the geometric lenses (FLIPD, volume growth) with the copy-based ones (one-step, reproduction)
# in the membership column: a copy-based lens responds only where the model copies an image, a
# geometric lens wherever the model has seen it. PNG size
# involves no model; under the planted truth the duplicated images were drawn at random, so it can
# inform only through a model that prefers simple images.

# %% tags=["hide-input"]
R.together.round(3)

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
#   ask it of each *training* image at one noise level, the danger zone's centre. The zone is
#   located with the book's earlier reading of $W$ and $C$ (held-out points, the central 99%
#   chi-square shell; chapter 03 sets it beside the paper's definitions) against the distinct
#   training images (the shells do not depend on multiplicity; W ignores it).
# - **Reproduction ratio** and the AUROC/Spearman/cost comparison are this book's; no paper reports them.

# %% tags=["hide-input"]
summary["seconds"] = time.time() - start
P.write_summary(NB, summary, seed=seed)
summary
