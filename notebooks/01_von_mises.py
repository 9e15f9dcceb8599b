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
# # An isolated training point has intrinsic dimension zero
#
# **Question.** Ross, Kamkari et al. {cite}`ross2024geometric` explain memorization
# geometrically: a model memorizes a training point when the manifold it learns has
# *local intrinsic dimension (LID) zero* there, a single point instead of a piece of the
# data manifold. Their toy (Figure 3) draws 100 points on the unit circle from a von
# Mises distribution; by chance one of them lands alone in the low-density region. Does a
# diffusion model trained on these points reproduce the isolated one, and does FLIPD
# {cite}`kamkari2024flipd` read LID ~ 0 there and ~ 1 everywhere else on the circle?

# %% tags=["parameters"]
# "tiny", "quick" or "full"; None: $MEMPKG_PROFILE, else "quick"
profile = None
# training, sampling and probe seed (the data seed is searched, see below)
seed = 0
# "auto" picks CUDA when present
device = "auto"
# any field of mempkg.book.profiles.VonMises, e.g. {"kappa": 4.0}
settings = {}
# The main knobs follow, each a parameter of its own (papermill -p NAME VALUE).
# None keeps the profile's value.
# training steps of the eps-MLP
train_steps = None
# samples drawn for the copy count
n_samples = None
# reverse-SDE steps per sample
sample_steps = None
# FLIPD's fixed read-out time (the knee is found as well)
t0 = None
# training seeds: the first (`seed`) chooses the knee t0, the others test the claim
n_train_seeds = None
# The chapter trains its own model on its own toy data: it takes no `model`.

# %% tags=["hide-input"]
import pandas as pd
from IPython.display import display

import mempkg.book.profiles
from mempkg.book import plots, scorecard
from mempkg.studies import von_mises

NB = "01_von_mises"
P = mempkg.book.profiles.resolve(profile, device)
S = P.settings("von_mises", settings, train_steps=train_steps, n_samples=n_samples,
               sample_steps=sample_steps, t0=t0, n_train_seeds=n_train_seeds)
cache = P.cache(NB)
plots.style()
pd.set_option("display.float_format", "{:.4g}".format)
display(P.banner("von_mises", seed=seed))

# %% [markdown]
# ## The run
#
# One call runs the whole experiment (`mempkg.studies.von_mises.run`): it picks the data
# set, trains the model on every training seed, reads FLIPD along a grid of $t_0$, draws
# the samples and counts the copies. Trained weights, FLIPD curves and samples are cached
# under `results/<profile>/01_von_mises/`, so a second run only reads them back.

# %% tags=["hide-input"]
R = von_mises.run(S, seed=seed, device=P.device, cache=cache)

# %% [markdown]
# ## The data: one point left alone
#
# The authors' code draws the angles from a von Mises distribution with concentration
# $\kappa = 2$; whether a point ends up isolated is luck of the draw. Instead of hand-picking
# a data set, we take the **first data seed** whose most isolated point lies at least
# `min_gap` radians from its nearest neighbour, and record it. The table gives that seed and
# how far the isolated point sits from its neighbour, against the typical spacing.

# %% tags=["hide-input"]
display(R.data_table)
fig = plots.von_mises_data(R)
plots.savefig(fig, P.name, NB, "a_data")
display(fig)

# %% [markdown]
# ## The model
#
# An eps-prediction MLP (3 hidden layers of 128, SiLU, a 64-d sinusoidal time embedding) on
# the VP-SDE ($\beta$ from 0.1 to 20), trained by denoising score matching on the full batch
# of 100 points with several noise draws per point per step and times drawn log-uniformly in
# $[10^{-3}, 1]$, so that the small noise levels, where the sharp score around the isolated
# point lives, get their share of the steps. The network, the recipe and the number of steps
# are ours: the paper does not publish them. The figure shows the training loss of the first
# training seed, the selection seed.

# %% tags=["hide-input"]
display(plots.von_mises_loss(R))

# %% [markdown]
# ## FLIPD at the training points, and how t0 is chosen
#
# $$\mathrm{FLIPD}(x, t_0) = D + \sigma(t_0)^2 \left[\operatorname{tr} \nabla s(\psi(t_0) x, t_0)
# + \lVert s(\psi(t_0) x, t_0) \rVert^2\right]$$
#
# with $D = 2$ and the exact trace (two Jacobian-vector products per point). FLIPD depends on
# the time $t_0$ at which the score is read. Kamkari et al. {cite}`kamkari2024flipd` pick
# $t_0$ at the knee of the FLIPD($t_0$) curve (kneedle {cite}`satopaa2011kneedle`), or take a
# fixed $t_0 = 0.05$ on synthetic data. **We read FLIPD at the knee of the median curve over
# the training points** (other than the isolated one) and show the fixed $t_0$ beside it. The
# knee is found on the first training seed's model only, the *selection seed* (`seed`); this
# section shows that model. The other training seeds are read at the same $t_0$ and are the
# ones the claim is decided on (see "Is it luck?" below). For reference we also evaluate FLIPD
# with the *exact score of the training set* (the mixture of Gaussians centred at the 100
# points, a perfectly memorizing model).
#
# What to look at: on the left, FLIPD at each training point by its angle, the isolated point
# circled; on the right, the FLIPD($t_0$) curves. The paper predicts a typical point's curve
# flat near 1 for small $t_0$, and the isolated point's near 0 over a window of $t_0$ between
# the typical spacing and its own gap. The table gives both read-outs and the range of the
# curves over the grid: the spread is why $t_0$ must be stated with every FLIPD number.

