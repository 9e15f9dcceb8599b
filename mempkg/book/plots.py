"""Figures. Each function draws on a given axis and returns it; :func:`savefig` writes the
figure under ``results/<profile>/<notebook>/`` as well as leaving it to show inline.

Layer: book (imports every layer but the CLI).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle

from ..data.toy import von_mises_density
from ..estimators.memorization import ORIENTATION
from .paths import results_dir
from .scorecard import CONTRADICTED, HELD, MARKS


def style() -> None:
    """The book's plot style (seaborn's whitegrid, compact fonts); inline figures at twice their pixels."""
    import seaborn as sns  # heavy: seaborn takes about a second to import

    sns.set_theme(style="whitegrid", context="notebook", font_scale=0.9)
    # the book stretches each figure to its text column (book/_ext/static/book_html.css): at twice
    # the pixels ("retina"), one at least 3.5 in wide is shrunk to it, never blurred
    try:
        from IPython import get_ipython  # optional (extra 'book'): only inside a notebook
    except ImportError:
        return
    if get_ipython() is not None:
        from matplotlib_inline.backend_inline import set_matplotlib_formats  # optional: comes with ipykernel

        set_matplotlib_formats("retina")


def savefig(fig, profile: str, notebook: str, name: str, dpi: int = 150) -> Path:
    """Save ``fig`` as ``results/<profile>/<notebook>/<name>.png`` and return the path."""
    path = results_dir(profile, notebook) / f"{name}.png"
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def _np(a):
    return a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)


# -- von Mises chapter (Ross, Kamkari et al., Fig. 3) -------------------------------------------

def circle_data(ax, ds, density=None):
    """Panel (a): the training points on the unit circle, the ground-truth density drawn as a
    band whose width is proportional to the von Mises density, the isolated point marked."""
    theta = np.linspace(-np.pi, np.pi, 721)
    if density is not None:
        dens = density(theta)
        w = 0.35 * dens / dens.max()
        ax.fill(np.concatenate([(1 + w) * np.cos(theta), np.cos(theta[::-1])]),
                np.concatenate([(1 + w) * np.sin(theta), np.sin(theta[::-1])]),
                color="tab:blue", alpha=0.15, lw=0, label="ground-truth density")
    ax.plot(np.cos(theta), np.sin(theta), color="0.7", lw=0.8)
    p = _np(ds.points)
    ax.scatter(p[:, 0], p[:, 1], s=12, color="tab:blue", label=f"training points (n={len(p)})", zorder=3)
    iso = p[ds.isolated]
    ax.scatter([iso[0]], [iso[1]], s=120, facecolors="none", edgecolors="tab:red", lw=2,
               label="isolated training point", zorder=4)
    ax.set_aspect("equal")
    ax.set_xlim(-1.5, 1.5)
    ax.set_ylim(-1.5, 1.5)
    ax.legend(loc="lower left", fontsize=7, frameon=True)
    return ax


def points_by_value(ax, points, values, ref=None, vmin=0.0, vmax=2.0, label="FLIPD", s=14):
    """Panel (b): points in the plane coloured by a per-point value (clipped to [vmin, vmax])."""
    p = _np(points)
    sc = ax.scatter(p[:, 0], p[:, 1], c=np.clip(_np(values), vmin, vmax), cmap="viridis",
                    vmin=vmin, vmax=vmax, s=s, zorder=3)
    if ref is not None:
        r = _np(ref)
        ax.scatter(r[:, 0], r[:, 1], s=4, color="0.6", zorder=2, label="training points")
        ax.legend(loc="lower left", fontsize=7)
    theta = np.linspace(-np.pi, np.pi, 361)
    ax.plot(np.cos(theta), np.sin(theta), color="0.85", lw=0.8, zorder=1)
    ax.figure.colorbar(sc, ax=ax, label=label, shrink=0.8)
    ax.set_aspect("equal")
    ax.set_xlim(-1.5, 1.5)
    ax.set_ylim(-1.5, 1.5)
    return ax


def value_by_angle(ax, angles, values, isolated=None, label="FLIPD", **kw):
    """A per-point value against the point's angle, the isolated point marked."""
    a, v = _np(angles), _np(values)
    ax.scatter(a, v, s=10, **kw)
    if isolated is not None:
        ax.scatter([a[isolated]], [v[isolated]], s=120, facecolors="none", edgecolors="tab:red", lw=2,
                   label="isolated point")
        ax.legend(fontsize=7)
    ax.set_xlabel("angle (rad)")
    ax.set_ylabel(label)
    return ax


