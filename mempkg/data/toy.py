"""The von Mises circle toy of Ross, Kamkari et al. (Fig. 3) and its true density (layer: data).

Ambient D = 2, intrinsic d = 1: n angles drawn from a von Mises distribution, placed on the
unit circle. :func:`find_isolated_seed` finds a draw with one point far from the others (the
point the paper shows memorized); :func:`von_mises_draws` and :func:`von_mises_ball_mass` give
the true density's samples and exact arc masses, the baseline a copying count is judged against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.integrate import quad
from scipy.special import i0
from torch import Tensor

__all__ = ["VonMisesCircle", "circular_gaps", "find_isolated_seed", "von_mises_ball_mass", "von_mises_circle",
           "von_mises_density", "von_mises_draws"]


def circular_gaps(angles: np.ndarray) -> np.ndarray:
    """Angular distance from every angle to its nearest neighbour on the circle -> [n]."""
    a = np.mod(np.asarray(angles, float), 2 * np.pi)
    order = np.argsort(a)
    s = a[order]
    step = np.diff(np.concatenate([s, s[:1] + 2 * np.pi]))        # gap to the next point, cyclic
    nn_sorted = np.minimum(step, np.roll(step, 1))
    out = np.empty_like(nn_sorted)
    out[order] = nn_sorted
    return out


@dataclass
class VonMisesCircle:
    """``n`` points on the unit circle in R^2 (D = 2, d = 1) with angles ~ vonMises(mu, kappa).

    ``isolated`` is the index of the point farthest (in angle) from its nearest neighbour;
    ``gaps`` the nearest-neighbour angle of every point.
    """

    points: Tensor          # [n, 2], float32
    angles: np.ndarray      # [n]
    kappa: float
    mu: float
    seed: int
    gaps: np.ndarray        # [n]
    isolated: int

    @property
    def isolation_gap(self) -> float:
        return float(self.gaps[self.isolated])

    @property
    def median_gap(self) -> float:
        others = np.delete(self.gaps, self.isolated)
        return float(np.median(others))


def von_mises_circle(n: int = 100, kappa: float = 2.0, seed: int = 0, mu: float = 0.0) -> VonMisesCircle:
    """Draw the toy data set with numpy's ``default_rng(seed)``."""
    if n < 3:
        raise ValueError(f"von_mises_circle needs n >= 3 points, got {n}.")
    if kappa < 0:
        raise ValueError(f"kappa must be >= 0, got {kappa}.")
    rng = np.random.default_rng(int(seed))
    angles = rng.vonmises(mu, kappa, size=n)
    pts = torch.tensor(np.stack([np.cos(angles), np.sin(angles)], 1), dtype=torch.float32)
    gaps = circular_gaps(angles)
    return VonMisesCircle(pts, angles, float(kappa), float(mu), int(seed), gaps, int(np.argmax(gaps)))


def find_isolated_seed(n: int = 100, kappa: float = 2.0, min_gap: float = 1.0, start: int = 0,
                       max_tries: int = 10_000) -> int:
    """First data seed >= ``start`` whose most isolated point is at least ``min_gap`` radians
    from its nearest neighbour (Ross et al. rely on one such point appearing "by chance")."""
    for seed in range(start, start + max_tries):
        if von_mises_circle(n, kappa, seed).isolation_gap >= min_gap:
            return seed
    raise RuntimeError(f"No seed in [{start}, {start + max_tries}) isolates a point by {min_gap} rad "
                       f"with n={n}, kappa={kappa}; lower min_gap or raise kappa.")


def von_mises_density(theta: np.ndarray, kappa: float, mu: float = 0.0) -> np.ndarray:
    """Density of the von Mises distribution in the angle: exp(kappa cos(theta - mu)) / (2 pi I0(kappa))."""

    return np.exp(kappa * np.cos(theta - mu)) / (2 * np.pi * i0(kappa))


def von_mises_draws(n: int, kappa: float, mu: float = 0.0, seed: int = 0) -> Tensor:
    """``n`` draws from the true density of the toy, as points on the unit circle ``[n, 2]`` (float32):
    what a model-free sampler of the data distribution gives (the baseline of chapter 01)."""
    angles = np.random.default_rng(int(seed)).vonmises(mu, kappa, size=int(n))
    return torch.tensor(np.stack([np.cos(angles), np.sin(angles)], 1), dtype=torch.float32)


def von_mises_ball_mass(theta: float, radius: float, kappa: float, mu: float = 0.0) -> float:
    """Probability that a draw of the von Mises circle lands within Euclidean distance ``radius`` of
    the point at angle ``theta`` on the circle.

    A chord of length r spans the angle 2 arcsin(r / 2), so this is the von Mises mass of the arc
    theta +- 2 arcsin(r / 2), integrated numerically (exact to ~1e-12); 1 for r >= 2.
    """

    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}.")
    if radius >= 2:
        return 1.0
    half = 2 * float(np.arcsin(radius / 2))
    mass, _ = quad(lambda a: float(von_mises_density(np.asarray(a), kappa, mu)), theta - half, theta + half,
                   epsabs=1e-13, epsrel=1e-11)
    return float(mass)
