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
profile = None      # "tiny", "quick" or "full"; None: $MEMPKG_PROFILE, else "quick"
seed = 0            # training, sampling and probe seed (the data seed is searched, see below)
device = "auto"     # "auto" picks CUDA when present

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

import mempkg.profiles
from mempkg import data, lid, plots
from mempkg.memorization import copies, nearest_neighbours
from mempkg.models import EmpiricalScore, EpsModel, MLPEps
from mempkg.sampling import sample
from mempkg.sde import VPSDE
from mempkg.train import train_cached

NB = "01_von_mises"
P = mempkg.profiles.resolve(profile, device)
S = P.settings("von_mises")
cache = P.cache(NB)
plots.style()
start = time.time()
display(P.banner("von_mises"))

# %% [markdown]
# ## The data: one point left alone
#
# The authors' code draws the angles from a von Mises distribution with concentration
# $\kappa = 2$; whether a point ends up isolated is luck of the draw. Instead of hand-picking
# a data set, we take the **first data seed** whose most isolated point lies at least
# `min_gap` radians from its nearest neighbour, and record it.

# %%
data_seed = data.find_isolated_seed(S["n_train"], S["kappa"], S["min_gap"], start=S["data_seed_start"])
ds = data.von_mises_circle(S["n_train"], S["kappa"], data_seed)
train_nn = nearest_neighbours(ds.points, ds.points, k=2)[0][:, 1]      # Euclidean, excluding itself
median_train_nn = float(train_nn.median())
display(Markdown(
    f"Data seed **{data_seed}** (kappa = {S['kappa']}): the isolated point sits at angle "
    f"{ds.angles[ds.isolated]:.2f} rad, **{ds.isolation_gap:.2f} rad** from its nearest neighbour, "
    f"while the median nearest-neighbour angle of the other points is {ds.median_gap:.4f} rad "
    f"({ds.isolation_gap / ds.median_gap:.0f} times larger)."))

fig, ax = plt.subplots(figsize=(4.2, 4.2))
plots.circle_data(ax, ds, density=lambda th: data.von_mises_density(th, ds.kappa, ds.mu))
ax.set_title("(a) training data and ground-truth density")
plots.savefig(fig, P.name, NB, "a_data")
plt.show()

# %% [markdown]
# ## The model
#
# An eps-prediction MLP (3 hidden layers of 128, SiLU, a 64-d sinusoidal time embedding) on
# the VP-SDE ($\beta$ from 0.1 to 20), trained by denoising score matching on the full batch of
# 100 points with several noise draws per point per step and times drawn log-uniformly in
# $[10^{-3}, 1]$. The network, the recipe and the number of steps are ours: the paper does not
# publish them. Log-uniform times matter: the sharp score around the isolated point lives at
# small noise, and is learned last. The trained weights are cached.

# %%
sde = VPSDE()


def train_model(train_seed):
    arch = dict(hidden=S["hidden"], depth=S["depth"], t_dim=S["t_dim"])
    return train_cached(cache, "eps_mlp", lambda: MLPEps(2, **arch, seed=train_seed), dict(arch, seed=train_seed),
                        sde, ds.points, S["train_steps"], seed=train_seed, device=P.device, lr=S["lr"],
                        n_noise=S["n_noise"], t_min=S["t_min"], t_sampling=S["t_sampling"])


net, history = train_model(seed)
model = EpsModel(net, sde)

fig, ax = plt.subplots(figsize=(5, 2.6))
plots.loss_history(ax, history["losses"])
plt.show()

# %% [markdown]
# ## FLIPD at the training points
#
# $$\mathrm{FLIPD}(x, t_0) = D + \sigma(t_0)^2 \left[\operatorname{tr} \nabla s(\psi(t_0) x, t_0)
# + \lVert s(\psi(t_0) x, t_0) \rVert^2\right]$$
#
# with $D = 2$, the exact trace (two Jacobian-vector products per point) and $t_0$ from the profile.
# For reference we also evaluate it with the *exact score of the training set* (the mixture
# of Gaussians centred at the 100 points, a perfectly memorizing model).

# %%
t0 = S["t0"]
x_train = ds.points.to(P.device)
lid_train = lid.flipd(model, x_train, t0)
lid_train_exact = lid.flipd(EmpiricalScore(ds.points, sde), ds.points.double(), t0)
others = np.delete(np.arange(len(ds.points)), ds.isolated)
flipd_isolated = float(lid_train[ds.isolated])
flipd_median_others = float(lid_train[others].median())

