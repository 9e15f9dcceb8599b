"""Two calm ends and the wild middle (Dodson et al. 2026): where in noise memorization lives.

Data X ~ p in R^d, noisy Y = X + sigma Z, training set {x_1 .. x_N}. The *empirical optimal
denoiser* -- the posterior mean when the data distribution is the training set itself -- is

    m_sigma(y) = sum_i w_i(y, sigma) x_i,   w_i(y, sigma) = softmax_i(-|y - x_i|^2 / (2 sigma^2)).

Two quantities locate the regimes (the paper's Definitions 4.1 and 4.6):

* **max posterior weight** W_sigma = E[max_i w_i(X + sigma Z, sigma)], X a training point --
  posterior concentration: 1 when one training image explains the noisy query (small sigma), 1/N
  when all do equally;
* **Gaussian-shell coverage** C_sigma = P(X + sigma Z in union_i Sh_sigma(x_i)), X held out --
  whether the noisy query falls where training supervised the denoiser, with the shell
  Sh_sigma(x_i) = {y : sigma r_in <= |y - x_i| <= sigma r_out} of Lemma 4.5 (Laurent-Massart radii).

Small sigma: low coverage (queries fall outside every shell); large sigma: low concentration
(near-linear denoising); the **danger zone** is the middle band where both are high.

All sigmas are computed from one set of distances per noise draw: with q = x - x_i,

    |x + sigma z - x_i|^2 = |q|^2 + 2 sigma <q, z> + sigma^2 |z|^2,

so two matrix products per query chunk serve the whole sigma grid.

Layer: estimators (imports mempkg.core only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from .memorization import copies


def _flat(x: Tensor) -> Tensor:
    return x.reshape(x.shape[0], -1).double()


def squared_distances(queries: Tensor, train: Tensor) -> Tensor:
    """|q - x_i|^2 for every pair -> [Q, N] (float64), by |q|^2 + |x_i|^2 - 2 q.x_i (one fused GEMM), clamped at 0."""
    q, r = _flat(queries), _flat(train)
    return _distances(q, r, (r * r).sum(1))


def _distances(q: Tensor, r: Tensor, r2: Tensor) -> Tensor:
    # addmm adds the broadcast norms inside the GEMM: no [Q, N] temporaries besides the result
    return torch.addmm((q * q).sum(1, keepdim=True) + r2, q, r.T, alpha=-2).clamp_min_(0)


def log_posterior_weights(y: Tensor, train: Tensor, sigma: float) -> Tensor:
    """log w_i(y, sigma) = log_softmax_i(-|y - x_i|^2 / (2 sigma^2)) -> [Q, N] (float64).

    In log space, so sigma = 1e-3 and sigma = 80 give neither NaN nor underflow."""
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}.")
    return torch.log_softmax(-squared_distances(y, train) / (2 * float(sigma) ** 2), dim=1)


class EmpiricalDenoiser:
    """The empirical optimal denoiser m_sigma(y) = sum_i w_i(y, sigma) x_i of a training set
    ``[N, ...]``; called as ``denoiser(y, sigma)`` with ``y`` ``[Q, ...]`` -> ``[Q, ...]``.
    Queries are processed ``chunk`` at a time."""

    def __init__(self, train: Tensor, chunk: int = 1024):
        self.train = train
        self.chunk = int(chunk)

    def __call__(self, y: Tensor, sigma: float) -> Tensor:
        flat = _flat(self.train)
        out = [torch.exp(log_posterior_weights(yc, self.train, sigma)) @ flat for yc in y.split(self.chunk)]
        return torch.cat(out).reshape(y.shape).to(y.dtype)


def shell_radii(d: int, alpha: float = 0.01) -> tuple[float, float]:
    """(r_lo, r_hi): sigma r_lo <= |sigma Z| <= sigma r_hi with probability 1 - alpha, Z ~ N(0, I_d):
    the chi^2_d quantiles alpha/2 and 1 - alpha/2 (the book's earlier shell)."""
    from scipy.stats import chi2  # heavy: scipy.stats takes about a second to import

    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}.")
    return math.sqrt(chi2.ppf(alpha / 2, d)), math.sqrt(chi2.ppf(1 - alpha / 2, d))


