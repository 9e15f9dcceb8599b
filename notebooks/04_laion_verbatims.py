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
# # Stable Diffusion on LAION verbatims: FLIPD, CFG norm and PNG size (Ross et al., Figure 4)
#
# **Question.** Ross, Kamkari et al. {cite}`ross2024geometric` read memorization as a collapse of the
# model's manifold: at a memorized training image the local intrinsic dimension (LID) of the learned
# distribution is too low. On Stable Diffusion v1.5 they score the 86 LAION images that Webster
# {cite}`webster2023extraction` found the model reproduces verbatim against 4,251 images it does
# not reproduce, with four detectors: FLIPD {cite}`kamkari2024flipd` under the caption (conditional)
# and without it (unconditional), the norm of the classifier-free-guidance (CFG) vector in the
# spirit of Wen et al. {cite}`wen2024detecting`, and, as a control for image complexity, the PNG
# size. Do the LID-based scores separate memorized from non-memorized images, better than image
# complexity does?
#
# ```{admonition} Two experiments, one pipeline
# :class: note
# The paper's experiment needs Stable Diffusion (~4 GB of weights), the LAION, COCO and Tuxemon
# images (downloaded from their URLs) and a GPU. The **`full`** profile runs it as published. The
# **`quick`** and **`tiny`** profiles run *the same code* on a small text-to-image model trained
# here, whose memorized set is known by construction (below). Every estimator takes any object
# with Stable Diffusion's interface (`mempkg.models.stable_diffusion.StableDiffusion`): the two runs differ
# only in the model and the images given to it.
# ```

# %% tags=["parameters"]
# "tiny", "quick" or "full"; None: $MEMPKG_PROFILE, else "quick"
profile = None
# data, training, probe and noise seed
seed = 0
# "auto" picks CUDA when present
device = "auto"
# FLIPD read-out time as Ross et al. give it (Appendix A.1: 0.1 for SD)
t0 = 0.1
# Hutchinson probes for the trace (Appendix A.1: one); None: the exact trace
n_probes = 1
# real-image CFG norm: Euler steps of the conditional PF-ODE up to cfg_t0 (A.1: 0.01)
cfg_t0 = 0.01
# ... in cfg_steps steps (A.1: 3)
cfg_steps = 3
# t0 and cfg_t0 are times of this reading of SD's schedule: "linear_beta" (the
# authors' code) or "scheduler" (SD's alphas_cumprod); both are read at that sigma
t0_reading = "linear_beta"
# bootstrap resamples for the AUROCs' standard errors
n_boot = 1000
# any setting of LaionVerbatims in mempkg/book/profiles.py, e.g. {"n_per_set": 50}
settings = {}
# The main knobs follow (papermill -p NAME VALUE); None keeps the profile's value.
# training steps of the tiny Stable Diffusion (tiny/quick)
train_steps = None
# images per evaluation set (None in the settings: all)
n_per_set = None
# A reader's own text-conditional model (None: the profile's, tiny_sd under
# tiny/quick, SD v1.5 under full): a Stable Diffusion-family pipeline, hub id or folder
model = None
# with model: a folder of images it memorized
memorized_images = None
# with model: a folder of images it did not (or, with -y, a dict of set name: folder)
nonmemorized_images = None
# with model: a CSV "file,caption" with one caption for every image of those folders
captions = None
# instead of model: "package.module:function" returning a mempkg.StableDiffusion
model_factory = None

# %% tags=["hide-input"]
import time

import pandas as pd
from IPython.display import display

import mempkg.book.profiles
from mempkg.book import plots, scorecard
from mempkg.studies import laion_verbatims
from mempkg.studies.laion_verbatims import METRIC_LABELS

NB = "04_laion_verbatims"
P = mempkg.book.profiles.resolve(profile, device)
S = P.settings("laion_verbatims", settings, train_steps=train_steps,
               n_per_set=n_per_set)
