"""The timing helpers measure relative cost, and every ratio dict of mempkg.book.perf holds its promised,
positive, finite numbers at tiny sizes."""

from __future__ import annotations

import math
import time

import pytest
import torch

from mempkg.book import perf


def _finite_positive(d: dict, where: str) -> None:
    for k, v in d.items():
        assert isinstance(v, float) and math.isfinite(v) and v > 0, f"{where}[{k!r}] = {v!r}"


def test_timed_together_sees_k_times_the_work():
    a = torch.randn(160, 160, dtype=torch.float64)

    def work(k):
        for _ in range(k):
            torch.mm(a, a)
            time.sleep(0.002)          # sleeps keep the ratio readable on a loaded machine

    t = perf.timed_together({"1x": lambda: work(1), "4x": lambda: work(4)}, repeats=7)
    assert 2.5 < t["4x"] / t["1x"] < 6.0, t


def test_timed_together_counts_rounds_and_skips_warmup():
    calls = {"f": 0}

    def f():
        calls["f"] += 1
        time.sleep(0.05 if calls["f"] == 1 else 0.001)     # only the warm-up call is slow

    t = perf.timed_together({"f": f}, repeats=3, min_time=0)
    assert calls["f"] == 4 and t["f"] < 0.02
    assert perf.clock(lambda: time.sleep(0.003), repeats=2) >= 0.003
    # a fast function is called several times per round and timed per call
    calls["g"] = 0

    def g():
        calls["g"] += 1
        time.sleep(0.001)

    t = perf.timed_together({"g": g}, repeats=2, min_time=0.01)
    assert calls["g"] > 3 and 0.001 <= t["g"] < 0.01
    with pytest.raises(ValueError, match="repeats"):
        perf.timed_together({"f": f}, repeats=0)


def test_machine_states_cpu_threads_torch_and_device():
    m = perf.machine("cpu")
    assert "thread" in m and f"torch {torch.__version__}" in m and "device cpu" in m and "cores" in m
    assert perf.cpu_name() in m
    assert len(perf.code_digest()) == 16


def test_estimator_costs_rows_at_tiny_sizes():
    out = perf.estimator_costs(["mlp_2", "tiny_sd"], batch=2, exact_max_dim=2, n_axes=2, n_steps=1, n_sigmas=1,
                               n_train=20, repeats=1)
    assert out["machine"] == perf.machine("cpu") and out["measured_at"]
    mlp, sd = out["rows"]
    assert mlp["D"] == 2 and sd["D"] == 64 and mlp["batch"] == 2
    assert set(mlp["costs"]) == {"FLIPD, 1 probe, jvp", "FLIPD, 1 probe, vjp", "FLIPD, exact, jvp", "FLIPD, exact, vjp",
                                 perf.FLIPD_LIMIT, "volume growth per axis-step, finite",
                                 "volume growth per axis-step, jvp", "one-step memorization per sigma"}
    # the text-conditional model has the CFG norm, no denoiser, and D = 64 > exact_max_dim
    assert set(sd["costs"]) == {"FLIPD, 1 probe, jvp", "FLIPD, 1 probe, vjp", perf.FLIPD_LIMIT,
                                "volume growth per axis-step, finite", "volume growth per axis-step, jvp",
                                "CFG norm (3 Euler steps)"}
    for r in out["rows"]:
        _finite_positive(r["costs"], r["name"])
        _finite_positive(r["seconds"], r["name"])


def test_flipd_cost_keeps_the_benchmark_columns():
    out = perf.flipd_cost(["mlp_2"], batch=2, repeats=1)
    (row,) = out["rows"]
    assert {"model", "D", "batch", "forward_seconds", "1 probe, jvp", "1 probe, vjp", "exact, jvp",
            "exact, vjp", perf.FLIPD_LIMIT} <= set(row)


def test_volume_speedup_rows_and_agreement():
    out = perf.volume_speedup(["mlp_64"], images=2, axes=3, steps=2, repeats=1)
    (row,) = out["rows"]
    assert set(row["seconds"]) == {"authors", "finite", "jvp", "limit, per image", "limit, one call"}
    _finite_positive({k: row[k] for k in ("speedup_finite", "speedup_jvp", "authors_per_limit", "finite_per_limit",
                                          "jvp_per_limit", "images_per_second_finite")}, "volume_speedup")
    t = row["seconds"]
    lim = min(t["limit, per image"], t["limit, one call"])
    assert row["speedup_finite"] == t["authors"] / t["finite"] and row["finite_per_limit"] == t["finite"] / lim
    assert row["max_rel_diff_L"] < 1e-5          # the batched estimator computes the authors' numbers (float32)


def test_regimes_cost_and_scaling_at_tiny_sizes():
    cost = perf.regimes_cost(train=200, queries=20, dim=16, sigmas=6, naive_sigmas=2, repeats=1)
    assert set(cost["ratios"]) == {"W and C on the grid / one distance matrix",
                                   "W and C, float64 sigma pass / one distance matrix",
                                   "naive (distances per sigma) / one distance matrix",
                                   "speed-up of the one-pass estimator over the naive one",
                                   "speed-up of W and C with the float32 sigma pass over float64 (whole estimator)"}
    _finite_positive(cost["ratios"], "regimes_cost")
    scaling = perf.regimes_scaling(train_sizes=[200, 100], queries=20, dim=16, sigmas=6, repeats=1)
    assert [r["N"] for r in scaling["rows"]] == [100, 200]
    assert scaling["rows"][0]["wc_growth"] == 1.0 and scaling["rows"][1]["N_growth"] == 2.0
    for r in scaling["rows"]:
        _finite_positive({k: float(v) for k, v in r.items() if k != "N"}, f"N={r['N']}")


def test_unknown_names_fail_early():
    with pytest.raises(ValueError, match="Unknown benchmark model"):
        perf.bench_model("resnet", 2)
    with pytest.raises(ValueError, match="Unknown estimators"):
        perf.estimator_costs(["mlp_2"], estimators=["flipd", "fid"])
