"""The cost study (mempkg.studies.performance): the clock times what it is given, a cost in forward
passes counts the network calls when every call costs the same, and chapter 06's run returns its tables
and summary at tiny sizes."""

from __future__ import annotations

import dataclasses
import math
import time

import pytest
import torch
from torch import nn

from mempkg.book.profiles import CHAPTERS
from mempkg.studies import performance

SLEEP = 0.03         # seconds per network call: far above everything else a call does at these sizes


class FixedCostNet(nn.Module):
    """An eps-network whose every call sleeps SLEEP seconds and is linear in x."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(0.5))

    def forward(self, x, c_noise, *cond):
        time.sleep(SLEEP)
        return self.w * x


@pytest.fixture
def fixed_cost_model(monkeypatch):
    """``fixed`` among the study's models, timed at one torch thread (the machine may be shared)."""
    monkeypatch.setitem(performance.MODELS, "fixed", ("fixed-cost network, D = 4", (4,), lambda s: FixedCostNet()))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield "fixed"
    torch.set_num_threads(threads)


def test_timed_together_sees_k_times_the_work():
    a = torch.randn(160, 160, dtype=torch.float64)

    def work(k):
        for _ in range(k):
            torch.mm(a, a)
            time.sleep(0.002)          # sleeps keep the ratio readable on a loaded machine

    t = performance.timed_together({"1x": lambda: work(1), "4x": lambda: work(4)}, repeats=7)
    assert 2.5 < t["4x"] / t["1x"] < 6.0, t


def test_timed_together_skips_the_warmup_and_repeats_fast_calls():
    calls = {"f": 0, "g": 0}

    def f():
        calls["f"] += 1
        time.sleep(0.05 if calls["f"] == 1 else 0.001)     # only the warm-up call is slow

    def g():
        calls["g"] += 1
        time.sleep(0.001)

    assert performance.timed_together({"f": f}, repeats=3, min_time=0)["f"] < 0.02 and calls["f"] == 4
    t = performance.timed_together({"g": g}, repeats=2, min_time=0.01)
    assert calls["g"] > 3 and 0.001 <= t["g"] < 0.01, "a fast call is repeated within a round, timed per call"
    with pytest.raises(ValueError, match="repeats"):
        performance.timed_together({"f": f}, repeats=0)


def test_a_cost_in_forward_passes_counts_the_network_calls(fixed_cost_model):
    """FLIPD (1 probe, jvp or vjp) and its limit call the network once, one-step memorization once per
    sigma, volume growth by finite differences once per step for N axes: 1, 1, 1, 1/N forward passes."""
    out = performance.estimator_costs([fixed_cost_model], batch=2, estimators=("flipd", "volume", "one_step"),
                                      n_axes=4, n_steps=2, n_sigmas=2, n_train=10, repeats=1)
    (row,) = out["rows"]
    c = row["costs"]
    assert row["D"] == 4 and row["forward_seconds"] == pytest.approx(SLEEP, rel=0.5)
    for name in ("FLIPD, 1 probe, jvp", "FLIPD, 1 probe, vjp", performance.FLIPD_LIMIT,
                 "one-step memorization per sigma"):
        assert c[name] == pytest.approx(1.0, rel=0.35), (name, c)
    assert c["volume growth per axis-step, finite"] == pytest.approx(1 / 4, rel=0.35), c


def test_authors_loop_calls_per_image_volume_growth_once(fixed_cost_model):
    """B images: the authors' loop calls the network B times per Euler step, volume_growth once (its
    limit), and the jvp twice (tangents, then the centre); both compute the same L."""
    out = performance.volume_speedup([fixed_cost_model], images=3, axes=2, steps=2, repeats=1)
    (row,) = out["rows"]
    assert row["authors_per_limit"] == pytest.approx(3, rel=0.3), row
    assert row["finite_per_limit"] == pytest.approx(1, rel=0.3), row
    assert row["jvp_per_limit"] == pytest.approx(2, rel=0.3), row
    assert row["speedup_finite"] == pytest.approx(3, rel=0.3) and row["max_rel_diff_L"] < 1e-9


