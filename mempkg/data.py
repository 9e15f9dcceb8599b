"""Data sets, by name. For now the von Mises circle toy of Ross, Kamkari et al. (Fig. 3).

Names state ambient and intrinsic dimension where it helps: the von Mises circle is
ambient D = 2, intrinsic d = 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


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
    from scipy.special import i0

    return np.exp(kappa * np.cos(theta - mu)) / (2 * np.pi * i0(kappa))
