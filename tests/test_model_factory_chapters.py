"""Chapters 02, 04 and 05 on a reader's model from ``model_factory="package.module:function"``: an EDM denoiser
that memorizes four of its training folder's images (the empirical optimal denoiser of those four, with a small
convolution beside it), and a tiny Stable Diffusion built by a factory. Each study runs its reader path on them
with tiny settings; the wrong kind of model, or both ``model`` and ``model_factory``, stops it at once."""

from __future__ import annotations

import dataclasses
import itertools
import textwrap

import pytest
import torch
from reader_helpers import captioned_folders, image_folder
from tiny_models import save_tiny_ddpm, save_tiny_sd

from mempkg.book import profiles
from mempkg.book.cache import Cache
from mempkg.core.digests import content_digest
from mempkg.models.factory import load_factory_model
from mempkg.studies import laion_verbatims, three_lenses, volume_growth

NAMES = itertools.count()

FACTORIES = '''
import torch
from torch import nn

import mempkg
from mempkg.data.images import load_image_folder


class Memorizing(nn.Module):
    """D(x, sigma) = sum_i w_i(x, sigma) y_i + 1e-3 conv(x), w = softmax(-|x - y_i|^2 / (2 sigma^2)): the
    optimal denoiser of the points y_i, which a sampler copies."""

    def __init__(self, points):
        super().__init__()
        torch.manual_seed(0)
        self.register_buffer("points", points)
        self.conv = nn.Conv2d(points.shape[1], points.shape[1], 3, padding=1)

    def forward(self, x, sigma):
        y = self.points.flatten(1).to(x)
        d2 = torch.cdist(x.flatten(1), y) ** 2
        w = torch.softmax(-d2 / (2 * sigma[:, None].to(x) ** 2), dim=1)
        return (w @ y).view_as(x) + 1e-3 * self.conv(x)


def edm(device="cpu"):
    points = load_image_folder({train!r}, 8, 3).x[:4]
    return mempkg.EDMDenoiser(Memorizing(points).to(device), sigma_data=0.5, data_shape=(3, 8, 8))


def edm_without_denoise():
    model = edm()
    return Score(model)


class Score:
    """Only the protocol: sde and score, on EDM's clock."""

    def __init__(self, model):
        self.sde, self.score, self.data_shape, self.net = model.sde, model.score, model.data_shape, model.net


def sd(device="cpu"):
    return mempkg.load_stable_diffusion({sd!r}, device=device)
'''


@pytest.fixture(scope="module")
def reader(tmp_path_factory):
    """Image folders (8 training, 8 held-out, RGB), a captioned pair of folders for chapter 04, a saved tiny
    DDPM pipeline, and a module of factories on the Python path."""
    root = tmp_path_factory.mktemp("factory_reader")
    train, heldout = image_folder(root / "train", 8, 0), image_folder(root / "heldout", 8, 1)
    mem, non, _ = captioned_folders(root, 3, 20, "a cat number {i}", "a dog {i}")
    name = f"reader_models_{next(NAMES)}"
    (root / f"{name}.py").write_text(textwrap.dedent(FACTORIES).format(train=str(train),
                                                                       sd=str(save_tiny_sd(root / "sd_root"))))
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(root))
        yield {"name": name, "train_images": train, "heldout_images": heldout, "memorized_images": mem,
               "nonmemorized_images": non, "captions": root / "captions.csv", "ddpm": save_tiny_ddpm(root)}


def folders(reader, *keys):
    return {k: str(reader[k]) for k in keys}


def test_chapter_02_runs_on_an_edm_factory_read_on_the_vp_clock(reader, tmp_path):
    """The EDM model is read through VPView up to the VP time of its sigma_max, L and the loss are finite, the
    run describes the factory's model by its spec and weights, and a second run with a fresh build of the same
    weights reads every cached result back (the cache keys the model by content, not by name)."""
    spec = f"{reader['name']}:edm"
    S = dataclasses.replace(profiles.CHAPTERS["volume_growth"]["tiny"], n_samples=16, sample_steps=5)
    cache = Cache(tmp_path, device="cpu")
    run = lambda: volume_growth.run(S, seed=0, device="cpu", cache=cache, model_factory=spec,  # noqa: E731
                                    **folders(reader, "train_images", "heldout_images"))
    r = run()
    assert r.reader and r.L_swap is None
    assert torch.isfinite(r.L).all() and torch.isfinite(r.L_volume).all() and torch.isfinite(r.loss).all()
    assert r.model["source"] == spec and r.model["class"] == "EDMDenoiser"
    assert r.model["weights_digest"] == content_digest(load_factory_model(spec))
    start, end = (float(v) for v in r.inputs.loc["probability-flow ODE, VP time", "value"].split(" to "))
    assert start == S.t_start and 0.9 < end < 0.95, "the ODE ends at the VP time of sigma_max = 80, not at t = 1"
    assert r.summary["n_planted"] is None and r.summary["n_memorized_found"] >= 1
    misses = cache.misses
    run()
    assert cache.misses == misses, "a fresh build of the same weights must read the cached results back"