def laurent_massart_radii(d: int, c: float = 5.0) -> tuple[float, float]:
    """Dodson et al.'s shell (Lemma 4.5, Eq. 6), from the Laurent-Massart bounds on chi^2_d:

        r_in = sqrt(d - 2 sqrt(c d)),   r_out = sqrt(d + 2 sqrt(c d) + 2 c),

    so P(r_in <= |Z| <= r_out) >= 1 - 2 e^-c; r_in is 0 when d < 4 c."""
    if not c > 0:
        raise ValueError(f"the shell's constant c must be positive, got {c}.")
    root = 2 * math.sqrt(c * d)
    return math.sqrt(max(d - root, 0.0)), math.sqrt(d + root + 2 * c)


SHELLS = ("laurent_massart", "chi2")
W_POINTS = ("train", "heldout")


@dataclass
class Regimes:
    """W_sigma and C_sigma on a grid of sigma (each ``[S]``), the points W averages over and the shell."""

    sigmas: np.ndarray
    W: np.ndarray
    C: np.ndarray
    w_points: str          # "train" (Dodson et al., Def. 4.1) or "heldout"
    shell: str             # "laurent_massart" (Eq. 6) or "chi2"
    shell_param: float     # c of the Laurent-Massart shell, alpha of the chi-square band
    r_lo: float
    r_hi: float

    def danger_zone(self, threshold: float = 0.5) -> tuple[float, float]:
        return danger_zone(self.sigmas, self.W, self.C, threshold)


