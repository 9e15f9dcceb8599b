"""Memorization tests by nearest neighbours (Carlini et al. 2023; Dodson et al.).

A generated sample g copies a training image when its nearest training neighbour is much
closer than the second nearest:  d_1NN(g) < ratio * d_2NN(g), ratio = 1/3.

Layer: estimators (imports mempkg.core only).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from ..core.tensors import check_choice


def nearest_neighbours(queries: Tensor, reference: Tensor, k: int = 2, chunk: int = 4096):
    """Euclidean distances and indices of the k nearest reference rows for every query.

    ``queries`` ``[Q, ...]``, ``reference`` ``[N, ...]`` -> (dist ``[Q, k]``, idx ``[Q, k]``).
    One matrix product per chunk of queries: |q - r|^2 = |q|^2 - 2 q.r + |r|^2.
    """
    if k > reference.shape[0]:
        raise ValueError(f"k={k} neighbours asked from a reference set of {reference.shape[0]} rows.")
    q = queries.reshape(queries.shape[0], -1).double()
    r = reference.reshape(reference.shape[0], -1).double()
    if q.shape[1] != r.shape[1]:
        raise ValueError(f"queries have {q.shape[1]} features, reference rows {r.shape[1]}.")
    r2 = r.pow(2).sum(1)
    ds, ids = [], []
    for start in range(0, q.shape[0], chunk):
        qc = q[start:start + chunk]
        d2 = (qc.pow(2).sum(1, keepdim=True) - 2 * qc @ r.T + r2).clamp_min(0)
        d, i = torch.topk(d2, k, dim=1, largest=False)
        ds.append(d.sqrt())
        ids.append(i)
    return torch.cat(ds), torch.cat(ids)


def copies(samples: Tensor, train: Tensor, ratio: float = 1 / 3):
    """Which samples copy a training image: d1 < ratio * d2 -> (bool [Q], nearest index [Q], d1/d2 [Q])."""
    d, i = nearest_neighbours(samples, train, k=2)
    r = d[:, 0] / d[:, 1].clamp_min(1e-12)
    return r < ratio, i[:, 0], r


# -- separating two groups of images by a per-image score ------------------------------------

def auroc(pos, neg) -> float:
    """Area under the ROC curve for "larger score means positive": P(S_pos > S_neg) + 1/2 P(tie),
    the Mann-Whitney U statistic over n_pos * n_neg (ties by mid-ranks)."""
    from scipy.stats import rankdata  # heavy: scipy.stats takes about a second to import

    pos = torch.as_tensor(pos, dtype=torch.float64).flatten()
    neg = torch.as_tensor(neg, dtype=torch.float64).flatten()
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError("auroc needs at least one score in each group.")
    if not (torch.isfinite(pos).all() and torch.isfinite(neg).all()):
        raise ValueError("auroc got non-finite scores.")
    ranks = rankdata(torch.cat([pos, neg]).numpy())
    u = ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2
    return float(u / (len(pos) * len(neg)))


# Which way each score reads "memorized": +1 larger, -1 smaller; fixed before any result is seen.
# Ross, Kamkari et al.: low FLIPD, high CFG norm, low PNG size; Hasegawa & Yasuda: large volume growth L;
# Dodson et al.: a high one-step copy rate; reproduction: a small distance to the nearest generation.
ORIENTATION = {"flipd": -1, "flipd_cond": -1, "flipd_uncond": -1, "cfg_norm": 1, "cfg_norm_generation": 1,
               "png_size": -1, "png": -1, "volume": 1, "onestep": 1, "reproduction": -1}


def oriented(score: str, values) -> np.ndarray:
    """``ORIENTATION[score] * values`` (float64): larger means memorized. A variant ``"flipd:1 probe"``
    reads as its score before the colon."""
    name = str(score).split(":")[0]
    check_choice("score", name, tuple(ORIENTATION))
    return ORIENTATION[name] * np.asarray(values, dtype=np.float64)


def oriented_auroc(score: str, memorized, others) -> float:
    """AUROC of memorized (positive) against ``others`` with the score read as :data:`ORIENTATION` says."""
    return auroc(oriented(score, memorized), oriented(score, others))


def auroc_bootstrap(scores, positive, n_boot: int = 1000, seed: int = 0, stratified: bool = True) -> np.ndarray:
    """AUROCs of "larger means positive" on ``n_boot`` bootstrap resamples of the images.

    stratified: positives and negatives resampled apart, each at its own size (sets whose sizes are
    fixed by design); else the images are resampled together and a resample with one class empty is
    drawn again. Every score is resampled with the same indices, so differences between scores have
    bootstrap errors too. Random draws: ``numpy.random.default_rng(seed)``.

    Args:
        scores: float ``[n]`` or ``[L, n]``, already oriented (:func:`oriented`).
        positive: bool ``[n]``.
    Returns:
        float64 ``[n_boot, L]`` (``L = 1`` for one score); the standard error is ``.std(0, ddof=1)``.
    """
    from scipy.stats import rankdata  # heavy: scipy.stats takes about a second to import

    S = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if S.shape[1] != len(positive):
        raise ValueError(f"{S.shape[1]} scores per row but {len(positive)} labels; give one label per image.")
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"AUROC needs both classes; {n_pos} of {len(positive)} images are positive.")
    if int(n_boot) < 2:
        raise ValueError(f"n_boot must be >= 2, got {n_boot}.")
    rng = np.random.default_rng(int(seed))
    if stratified:
        pos, neg = S[:, positive], S[:, ~positive]
        ip = rng.integers(0, n_pos, (int(n_boot), n_pos))
        iq = rng.integers(0, n_neg, (int(n_boot), n_neg))
        out = np.empty((int(n_boot), len(S)))
        for j in range(len(S)):                                       # Mann-Whitney U per resample
            ranks = rankdata(np.concatenate([pos[j][ip], neg[j][iq]], axis=1), axis=1)
            out[:, j] = (ranks[:, :n_pos].sum(1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
        return out
    n, out, b = len(positive), np.empty((int(n_boot), len(S))), 0
    while b < int(n_boot):
        idx = rng.integers(0, n, n)
        p = positive[idx]
        if p.all() or not p.any():
            continue
        out[b] = [auroc(s[idx][p], s[idx][~p]) for s in S]
        b += 1
    return out


def two_sided_auroc(pos, neg) -> float:
    """max(AUROC, 1 - AUROC): how well the score separates the groups in either direction
    (the sign of the volume-growth difference depends on the settings; NOTES.md)."""
    a = auroc(pos, neg)
    return max(a, 1 - a)


def welch_test(a, b) -> tuple[float, float]:
    """Welch's two-sample t-test (unequal variances), two-sided -> (t statistic, p-value)."""
    from scipy.stats import ttest_ind  # heavy: scipy.stats takes about a second to import

    res = ttest_ind(torch.as_tensor(a, dtype=torch.float64).numpy(),
                    torch.as_tensor(b, dtype=torch.float64).numpy(), equal_var=False)
    return float(res.statistic), float(res.pvalue)


