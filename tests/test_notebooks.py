"""Every chapter notebook runs end to end under the tiny profile and leaves a sane summary.

The notebooks are executed by `make notebooks PROFILE=tiny` (papermill), exactly as the book
build executes them, once per session (see book_helpers.py).
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from book_helpers import EXECUTED, FAILED, NOTEBOOKS, PROFILE, RESULTS, error_outputs, executed_notebooks, report  # noqa: E402


@pytest.fixture(scope="session")
def notebooks_run():
    return executed_notebooks()


def numbers(value, key=""):
    """(key path, number) for every number in a JSON value, nested ones included."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from numbers(v, f"{key}.{k}" if key else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from numbers(v, f"{key}[{i}]")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield key, value


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_under_tiny(notebooks_run, notebook):
    executed = EXECUTED / f"{notebook.stem}.ipynb"
    failed = FAILED / f"{notebook.stem}.ipynb"
    if not executed.is_file():
        errors = error_outputs(failed) if failed.is_file() else []
        pytest.fail(f"{notebook} did not run under PROFILE={PROFILE}; "
                    f"errors: {errors or 'none recorded'}; partly executed copy: {failed}\n"
                    + report(notebooks_run))
    nb = json.loads(executed.read_text())
    assert not error_outputs(executed), f"error outputs in {executed}: {error_outputs(executed)}"
    assert nb["metadata"]["papermill"]["parameters"].get("profile") == PROFILE, \
        "papermill did not inject the profile: is there a cell tagged 'parameters'?"
    figures = [o for c in nb["cells"] for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert figures, f"{executed} shows no figure (did something replace the inline matplotlib backend?)"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_writes_finite_summary(notebooks_run, notebook):
    summary = RESULTS / PROFILE / notebook.stem / "summary.json"
    assert summary.is_file(), f"{notebook} wrote no {summary} (did it run? see the test above)"
    data = json.loads(summary.read_text())
    assert data.get("profile") == PROFILE
    values = list(numbers(data))
    assert values, f"{summary} holds no number"
    not_finite = [k for k, v in values if not math.isfinite(v)]
    assert not not_finite, f"not finite in {summary}: {not_finite}"


# The keys each chapter's issue asks its summary.json to hold (what the scorecard reads).
REQUIRED_KEYS = {
    "01_von_mises": ["flipd_isolated", "flipd_median_others", "verdicts", "n_true_density_copying_isolated",
                     "p_copies_vs_true_density", "flipd_isolated_by_seed", "p_copies_vs_true_density_by_seed"],
    "02_cifar10_overfit": ["L_trained_mean", "L_heldout_mean", "p_trained_vs_heldout", "auroc_trained_vs_heldout",
                           "p_one_axis_one_step", "auroc_one_axis_one_step", "auroc_memorized_vs_other",
                           "n_images_per_group", "verdicts"],
    "03_three_regimes": ["danger_zone_low", "danger_zone_high", "peak_memorization_sigma", "peak_memorization_rate",
                         "mse_gap_peak_sigma", "mem_rate_baseline", "mem_rate_gap", "mem_rate_dummy",
                         "fd_baseline", "fd_gap", "fd_dummy", "memorization_share_in_zone", "zone_share_of_grid",
                         "verdicts", "w_points", "shell_c", "swap", "seeds_per_arm", "mem_rate_gap_by_seed",
                         "danger_zone_by_threshold_and_c", "max_share_outside_zone"],
    "04_laion_verbatims": ["auroc_flipd_cond", "auroc_flipd_uncond", "auroc_cfg_norm", "auroc_cfg_norm_generation",
                           "auroc_png", "n_memorized", "n_nonmemorized"],
    "05_three_lenses": ["auroc_flipd", "auroc_volume", "auroc_onestep", "auroc_png", "auroc_generation_flipd",
                        "planted_k", "spearman_flipd_volume",
                        "spearman_flipd_onestep", "spearman_volume_onestep"],
    "06_performance": ["flipd_cost_per_forward", "volume_cost_per_axis_step", "one_step_cost_per_sigma",
                       "volume_speedup", "wc_cost_per_distance", "wc_naive_speedup", "wc_cost_growth", "machine"],
}


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_summary_has_required_keys(notebooks_run, notebook):
    summary = RESULTS / PROFILE / notebook.stem / "summary.json"
    if not summary.is_file():
        pytest.fail(f"{notebook} wrote no {summary}")
    assert notebook.stem in REQUIRED_KEYS, f"add {notebook.stem}'s required summary keys to REQUIRED_KEYS"
    data = json.loads(summary.read_text())
    missing = [k for k in REQUIRED_KEYS[notebook.stem] if k not in data]
    assert not missing, f"{summary} lacks {missing}"


def test_scorecard_reads_every_chapter_of_the_run(notebooks_run):
    from mempkg.book.scorecard import scorecard

    rows = scorecard(PROFILE, RESULTS)          # raises if a summary lacks a key a claim reads
    not_run = sorted({r["notebook"] for r in rows if r["held"] == "not run"})
    standin = [r["key"] for r in rows if r["notebook"] == "04_laion_verbatims" and r["held"] != "stand-in"]
    assert not standin, f"the tiny run uses a stand-in for Stable Diffusion, yet {standin} were decided"
    assert not not_run, f"the scorecard finds no {PROFILE} summary for {not_run}"
    assert all(r["profile"] == PROFILE for r in rows)


def test_notebooks_run_several_at_once_and_the_performance_page_alone(notebooks_run):
    """`make notebooks` runs the chapters JOBS at a time (the cores' number), each with its share of the cores as
    torch threads; 06_performance times the estimators, so it starts after every other chapter has ended and
    has every core (the threads its cache records ran with)."""
    from datetime import datetime
    from itertools import accumulate

    executed = sorted(EXECUTED.glob("*.ipynb"))
    assert len(executed) == len(NOTEBOOKS), report(notebooks_run)
    times = {nb.stem: {k: datetime.fromisoformat(json.loads(nb.read_text())["metadata"]["papermill"][f"{k}_time"])
                       for k in ("start", "end")} for nb in executed}
    events = sorted([(t["start"], 1) for t in times.values()] + [(t["end"], -1) for t in times.values()])
    at_once = max(accumulate(step for _, step in events))       # an end sorts before a start at the same time
    cores = os.cpu_count() or 1
    assert at_once == min(cores, len(executed) - 1), at_once
    solo = times.pop("06_performance")
    assert all(t["end"] <= solo["start"] for t in times.values()), "06_performance overlapped another chapter"

    def threads(stem):
        return {json.loads(p.read_text()).get("threads") for p in (RESULTS / PROFILE / stem).glob("*.json")} - {None}

    assert threads("06_performance") == {cores}
    assert threads("02_cifar10_overfit") == {max(cores // min(cores, len(executed) - 1), 1)}