plots.style()
pd.set_option("display.max_colwidth", None)
start = time.time()
display(P.banner("laion_verbatims", seed=seed, t0=t0, cfg_t0=cfg_t0, t0_reading=t0_reading,
                 n_probes=n_probes, cfg_steps=cfg_steps, n_boot=n_boot, model=model,
                 model_factory=model_factory, memorized_images=memorized_images,
                 nonmemorized_images=nonmemorized_images, captions=captions))

# %% [markdown]
# The whole experiment is one call, `mempkg.studies.laion_verbatims.run`: it trains the tiny
# model (or reads it from the cache), or loads Stable Diffusion or the reader's pipeline, scores
# every set and runs the controls. The sections below show its parts. A reader's model that is
# no diffusers pipeline enters through `model_factory`, a function that returns a
# `StableDiffusion` built from its components, with the same folders and captions.

# %% tags=["hide-input"]
R = laion_verbatims.run(
    S, seed=seed, device=P.device, cache=P.cache(NB), model=model,
    model_factory=model_factory, memorized_images=memorized_images,
    nonmemorized_images=nonmemorized_images, captions=captions, t0=t0, n_probes=n_probes,
    cfg_t0=cfg_t0, cfg_steps=cfg_steps, t0_reading=t0_reading, n_boot=n_boot, profile=P.name)
summary = R.summary | {"verdicts": scorecard.decide(NB, R.summary)}

# %% [markdown]
# ## The model and the four sets
#
# | | paper (`full`) | this book's CPU run (`quick`, `tiny`) |
# |---|---|---|
# | model | Stable Diffusion v1.5, latent space (VAE, D = 4 x 64 x 64) | `TinyStableDiffusion`: a diffusers `UNet2DConditionModel` on 8 x 8 pixels (D = 64), trained here |
# | text encoder | CLIP, frozen | a learned embedding per word and position, trained jointly with the UNet |
# | schedule | SD's discrete "scaled_linear" DDPM schedule, 1000 steps, 10% captions dropped | the same schedule, the same objective, 10% captions dropped |
# | memorized | 86 LAION images Webster labelled "matching verbatim": duplicated in LAION, unusual captions | `n_planted` training digits repeated `n_copies` times, each with a unique caption of rare words |
# | not memorized | 2,000 LAION-Aesthetics 6.5+ images (training data, mostly seen once) | training digits seen once, with ordinary captions |
# | | 2,000 COCO images (in the spirit of the training data) | held-out digits (the test split) |
# | | 251 Tuxemon sprites (simple, unlike most of LAION) | photographs bundled with scikit-image, grey, 8 x 8 (far out of distribution) |
#
# Ordinary digit captions are written from the pixels: stroke thickness (ink mass), width (horizontal
# spread) and slant (shear), each said only in its lowest or highest third, and the class, e.g.
# "a thick wide digit zero"; the planted captions, like "opal quokka pumice", each name exactly one
# image. Simple images are more likely to be memorized, as Ross et al. note (see {doc}`../sources`),
# so the planted images are drawn from the simpler half of the training digits by PNG size
# (`planted_pool`).
#
# The first table says what this run read: under `tiny` and `quick` the training set (how many
# training images an ordinary caption names, against one for a planted caption) and the model;
# under `full` how many images of each set could be fetched; with a reader's model, their files.
# Then the training loss (`tiny`, `quick`), the sets with a few of their captions, and their first
# images.

# %% tags=["hide-input"]
display(R.sets.about)
if R.sets.history is not None:
    fig = plots.training_loss(R.sets.history)
    plots.savefig(fig, P.name, NB, "training_loss")
    display(fig)
display(R.sets.table)
fig = plots.set_previews(R.sets.previews)
plots.savefig(fig, P.name, NB, "sets")
display(fig)