def test_chapter_05_runs_on_an_edm_factory_on_its_own_clock(reader, tmp_path):
    """An EDMDenoiser is read as it is (no EDMView): its schedule's sigma range is the table's, its samples copy
    some of the four images it memorized, and every lens scores finitely."""
    import numpy as np
    spec = f"{reader['name']}:edm"
    S = dataclasses.replace(profiles.CHAPTERS["three_lenses"]["tiny"], n_generations=16)
    R = three_lenses.run(S, seed=0, device="cpu", cache=Cache(tmp_path, device="cpu"), model_factory=spec,
                         **folders(reader, "train_images", "heldout_images"))
    assert type(R.data.net).__name__ == "EDMDenoiser"
    assert R.data.table.loc["sigma range on EDM's clock", "value"] == "0.002 to 80"
    assert R.summary["model"]["source"] == spec and R.summary["positive_class"] == "memorized by generation"
    assert 1 <= R.summary["n_memorized"] <= 4 and R.reference.memorized[4:].sum() == 0, \
        "only the four images the denoiser holds can be copied"
    assert all(np.isfinite(v).all() for v in R.scores.train.values())


def test_chapter_05_refuses_an_edm_clock_model_without_a_denoiser(reader, tmp_path):
    with pytest.raises(ValueError, match="no denoise method: wrap D in mempkg.EDMDenoiser"):
        three_lenses.run(profiles.CHAPTERS["three_lenses"]["tiny"], seed=0, device="cpu", cache=Cache(tmp_path),
                         model_factory=f"{reader['name']}:edm_without_denoise",
                         **folders(reader, "train_images", "heldout_images"))


def test_chapter_04_loads_a_factory_s_stable_diffusion_with_its_image_side(reader, tmp_path):
    """The factory's StableDiffusion is read with the reader's folders; the images are resized to its latent
    side times the VAE's factor (8 x 2 = 16 px for the tiny pipeline)."""
    spec = f"{reader['name']}:sd"
    sets = laion_verbatims.load_sets(profiles.CHAPTERS["laion_verbatims"]["tiny"], seed=0, device="cpu",
                                     cache=Cache(tmp_path), model_factory=spec,
                                     **folders(reader, "memorized_images", "nonmemorized_images", "captions"))
    assert sets.source == "reader" and type(sets.model).__name__ == "StableDiffusion"
    assert sets.image_size == 16 == sets.model.data_shape[-1] * sets.model.vae_scale
    assert sets.about.loc["model", "value"] == spec
    assert [len(s) for s in sets.sets.values()] == [3, 3] and sets.previews[sets.memorized].shape[0] == 3
    z = sets.model.encode_images(sets.sets[sets.memorized].images(size=sets.image_size))
    assert tuple(z.shape[1:]) == sets.model.data_shape


@pytest.mark.slow
def test_chapter_04_runs_on_a_factory_s_stable_diffusion(reader, tmp_path):
    """The whole chapter on the factory's model (about 30 s on 2 CPU cores): a stand-in run on the reader's
    files, described by the factory's spec."""
    import numpy as np
    spec = f"{reader['name']}:sd"
    R = laion_verbatims.run(profiles.CHAPTERS["laion_verbatims"]["tiny"], seed=0, device="cpu",
                            cache=Cache(tmp_path), model_factory=spec, n_boot=20,
                            **folders(reader, "memorized_images", "nonmemorized_images", "captions"))
    assert R.summary["model"] == "reader" and R.summary["model_description"]["source"] == spec
    assert R.summary["model_description"]["class"] == "StableDiffusion"
    assert R.summary["n_memorized"] == 3 and R.summary["n_nonmemorized"] == 3
    assert all(np.isfinite(v).all() for sc in R.scores.values() for v in sc.values())


@pytest.mark.parametrize("study,kw", [
    (volume_growth, dict(train_images="t", heldout_images="h")),
    (three_lenses, dict(train_images="t", heldout_images="h")),
    (laion_verbatims, dict(memorized_images="m", nonmemorized_images="n", captions="c"))],
    ids=["02", "05", "04"])
def test_model_and_model_factory_together_are_refused_before_any_work(study, kw, tmp_path):
    """Checked first: neither the pipeline folder nor the factory's module exists, and nothing is loaded."""
    S = profiles.CHAPTERS[study.__name__.rsplit(".", 1)[1]]["tiny"]
    with pytest.raises(ValueError, match="takes model= .* or model_factory= .*not both"):
        study.run(S, seed=0, device="cpu", cache=Cache(tmp_path), model="no/such/folder",
                  model_factory="no_such_module:edm", **kw)


def test_the_wrong_kind_of_factory_model_names_the_chapter_to_use(reader, tmp_path):
    """A pixel-space model to chapter 04 names chapters 02 and 05; Stable Diffusion to chapter 02 or 05 names
    chapter 04; a factory without the image folders says which folder is missing."""
    with pytest.raises(ValueError, match="EDMDenoiser, an unconditional model: chapters 02 and 05 take those"):
        laion_verbatims.load_sets(profiles.CHAPTERS["laion_verbatims"]["tiny"], seed=0, device="cpu",
                                  cache=Cache(tmp_path), model_factory=f"{reader['name']}:edm",
                                  **folders(reader, "memorized_images", "nonmemorized_images", "captions"))
    for study, chapter in ((volume_growth, "Chapter 02"), (three_lenses, "Chapter 05")):
        S = profiles.CHAPTERS[study.__name__.rsplit(".", 1)[1]]["tiny"]
        with pytest.raises(ValueError, match=f"{chapter} reads an unconditional pixel-space model.*StableDiffusion, "
                                             "a text-conditional model.*use chapter 04"):
            study.run(S, seed=0, device="cpu", cache=Cache(tmp_path), model_factory=f"{reader['name']}:sd",
                      **folders(reader, "train_images", "heldout_images"))
    with pytest.raises(ValueError, match="Chapter 02 with model_factory=.* needs train_images"):
        volume_growth.run(profiles.CHAPTERS["volume_growth"]["tiny"], seed=0, device="cpu", cache=Cache(tmp_path),
                          model_factory=f"{reader['name']}:edm")