def test_volume_speedup_on_a_real_network_agrees_with_the_authors_loop():
    out = performance.volume_speedup(["mlp_64"], images=2, axes=3, steps=2, repeats=1)
    (row,) = out["rows"]
    assert set(row["seconds"]) == {"authors", "finite", "jvp", "limit, per image", "limit, one call"}
    t = row["seconds"]
    assert row["finite_per_limit"] == t["finite"] / min(t["limit, per image"], t["limit, one call"])
    assert row["max_rel_diff_L"] < 1e-5          # the batched estimator computes the authors' numbers (float32)


def test_estimator_costs_rows_on_the_book_models_at_tiny_sizes():
    mlp = performance.estimator_costs(["mlp_2"], batch=2, exact_max_dim=2, n_axes=2, n_steps=1, n_sigmas=1,
                                      n_train=20, repeats=1)
    assert mlp["machine"] == performance.machine("cpu") and mlp["measured_at"]
    sd = performance.estimator_costs(["tiny_sd"], batch=2, estimators=("flipd_exact", "one_step", "cfg_norm"),
                                     exact_max_dim=2, repeats=1)
    (mlp,), (sd,) = mlp["rows"], sd["rows"]
    assert mlp["D"] == 2 and sd["D"] == 64 and mlp["batch"] == 2
    assert {"FLIPD, exact, jvp", "FLIPD, exact, vjp", "one-step memorization per sigma"} <= set(mlp["costs"])
    # the text-conditional model has the CFG norm, no denoiser, and D = 64 > exact_max_dim
    assert list(sd["costs"]) == ["CFG norm (3 Euler steps)"]
    for r in (mlp, sd):
        assert all(math.isfinite(v) and v > 0 for v in [*r["costs"].values(), *r["seconds"].values()]), r


def test_regimes_cost_and_scaling_at_tiny_sizes():
    cost = performance.regimes_cost(train=200, queries=20, dim=16, sigmas=6, naive_sigmas=2, repeats=1)
    assert len(cost["ratios"]) == 5 and all(math.isfinite(v) and v > 0 for v in cost["ratios"].values())
    assert cost["seconds"]["naive, extrapolated"] == pytest.approx(cost["seconds"]["naive, few sigmas"] * 3)
    scaling = performance.regimes_scaling(train_sizes=[200, 100], queries=20, dim=16, sigmas=6, repeats=1)
    assert [r["N"] for r in scaling["rows"]] == [100, 200]
    assert scaling["rows"][0]["wc_growth"] == 1.0 and scaling["rows"][1]["N_growth"] == 2.0


class NoCache:
    def get(self, name, params, compute, inputs=None):
        return compute()


def test_run_returns_the_chapter_tables_and_summary(tmp_path):
    S = dataclasses.replace(CHAPTERS["performance"]["tiny"], cost_models=("mlp_64",), headline_model="mlp_64",
                            volume_models=("mlp_64",), wc_train=100, wc_train_sizes=(50, 100), wc_queries=10,
                            wc_dim=8, wc_sigmas=4)
    R = performance.run(S, seed=0, device="cpu", cache=NoCache(), headline_images=1, headline_steps=1,
                        records=tmp_path)
    assert dataclasses.is_dataclass(R) and R.gpu.empty
    assert list(R.costs.columns) == [performance.MODELS["mlp_64"][0]] and len(R.volume.columns) == 2
    assert list(R.scaling.index) == [50, 100] and len(R.targets) == 6
    s = R.summary
    assert s["headline_model"] == s["volume_speedup_model"] == performance.MODELS["mlp_64"][0]
    assert s["wc_train_growth"] == 2.0 and s["volume_max_rel_diff_L"] < 1e-5 and "cfg_norm_cost_per_forward" not in s
    assert "volume_speedup_1x8x8" not in s, "the 1x8x8 UNet's keys only when the profile times it"


def test_unknown_names_fail_early():
    with pytest.raises(ValueError, match="Unknown benchmark model"):
        performance.bench_model("resnet", 2)
    with pytest.raises(ValueError, match="Unknown estimators"):
        performance.estimator_costs(["mlp_2"], estimators=["flipd", "fid"])