def flipd_curves(ax, t0s, curves: dict, t0=None, knees: dict | None = None, dims=(0, 1, 2)):
    """FLIPD(t0) curves, one per label; the t0 used and each curve's knee marked."""
    t0s = _np(t0s)
    for i, (name, c) in enumerate(curves.items()):
        line, = ax.plot(t0s, _np(c), marker="o", ms=3, label=name)
        if knees and name in knees:
            k = knees[name]
            ax.scatter([t0s[k]], [_np(c)[k]], marker="D", s=50, color=line.get_color(), zorder=4,
                       edgecolors="k", label=f"knee of '{name}' (t0={t0s[k]:.3g})")
    for d in dims:
        ax.axhline(d, color="0.8", lw=0.8, zorder=0)
    if t0 is not None:
        ax.axvline(t0, color="k", ls="--", lw=1, label=f"t0 used = {t0:g}")
    ax.set_xscale("log")
    ax.set_xlabel("t0")
    ax.set_ylabel("FLIPD(x, t0)")
    ax.legend(fontsize=7)
    return ax


def loss_history(ax, losses, window: int = 100):
    """Training loss per step with a running mean."""
    l = np.asarray(losses, float)
    ax.plot(l, color="0.8", lw=0.5)
    if len(l) >= window:
        ax.plot(np.arange(window - 1, len(l)), np.convolve(l, np.ones(window) / window, "valid"), color="tab:blue")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("denoising loss")
    return ax


# -- image chapters -----------------------------------------------------------------------------