def excess_count_test(k: int, n: int, p: float) -> float:
    """One-sided exact binomial test: the p-value of seeing ``k`` or more of ``n`` draws in a region
    whose probability under the baseline is ``p`` (e.g. samples near a training point, against the mass
    the true density puts there). Small means the count exceeds what the baseline gives."""
    from scipy.stats import binomtest  # heavy: scipy.stats takes about a second to import

    if not 0 <= k <= n:
        raise ValueError(f"excess_count_test needs 0 <= k <= n, got k={k}, n={n}.")
    if not 0 <= p <= 1:
        raise ValueError(f"excess_count_test needs a probability p in [0, 1], got {p}.")
    return float(binomtest(int(k), int(n), float(p), alternative="greater").pvalue)


@torch.no_grad()
def denoising_loss(model, x: Tensor, t: float, n_draws: int = 8, seed: int = 0, cond=None) -> Tensor:
    """Per-image denoising score-matching loss at time t, the cheapest membership signal:

        l(x) = 1/K sum_k | sigma(t) s(psi(t) x + sigma(t) eps_k, t) + eps_k |^2 / D

    (for an eps-network, sigma s = -eps_theta, so this is the eps-prediction error). Lower
    means "seen in training". ``x`` ``[B, ...]`` -> Tensor[B] (float64, CPU); noise seeded.
    """
    model.sde.check_time(t, "t")
    g = torch.Generator().manual_seed(int(seed))
    a, s = float(model.sde.alpha(t)), float(model.sde.sigma(t))
    out = torch.zeros(x.shape[0], dtype=torch.float64)
    for _ in range(int(n_draws)):
        eps = torch.randn(x.shape, generator=g).to(x)
        pred = s * model.score(a * x + s * eps, t, cond=cond)
        out += (pred + eps).double().flatten(1).pow(2).mean(1).cpu()
    return out / n_draws


