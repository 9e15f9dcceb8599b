"""Chapters on a reader's own model: a DDPMPipeline saved with save_pretrained and two image folders,
passed to the chapter with papermill and nothing else changed (the worked example of use_your_model.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from reader_helpers import captioned_folders, image_folder
from tiny_models import save_tiny_ddpm

ROOT = Path(__file__).resolve().parents[1]


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
    assert str(reader["model"]) in shown and str(reader["train_images"]) in shown and "trained here" not in shown, \
        "the outputs must describe the reader's model and images, never the chapter's own"
    assert "retrains the chapter's own network" in shown, "the page must say why the role swap was skipped"
    assert summary["model"]["class"] == "DDPMScoreModel"


def test_a_model_without_its_images_is_refused_with_a_message(reader, tmp_path, monkeypatch):
    papermill = pytest.importorskip("papermill")
    monkeypatch.setenv("MEMPKG_RESULTS", str(tmp_path / "results"))
    with pytest.raises(papermill.PapermillExecutionError, match="needs train_images"):
        run_chapter("02_cifar10_overfit", tmp_path / "02.ipynb", model=str(reader["model"]))


@pytest.fixture(scope="module")
def memorizing(tmp_path_factory):
    """A reader's DDPMPipeline that memorizes: the book's digits UNet trained (denoising score matching, 800
    full-batch steps, ~15 s) on 4 digits, saved with save_pretrained; its training folder holds those 4 and 4
    other digits it never saw, its held-out folder 8 more."""
    from diffusers import DDPMPipeline, DDPMScheduler

    from mempkg import VPSDE
    from mempkg.data.images import load_images
    from mempkg.models.adapters import image_score_model
    from mempkg.models.networks import unet_eps
    from mempkg.models.train import train_dsm
    root = tmp_path_factory.mktemp("memorizing")
    digits = load_images("digits", "train").x[:16]
    unet = unet_eps((1, 8, 8), "digits", seed=0)
    train_dsm(image_score_model(unet, VPSDE()), VPSDE(), digits[:4], 800, lr=2e-3, batch_size=None, seed=0,
              progress=False)
    DDPMPipeline(unet=unet, scheduler=DDPMScheduler(num_train_timesteps=1000)).save_pretrained(root / "pipe")
    folders = {}
    for name, rows in (("train", range(0, 8)), ("heldout", range(8, 16))):
        (root / name).mkdir()
        for i in rows:
            pixels = ((digits[i, 0].clamp(-1, 1) + 1) * 127.5).round().byte().numpy()
            Image.fromarray(pixels, "L").save(root / name / f"{i:02d}.png")
        folders[name] = root / name
    return {"model": root / "pipe", "train_images": folders["train"], "heldout_images": folders["heldout"]}


def test_chapter_05_runs_on_a_saved_ddpm_pipeline_read_on_edm_s_clock(memorizing, tmp_path, monkeypatch):
    monkeypatch.setenv("MEMPKG_RESULTS", str(tmp_path / "results"))
    run_chapter("05_three_lenses", tmp_path / "05.ipynb", **{k: str(v) for k, v in memorizing.items()})
    summary = json.loads((tmp_path / "results" / "tiny" / "05_three_lenses" / "summary.json").read_text())
    assert summary["model"]["source"] == str(memorizing["model"]) and summary["model"]["class"] == "DDPMScoreModel"
    assert summary["positive_class"] == "memorized by generation"
    assert summary["n_unique"] == 8 and 1 <= summary["n_memorized"] <= 7
    assert summary["planted_k"] is None and "no planted duplicates" in summary["planted_k_reason"]
    assert all(0.0 <= summary[f"auroc_{k}"] <= 1.0 for k in ("flipd", "volume", "onestep", "reproduction", "png"))


def test_chapter_05_says_plainly_when_the_model_copies_nothing(reader, tmp_path, monkeypatch):
    papermill = pytest.importorskip("papermill")
    monkeypatch.setenv("MEMPKG_RESULTS", str(tmp_path / "results"))
    with pytest.raises(papermill.PapermillExecutionError, match="no memorized class"):
        run_chapter("05_three_lenses", tmp_path / "05.ipynb", **{k: str(v) for k, v in reader.items()})


def test_chapter_04_runs_on_a_saved_sd_pipeline(tmp_path, monkeypatch):
    """Chapter 04 runs on a saved Stable Diffusion pipeline with image folders and captions."""
    from tiny_models import save_tiny_sd
    sd = save_tiny_sd(tmp_path / "sd_root")
    mem, non, captions = captioned_folders(tmp_path, 4, 40, "a photo number {i} of {f.parent.name}", "a picture {i}")
    monkeypatch.setenv("MEMPKG_RESULTS", str(tmp_path / "results"))
    nb = run_chapter("04_laion_verbatims", tmp_path / "04.ipynb", model=str(sd), memorized_images=str(mem),
                     nonmemorized_images=str(non), captions=str(captions))
    summary = json.loads((tmp_path / "results" / "tiny" / "04_laion_verbatims" / "summary.json").read_text())
    assert summary["model"] == "reader" and summary["model_description"]["source"] == str(sd)
    assert summary["model_description"]["class"] == "StableDiffusion"
    assert summary["n_memorized"] == 4 and summary["n_nonmemorized"] == 4
    assert 0.0 <= summary["auroc_flipd_cond"] <= 1.0
    shown = json.dumps([c.get("outputs", []) for c in nb["cells"]])
    assert str(sd) in shown and str(mem) in shown and "captions.csv" in shown, "the outputs must name the reader's files"
    assert "distinct training digits" not in shown, "the outputs must never describe the chapter's own training set"
    from mempkg.book.scorecard import decide
    assert set(decide("04_laion_verbatims", summary).values()) == {"stand-in"}, \
        "a reader's model on the reader's images is not the paper's setting: every row is a stand-in"