def image_grid(ax, images, n_cols: int = 16, title: str | None = None):
    """Images ``[N, C, H, W]`` in [-1, 1] tiled into one picture (grey for one channel)."""
    x = _np(images)
    n, c, h, w = x.shape
    n_rows = int(np.ceil(n / n_cols))
    canvas = np.ones((n_rows * (h + 1) + 1, n_cols * (w + 1) + 1, c))
    for i in range(n):
        r, q = divmod(i, n_cols)
        canvas[1 + r * (h + 1): 1 + r * (h + 1) + h, 1 + q * (w + 1): 1 + q * (w + 1) + w] = \
            (np.transpose(x[i], (1, 2, 0)) + 1) / 2
    canvas = np.clip(canvas, 0, 1)
    ax.imshow(canvas[..., 0] if c == 1 else canvas, cmap="gray_r" if c == 1 else None, vmin=0, vmax=1,
              interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    if title:
        ax.set_title(title)
    return ax


def two_groups(ax, a, b, labels=("trained", "held-out"), xlabel: str = "", bins: int = 30):
    """Overlaid density histograms of two groups of per-image scores, their means marked."""
    a, b = _np(a).ravel(), _np(b).ravel()
    edges = np.histogram_bin_edges(np.concatenate([a, b]), bins=bins)
    for v, lab, col in ((a, labels[0], "tab:red"), (b, labels[1], "tab:blue")):
        ax.hist(v, bins=edges, density=True, alpha=0.45, color=col, label=f"{lab} (mean {v.mean():.3g})")
        ax.axvline(v.mean(), color=col, lw=1.5)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.legend(fontsize=7)
    return ax


def heatmap(ax, values, row_labels, col_labels, fmt: str = "{:.2f}", cmap: str = "viridis",
            vmin=None, vmax=None, cbar_label: str = ""):
    """A labelled heat map with the value written in every cell."""
    v = np.asarray(values, float)
    im = ax.imshow(v, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xticks(range(len(col_labels)), [str(c) for c in col_labels])
    ax.set_yticks(range(len(row_labels)), [str(r) for r in row_labels])
    ax.grid(False)
    lo, hi = np.nanmin(v), np.nanmax(v)
    for i in range(v.shape[0]):
        for j in range(v.shape[1]):
            dark = (v[i, j] - lo) < 0.5 * (hi - lo) if hi > lo else True
            ax.text(j, i, fmt.format(v[i, j]), ha="center", va="center", fontsize=7,
                    color="w" if dark else "k")
    ax.figure.colorbar(im, ax=ax, label=cbar_label, shrink=0.8)
    return ax


# -- the scorecard ----------------------------------------------------------------------------------

VERDICT_COLOURS = {verdict: colour for verdict, (_, colour) in MARKS.items()}   # the scorecard table's colours


def scorecard_figure(rows: list[dict], title: str = ""):
    """Every criterion of the scorecard on its own axis: our value (a dot in the claim's verdict colour, with the
    margin it must clear as a bar), the threshold (a vertical line, the side that passes shaded) and the paper's
    value where it states one (an open diamond). ``rows`` are :func:`mempkg.book.scorecard.criteria_rows`.
    AUROCs and shares share the axis [0, 1]; p-values are on a log axis. Returns the matplotlib Figure."""
    n = len(rows)
    fig = Figure(figsize=(10, 0.42 * n + 0.9))
    axes = fig.subplots(n, 1, squeeze=False)[:, 0]
    fig.subplots_adjust(left=0.42, right=0.97, top=1 - 0.55 / (0.42 * n + 0.9), bottom=0.45 / (0.42 * n + 0.9),
                        hspace=1.1)
    for ax, r in zip(axes, rows):
        ax.set_yticks([])
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
        ax.tick_params(axis="x", labelsize=7, length=2, pad=1)
        label = f"#{r['number']} {r['quantity']}"
        ax.text(-0.02, 0.5, label, transform=ax.transAxes, ha="right", va="center", fontsize=8)
        if r["value"] is None:
            ax.set_xticks([])
            ax.text(0.0, 0.5, f"{r['held']}: {r['reason']}"[:110], transform=ax.transAxes, va="center", fontsize=7,
                    color=VERDICT_COLOURS[r["held"]], style="italic")
            ax.spines["bottom"].set_visible(False)
            continue
        v, m, t, paper = r["value"], r["margin"] or 0.0, r["threshold"], r["paper"]
        points = [x for x in (v - m, v + m, t, paper) if x is not None and np.isfinite(x)]
        if r["scale"] == "log":
            ax.set_xscale("log")
            positive = [x for x in points if x > 0] or [1.0]
            lo, hi = min(positive) / 10, max(max(positive) * 10, 1.0)
            v_shown = max(v, lo)
        else:
            lo, hi = r["limits"] if r["limits"] else (min(points), max(points))
            lo, hi = min(lo, *points), max(hi, *points)
            pad = 0.08 * (hi - lo or abs(hi) or 1.0)
            lo, hi = lo - pad, hi + pad
            v_shown = v
        ax.set_xlim(lo, hi)
        ax.set_ylim(-1, 1)
        if np.isfinite(t):
            ax.axvline(t, color="k", lw=1)
            passing = (t, hi) if r["op"] in (">", ">=") else (lo, t)
            ax.axvspan(*passing, color=VERDICT_COLOURS[HELD], alpha=0.08, lw=0)
        colour = VERDICT_COLOURS[r["held"]]
        if m:
            ax.plot([v - m, v + m], [0, 0], color=colour, lw=2, alpha=0.6, solid_capstyle="butt")
        ax.plot([v_shown], [0], "o", color=colour, ms=6, mfc=colour if r["passes"] else "white", mew=1.5)
        if paper is not None:
            ax.plot([paper], [0], "D", color="k", mfc="none", ms=6, mew=1)
    handles = [Line2D([], [], color="k", lw=1, label="threshold (shaded: the side that passes)"),
               Line2D([], [], marker="o", color=VERDICT_COLOURS[HELD], ls="", label="ours: criterion met (colour: claim's verdict)"),
               Line2D([], [], marker="o", color=VERDICT_COLOURS[CONTRADICTED], mfc="white", ls="", label="ours: criterion not met"),
               Line2D([], [], color="#6e7781", lw=2, alpha=0.6, label="the margin it must clear (standard errors)"),
               Line2D([], [], marker="D", color="k", mfc="none", ls="", label="the paper's value")]
    fig.legend(handles=handles, loc="upper center", ncol=3, fontsize=7, frameon=False, bbox_to_anchor=(0.6, 1.0))
    if title:
        fig.suptitle(title, x=0.02, ha="left", fontsize=9, y=1.0)
    return fig


# -- chapter 01 figures (von Mises) ---------------------------------------------------------------

def von_mises_data(r) -> Figure:
    """Panel (a) of Fig. 3: the training points of a :class:`~mempkg.studies.von_mises.VonMisesResult`
    on the circle and the ground-truth density."""
    fig = Figure(figsize=(4.2, 4.2))
    ax = fig.subplots()
    circle_data(ax, r.data, density=lambda th: von_mises_density(th, r.data.kappa, r.data.mu))
    ax.set_title("(a) training data and ground-truth density")
    return fig


def von_mises_loss(r) -> Figure:
    """The denoising loss of the first training seed, per step."""
    fig = Figure(figsize=(5, 2.6))
    loss_history(fig.subplots(), r.history["losses"])
    return fig


def von_mises_flipd(r) -> Figure:
    """FLIPD at every training point by angle (model at the knee, exact training-set score), and the
    FLIPD(t0) curves of the isolated point and of the median of the others."""
    ds = r.data
    fig = Figure(figsize=(12, 3.3))
    axes = fig.subplots(1, 2)
    value_by_angle(axes[0], ds.angles, r.curve[r.knee], ds.isolated, label=f"FLIPD (t0 = {r.t0:.3g}, the knee)")
    axes[0].scatter(ds.angles, r.points["FLIPD, exact score"], s=6, marker="x", color="0.5",
                    label="exact training-set score")
    axes[0].legend(fontsize=7)
    axes[0].set_title("FLIPD at every training point")
    named = {"isolated point": r.curve[:, ds.isolated],
             "median of the other points": r.curve[:, r.others].median(1).values,
             "isolated, exact training-set score": r.curve_exact}
    flipd_curves(axes[1], r.t0s, named, t0=r.summary["t0_fixed"], knees={"median of the other points": r.knee})
    axes[1].set_ylim(-1, 3)
    return fig


def von_mises_samples(r, n_show: int, zoom: float = 0.5) -> Figure:
    """Panel (b) of Fig. 3: the first ``n_show`` samples coloured by FLIPD, and every sample within ``zoom``
    of the isolated point with the copy radius drawn."""
    ds = r.data
    iso = ds.points[ds.isolated]
    fig = Figure(figsize=(9, 4))
    axes = fig.subplots(1, 2)
    points_by_value(axes[0], r.samples[:n_show], r.flipd_samples[:n_show], ref=ds.points)
    axes[0].set_title(f"(b) {n_show} samples coloured by FLIPD")
    near = (r.samples - iso).norm(dim=1) < zoom
    points_by_value(axes[1], r.samples[near], r.flipd_samples[near], ref=ds.points, s=30)
    x, y = iso.tolist()
    axes[1].add_patch(Circle((x, y), r.copy_radius, fill=False, color="tab:red", lw=1))
    axes[1].set_xlim(x - zoom, x + zoom)
    axes[1].set_ylim(y - zoom, y + zoom)
    axes[1].set_title(f"all {int(near.sum())} of {len(r.samples)} samples within {zoom:g} of the isolated point")
    return fig


# -- chapter 02 figures (volume growth) -----------------------------------------------------------

def overfit_samples(train_images, samples):
    """The first 32 training rows (16 images, then their flips) above 32 samples of the overfit model."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 2.6))
    image_grid(axes[0], train_images[:32], n_cols=16, title="training images (first 16, then flips)")
    image_grid(axes[1], samples[:32], n_cols=16, title="samples of the overfit model")
    return fig


def volume_controls(L_swap, loss, member, loss_t: float, swap_reason: str | None = None):
    """Left: L under the role-swap model by group (or why it was skipped); right: the denoising loss by group."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3))
    if L_swap is not None:
        two_groups(axes[0], L_swap[member], L_swap[~member], xlabel="L under the swap model",
                   labels=("the 2^7 training images", "held-out images (the swap model's training set)"))
    else:
        axes[0].set_axis_off()
        axes[0].text(0.5, 0.5, f"role swap: {swap_reason}", ha="center", va="center", wrap=True)
    two_groups(axes[1], loss[member], loss[~member], xlabel=f"denoising loss at t = {loss_t}")
    return fig


def memorized_vs_other(extracted, L_memorized, L_other, n_planted_found=None):
    """Left: the extracted (memorized) training images; right: their L against as many other training images."""
    n = len(extracted)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3), gridspec_kw={"width_ratios": [1, 1.2]})
    title = f"extracted: {n} images" + ("" if n_planted_found is None else f" ({n_planted_found} planted)")
    shown = extracted[:32] if n else extracted.new_zeros((1, *extracted.shape[1:]))
    image_grid(axes[0], shown, n_cols=8, title=title)
    if n:
        two_groups(axes[1], L_memorized, L_other, labels=("memorized (extracted)", "other training images"),
                   xlabel="L")
    return fig