# %% tags=["hide-input"]
fig = plots.von_mises_flipd(R)
plots.savefig(fig, P.name, NB, "flipd_train")
display(fig, R.flipd_table)

# %% [markdown]
# ## Samples: is the isolated point reproduced more than chance?
#
# We draw samples with the reverse SDE and colour them by their FLIPD. The isolated point
# carries 1% of the training set, so 100 samples (the paper's panel (b)) hit it about once;
# we draw `n_samples`.
#
# **What counts as a copy, and against what.** A sample *copies* the isolated point when it
# lies within `copy_radius_sigmas` times $\sigma(t_\mathrm{end})$ of it, the noise the sampler
# leaves at its last step (a perfect memorizer's samples land inside that radius with
# probability $1 - e^{-r^2 / 2\sigma^2}$, 99% for 3 sigma, in $D = 2$). The true von Mises
# density also puts samples near the isolated point, since it lies on the circle: **the
# baseline is the same count for a model-free sampler of the true density**. We compute the
# exact probability $p_0$ that a true-density draw lands within the radius (the von Mises
# mass of the arc it cuts from the circle) and test the model's count $k$ of $n$ samples with
# a one-sided exact binomial test, $P(\mathrm{Bin}(n, p_0) \ge k)$; as a check we also count
# `n_samples` actual draws from the true density.
#
# The figure and the table show the selection seed's model; the test seeds' counts follow in
# the next section. The table sets the trained model beside the true density, row by row: the count within the
# copy radius and its p-value, the nearest sample, the count within the median distance
# between training points, and the median FLIPD of the copies and of the other samples. The
# nearest-neighbour ratio test $d_1 < d_2 / 3$ of Carlini et al.
# {cite}`carlini2023extracting` is counted for both samplers: compare the two columns to see
# whether it tells a memorizer from the true density here.

# %% tags=["hide-input"]
fig = plots.von_mises_samples(R, S.n_plot_samples)
plots.savefig(fig, P.name, NB, "b_samples")
display(fig, R.copy_table)

# %% [markdown]
# ## Is it luck? Seeds the read-out was not tuned on
#
# The knee $t_0$ is a choice made by looking at a FLIPD curve. Were it chosen on the same
# curve that is then tested, the rule would be tuned on the data it decides: a $t_0$ picked
# where the curves happen to look right would pass on that model by construction. So the
# choice and the test use different models. The **selection seed** (`seed`, role
# `selection`) is the only model whose curve is looked at; its knee gives $t_0$. The
# **test seeds** (the next `n_train_seeds - 1` seeds, role `test`) are the same data
# retrained from other initialisations (cached like the first), each read at the selection
# seed's $t_0$, never at its own knee, and sampled with its own seed. The scorecard's
# "every training seed" means every test seed; the selection seed's row is shown for
# comparison and does not count. Each test seed's own knee is listed, not used, so you can
# see whether it would have chosen differently. With a single training seed no seed is left to
# test on, and the claim is undecided.

# %% tags=["hide-input"]
display(R.seeds)

# %% [markdown]
# ## Paper against this run
#
# The paper shows Figure 3 qualitatively (no numbers are printed); its claim is that the
# isolated point is reproduced and has LID ~ 0 while the rest of the circle has LID ~ 1. The
# row below is the scorecard's rule (`mempkg.book.scorecard`) applied to this run's summary:
# it is decided on the test seeds; the single-seed numbers it quotes are the selection seed's.
# The `tiny` profile trains for seconds and is not expected to reproduce the finding.

# %% tags=["hide-input"]
summary = dict(R.summary)
summary["verdicts"] = scorecard.decide(NB, summary)
scorecard.chapter_rows(NB, summary)

# %% [markdown]
# ## What differs from the paper's setup, and why
#
# - **Data seed and kappa.** The paper's draw is not published; kappa = 2 is the authors'
#   code default, and the data seed is the first one that isolates a point by `min_gap`.
# - **Network and training.** Not published; ours is a small MLP trained for the profile's
#   number of full-batch steps with log-uniform times (log-uniform rather than uniform times
#   is a choice made on a development prototype, described in {doc}`../sources`; this run
#   does not compare the two).
# - **t0.** Read at the knee of the median FLIPD curve, as Kamkari et al. recommend, found on
#   the selection seed and carried unchanged to the test seeds; the fixed $t_0 = 0.05$ of
#   their synthetic experiments is shown beside it.
# - **Copies.** Counted within a radius set by the sampler's last noise level and tested
#   against the true density; the paper shows 100 samples and no count. We draw more, since
#   the isolated point has a 1% share.

# %% tags=["hide-input"]
P.write_summary(NB, summary, seed=seed)
summary
