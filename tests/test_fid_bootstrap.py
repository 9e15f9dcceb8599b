"""Chapter 03's Frechet distances with bootstrap standard errors, for Inception features as for the classifier's:
a fixed random projection stands in for Inception-v3, whose weights cannot be downloaded here."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
import types

import numpy as np
import pytest
import torch

from mempkg.book.profiles import CHAPTERS
from mempkg.data.images import load_images
from mempkg.estimators import quality
from mempkg.estimators.quality import frechet_distance, frechet_distance_bootstrap
from mempkg.studies import three_regimes

W = torch.randn(64, 16, generator=torch.Generator().manual_seed(0))   # 8x8 digits -> 16-d stand-in features


def stand_in(x, *args, **kwargs):
    """A deterministic feature map [N, 1, 8, 8] -> [N, 16], called like inception_features."""
    return x.float().flatten(1) @ W


class ModelCache:
    """``cache.model`` that builds the classifier and skips its training (its features are replaced anyway)."""

    def model(self, name, params, build, fit):
        return build(), {}


def _frechet_inputs():
    train, test = load_images("digits", "train"), load_images("digits", "test")
    cls_train, cls_test = train.x[train.labels == 3], test.x[test.labels == 3]
    g = torch.Generator().manual_seed(1)
    generations = {(name, sd): cls_train[:64] + noise * torch.randn(64, 1, 8, 8, generator=g)
                   for name, noise in (("baseline", 0.1), ("gap", 0.3), ("dummy", 1.0)) for sd in (0, 1)}
    return train, cls_train, cls_test, generations


def _frechet(fd_features, train, cls_train, cls_test, generations, boot_keys=None):
    S = dataclasses.replace(CHAPTERS["three_regimes"]["tiny"], fd_features=fd_features)
    return three_regimes._frechet(S, train, cls_train, cls_test, generations,
                                  list(generations) if boot_keys is None else boot_keys, seed=0, device="cpu",
                                  cache=ModelCache())


def test_inception_branch_bootstraps_its_features(monkeypatch):
    """fd is FD of the features, fd_se the bootstrap s.e. (finite, > 0), and it grows with the noise added."""
    monkeypatch.setattr(three_regimes, "inception_features", stand_in)
    train, cls_train, cls_test, generations = _frechet_inputs()
    q = _frechet("inception", train, cls_train, cls_test, generations)
    assert q["fd_name"] == "FID (Inception)" and q["accuracy"] is None
    ref = stand_in(cls_test)
    boots = frechet_distance_bootstrap([stand_in(g) for g in generations.values()], ref, seed=0)
    for i, (key, g) in enumerate(generations.items()):
        assert q["fd"][key] == pytest.approx(frechet_distance(stand_in(g), ref), rel=1e-12)
        assert np.isfinite(q["fd_se"][key]) and q["fd_se"][key] > 0
        assert q["fd_se"][key] == pytest.approx(boots[:, i].std(ddof=1), rel=1e-12)
    assert q["fd_copy"] == pytest.approx(frechet_distance(stand_in(cls_train), ref), rel=1e-12)
    assert q["fd"]["baseline", 0] < q["fd"]["gap", 0] < q["fd"]["dummy", 0]


def test_only_the_models_trained_with_one_seed_are_bootstrapped(monkeypatch):
    """The others' s.e. is taken over seeds: their bootstrap (30 minutes of the full profile) is not run."""
    monkeypatch.setattr(three_regimes, "inception_features", stand_in)
    inputs = _frechet_inputs()
    every = _frechet("inception", *inputs)
    some = _frechet("inception", *inputs, boot_keys=[("gap", 1)])
    assert some["fd"] == every["fd"]
    assert np.isfinite(some["fd_se"]["gap", 1]) and some["fd_se"]["gap", 1] > 0
    assert all(np.isnan(v) for k, v in some["fd_se"].items() if k != ("gap", 1))
    none = _frechet("inception", *inputs, boot_keys=[])
    assert all(np.isnan(v) for v in none["fd_se"].values())