# %% [markdown]
# ## At which noise level the scores are read
#
# Ross et al. give $t_0 = 0.1$ for FLIPD and $0.01$ for the CFG norm as times of their code's
# linear-beta reading of SD's schedule (see {doc}`../sources`); SD's own $\bar\alpha_n$ assign
# other noise levels to the same times. A time means something only under a reading; a noise level
# $\sigma$ does not.
# The headline scores below are read at the $\sigma$ that `t0_reading` gives `t0` and `cfg_t0`, on the
# model's own (scheduler) schedule: at the time $t$ where its $\bar\alpha$ reach that $\sigma$. The
# table gives, for each score, the time given, the $\sigma$ it is read at, the time and UNet label on
# the model's schedule, and the $\sigma$ the model's schedule would give the time as given. The
# real-image CFG norm's Euler steps start at the schedule's first training timestep (label 0, last
# column): an earlier start would feed the UNet a negative label it never saw. The authors' code
# starts earlier, on its own clock; a section below runs their procedure beside this one.

# %% tags=["hide-input"]
R.noise

# %% [markdown]
# ## Five scores per image
#
# For an image $x$ (for SD its latent $z$, the VAE posterior mean) with caption $c$:
#
# - **FLIPD** {cite}`kamkari2024flipd` at $t_0$ (the time `t0_flipd` of the noise level set above):
#   $\mathrm{FLIPD}(x, t_0) = D + \sigma(t_0)^2\,[\operatorname{tr}\nabla s(\psi(t_0)x, t_0 \mid c) + \lVert s(\psi(t_0)x, t_0\mid c)\rVert^2]$,
#   the trace by Hutchinson's estimator {cite}`hutchinson1989trace` with `n_probes` probes;
#   **conditional** with the image's caption, **unconditional** with the empty caption. Low means memorized.
# - **CFG norm of the real image** (Ross et al., Appendix A.1): `cfg_steps` Euler steps of the
#   conditional probability-flow ODE {cite}`song2021sde` from $x$ (standing in for the first timestep) to
#   the time of the CFG noise level above, then
#   $\lVert \varepsilon(x_{t_0}, t_0 \mid c) - \varepsilon(x_{t_0}, t_0 \mid \varnothing)\rVert$. High means memorized.
# - **CFG norm of generation** (Wen et al. {cite}`wen2024detecting`): the same difference at the first
#   step(s) of guided sampling *from noise* with the caption; it depends on the caption only.
# - **PNG size** at zlib level 9: image complexity, the confound to rule out. Low means simple.
#
# The few Euler steps of the real-image CFG norm perturb the image towards the read-out's noise
# level; they are not an accurate solution of the ODE near the data (`mempkg.estimators.guidance.pf_ode_forward`).
#
# Each AUROC below treats the memorized set as the positive class and orients every score as the
# paper reads it: **low FLIPD, high CFG norm, low PNG size mean "memorized"**. 0.5 is chance; a value
# below 0.5 means the score points the other way. Each AUROC comes with a bootstrap standard error
# (both groups resampled, `n_boot` times), against each non-memorized set and against all of them
# pooled. Look at how far the memorized set's histogram sits from the others in each panel.

# %% tags=["hide-input"]
title = f"Density histograms per score ({P.name} profile; cf. Ross et al., Fig. 4)"
fig = plots.score_histograms(R.scores, METRIC_LABELS, title)
plots.savefig(fig, P.name, NB, "histograms")
display(fig)
aurocs = R.auroc.map("{:.3f}".format) + " ± " + R.auroc_se.map("{:.3f}".format)
aurocs.rename(index=METRIC_LABELS)

# %% [markdown]
# ## Do the memorized captions reproduce their images?
#
# The ground truth here is by construction, but the model must actually have memorized it:
# sampling from each memorized caption (guided DDIM, deterministic) should return its own training
# image. A generation counts as a copy when its nearest training image is closer than a third of the
# second nearest (Carlini et al. {cite}`carlini2023extracting`). The table counts the generations whose
# nearest training image is their caption's own, and those that also pass the copy test.

# %% tags=["hide-input"]
rep = R.reproduction
fig = plots.reproductions(rep.memorized, rep.generated, S.sample_guidance)
plots.savefig(fig, P.name, NB, "reproductions")
display(fig)
rep.table

