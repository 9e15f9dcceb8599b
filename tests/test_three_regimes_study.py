"""Chapter 03's experiment machinery on denoisers whose answers are known by construction."""

import dataclasses

import numpy as np
import pytest
import torch

from mempkg.book.profiles import CHAPTERS
from mempkg.studies.three_regimes import DenoiserSweeps, denoiser_swap


class NoCache:
    def get(self, name, params, compute, inputs=None):
        return compute()


class Nearest:
    """Always the nearest training image: every generation copies."""

    def __init__(self, train):
        self.train = train

    def denoise(self, x, sigma, cond=None):
        return self.train[torch.cdist(x.flatten(1), self.train.flatten(1)).argmin(1)]


class Mean:
    """Always the training mean: no generation copies (its first two neighbours are about as far)."""

    def __init__(self, train):
        self.mean = train.mean(0)

    def denoise(self, x, sigma, cond=None):
        return self.mean.expand_as(x)


def test_swap_flips_exactly_where_the_last_steps_change_hands():
    """The Euler step to sigma = 0 lands on the last denoiser's output, so with these two denoisers the window
    that holds the last step (small) flips the outcome fully and the others not at all, both directions."""
    g = torch.Generator().manual_seed(0)
    train = torch.randn(16, 1, 4, 4, generator=g)
    sweeps = DenoiserSweeps({"small": "nearest", "whole": "mean"}, {"small": Nearest(train), "whole": Mean(train)},
                            {}, np.zeros(1), np.zeros(1), np.zeros(1), np.zeros(1), None)
    S = CHAPTERS["three_regimes"]["tiny"]
    swap = denoiser_swap(S, sweeps, train, (0.5, 2.0), seed=0, device="cpu", cache=NoCache())
    assert swap.reason is None and swap.alone["memorizer runs"]["copy_rate"] == 1.0
    assert swap.alone["generalizer runs"]["copy_rate"] == 0.0
    flip = {(r["name"], r["direction"]): r["flip"] for r in swap.rows}
    for d in ("memorizer runs", "generalizer runs"):
        assert flip["small", d] == 1.0 and flip["medium", d] == 0.0 and flip["large", d] == 0.0
        assert flip[f"step {S.swap_steps - 1}", d] == 1.0 and flip["step 0", d] == 0.0
    medium = next(r for r in swap.rows if r["name"] == "medium")
    assert 0.5 <= medium["window"][0] <= medium["window"][1] <= 2.0 and medium["n"] == S.swap_n
    assert len(swap.rows) == 2 * (3 + S.swap_steps + (3 if S.swap_steps == 18 else 0))


def test_the_paper_windows_are_its_steps_of_the_18_step_grid():
    """Steps 6..13 (sigma 8.4 to 0.14) are the paper's medium window whatever this run's zone; with the two
    known denoisers only the window holding the last step (the paper's small, 14..17) flips the outcome."""
    g = torch.Generator().manual_seed(0)
    train = torch.randn(16, 1, 4, 4, generator=g)
    sweeps = DenoiserSweeps({"small": "nearest", "whole": "mean"}, {"small": Nearest(train), "whole": Mean(train)},
                            {}, np.zeros(1), np.zeros(1), np.zeros(1), np.zeros(1), None)
    S = dataclasses.replace(CHAPTERS["three_regimes"]["tiny"], swap_steps=18, swap_n=16)
    swap = denoiser_swap(S, sweeps, train, (0.5, 2.0), seed=0, device="cpu", cache=NoCache())
    rows = {(r["name"], r["direction"]): r for r in swap.rows}
    for d in ("memorizer runs", "generalizer runs"):
        assert rows["paper's medium", d]["steps"] == list(range(6, 14))
        assert rows["paper's medium", d]["window"] == pytest.approx([0.140, 8.401], abs=1e-3)
        assert rows["paper's small", d]["flip"] == 1.0
        assert rows["paper's medium", d]["flip"] == 0.0 and rows["paper's large", d]["flip"] == 0.0
    assert len(swap.rows) == 2 * (3 + 3 + 18)


def test_swap_without_a_zone_keeps_the_single_steps_and_says_why():
    train = torch.randn(8, 1, 2, 2, generator=torch.Generator().manual_seed(1))
    sweeps = DenoiserSweeps({"small": "a", "whole": "b"}, {"small": Nearest(train), "whole": Nearest(train)},
                            {}, np.zeros(1), np.zeros(1), np.zeros(1), np.zeros(1), None)
    S = CHAPTERS["three_regimes"]["tiny"]
    swap = denoiser_swap(S, sweeps, train, (np.nan, np.nan), seed=0, device="cpu", cache=NoCache())
    assert "no danger zone" in swap.reason and {r["name"] for r in swap.rows} == {f"step {i}" for i in range(18)} | {
        "paper's small", "paper's medium", "paper's large"}
    assert all(r["flip"] is None for r in swap.rows), "two models that copy alike have no flip to measure"


def test_gap_training_refuses_a_single_seed():
    from mempkg.studies.three_regimes import gap_training

    S = CHAPTERS["three_regimes"]["tiny"]
    with pytest.raises(ValueError, match="gap_seeds must be at least 2"):
        gap_training(type(S)(**{**S.__dict__, "gap_seeds": 1}), None, None, seed=0, device="cpu", cache=NoCache())


def test_densest_windows_inside_and_outside_a_band():
    from mempkg.studies.three_regimes import densest_windows

    sigmas = np.geomspace(0.01, 10, 10)
    rate = np.array([0, 5, 5, 0, 1, 2, 0, 0, 0, 0], float)
    inside = np.zeros(10, bool)
    inside[4:6] = True                                    # the band: two grid points holding 3 of 13
    best, outside = densest_windows(sigmas, rate, inside)
    assert best == (sigmas[1], sigmas[2], 10 / 13)
    assert outside == (sigmas[1], sigmas[2], 10 / 13)    # the densest pair lies outside the band
    inside[:] = False
    inside[1:3] = True
    assert densest_windows(sigmas, rate, inside)[1] == (sigmas[4], sigmas[5], 3 / 13)
    inside[:] = True
    assert densest_windows(sigmas, rate, inside)[1] is None