def ablation_grids(grids: dict, steps):
    """Paper Fig. 3: per grid ``{(group, row name): (rows, {(row, K): (AUROC, p)})}``, the AUROC (top) and
    log10 of Welch's p (bottom) against the ODE steps K."""
    fig, axes = plt.subplots(2, len(grids), figsize=(13, 6.5), constrained_layout=True, squeeze=False)
    for col, ((name, rname), (rows, grid)) in enumerate(grids.items()):
        auc = np.array([[grid[(r, k)][0] for k in steps] for r in rows])
        logp = np.log10(np.maximum(np.array([[grid[(r, k)][1] for k in steps] for r in rows]), 1e-300))
        heatmap(axes[0, col], auc, rows, steps, cmap="RdBu_r", vmin=0, vmax=1, cbar_label="AUROC")
        heatmap(axes[1, col], logp, rows, steps, fmt="{:.0f}", cmap="viridis_r", cbar_label="log10 p")
        axes[0, col].set_title(name)
        for r in range(2):
            axes[r, col].set_xlabel("ODE steps K")
            axes[r, col].set_ylabel(rname)
    return fig



# -- chapter 03 figures (three regimes) -----------------------------------------------------------

def noise_sweeps(axes, sigmas, sweeps: dict):
    """Dodson et al. Figs. 1 and 2 on three axes: MSE per pixel (held-out solid, training dashed), the
    held-out minus training MSE gap, and the one-step copy rate of held-out inputs, per denoiser.
    ``sweeps`` maps a denoiser's name to ``{"test": ..., "train": ...}``, each a NoiseSweep's fields."""
    for name, sw in sweeps.items():
        line, = axes[0].plot(sigmas, sw["test"]["mse"], label=f"{name} held-out")
        axes[0].plot(sigmas, sw["train"]["mse"], ls="--", color=line.get_color(), label=f"{name} train")
        axes[1].plot(sigmas, np.asarray(sw["test"]["mse"]) - np.asarray(sw["train"]["mse"]), label=name)
        axes[2].plot(sigmas, sw["test"]["mem_rate"], marker=".", label=name)
    labels = ["MSE per pixel", "MSE gap (held-out - train)", "memorized fraction (held-out inputs)"]
    for ax, yl in zip(axes, labels):
        ax.set_xscale("log")
        ax.set_xlabel("sigma")
        ax.set_ylabel(yl)
        ax.legend(fontsize=7)
    axes[0].set_yscale("log")
    axes[0].set_ylim(bottom=1e-5)          # EMP's training MSE is ~0 at small sigma: it returns the image itself
    return axes