# %% [markdown]
# ## How much does the real-image CFG norm depend on $t_0$?
#
# Ross et al. carry the image to $t_0 = 0.01$ before reading the CFG vector; Wen et al. read it at
# the start of generation, from noise, where it depends on the caption alone. Below, the
# real-image CFG norm and both FLIPDs are recomputed at several $t_0$ (AUROC against each
# non-memorized set and all pooled), with Wen et al.'s version as a reference line. The sweep's
# $t_0$ are times of the model's own schedule (the table gives their $\sigma$), not of the
# authors' reading. Compare each curve with the headline AUROC at `cfg_t0` and `t0` above.

# %% tags=["hide-input"]
wen = R.summary["auroc_cfg_norm_generation"]
fig = plots.t0_dependence(R.sweep.auroc, wen, METRIC_LABELS)
plots.savefig(fig, P.name, NB, "t0_dependence")
display(fig)
R.sweep.table

# %% [markdown]
# Ross et al. chose $t_0$ for each score by hand: they "tune" the hyperparameters of every method
# by hand for the best AUROC, and add that, anecdotally, performance is "stable (and good)" for all
# sufficiently small times, $t \le 0.1$ (Appendix A.1). The table below puts that statement to the
# sweep: the real-image CFG norm's pooled AUROC at every swept $t_0 \le 0.1$ with its bootstrap
# standard error (every $t_0$ resampled with the same images), and the largest minus the smallest
# of them with the standard error of that difference. The sweep's times are the model's own; its
# $t_0 = 0.1$ has a lower $\sigma$ than the authors' $t = 0.1$, so every row lies inside the
# authors' range.

# %% tags=["hide-input"]
display(R.sweep.stability)
if "cfg_norm_stable_small_t0" in [c.key for c in scorecard.claims_of(NB)]:
    display(scorecard.chapter_rows(NB, summary, keys=("cfg_norm_stable_small_t0",)))

# %% [markdown]
# ## How much does the authors' linear-beta schedule matter?
#
# Stable Diffusion was trained on a discrete "scaled_linear" schedule ($\sqrt{\beta_n}$ linear,
# 1,000 steps). The FLIPD authors' code reads it as a continuous VP-SDE with $\beta(t)$ *linear*
# from $N\beta_\text{start}$ to $N\beta_\text{end}$ and feeds the UNet the label $N t$ (see
# {doc}`../sources`). Our default reads the scheduler's own $\bar\alpha_n$ with the label $N t - 1$.
# Below, the *same*
# trained network is read both ways (`mempkg.models.stable_diffusion.with_schedule`: nothing is retrained)
# on the images of the $t_0$ sweep: the noise level each reading assigns to a $t_0$, the AUROCs,
# and how well the two readings agree image by image (Spearman rank correlation). Both readings start
# the CFG norm's Euler steps at the same $t$ (the discrete schedule's first timestep, a valid label under
# either reading), so that only the schedule differs (the start time's own effect has a section
# below). The second table gives how far apart the two
# readings put $\sigma$, the lowest rank correlation and the largest AUROC change over the sweep, and,
# when the sweep holds `t0`, the authors' own read-out against ours at the same $\sigma$.

# %% tags=["hide-input"]
display(R.sweep.readings, R.sweep.reading_gap)

# %% [markdown]
# A reading moves the noise level at which a $t_0$ is read, and FLIPD estimates dimension at the
# scale $\sigma(t_0)$, so FLIPD *values* are comparable only under one reading; detection depends on
# the *ranking* of images, which the correlations above measure.
#
# **A control: what else makes the CFG vector large near an image?** Near a clean image the
# conditional and unconditional predictions differ when the caption *pulls* somewhere the image is
# not: because the caption pins another image, or describes something else, or because the image
# lies off the model's manifold, where both predictions are extrapolations. We recompute the
# real-image CFG norm (at `cfg_t0`) with each set's captions **shuffled within the set**, and, for
# the digits, measure how far each set lies from the training data (the memorized and training sets
# from the nearest *other* training digit). Where shuffling lowers the AUROC by more than two
# combined bootstrap standard errors (last two AUROC columns), a caption that does not fit its image
# is enough to make the CFG vector large: the score then measures how much the caption changes the
# model's prediction at the image, of which a caption that pins the image is one cause.

