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
# # Volume growth: how easily an image is reproduced
#
# **Question.** Hasegawa & Yasuda {cite}`hasegawa2025volume` run the probability-flow ODE
# *forward*, from an image to noise, and measure how much it expands a small sphere around
# the image. A large expansion means a large region of noise flows back onto the image, so
# the image is easy to reproduce. They report that images a model was trained on expand far
# more than images it never saw ($e^{594}$ against $e^{373}$ on a CIFAR-10 model overfit to
# $2^7$ images), that memorized images expand more than others, and that one axis and one ODE step
# already give a significant difference. Does this hold here, and does it say more than the
# cheapest membership signal, the model's own denoising loss?

# %% tags=["parameters"]
# "tiny", "quick" or "full"; None: $MEMPKG_PROFILE, else "quick"
profile = None
# training, sampling and axes seed
seed = 0
# "auto" picks CUDA when present
device = "auto"
# any setting of mempkg/book/profiles.py CHAPTERS["volume_growth"] (a dataclass),
# e.g. {"radius": 0.1}
settings = {}
# The main knobs follow, as parameters of their own (papermill -p NAME VALUE);
# None keeps the profile's value.
# axes of the small sphere around each image
n_axes = None
# Euler steps of the probability-flow ODE
n_steps = None
# radius r of the sphere
radius = None
# training steps of the chapter's UNet
train_steps = None
# samples drawn for the extraction test; a copied training image counts as memorized
n_samples = None
# A reader's own model (None: the chapter trains its own on the profile's data):
# a diffusers DDPMPipeline (unconditional, pixel space), hub id or folder
model = None
# with model: a folder of the images it was trained on
# (the "trained" group, and extraction)
train_images = None
# with model: a folder of images it never saw (the "held-out" group)
heldout_images = None
# instead of model: "package.module:function" returning a score model with data_shape
model_factory = None

# %% tags=["hide-input"]
import time

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

import mempkg.book.profiles
from mempkg.book import plots, scorecard
from mempkg.studies import volume_growth

NB = "02_cifar10_overfit"
P = mempkg.book.profiles.resolve(profile, device)
S = P.settings("volume_growth", settings, n_axes=n_axes, n_steps=n_steps, radius=radius,
               train_steps=train_steps, n_samples=n_samples)
plots.style()
pd.set_option("display.max_colwidth", None)
start = time.time()
display(P.banner("volume_growth", seed=seed, model=model, model_factory=model_factory,
                 train_images=train_images, heldout_images=heldout_images))

# %% [markdown]
# ```{admonition} Digits, not CIFAR-10, under the CPU profiles
# :class: warning
# A 32x32 UNet takes seconds per training step on the book's 2-core reference machine, so the
# `tiny` and `quick` profiles run the whole chapter on scikit-learn's 8x8 handwritten digits
# (D = 64) with a small UNet. The `full` profile runs the paper's setting (CIFAR-10, the DDPM
# UNet, N = 100 axes, 1,000 steps) and needs a CUDA GPU and internet for the download.
# ```
#
# The whole experiment is one call, `mempkg.studies.volume_growth.run`: it trains the models
# (or reads a reader's), samples them, computes every score below and caches each step under
# `results/<profile>/02_cifar10_overfit/`. The sections show its parts in order.

# %% tags=["hide-input"]
r = volume_growth.run(S, seed=seed, device=P.device, cache=P.cache(NB), model=model,
                      model_factory=model_factory, train_images=train_images,
                      heldout_images=heldout_images, profile=P.name)
summary = dict(r.summary)
summary["verdicts"] = scorecard.decide(NB, summary)

# %% [markdown]
# ## The $2^7$ subset and the overfit model
#
# The paper's "$2^7$" set is the first 64 training images, each evaluated as-is and flipped
# horizontally (128 evaluations); the first 64 test images, also with flips, are the images
# the model never saw. Following the authors' code, the model is an eps-prediction UNet on
# the VP-SDE (beta from 0.1 to 20), fed the time label 999 t, trained on the flipped and
# unflipped training images; we evaluate its **raw weights**, as the authors' code does (it
# never saved its EMA weights). With a reader's `model`, the run reads that model and the two
# folders instead; the first `n_subset` images of each folder are its two groups, and the
# sections that retrain the chapter's own network (the role swap, the planted duplicates) are
# skipped. Any other score model enters through `model_factory` with the same two folders; one
# on EDM's clock is read through `mempkg.VPView`, so its ODE ends where its noise range does.
#
# The table says which model this run used, and which share of its samples are near-copies of
# a training image (the nearest training image closer than a third of the second nearest).
# Compare the samples with the training images above them.

# %% tags=["hide-input"]
display(r.inputs)
fig = plots.overfit_samples(r.train_images, r.samples)
plots.savefig(fig, P.name, NB, "overfit_samples")
plt.show()

