"""The `full` branch of the chapters, executed on CPU with stand-ins (issue: the GPU half, ready to run).

Each chapter runs with ``profile="full"`` and nothing changed but settings overrides that shrink steps and
sizes: the papers' architectures, data loaders and code paths run, at stand-in sizes. The data are written
here in the official formats. Slow-marked; `.ci/run` runs them (`make test PYTEST_ARGS="-m slow"`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from stand_ins import write_cifar10

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def run_full(notebook: str, tmp_path: Path, settings: dict, **parameters) -> dict:
    jupytext = pytest.importorskip("jupytext")
    papermill = pytest.importorskip("papermill")
    papermill.execute_notebook(jupytext.read(ROOT / "notebooks" / f"{notebook}.py"), str(tmp_path / f"{notebook}.ipynb"),
                               parameters=dict(profile="full", device="cpu", settings=settings, **parameters),
                               kernel_name="python3", language="python", cwd=str(ROOT), progress_bar=False)
    summary = json.loads((tmp_path / "results" / "full" / notebook / "summary.json").read_text())
    assert summary["profile"] == "full"
    (overridden,) = summary["settings_overridden"].values()          # the summary states the stand-in sizes
    assert overridden and all(settings[k] == v for k, v in overridden.items())
    return summary


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMPKG_RESULTS", str(tmp_path / "results"))
    return tmp_path


def test_chapter_01_full(results):
    s = run_full("01_von_mises", results, dict(train_steps=60, n_samples=200, sample_steps=40, n_curve=5,
                                              n_train_seeds=1))
    assert s["n_samples"] == 200 and "verdicts" in s


def test_chapter_02_full_on_a_cifar10_stand_in(results, monkeypatch):
    md5 = write_cifar10(results / "data", n_per_train_batch=8, n_test=20)
    monkeypatch.setenv("MEMPKG_DATA", str(results / "data"))
    settings = dict(data_md5=md5, n_subset=4, train_steps=2, warmup=1, batch_size=4, n_samples=4, sample_steps=3,
                    n_axes=2, n_steps=2, n_memorized_train=20, planted_steps=2, n_planted=2, n_copies=2,
                    batch_size_planted=8, ablation_axes=[1], ablation_steps=[1], ablation_radii=[0.05], n_ablation=4)
    s = run_full("02_cifar10_overfit", results, settings)
    assert s["n_images_per_group"] == 4 and s["n_axes"] == 2
    assert s["model"]["n_parameters"] > 35e6, "the full profile's DDPM CIFAR-10 UNet (35.7 M parameters)"


def test_chapter_06_full(results):
    s = run_full("06_performance", results, dict(
        cost_models=["mlp_2", "unet_1x8x8"], headline_model="unet_1x8x8", batch=2, n_axes=2, n_steps=1, n_sigmas=1,
        n_train=50, volume_models=["mlp_64"], volume_images=2, volume_axes=2, volume_steps=1, wc_train=200,
        wc_train_sizes=[100, 200], wc_queries=20, wc_dim=64, wc_sigmas=4, wc_naive_sigmas=1, repeats=1))
    assert "volume_speedup" in s


def test_chapter_05_full_on_a_cifar10_stand_in(results, monkeypatch):
    md5 = write_cifar10(results / "data", n_per_train_batch=8, n_test=20)
    monkeypatch.setenv("MEMPKG_DATA", str(results / "data"))
    settings = dict(data_md5=md5, n_singletons=10, n_per_count=1, counts=[2, 4], train_steps=2, batch_size=8,
                    n_test=20, n_heldout_scored=4, n_generations=8, sample_steps=3, n_sigmas=8, n_t0=3, n_curve=4,
                    curve_probes=1, flipd_probes=1, volume_axes=1, volume_steps=1, onestep_draws=1,
                    reproduction_steps=2, reproduction_draws=1, n_sweep=2, n_boot=10, n_show=2)
    s = run_full("05_three_lenses", results, settings)
    assert s["n_unique"] == 12 and s["model"]["n_parameters"] > 35e6