def weight_and_coverage(heldout: Tensor, train: Tensor, sigmas: Sequence[float], *, w_points: str = "train",
                        shell: str = "laurent_massart", shell_c: float = 5.0, alpha: float = 0.01,
                        n_w_points: Optional[int] = None, n_draws: int = 1, seed: int = 0, chunk: int = 256,
                        precision: str = "float32") -> Regimes:
    """Max posterior weight W_sigma and shell coverage C_sigma, every sigma at once (Dodson et al., Sec. 4):

        W_sigma = E_{X ~ p_D, Z} max_i w_i(X + sigma Z, sigma)         (Def. 4.1: X a training point)
        C_sigma = P_{X ~ p, Z}(X + sigma Z in union_i Sh_sigma(x_i))    (Def. 4.6: X held out)
        Sh_sigma(x_i) = {y : sigma r_in <= |y - x_i| <= sigma r_out}    (Eq. 6, :func:`laurent_massart_radii`)

    Per chunk of query points and noise draw, two matrix products give |x - x_i|^2 and <x - x_i, z>
    ``[c, N]``; every sigma then costs a few element-wise passes over them:

        e_i(sigma) = -|y - x_i|^2 / (2 sigma^2) + |z|^2 / 2 = -(|q_i|^2 + 2 sigma <q_i, z>) / (2 sigma^2),
        max_i w_i = exp(max_i e_i - logsumexp_i e_i),    y in Sh_sigma(x_i)  iff  -r_hi^2/2 <= e_i - |z|^2/2 <= -r_lo^2/2.

    Each row is shifted to its nearest clean training point before the sigma loop, so the exponents
    that matter are small numbers and ``precision="float32"`` loses little: the error in log w is at
    most ~16 eps_32 max_i |<x_i - x_ref, z>| / sigma, and W agrees with the float64 pass to about
    1e-7 on the tests' data -- far below its Monte Carlo error ~ 1 / sqrt(Q). C is exact in either
    precision: rows whose nearest point is within that rounding bound of a shell edge, or inside the
    inner radius (where the nearest point does not decide), are recomputed from the float64 distances.
    Exponents more than 80 below the row's maximum are raised to it (weights below e^-80 ~ 1e-35
    are dropped), which keeps the exponentials out of the slow subnormal range.

    Args:
        heldout: X of C (and of W when ``w_points="heldout"``), ``[Q, ...]``; train: {x_i}, ``[N, ...]``.
        sigmas: the noise grid (S values > 0).
        w_points: ``"train"`` (the paper's W: every training point, ``n_draws`` noise draws each) or
            ``"heldout"`` (the book's earlier reading: W over the held-out points).
        shell: ``"laurent_massart"`` (the paper's, with ``shell_c``) or ``"chi2"``: the central (1 - alpha)
            band of sigma |Z|.
        n_w_points: with ``w_points="train"``, W averages over the first this many training points (the paper's
            Appendix E.3 uses 100, with 400 draws each); None: all of them.
        n_draws: noise draws Z per point (the expectations average over them).
        seed: seeds the draws (CPU generator: the same on every device); the W pass over training points
            draws from ``seed + 1``.
        chunk: points per pass; memory is about 24 * chunk * N bytes.
        precision: ``"float32"`` (default) or ``"float64"`` for the per-sigma pass; distances are float64 in both.
    Returns:
        :class:`Regimes` with ``W`` and ``C`` of shape ``[S]``.
    """
    sig = np.asarray(sigmas, dtype=float)
    if sig.ndim != 1 or len(sig) == 0 or not np.all(sig > 0):
        raise ValueError("sigmas must be a non-empty 1-D sequence of positive numbers.")
    dtypes = {"float32": torch.float32, "float64": torch.float64}
    if precision not in dtypes:
        raise ValueError(f"precision must be 'float32' or 'float64', got {precision!r}.")
    if w_points not in W_POINTS:
        raise ValueError(f"w_points must be one of {W_POINTS}, got {w_points!r}.")
    if shell not in SHELLS:
        raise ValueError(f"shell must be one of {SHELLS}, got {shell!r}.")
    X, T = _flat(heldout), _flat(train)
    if X.shape[1] != T.shape[1]:
        raise ValueError(f"held-out points have {X.shape[1]} features, training points {T.shape[1]}.")
    d = X.shape[1]
    r_lo, r_hi = laurent_massart_radii(d, shell_c) if shell == "laurent_massart" else shell_radii(d, alpha)
    run = dict(T=T.to(heldout.device), sig=sig, radii=(r_lo, r_hi), n_draws=int(n_draws), chunk=int(chunk),
               dt=dtypes[precision])
    if w_points == "heldout":
        W, C = _pass(X, want_w=True, want_c=True, seed=seed, **run)
    else:
        _, C = _pass(X, want_w=False, want_c=True, seed=seed, **run)
        W, _ = _pass(T[:n_w_points], want_w=True, want_c=False, seed=int(seed) + 1, **run)
    return Regimes(sig, W, C, w_points, shell, float(shell_c if shell == "laurent_massart" else alpha), r_lo, r_hi)