fig, ax = plt.subplots(figsize=(6, 3))
plots.value_by_angle(ax, ds.angles, lid_train, ds.isolated, label=f"FLIPD (t0 = {t0})")
ax.scatter(ds.angles, lid_train_exact.numpy(), s=6, marker="x", color="0.5", label="exact training-set score")
ax.legend(fontsize=7)
ax.set_title("FLIPD at every training point")
plots.savefig(fig, P.name, NB, "flipd_train")
plt.show()
display(Markdown(
    f"FLIPD at the isolated training point: **{flipd_isolated:.2f}**; median over the other "
    f"{len(others)} points: **{flipd_median_others:.2f}** (the exact training-set score gives "
    f"{float(lid_train_exact[ds.isolated]):.2f} and {float(lid_train_exact[others].median()):.2f})."))

# %% [markdown]
# ## Samples: is the isolated point reproduced?
#
# We draw samples with the reverse SDE and colour them by their FLIPD. The isolated point
# carries 1% of the training mass, so 100 samples (the paper's panel (b)) hit it about once;
# we draw `n_samples` and count, plotting the first 100. A sample *copies* a training point
# when its nearest training point is at less than a third of the distance to the second
# nearest (the ratio test of Carlini et al. {cite}`carlini2023extracting`).

# %%
samples = cache.get(
    "samples", dict(S, data_seed=data_seed, seed=seed),
    lambda: sample(model, S["n_samples"], 2, n_steps=S["sample_steps"], t_end=S["t_end"],
                   method=S["sampler"], seed=seed, device=P.device))
lid_samples = lid.flipd(model, samples.to(P.device), t0)
is_copy, nearest, ratio = copies(samples, ds.points)
copying_isolated = is_copy & (nearest == ds.isolated)
n_copy_iso = int(copying_isolated.sum())
dist_to_iso = (samples - ds.points[ds.isolated]).norm(dim=1)
nearest_sample_to_isolated = float(dist_to_iso.min())

n_show = S["n_plot_samples"]
fig, axes = plt.subplots(1, 2, figsize=(9, 4))
plots.points_by_value(axes[0], samples[:n_show], lid_samples[:n_show], ref=ds.points)
axes[0].set_title(f"(b) {n_show} samples coloured by FLIPD")
near = dist_to_iso < 0.5
plots.points_by_value(axes[1], samples[near], lid_samples[near], ref=ds.points, s=30)
axes[1].set_xlim(ds.points[ds.isolated, 0] - 0.5, ds.points[ds.isolated, 0] + 0.5)
axes[1].set_ylim(ds.points[ds.isolated, 1] - 0.5, ds.points[ds.isolated, 1] + 0.5)
axes[1].set_title(f"all {int(near.sum())} of {len(samples)} samples within 0.5 of the isolated point")
plots.savefig(fig, P.name, NB, "b_samples")
plt.show()

near_copies = lid_samples[copying_isolated]
display(Markdown(
    f"**{n_copy_iso} of {len(samples)}** samples ({100 * n_copy_iso / len(samples):.1f}%, against the "
    f"isolated point's 1% share of the training set) copy the isolated point. The nearest sample is "
    f"{nearest_sample_to_isolated:.4f} from it, against a median nearest-neighbour distance of "
    f"{median_train_nn:.4f} between training points. Median FLIPD of the copies: "
    + (f"**{float(near_copies.median()):.2f}**" if n_copy_iso else "(no copies)")
    + f"; of all other samples: **{float(lid_samples[~copying_isolated].median()):.2f}**."))

# %% [markdown]
# ## How t0 is chosen
#
# FLIPD depends on the time t0 at which the score is read. Kamkari et al. pick t0 at the
# knee of the FLIPD(t0) curve (kneedle {cite}`satopaa2011kneedle`). For a typical point the
# curve is flat near 1 for small t0 and falls off once the noise covers the gaps between
# neighbours; for the isolated point it sits near 0 over a window of t0 between the typical
# spacing and the isolated point's own gap, and below that window an imperfectly trained
# score reads too high. We mark the knees and the profile's fixed t0.

# %%
t0s = np.logspace(-3, 0, S["n_curve"])
typical = int(others[np.argmin(np.abs(lid_train[others].numpy() - flipd_median_others))])
pair = ds.points[[ds.isolated, typical]].to(P.device)
curves = cache.get("flipd_curve", dict(S, data_seed=data_seed, seed=seed, t0s=t0s.tolist()),
                   lambda: lid.flipd_curve(model, pair, t0s))