def weight_and_coverage(ax, sigmas, regimes: dict, zones: dict, rate, rate_label: str):
    """W (solid) and C (dashed) per training set, each set's danger zone shaded, and a copy rate (black).
    ``regimes`` and ``zones`` map a training set's name to W and C and to (sigma_low, sigma_high)."""
    for (name, r), color in zip(regimes.items(), ["tab:red", "tab:blue"]):
        ax.plot(sigmas, r["W"], color=color, label=f"W, {name}")
        ax.plot(sigmas, r["C"], color=color, ls="--", label=f"C, {name}")
        lo, hi = zones[name]
        if np.isfinite(lo):
            ax.axvspan(lo, hi, color=color, alpha=0.12, label=f"danger zone, {name}")
    ax.plot(sigmas, rate, color="k", marker=".", label=rate_label)
    ax.set_xscale("log")
    ax.set_xlabel("sigma")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    return ax


def denoiser_swap(axes, swap, zone):
    """The swap experiment, one axis per direction: the copy rate when each single Euler step (dots, at its sigma)
    or each window (bars over its steps) is handed to the other model, against both models' own rates (lines).
    ``swap`` is a :class:`mempkg.studies.three_regimes.DenoiserSwap`, ``zone`` the (low, high) danger zone."""
    colors = {"small": "tab:blue", "medium": "tab:red", "large": "tab:green"}
    names = swap.names
    for ax, direction in zip(axes, ("memorizer runs", "generalizer runs")):
        base, donor = ((names["memorizer"], names["generalizer"]) if direction == "memorizer runs"
                       else (names["generalizer"], names["memorizer"]))
        other = "generalizer runs" if direction == "memorizer runs" else "memorizer runs"
        rows = [r for r in swap.rows if r["direction"] == direction]
        singles = [r for r in rows if r["name"].startswith("step ")]
        ax.errorbar([r["window"][0] for r in singles], [r["copy_rate"] for r in singles],
                    yerr=[2 * r["copy_rate_se"] for r in singles], fmt="o", color="k", ms=3, capsize=2,
                    label="one step swapped (+- 2 s.e.)")
        for r in rows:
            if r["name"] in colors:
                ax.hlines(r["copy_rate"], *r["window"], color=colors[r["name"]], lw=4, alpha=0.8,
                          label=f"{r['name']} window swapped")
        ax.axhline(swap.alone[direction]["copy_rate"], color="0.3", ls="--", label=f"{base} alone")
        ax.axhline(swap.alone[other]["copy_rate"], color="0.6", ls=":", label=f"{donor} alone")
        if np.isfinite(zone[0]):
            ax.axvspan(*zone, color="tab:red", alpha=0.1, label="danger zone")
        ax.set_xscale("log")
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel("sigma of the steps handed over")
        ax.set_ylabel("generations that copy")
        ax.set_title(f"{base} samples, {donor} takes the steps", fontsize=10)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    return axes


def gap_bands(axes, sigmas, gap):
    """Gap training on three axes: per model a bar over the band of sigma it skipped at the height of its copy
    rate (left) and its Frechet distance (middle), means over seeds with +- 2 standard errors, the baseline
    dashed; the baseline's one-step copy rate (right).
    ``gap`` is a :class:`mempkg.studies.three_regimes.GapTraining`."""
    for ax, values, se, yl in ((axes[0], gap.mem_rate, gap.mem_se, "memorized generations"),
                               (axes[1], gap.fd, gap.fd_se, gap.fd_name)):
        for (a, b), name in zip(gap.tiles, gap.bands):
            color = {gap.label["gap"]: "tab:red", gap.label["dummy"]: "tab:purple"}.get(name, "tab:gray")
            lo, hi = max(a, sigmas[0]), min(b, sigmas[-1])
            ax.hlines(values[name], lo, hi, color=color, lw=3)
            ax.errorbar((lo * hi) ** 0.5, values[name], yerr=2 * se[name], color=color, capsize=3)
        ax.axhline(values["baseline"], color="k", ls="--", label="baseline (no gap)")
        ax.axvspan(*gap.band, color="tab:red", alpha=0.12, label="danger zone (= the gap)")
        ax.set_ylabel(yl)
    axes[0].axhline(np.nan, color="tab:purple", lw=3, label="dummy")
    axes[0].axhline(np.nan, color="tab:gray", lw=3, label="other gap bands")
    axes[1].axhline(gap.fd_copy, color="tab:green", ls=":", label="the training images themselves")
    axes[2].plot(sigmas, gap.sweep["mem_rate"], marker=".", color="k", label="baseline, held-out inputs")
    axes[2].axvspan(*gap.band, color="tab:red", alpha=0.12)
    axes[2].set_ylabel("memorized fraction, one denoising step")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("sigma (bands: the noise levels each model skipped)")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2)
    return axes


def gap_generations(axes, gap, n: int = 32):
    """The class's training images and the first ``n`` generations of the baseline, gap and dummy models."""
    shown = [("training images", gap.train_images)] + [
        (role, gap.generations[gap.label[role]]) for role in ("baseline", "gap", "dummy")]
    for ax, (title, x) in zip(axes, shown):
        image_grid(ax, x[:n], n_cols=8, title=title)
    return axes