def _pass(X: Tensor, *, T: Tensor, sig: np.ndarray, radii: tuple, n_draws: int, chunk: int, dt, seed: int,
          want_w: bool, want_c: bool) -> tuple[np.ndarray, np.ndarray]:
    """W and C of the query points X against T (see :func:`weight_and_coverage`); either may be skipped."""
    (r_lo, r_hi), dev, eps = radii, T.device, torch.finfo(dt).eps
    e_lo, e_hi = -0.5 * r_hi**2, -0.5 * r_lo**2
    g = torch.Generator().manual_seed(int(seed))
    N = T.shape[0]
    t2 = (T * T).sum(1)
    rows = chunk if dev.type == "cuda" else max(1, min(chunk, (1 << 18) // N))   # ~1-2 MB blocks
    W = torch.zeros(len(sig), dtype=torch.float64, device=dev)
    C = torch.zeros(len(sig), dtype=torch.float64, device=dev)
    for _ in range(n_draws):
        for Xc in X.to(dev).split(chunk):
            Z = torch.randn(Xc.shape, generator=g, dtype=torch.float64).to(dev)
            q2 = _distances(Xc, T, t2)                                         # |x - x_i|^2   [c, N]
            qz = torch.addmm((Xc * Z).sum(1, keepdim=True), Z, T.T, alpha=-1)   # <x - x_i, z>  [c, N]
            z2 = (Z * Z).sum(1)
            ref = q2.argmin(1, keepdim=True)
            q2r, qzr = q2.gather(1, ref), qz.gather(1, ref)
            A, B = (q2 - q2r).to(dt), (qz - qzr).to(dt)                        # shifted to x_ref   [c, N]
            Mz = B.abs().amax(1).double()
            for a in range(0, len(Xc), rows):
                b = slice(a, a + rows)
                Ab, Bb, e = A[b], B[b], torch.empty_like(A[b])
                for j, s in enumerate(sig.tolist()):
                    torch.add(Ab, Bb, alpha=2 * s, out=e).mul_(-0.5 / (s * s))    # e_i - e_ref
                    m = e.amax(1, keepdim=True)
                    if want_w:
                        torch.maximum(e, m - 80, out=e)
                        W[j] += torch.log_softmax(e, dim=1).amax(1).double().exp().sum()
                    if not want_c:
                        continue
                    # -d_min^2 / (2 sigma^2), to within tol of the rounding in the shifted exponents
                    top = m[:, 0].double() - (q2r[b, 0] + 2 * s * qzr[b, 0]) / (2 * s * s) - 0.5 * z2[b]
                    tol = 16 * eps * (Mz[b] / s + m[:, 0].double().abs())
                    covered = (top >= e_lo + tol) & (top <= e_hi - tol)
                    exact = (top > e_hi - tol) | ((top - e_lo).abs() < tol)
                    if exact.any():
                        i = exact.nonzero()[:, 0] + a
                        d2 = q2[i] + 2 * s * qz[i] + (s * s) * z2[i, None]             # |y - x_i|^2, float64
                        covered[i - a] = ((d2 >= (s * r_lo) ** 2) & (d2 <= (s * r_hi) ** 2)).any(1)
                    C[j] += covered.sum()
    n = X.shape[0] * n_draws
    return (W / n).cpu().numpy(), (C / n).cpu().numpy()


def danger_zone(sigmas, W, C, threshold: float = 0.5) -> tuple[float, float]:
    """The band of sigma where both W and C exceed ``threshold`` -> (sigma_low, sigma_high).

    The crossings are interpolated linearly in log sigma between grid points (the band spans
    only a few points of a log grid). Returns (nan, nan) when min(W, C) never reaches the
    threshold; the widest contiguous band is returned when there are several.
    """
    s, m = np.log(np.asarray(sigmas, float)), np.minimum(np.asarray(W, float), np.asarray(C, float))
    if not (s.shape == m.shape and s.ndim == 1 and len(s) >= 2):
        raise ValueError("danger_zone needs sigmas, W and C of the same length >= 2.")
    if np.any(np.diff(s) <= 0):
        raise ValueError("danger_zone needs strictly increasing sigmas.")
    above = m >= threshold
    if not above.any():
        return float("nan"), float("nan")
    runs, start = [], None
    for i, a in enumerate(above):
        if a and start is None:
            start = i
        if start is not None and (not a or i == len(above) - 1):
            runs.append((start, i if a else i - 1))
            start = None
    i0, i1 = max(runs, key=lambda r: s[r[1]] - s[r[0]])

    def cross(i, j):  # log-sigma where min(W, C) crosses the threshold between grid points i and j
        return s[i] + (threshold - m[i]) * (s[j] - s[i]) / (m[j] - m[i])

    lo = cross(i0 - 1, i0) if i0 > 0 else s[i0]
    hi = cross(i1, i1 + 1) if i1 < len(s) - 1 else s[i1]
    return float(np.exp(lo)), float(np.exp(hi))


@dataclass
class NoiseSweep:
    """Per-noise-level results of a denoiser: ``mse`` (per pixel, to the clean image) and
    ``mem_rate`` (fraction of outputs that copy a training image), each ``[S]``; and the same per
    input image, ``mse_per_image`` and ``copied_per_image`` ``[S, B]`` (averaged over the noise draws),
    from which standard errors and bootstraps over images are computed."""

    sigmas: np.ndarray
    mse: np.ndarray
    mem_rate: np.ndarray
    mse_per_image: np.ndarray
    copied_per_image: np.ndarray


@torch.no_grad()
def noise_sweep(denoiser: Callable[[Tensor, float], Tensor], x: Tensor, train: Tensor, sigmas: Sequence[float],
                n_draws: int = 1, seed: int = 0, ratio: float = 1 / 3, batch: int = 1024) -> NoiseSweep:
    """Denoise x + sigma Z at every sigma: MSE to x and the per-noise memorization rate.

    g = denoiser(x + sigma Z, sigma) is *memorized* when d_1NN(g) < ratio * d_2NN(g) against the
    training set (Dodson et al., after Carlini et al.). ``denoiser(y, sigma)`` is any callable
    (an :class:`EmpiricalDenoiser`, a trained model's ``denoise``); x is ``[B, ...]``.
    """
    g = torch.Generator().manual_seed(int(seed))
    sig = np.asarray(sigmas, float)
    mse, copied = np.zeros((len(sig), x.shape[0])), np.zeros((len(sig), x.shape[0]))
    for _ in range(int(n_draws)):
        Z = torch.randn(x.shape, generator=g).to(x)
        for j, s in enumerate(sig):
            out = torch.cat([denoiser(xc + float(s) * zc, float(s)) for xc, zc in zip(x.split(batch), Z.split(batch))])
            mse[j] += (out.double() - x.double()).pow(2).flatten(1).mean(1).cpu().numpy()
            copied[j] += copies(out, train, ratio)[0].double().cpu().numpy()
    mse, copied = mse / int(n_draws), copied / int(n_draws)
    return NoiseSweep(sig, mse.mean(1), copied.mean(1), mse, copied)


@dataclass
class BandShare:
    """How much of a per-noise quantity falls inside a band of sigma (see :func:`share_in_band`)."""

    share: float          # sum over grid points inside the band / sum over the whole grid
    se: float             # bootstrap standard error of ``share`` over the input images
    grid_share: float     # the band's share of the grid: what a quantity spread evenly over it gives
    inside: np.ndarray    # [S] bool, grid points inside the band


def share_in_band(sigmas, per_image: np.ndarray, band: tuple[float, float], n_boot: int = 1000,
                  seed: int = 0) -> BandShare:
    """The share of a per-noise mass (e.g. each image's copy indicator at every sigma) inside a band.

    ``per_image`` is ``[S, B]`` on the grid ``sigmas`` (S values, increasing); the share is
    sum_{j in band, i} v_ji / sum_{j, i} v_ji. On a log-uniform grid, a quantity spread evenly over
    log sigma gives exactly ``grid_share`` = the fraction of grid points inside the band: the
    baseline that "memorization concentrates in the band" must beat (Dodson et al.'s danger zone).
    The standard error resamples the images (columns) with replacement, ``n_boot`` times, seeded.
    """
    sig, v = np.asarray(sigmas, float), np.asarray(per_image, float)
    if v.ndim != 2 or v.shape[0] != len(sig):
        raise ValueError(f"per_image must be [len(sigmas), B] = [{len(sig)}, B], got {list(v.shape)}.")
    lo, hi = band
    if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
        raise ValueError(f"share_in_band needs a finite band lo <= hi, got {band}.")
    inside = (sig >= lo) & (sig <= hi)
    per_col_in, per_col = v[inside].sum(0), v.sum(0)
    if per_col.sum() <= 0:
        raise ValueError("share_in_band: the quantity is zero everywhere, so it has no share anywhere.")
    rng = np.random.default_rng(int(seed))
    idx = rng.integers(0, v.shape[1], size=(int(n_boot), v.shape[1]))
    tot = per_col[idx].sum(1)
    boot = per_col_in[idx].sum(1)[tot > 0] / tot[tot > 0]
    return BandShare(float(per_col_in.sum() / per_col.sum()), float(boot.std(ddof=1)) if len(boot) > 1 else 0.0,
                     float(inside.mean()), inside)