curves_exact = lid.flipd_curve(EmpiricalScore(ds.points, sde), pair.double().cpu(), t0s)
named = {"isolated point": curves[:, 0], "typical point": curves[:, 1],
         "isolated, exact training-set score": curves_exact[:, 0]}
knees = {k: lid.find_knee(t0s, v.numpy()) for k, v in list(named.items())[:2]}

fig, ax = plt.subplots(figsize=(6.5, 3.5))
plots.flipd_curves(ax, t0s, named, t0=t0, knees=knees)
ax.set_ylim(-1, 3)
plots.savefig(fig, P.name, NB, "flipd_curves")
plt.show()
display(Markdown(
    f"The kneedle rule puts the typical point's knee at t0 = {t0s[knees['typical point']]:.3g}; the "
    f"profile reads FLIPD at t0 = {t0}. Between t0 = {t0s[0]:.0e} and {t0s[-1]:.0e} the isolated point's "
    f"FLIPD ranges from {float(curves[:, 0].min()):.2f} to {float(curves[:, 0].max()):.2f}: "
    "it is only ~0 inside the window, which is why t0 must be stated with every FLIPD number."))

# %% [markdown]
# ## Is it luck? Other training seeds
#
# The same data, retrained with other seeds (cached like the first).

# %%
rows = []
for s in range(seed, seed + S["n_train_seeds"]):
    m = EpsModel(train_model(s)[0], sde)
    f = lid.flipd(m, x_train, t0)
    rows.append({"train seed": s, "FLIPD isolated": float(f[ds.isolated]),
                 "median FLIPD others": float(f[others].median())})
seeds_table = pd.DataFrame(rows)
display(seeds_table.round(3))

# %% [markdown]
# ## Paper against this run
#
# The paper shows Figure 3 qualitatively (no numbers are printed); its claim is that the
# isolated point is reproduced and has LID ~ 0 while the rest of the circle has LID ~ 1.

# %%
held = (abs(flipd_isolated) < 0.5) and (abs(flipd_median_others - 1) < 0.25) and n_copy_iso > 0
table = pd.DataFrame([
    {"claim": "isolated training point has LID ~ 0", "paper": "~0 (Fig. 3b, colour)",
     "this run": f"{flipd_isolated:.2f}"},
    {"claim": "other training points have LID ~ 1", "paper": "~1 (Fig. 3b, colour)",
     "this run": f"{flipd_median_others:.2f} (median)"},
    {"claim": "the isolated point is reproduced by sampling", "paper": "yes (Fig. 3b)",
     "this run": f"{n_copy_iso} of {len(samples)} samples copy it"},
])
display(table)
display(Markdown(f"Under profile `{P.name}` the claim **{'holds' if held else 'does not hold'}** "
                 "(|FLIPD| < 0.5 at the isolated point, median within 0.25 of 1, at least one copy)."
                 + (" The `tiny` profile trains for seconds and is not expected to reproduce it."
                    if P.name == "tiny" else "")))

# %% [markdown]
# ## What differs from the paper's setup, and why
#
# - **Data seed and kappa.** The paper's draw is not published; kappa = 2 is the authors'
#   code default, and the data seed is the first one that isolates a point by `min_gap`.
# - **Network and training.** Not published; ours is a small MLP trained for the profile's
#   number of full-batch steps with log-uniform times (uniform times need ~3 times the steps).
# - **t0.** Fixed per profile inside the window where a well-trained model separates the two
#   kinds of point; the curves above show the window and the kneedle choice.
# - **Number of samples.** The paper shows 100; we count copies over more, since the isolated
#   point has a 1% share.

# %%
summary = {
    "flipd_isolated": flipd_isolated,
    "flipd_median_others": flipd_median_others,
    "flipd_isolated_exact_score": float(lid_train_exact[ds.isolated]),
    "nearest_sample_to_isolated": nearest_sample_to_isolated,
    "median_train_nn_distance": median_train_nn,
    "n_samples_copying_isolated": n_copy_iso,
    "n_samples": len(samples),
    "isolation_gap_rad": ds.isolation_gap,
    "data_seed": data_seed,
    "kappa": S["kappa"],
    "t0": t0,
    "knee_t0_isolated": float(t0s[knees["isolated point"]]),
    "knee_t0_typical": float(t0s[knees["typical point"]]),
    "claim_held": bool(held),
    "seconds": time.time() - start,
}
P.write_summary(NB, summary, seed=seed)
summary