# %% tags=["hide-input"]
R.control.round(3)

# %% [markdown]
# ## The CFG norm as the authors' code computes it
#
# The real-image CFG norm above is this book's reading of Appendix A.1. The authors' public code
# (`layer6ai-labs/dgm_geometry`, see {doc}`../sources`) computes it differently in three ways, each at
# small noise, where the score changes fastest:
#
# - **Clock and label**: it reads SD's schedule as the linear-beta VP-SDE and feeds the UNet the
#   label $N t$; this book reads SD's own $\bar\alpha_n$ with the label $N t - 1$.
# - **Start**: its Euler steps start at its solver's default, $t = 10^{-4}$ on that clock (label 0.1,
#   between the first two training labels), well below the first training noise level where this
#   book starts.
# - **End**: its solver lays `cfg_steps` points from the start to $t_0$ and takes a step of their
#   spacing from each, so the last step ends one step *past* $t_0$; the CFG vector is then read
#   there at the label of $t_0$. This book's steps end at $t_0$.
#
# Both read the norm of the eps difference (the authors' `score_net` returns $\sigma s = -\varepsilon$;
# their text writes the score difference, which ranks images identically at a fixed $t_0$). Ross et
# al. tuned the procedure's settings by hand for the best AUROC (Appendix A.1) and report
# $t_0 = 0.01$ and 3 steps; the start time they do not report, so the one used here is their
# code's default. The same network, read
# both ways on the same images (`mempkg.estimators.guidance.cfg_norm_authors` on the linear-beta
# reading), gives the table: for each procedure where its steps start and end, where the CFG vector
# is read, the pooled AUROC with its bootstrap standard error, and the Spearman rank correlation of
# its scores with the authors' over all images. The last column is the authors' procedure started
# at this book's start noise level instead of $t = 10^{-4}$, nothing else changed.

# %% tags=["hide-input"]
R.authors_cfg.procedures

# %% [markdown]
# ## How much does the start time move the CFG norm?
#
# The start is the one setting in which the authors' procedure and its variant in the last column
# above differ: $t = 10^{-4}$ against this book's first training noise level, on the same clock,
# with the same steps to the same $t_0$. The clean image stands in for $x$ at the start time, and
# the first Euler step multiplies the model's noise prediction by $h\,\beta/(2\sigma)$, which is
# largest where $\sigma$ is smallest. Only a change in the scores' *ranking* can move the AUROC.
# The table gives, per set and over all images, the Spearman correlation between the CFG norms from
# the two starts and their medians; the figure shows every image (memorized set in red), the dashed
# line where both starts agree. A correlation over all images mixes how the sets differ from one
# another with how images rank within a set, while the AUROC depends only on how the memorized
# images rank against the others: read the rows per set, and the two AUROCs (the last two columns
# of the table above), with it.

# %% tags=["hide-input"]
fig = plots.cfg_start_scatter(
    R.authors_cfg.scores, laion_verbatims.AUTHORS, laion_verbatims.AUTHORS_BOOK_START,
    "CFG norm, start t = 1e-4 (the authors')", "CFG norm, start at the book's noise level")
plots.savefig(fig, P.name, NB, "cfg_start")
display(fig, R.authors_cfg.start)