# -- chapter 04 figures (LAION verbatims) ---------------------------------------------------------

SET_COLORS = ("tab:red", "tab:blue", "tab:green", "tab:purple", "tab:orange", "tab:brown", "tab:pink", "tab:olive")


def set_colors(names) -> dict:
    """A colour per evaluation set, the memorized set (first) red."""
    return {name: SET_COLORS[i % len(SET_COLORS)] for i, name in enumerate(names)}


def training_loss(history: dict, title: str = "training loss (eps-prediction, SD's schedule)") -> Figure:
    """The training loss per step with a running mean of up to 100 steps."""
    fig = Figure(figsize=(6, 2.6))
    ax = fig.subplots()
    loss_history(ax, history["losses"], window=min(100, len(history["losses"])))
    ax.set_title(title)
    return fig


def set_previews(previews: dict) -> Figure:
    """The first images of every evaluation set, a panel per set (``previews``: name -> [n, C, H, W])."""
    fig = Figure(figsize=(3.6 * len(previews), 2.4))
    for ax, (name, x) in zip(np.atleast_1d(fig.subplots(1, len(previews))), previews.items()):
        image_grid(ax, x, n_cols=4, title=name)
    return fig


def score_histograms(scores: dict, labels: dict, title: str = "") -> Figure:
    """Density histograms of every score, a panel per score and a line per set, the memorized set (the
    first of ``scores``: set -> {score: values}) filled; each axis says which way reads "memorized"."""
    metrics = list(labels)
    memorized = next(iter(scores))
    colors = set_colors(scores)
    fig = Figure(figsize=(4.2 * len(metrics), 3.6), layout="constrained")
    axes = fig.subplots(1, len(metrics))
    for ax, m in zip(axes, metrics):
        edges = np.histogram_bin_edges(np.concatenate([sc[m] for sc in scores.values()]), bins=30)
        for name, sc in scores.items():
            ax.hist(sc[m], bins=edges, density=True, histtype="stepfilled" if name == memorized else "step",
                    alpha=0.35 if name == memorized else 1.0, lw=1.5, color=colors[name], label=name)
        ax.set_xlabel(labels[m] + ("\n(low: memorized)" if ORIENTATION[m] < 0 else "\n(high: memorized)"))
        ax.set_ylabel("density")
    axes[0].legend(fontsize=7)
    fig.suptitle(title)
    return fig


def reproductions(memorized, generated, guidance: float) -> Figure:
    """The memorized training images above the samples generated from their captions."""
    fig = Figure(figsize=(min(16, 1.0 * len(memorized) + 2), 3.2))
    axes = fig.subplots(2, 1)
    image_grid(axes[0], memorized, n_cols=len(memorized), title="memorized training images")
    image_grid(axes[1], generated, n_cols=len(memorized), title=f"generated from their captions (guidance {guidance})")
    return fig


def t0_dependence(sweep_auroc: dict, generation_auroc: float, labels: dict) -> Figure:
    """AUROC against t0: the real-image CFG norm per set and pooled, Wen et al.'s (from noise) as a line
    (left); conditional and unconditional FLIPD pooled (right). ``sweep_auroc``: metric -> [t0, set]."""
    fig = Figure(figsize=(12, 3.6))
    axes = fig.subplots(1, 2)
    colors = set_colors([None, *sweep_auroc["cfg_norm"].columns])    # as in the histograms: the memorized set first
    t0s = list(sweep_auroc["cfg_norm"].index)
    for col in sweep_auroc["cfg_norm"].columns:
        pooled = col == "all non-memorized"
        axes[0].plot(t0s, sweep_auroc["cfg_norm"][col], marker="o", lw=2.5 if pooled else 1.2,
                     color="k" if pooled else colors.get(col), label=f"vs {col}")
    axes[0].axhline(generation_auroc, color="tab:orange", ls="--",
                    label=f"Wen et al. (from noise), vs all: {generation_auroc:.3f}")
    axes[0].set_title("real-image CFG norm")
    for m, ls in (("flipd_cond", "-"), ("flipd_uncond", "--")):
        axes[1].plot(t0s, sweep_auroc[m]["all non-memorized"], marker="o", ls=ls, label=labels[m] + ", vs all")
    axes[1].set_title("FLIPD")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("t0 (the model's own schedule)")
        ax.set_ylabel("AUROC (memorized = positive)")
        ax.axhline(0.5, color="0.7", lw=0.8)
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=7)
    return fig


def cfg_start_scatter(scores: dict, x_key: str, y_key: str, x_label: str, y_label: str) -> Figure:
    """Per image, the CFG norm from one start time against another (log-log, a colour per set, the memorized
    set first), with the diagonal where both starts agree. ``scores``: set -> {key: values}."""
    fig = Figure(figsize=(5.2, 4.6), layout="constrained")
    ax = fig.subplots()
    colors = set_colors(scores)
    memorized = next(iter(scores))
    for name, sc in scores.items():
        ax.scatter(sc[x_key], sc[y_key], s=28 if name == memorized else 10, color=colors[name], label=name,
                   alpha=0.9 if name == memorized else 0.5, zorder=3 if name == memorized else 2)
    values = np.concatenate([np.r_[sc[x_key], sc[y_key]] for sc in scores.values()])
    lo, hi = values[values > 0].min(), values.max()
    ax.plot([lo, hi], [lo, hi], color="0.5", lw=0.8, ls="--", label="equal")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.legend(fontsize=7)
    return fig


