"""Chapters on a reader's own model: a DDPMPipeline saved with save_pretrained and two image folders,
passed to the chapter with papermill and nothing else changed (the worked example of use_your_model.md)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tiny_models import save_tiny_ddpm

ROOT = Path(__file__).resolve().parents[1]


def image_folder(folder: Path, n: int, seed: int, size: int = 12) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{i:03d}.png")
    return folder


@pytest.fixture(scope="module")
def reader(tmp_path_factory):
    root = tmp_path_factory.mktemp("reader")
    return {"model": save_tiny_ddpm(root / "pipe", channels=3, size=8),
            "train_images": image_folder(root / "train", 10, 0), "heldout_images": image_folder(root / "heldout", 10, 1)}


def run_chapter(notebook: str, out: Path, **parameters) -> dict:
    jupytext = pytest.importorskip("jupytext")
    papermill = pytest.importorskip("papermill")
    return papermill.execute_notebook(jupytext.read(ROOT / "notebooks" / f"{notebook}.py"), str(out),
                                      parameters=dict(profile="tiny", **parameters), kernel_name="python3",
                                      language="python", cwd=str(ROOT), progress_bar=False)


def test_chapter_02_runs_on_a_saved_ddpm_pipeline_and_describes_it(reader, tmp_path, monkeypatch):
    from mempkg.core.digests import content_digest
    from mempkg.models.pretrained import load_pretrained
    monkeypatch.setenv("MEMPKG_RESULTS", str(tmp_path / "results"))
    nb = run_chapter("02_cifar10_overfit", tmp_path / "02.ipynb", **{k: str(v) for k, v in reader.items()})
    summary = json.loads((tmp_path / "results" / "tiny" / "02_cifar10_overfit" / "summary.json").read_text())
    net, _ = load_pretrained(reader["model"], device="cpu")
    assert summary["model"]["source"] == str(reader["model"])
    assert summary["model"]["n_parameters"] == sum(p.numel() for p in net.parameters())
    assert summary["model"]["weights_digest"] == content_digest(net)
    assert summary["n_images_per_group"] == 8                        # the tiny profile's n_subset, from 10 each
    assert summary["auroc_swap"] is None and "retrains the chapter's own network" in summary["auroc_swap_reason"]
    assert summary["n_planted"] is None and summary["n_planted_found"] is None
    shown = json.dumps([c.get("outputs", []) for c in nb["cells"]])
    assert "This run reads the reader's model" in shown
    assert f"The model ({reader['model']}) has" in shown and "trained here" not in shown, \
        "the outputs must describe the reader's model, never the chapter's own"
    assert summary["model"]["class"] == "DDPMScoreModel"


def test_a_model_without_its_images_is_refused_with_a_message(reader, tmp_path, monkeypatch):
    papermill = pytest.importorskip("papermill")
    monkeypatch.setenv("MEMPKG_RESULTS", str(tmp_path / "results"))
    with pytest.raises(papermill.PapermillExecutionError, match="needs train_images"):
        run_chapter("02_cifar10_overfit", tmp_path / "02.ipynb", model=str(reader["model"]))