def test_both_feature_branches_share_one_frechet_path(monkeypatch):
    """With the same feature map, the Inception and the classifier branch give the same FDs and errors."""
    monkeypatch.setattr(three_regimes, "inception_features", stand_in)
    monkeypatch.setattr(three_regimes, "classifier_features", lambda net, x: stand_in(x))
    inputs = _frechet_inputs()
    inc, clf = _frechet("inception", *inputs), _frechet("classifier", *inputs)
    assert clf["fd_name"] != inc["fd_name"] and 0.0 <= clf["accuracy"] <= 1.0
    for k in ("fd", "fd_se", "fd_copy"):
        assert inc[k] == pytest.approx(clf[k], rel=1e-12)


def test_inception_features_quantize_as_torchmetrics_normalize(monkeypatch):
    """[-1, 1] -> [0, 1] -> (x * 255).byte() (truncation, as FrechetInceptionDistance(normalize=True).update), in
    batches, into the FID module's ``.inception``; inception_fid is frechet_distance of those features."""
    seen = []

    def inception(u8):
        seen.append(u8)
        return u8.float().mean((2, 3))                  # [B, 3]

    inception.to = lambda device: inception
    fid = types.ModuleType("torchmetrics.image.fid")
    fid.FrechetInceptionDistance = lambda feature: types.SimpleNamespace(inception=inception)
    for name in ("torchmetrics", "torchmetrics.image"):
        monkeypatch.setitem(sys.modules, name, sys.modules.get(name) or types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "torchmetrics.image.fid", fid)
    x = torch.rand(10, 3, 4, 4, generator=torch.Generator().manual_seed(0)) * 2.2 - 1.1   # a little out of range
    f = quality.inception_features(x, batch_size=4)
    u8 = torch.cat(seen)
    assert [len(s) for s in seen] == [4, 4, 2] and u8.dtype == torch.uint8
    assert torch.equal(u8, (((x + 1) / 2).clamp(0, 1) * 255).byte())
    assert u8.max() == 255 and u8.min() == 0
    assert torch.equal(f, u8.float().mean((2, 3)))
    y = -x.flip(0)
    assert quality.inception_fid(x, y) == frechet_distance(f, quality.inception_features(y))
    with pytest.raises(ValueError, match="3, H, W"):
        quality.inception_features(torch.zeros(2, 1, 8, 8))


def _inception_weights_here() -> bool:
    if importlib.util.find_spec("torchmetrics") is None:
        return False
    try:
        quality.check_inception()
    except (ImportError, RuntimeError):
        return False
    return True


@pytest.mark.slow
def test_inception_fid_matches_torchmetrics_compute():
    """Where torchmetrics and its Inception weights are present: our FID equals FrechetInceptionDistance's own."""
    if not _inception_weights_here():
        pytest.skip("torchmetrics[image] with cached Inception weights is not available")
    from torchmetrics.image.fid import FrechetInceptionDistance

    g = torch.Generator().manual_seed(0)
    real = torch.rand(64, 3, 32, 32, generator=g) * 2 - 1
    fake = (real + 0.3 * torch.randn(64, 3, 32, 32, generator=g)).clamp(-1, 1)
    fid = FrechetInceptionDistance(feature=2048, normalize=True)
    fid.update((real + 1) / 2, real=True)
    fid.update((fake + 1) / 2, real=False)
    assert quality.inception_fid(real, fake) == pytest.approx(float(fid.compute()), rel=1e-3)


def test_the_full_profile_checks_inception_before_loading_or_training(monkeypatch):
    """Chapter 03 under `full` without torchmetrics stops first, naming the install command: no data loaded,
    nothing trained."""
    import sys

    def never(*a, **k):
        raise AssertionError("loaded data before checking the imports")
    monkeypatch.setattr(three_regimes, "load_images", never)
    monkeypatch.setitem(sys.modules, "torchmetrics.image.fid", None)
    with pytest.raises(ImportError, match=r"mempkg\[full\]"):
        three_regimes.run(CHAPTERS["three_regimes"]["full"], seed=0, device="cpu", cache=None)