# -- chapter 05 figures (three lenses) ------------------------------------------------------------

def lens_reference(R):
    """Generated samples beside the training images they copy most often.
    ``R`` is a :class:`mempkg.studies.three_lenses.ThreeLensesResult`, as in the functions below."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 2.6))
    image_grid(axes[0], R.reference.samples[:48], n_cols=16, title="generated samples")
    order = np.argsort(-R.reference.n_copying)
    image_grid(axes[1], R.data.images[order[:48]], n_cols=16, title="the training images copied most often")
    return fig


def lens_noise_levels(R):
    """Left: W, C and the danger zone with the sigma the one-step lens reads; right: FLIPD(t0) of the
    training images (median and interquartile range) with its knee."""
    lv = R.levels
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.4))
    axes[0].plot(lv.sigmas, lv.regimes["W"], label="W (max posterior weight)")
    axes[0].plot(lv.sigmas, lv.regimes["C"], ls="--", label="C (shell coverage)")
    axes[0].axvspan(*lv.zone, color="tab:red", alpha=0.12, label="danger zone")
    axes[0].axvline(lv.sigma, color="tab:red", label=f"sigma used = {lv.sigma:.3g}")
    axes[0].set_xlabel("sigma")
    q = np.percentile(lv.curve, [25, 75], axis=1)
    axes[1].fill_between(lv.t0s, q[0], q[1], alpha=0.2, label="interquartile range")
    name = f"median of {lv.curve.shape[1]} training images"
    flipd_curves(axes[1], lv.t0s, {name: lv.median_curve}, t0=lv.t0, knees={name: lv.knee},
                 dims=(0, int(np.prod(R.data.shape))))
    for ax in axes:
        ax.set_xscale("log")
        ax.legend(fontsize=7)
    return fig


def lenses_by_count(R, seed: int = 0):
    """One panel per lens: its score per image, held-out images first, then the training images by their
    duplication count; red when the reference finds the image memorized, the group medians as bars."""
    copies, memorized, train, held = R.data.copies, R.reference.memorized, R.scores.train, R.scores.heldout
    ks = np.unique(copies)
    groups = ["held\nout"] + [str(k) for k in ks]
    fig, axes = plt.subplots(1, len(train), figsize=(17, 3.4))
    rng = np.random.default_rng(seed)
    for ax, lens in zip(axes, train):
        ax.scatter(rng.uniform(-0.25, 0.25, len(held[lens])), held[lens], s=5, color="tab:blue")
        for i, k in enumerate(ks, start=1):
            m = copies == k
            ax.scatter(i + rng.uniform(-0.25, 0.25, m.sum()), train[lens][m], s=5,
                       c=np.where(memorized[m], "tab:red", "0.6"))
        med = [np.median(held[lens])] + [np.median(train[lens][copies == k]) for k in ks]
        ax.plot(range(len(groups)), med, color="k", marker="_", ms=18, ls="none")
        ax.set_xticks(range(len(groups)), groups)
        ax.set_xlabel("copies in training")
        ax.set_title(R.scores.labels[lens], fontsize=9)
        if lens == "reproduction":                     # a ratio: log scale, the copy threshold 1/3 marked
            ax.set_yscale("log")
            ax.axhline(1 / 3, color="k", ls=":", lw=0.8)
    return fig


def onestep_sweep(R):
    """The one-step rate's AUROC against the sigma it is read at, per question; the danger zone shaded."""
    sw, (lo, hi) = R.sweep, R.levels.zone
    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    for name, values in sw.auroc.items():
        ax.plot(sw.sigmas, values, marker="o", label=name)
    ax.plot(sw.sigmas, sw.rates.mean(1), color="0.5", ls=":", label="mean one-step copy rate")
    ax.axvspan(lo, hi, color="tab:red", alpha=0.12, label="danger zone")
    ax.axvline(R.levels.sigma, color="tab:red", label=f"sigma used = {R.levels.sigma:.3g}")
    ax.axhline(0.5, color="0.6", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("sigma of the one-step test")
    ax.set_ylabel("AUROC of the one-step rate")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig


def lens_agreement(R):
    """Spearman's rho between every pair of lenses' oriented scores, as a heat map."""
    fig, ax = plt.subplots(figsize=(6.5, 4.8))
    heatmap(ax, R.rho.values, [R.scores.labels[k] for k in R.rho.index], list(R.rho.columns), cmap="viridis",
            vmin=-1, vmax=1, cbar_label="Spearman rho (oriented scores)")
    return fig


def cost_vs_power(R):
    """Each lens and variant: AUROC (with its standard error) against its cost per image in forward passes;
    the cost/power front drawn behind."""
    power, unit, seconds = R.power.headline, R.scores.forward_seconds, R.scores.seconds
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    ax.plot([seconds[k] / unit for k in R.cost.front], [power.loc[k, "auroc"] for k in R.cost.front], color="0.7",
            lw=4, alpha=0.5, zorder=0, label="cost/power front")
    for k in R.scores.all:
        lens = k in R.scores.train                     # a lens, not a variant
        ax.errorbar(seconds[k] / unit, power.loc[k, "auroc"], yerr=power.loc[k, "se"], capsize=3,
                    label=R.scores.labels[k], marker="o" if lens else "s", mfc=None if lens else "none")
    ax.axhline(0.5, color="0.6", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("cost per image (multiples of one batched forward pass)")
    ax.set_ylabel(f"AUROC, {R.power.positive_class} vs not")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig


def lens_disagreements(R):
    """Two rows per pair of the papers' measures: the images each lens ranks far more memorized than the
    other, titled with both percentile ranks, the duplication count k and the reference (M: copied)."""
    dis, U, copies, memorized = R.disagreements, _np(R.data.images), R.data.copies, R.reference.memorized
    n_rows, n_show = len(dis.shown), max(len(idx) for idx in dis.shown.values())
    fig, axes = plt.subplots(n_rows, n_show, figsize=(1.7 * n_show, 2.1 * n_rows), squeeze=False)
    for row, ((a, b, r), idx) in enumerate(dis.shown.items()):
        for c, i in enumerate(idx):
            ax = axes[row, c]
            img = np.clip((np.transpose(U[i], (1, 2, 0)) + 1) / 2, 0, 1)
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray_r" if img.shape[-1] == 1 else None,
                      vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            ax.set_title(f"{a} {100 * dis.ranks[a][i]:.0f} / {b} {100 * dis.ranks[b][i]:.0f}\n"
                         f"k={copies[i]} {'M' if memorized[i] else '-'}", fontsize=7)
        axes[row, 0].set_ylabel(f"{[a, b][r]} says\nmemorized", fontsize=8)
    fig.tight_layout()
    return fig


# -- chapter 06 figures (performance) -------------------------------------------------------------

def estimator_costs(costs) -> Figure:
    """Each estimator's cost per image in forward passes (a row of ``costs`` each, a bar per model; log
    scale), the forward pass at 1. ``costs``: ``PerformanceResult.costs`` (its last row, the forward
    pass in ms, is left out)."""
    fig = Figure(figsize=(8, 0.45 * len(costs) + 1.5))
    ax = fig.subplots()
    costs.iloc[:-1].iloc[::-1].plot.barh(ax=ax, logx=True, width=0.8)
    ax.axvline(1, color="0.3", lw=0.8)
    ax.set_xlabel("cost per image / one forward pass (log scale)")
    ax.legend(fontsize=7, loc="lower right")
    return fig


def volume_vs_limit(volume) -> Figure:
    """The authors' loop and ``volume_growth`` (finite, jvp) as multiples of the physical limit, (N + 1)
    forward passes per image and step, per model. ``volume``: ``PerformanceResult.volume``."""
    labels = [c.split(" (")[0] for c in volume.columns]
    fig = Figure(figsize=(8, 0.5 * len(labels) + 1.8))
    ax = fig.subplots()
    rows = [("authors' loop / limit", "authors' loop"), ("finite / limit", "volume_growth, finite"),
            ("jvp / limit", "volume_growth, jvp")]
    for i, (row, name) in enumerate(rows):
        ax.barh(np.arange(len(labels)) + 0.27 * (i - 1), volume.loc[row], height=0.27, label=name)
    ax.set_yticks(np.arange(len(labels)), labels, fontsize=8)
    ax.axvline(1, color="0.3", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("time / physical limit ((N + 1) forward passes per image and step; log scale)")
    ax.legend(fontsize=8)
    return fig


def wc_scaling(scaling) -> Figure:
    """Left: the cost of W and C and of one distance matrix against N, each over its cost at the
    smallest N, beside N itself (log-log). Right: W and C in distance matrices against N, with the
    three-regime issue's target of 3. ``scaling``: ``PerformanceResult.scaling`` (index N)."""
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    axes = fig.subplots(1, 2)
    n = scaling.index
    axes[0].loglog(n, scaling["wc_growth"], "o-", label="W and C")
    axes[0].loglog(n, scaling["distance_growth"], "s--", label="one distance matrix")
    axes[0].loglog(n, scaling["N_growth"], color="0.5", lw=0.8, label="proportional to N")
    axes[0].set_ylabel("cost / cost at the smallest N")
    axes[1].semilogx(n, scaling["wc_per_distance"], "o-")
    axes[1].axhline(3, color="0.5", lw=0.8, ls=":", label="three-regime issue's target")
    axes[1].set_ylim(bottom=0)
    axes[1].set_ylabel("W and C / one distance matrix")
    for ax in axes:
        ax.set_xlabel("training points N")
        ax.legend(fontsize=8)
    return fig