# %% [markdown]
# ## Volume growth of trained and held-out images (paper Fig. 2, left)
#
# With orthonormal axes $q_i$ of length $r$ around the image and the Euler step map
# $\Phi_k(u) = u + \Delta t\, v(u, t_k)$ of the probability-flow ODE, the score is the sum over
# steps and axes of the log-stretches,
#
# $$L(x) = \sum_{k} \sum_{i=1}^{N} \log \frac{\lVert \Phi_k(x_k + r q_i) - \Phi_k(x_k) \rVert}{r},$$
#
# re-orthonormalising the stretched axes (longest first) after every step. We report this
# per-axis score (`measure="axes"`, the authors'); the log-volume of the parallelotope
# (`measure="volume"`, by Hadamard's inequality never larger) is shown beside it.
#
# **What is counted.** Each image is evaluated as-is and flipped, as in the paper, but an image and
# its flip are not independent evidence: every trained-against-held-out test below averages each
# image's two scores and counts **images** (`n_subset` per group; 64 under the paper's set-up).
#
# The histogram shows the two groups' L; the table gives their means, Welch's t-test and the
# AUROC of "larger L means trained" for both measures, and the per-axis score minus the
# log-volume (never negative). The paper's means (594 against 373) are for N = 100 axes, 1,000
# steps and D = 3,072: L grows with N and with D, so compare the direction and the
# significance, not the values.

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(6, 3))
xlabel = f"L (N = {S.n_axes} axes, {S.n_steps} steps, r = {S.radius})"
plots.two_groups(ax, r.L_trained, r.L_heldout, xlabel=xlabel)
plots.savefig(fig, P.name, NB, "L_trained_vs_heldout")
plt.show()
display(r.groups, r.hadamard)
display(scorecard.chapter_rows(NB, summary, keys=("trained_grow_more",)))

# %% [markdown]
# ### Two controls the paper lacks
#
# **Role swap.** A second model, same recipe, trained on the held-out images instead. If L
# measures membership, the held-out images now expand more and the AUROC flips; if it
# measured something about the images themselves, it would not.
#
# **Denoising-loss baseline.** The per-image training loss at a small time
# $t = $ `loss_t` (the eps-prediction error averaged over 8 noise draws): one forward pass
# per draw, the cheapest membership signal.
#
# The table puts the three AUROCs side by side with the network evaluations each score costs
# per image (both evaluations, the image and its flip). Look at whether the swap moves the
# AUROC to the other side of 0.5, and where the loss stands against L.

# %% tags=["hide-input"]
fig = plots.volume_controls(r.L_swap, r.loss, r.member, S.loss_t, summary.get("auroc_swap_reason"))
plots.savefig(fig, P.name, NB, "controls")
plt.show()
display(r.controls.round(3))

# %% [markdown]
# ## Memorized against unmemorized training images (paper Fig. 2, right)
#
# The paper compares 1,280 CIFAR-10 images that Carlini et al. {cite}`carlini2023extracting`
# extracted from a model with other training images; that list was never published. We find
# the memorized images the way Carlini et al. did: train on a larger set, generate, and flag
# training images that a sample copies (d1/d2 < 1/3). To know the truth, we **plant**
# duplicates: `n_planted` training images appear `n_copies` times each, the rest once. With a
# reader's model, its own samples are matched against its whole training folder.
#
# The left panel shows the extracted images, the right one their L against as many other
# training images drawn at random; the table counts the copies and tests the difference.

# %% tags=["hide-input"]
fig = plots.memorized_vs_other(r.extracted, r.L_memorized, r.L_other, summary["n_planted_found"])
plots.savefig(fig, P.name, NB, "memorized_vs_other")
plt.show()
display(r.memorized)
display(scorecard.chapter_rows(NB, summary, keys=("memorized_grow_more",)))

# %% [markdown]
# ## Efficiency ablation (paper Fig. 3)
#
# The paper's claim is that one axis and one ODE step already separate the groups with
# p < 0.01. We vary the number of axes N and of steps K at the chapter's radius, and the
# radius and K with one axis, for trained against held-out images (`n_ablation` images of each, the
# unflipped originals only, so the tests count images), and N and K for the memorized against the
# other training images of the planted model. The heat maps show the AUROC of "larger L means
# trained (memorized)" (0.5 = no separation; **below 0.5 the sign of the difference has
# flipped**) and log10 of Welch's p-value; a blank cell has too few images in a group to compare.
# The table lists the cells where the sign has flipped (on a less overfit model of a development
# prototype it flipped with N and K; see {doc}`../sources`).

# %% tags=["hide-input"]
fig = plots.ablation_grids(r.grids, r.ablation_steps)
plots.savefig(fig, P.name, NB, "ablation")
plt.show()
display(r.ablation[r.ablation.AUROC < 0.5].reset_index(drop=True))
display(scorecard.chapter_rows(NB, summary, keys=("one_axis_one_step",)))

# %% [markdown]
# ## What differs from the paper's setup, and why
#
# - **Data and model** (`tiny`, `quick`): 8x8 digits and the small `digits` UNet instead of
#   CIFAR-10 and the DDPM UNet (parameter counts in the first table), trained for the profile's
#   steps with the full batch at a larger learning rate instead of 400k epochs at batch 16:
#   CIFAR-10 training does not fit a CPU. The `full` profile uses the paper's data, network and
#   evaluation settings.
# - **Training length** (`full`): 400,000 steps at batch 16, a quarter of the authors' 400k
#   epochs (64 images at batch 16 are 4 steps an epoch, so theirs is 1.6 million steps), to save
#   GPU time; `-p train_steps 1600000` gives the authors' length.
# - **Training times** (`quick`): drawn log-uniformly in $[10^{-3}, 1]$ rather than uniformly
#   (the authors' choice, which `tiny` and `full` keep), with twice the learning rate and half the
#   steps. Weighting the small noise levels more lets the model copy nearly as much in half the
#   steps (the setting's comment in `mempkg/book/profiles.py` gives the measurement).
# - **Axes and steps**: `quick` uses N = 10 axes and 100 steps for the main comparison
#   (N = 100 and 1,000 steps would take hours on a CPU); the ablation shows how the result
#   depends on both.
# - **Memorized set**: Carlini et al.'s 1,280 indices are unpublished; we extract our own from
#   a model trained on a set with planted duplicates, so the ground truth is known.
# - **Weights**: raw weights, as the authors' code evaluated; the EMA weights are cached too.

# %% tags=["hide-input"]
summary["seconds"] = time.time() - start
P.write_summary(NB, summary, seed=seed);