def extract_memorized(samples: Tensor, train: Tensor, ratio: float = 1 / 3):
    """Carlini et al.'s extraction: the training images that some generated sample copies
    (d1 < ratio * d2 against ``train``, which should hold every distinct image once).

    Returns (positions in ``train`` of the copied images [M] (sorted), number of samples copying
    each of them [M], the boolean copy flag of every sample [S]).
    """
    flag, nearest, _ = copies(samples, train, ratio)
    found, counts = torch.unique(nearest[flag], return_counts=True)
    return found, counts, flag


# -- a memorized set against other sets, score by score ----------------------------------------

def auroc_bootstrap_se(score: str, memorized, others, n_boot: int = 1000, seed: int = 0) -> float:
    """Stratified bootstrap standard error of :func:`oriented_auroc` (:func:`auroc_bootstrap`, each group
    resampled at its own size)."""
    pos, neg = np.asarray(memorized, float).ravel(), np.asarray(others, float).ravel()
    labels = np.r_[np.ones(len(pos), bool), np.zeros(len(neg), bool)]
    boot = auroc_bootstrap(oriented(score, np.r_[pos, neg]), labels, n_boot, seed, stratified=True)
    return float(boot[:, 0].std(ddof=1))


def _score_table(scores: dict, memorized: str, metrics, cell):
    import pandas as pd  # heavy: pandas takes about a second to import

    if memorized not in scores:
        raise ValueError(f"no set {memorized!r} among {list(scores)}.")
    others = [s for s in scores if s != memorized]
    if not others:
        raise ValueError("an AUROC table needs at least one non-memorized set.")
    table = {}
    for m in (list(scores[memorized]) if metrics is None else metrics):
        pos = scores[memorized][m]
        row = {s: cell(m, pos, scores[s][m]) for s in others}
        row["all non-memorized"] = cell(m, pos, np.concatenate([np.asarray(scores[s][m]) for s in others]))
        table[m] = row
    return pd.DataFrame.from_dict(table, orient="index")


def auroc_table(scores: dict, memorized: str, metrics: Optional[Sequence[str]] = None):
    """:func:`oriented_auroc` of every score for the memorized set against each other set and all pooled.

    Args:
        scores: set name -> {score name: [n] values}, score names as in :data:`ORIENTATION`.
        memorized: the name of the memorized set in ``scores`` (the positives).
        metrics: the scores to tabulate, in order; None: those of the memorized set.
    Returns:
        A pandas DataFrame, rows = scores, columns = the other sets, then ``"all non-memorized"``.
    """
    return _score_table(scores, memorized, metrics, oriented_auroc)


def auroc_se_table(scores: dict, memorized: str, metrics: Optional[Sequence[str]] = None, n_boot: int = 1000,
                   seed: int = 0):
    """:func:`auroc_bootstrap_se` for every cell of :func:`auroc_table` (same rows and columns; each cell
    resampled with ``default_rng(seed)``)."""
    return _score_table(scores, memorized, metrics, lambda m, pos, neg: auroc_bootstrap_se(m, pos, neg, n_boot, seed))