# %% [markdown]
# ## The paper against this run
#
# Ross et al.'s workshop paper reports no table: its text says that conditional FLIPD,
# unconditional FLIPD and the CFG norm "are strong signals of memorization" whose "AUROCs are
# uniformly in the high 90's", and that PNG size is "a comparatively poor predictor" (Sec. 3,
# Fig. 4d). The 99.2% for conditional FLIPD is the workshop poster's figure (see {doc}`../sources`);
# we could not check it against a text. The paper does not score Wen et al.'s generation-time CFG
# norm.
#
# The table sets each pooled AUROC beside the paper's, with its bootstrap standard error, the
# interval of two standard errors around it (an interval that holds 0.5 is within chance), the
# lowest AUROC against a single non-memorized set, and the rank of the five scores. Under `tiny` and
# `quick` two things are built into the design and should be read with it: each planted caption
# names one training image while an ordinary caption names several (first table), so the
# conditional distribution given a planted caption is nearly a point whether or not the model would
# also reproduce the image unprompted (part of any conditional-FLIPD separation is structural); and
# the planted images were drawn from the simpler half of the digits by PNG size, so a PNG-size
# signal is there by construction (the medians are in the last table). The unconditional model meets
# the planted images only through their duplication. The scorecard rows decide the paper's claims
# for Stable Diffusion only; on the stand-in model they are shown, not decided.

# %% tags=["hide-input"]
display(R.paper)
claims = ("flipd_cond_detects", "flipd_uncond_detects", "cfg_norm_detects", "png_poor")
scorecard.chapter_rows(NB, summary, keys=claims)

# %% [markdown]
# ## What differs from the paper's setup, and why
#
# Under `quick` and `tiny`:
#
# - **Model and data**: a text-conditional UNet with its caption encoder on 8 x 8 pixels, trained
#   here for `train_steps` steps, and digits with planted verbatims, instead of Stable Diffusion v1.5
#   and LAION: SD and the images cannot be downloaded here, and a trained-here net gives a ground
#   truth that Webster's labels only approximate. The text encoder is a learned word embedding
#   instead of CLIP; images are pixels (no VAE).
# - **Non-memorized sets**: training digits seen once, held-out digits and scikit-image's bundled
#   photographs stand in for LAION-Aesthetics, COCO and Tuxemon (`n_per_set` of each at most); the
#   table below gives each set's median distance to the nearest training digit; how far COCO or
#   Tuxemon lie from LAION was not measured.
# - **Captions**: generated from pixel attributes with a small vocabulary (its ordinary and rare
#   words counted below); LAION's are free text.
#
# Under `full`: the paper's model and Webster's matching verbatims, `n_laion` LAION-Aesthetics 6.5+
# and `n_coco` COCO images drawn with the seed (the first ones whose URLs still answer: the fetch
# table at the top), and the Tuxemon images. LAION-Aesthetics comes from a mirror of the withdrawn
# original (see `mempkg.data.laion`).
#
# Under every profile:
#
# - **Schedule and times**: SD's own discrete schedule (`mempkg.core.schedules.DiscreteVPSchedule`,
#   label $n(t) = N t - 1$); the authors' code reads it as a linear-beta VP-SDE (see
#   {doc}`../sources`). FLIPD and the CFG norm are read at the noise levels of the first table of
#   the schedule section; the $t_0$
#   sweeps are in the model's own $t$, and the section on the schedule measures how much the reading
#   changes the scores.
# - **Real-image CFG norm**: the headline's Euler steps start at the schedule's first training
#   timestep (label 0; the UNet label of $t = 10^{-4}$, where the authors' solver starts, is below)
#   and end exactly at $t_0$; the authors' procedure (start at $t = 10^{-4}$ on their clock, one
#   step past $t_0$) is computed beside it in its own section, with its AUROC. Both report the
#   eps-difference norm (the authors' code's and Wen et al.'s form), which at a fixed $t_0$ ranks
#   images exactly as the score-difference norm Ross et al. write.
# - **Wen et al.'s CFG norm**: DDIM from $t = 1$ with `gen_samples` noise draw(s) per caption; SD's
#   pipeline starts at timestep 981 with a PNDM scheduler (see `mempkg.estimators.guidance`).
# - **PNG size**: Pillow's encoder at zlib level 9 instead of cv2's (the range of sizes is below).

# %% tags=["hide-input"]
R.setup

# %% tags=["hide-input"]
summary["seconds"] = time.time() - start
P.write_summary(NB, summary, seed=seed)
summary
