"""`python -m mempkg score --model-factory package.module:function`: any score model a reader's function builds,
scored like a diffusers model (offline, tiny models)."""

import json
import math
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image
from cli_helpers import read, run
from tiny_models import save_tiny_sd

from mempkg.core.devices import resolve_device

FACTORIES = '''
import torch
from torch import nn
import mempkg


class Shrink(nn.Module):
    """A denoiser D(x, sigma) = x * c(sigma) with c = s_d^2 / (s_d^2 + sigma^2) times a learned 1x1 conv: for the
    Gaussian N(0, s_d^2 I), the exact denoiser when the conv is the identity."""

    def __init__(self, channels):
        super().__init__()
        self.mix = nn.Conv2d(channels, channels, 1)
        with torch.no_grad():
            self.mix.weight.copy_(torch.eye(channels)[:, :, None, None] + 0.01 * torch.randn(channels, channels, 1, 1))
            self.mix.bias.zero_()

    def forward(self, x, sigma):
        c = 0.25 / (0.25 + sigma.view(-1, 1, 1, 1) ** 2)
        return self.mix(x) * c


CALLS = []


def edm(device="cpu"):
    CALLS.append(device)
    torch.manual_seed(0)
    return mempkg.EDMDenoiser(Shrink(3).to(device), sigma_data=0.5, data_shape=(3, 8, 8))


def edm_no_device():
    return edm("cpu")


def edm_no_shape():
    return mempkg.EDMDenoiser(Shrink(3), sigma_data=0.5)


def not_a_model():
    return Shrink(3)


def sd(device="cpu"):
    return mempkg.load_stable_diffusion(SD_FOLDER, device=device)    # its side: data_shape x vae_scale
'''


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("factory_cli")
    sd = save_tiny_sd(root)
    (root / "reader_models.py").write_text(f"SD_FOLDER = {str(sd)!r}\n" + textwrap.dedent(FACTORIES))
    folder = root / "imgs"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(
            folder / f"i{i}.png")
    (root / "captions.csv").write_text("file,caption\n" + "".join(f"i{i}.png,a cat {i}\n" for i in range(3)))
    return root


@pytest.fixture
def on_path(setup, monkeypatch):
    monkeypatch.syspath_prepend(str(setup))
    monkeypatch.chdir(setup)
    return setup


@pytest.mark.parametrize("metric, extra", [("flipd", ["--probes", "exact"]),
                                           ("volume", ["--axes", "2", "--steps", "3"])])
def test_an_edm_denoiser_from_a_factory_is_scored(on_path, metric, extra, tmp_path):
    out = tmp_path / f"{metric}.csv"
    assert run("--model-factory", "reader_models:edm", "--images", on_path / "imgs", "--metric", metric, *extra,
               "--out", out) == 0
    rows = read(out)
    column = {"flipd": "flipd", "volume": "log_volume_growth"}[metric]
    assert len(rows) == 3 and all(math.isfinite(float(r[column])) for r in rows)
    assert {r["model"] for r in rows} == {"reader_models:edm"}
    assert len({r["weights"] for r in rows}) == 1 and len(rows[0]["weights"]) == 16
    record = json.loads((tmp_path / f"{metric}.csv.json").read_text())
    assert record["model"]["kind"] == "factory" and record["model"]["class"] == "EDMDenoiser"
    assert record["model"]["data_shape"] == [3, 8, 8]


def test_flipd_of_the_exact_gaussian_denoiser_is_the_known_answer(on_path, tmp_path, monkeypatch):
    """With the 1x1 conv the identity, D is the exact denoiser of N(0, s^2 I): the score is -x / (s^2 + t^2), so
    FLIPD(x, t0) = D + t0^2 [tr grad s + |s|^2] = D s^2 / (s^2 + t0^2) + t0^2 |x|^2 / (s^2 + t0^2)^2, with t the
    EDM time (sigma) and D = 192; the CLI reads --t0 on the model's own clock by default."""
    import reader_models

    def exact(device="cpu"):
        m = reader_models.edm(device)
        with torch.no_grad():
            m.net.mix.weight.copy_(torch.eye(3)[:, :, None, None])
        return m
    monkeypatch.setattr(reader_models, "exact", exact, raising=False)
    out = tmp_path / "f.csv"
    assert run("--model-factory", "reader_models:exact", "--images", on_path / "imgs", "--metric", "flipd",
               "--probes", "exact", "--t0", "0.3", "--out", out) == 0
    rows = read(out)
    assert {r["t0_reading"] for r in rows} == {"scheduler"} and float(rows[0]["sigma_t0"]) == pytest.approx(0.3)
    from mempkg.cli.inputs import load_pixels
    for r in rows:
        x = torch.from_numpy(load_pixels(on_path / "imgs" / r["file"], 8).copy()).double().div(127.5).sub(1)
        s2, t2 = 0.25, 0.09
        expected = 192 * s2 / (s2 + t2) + t2 * float(x.pow(2).sum()) / (s2 + t2) ** 2
        assert float(r["flipd"]) == pytest.approx(expected, rel=1e-4)


def test_the_factory_is_called_with_the_device_when_it_takes_one(on_path, tmp_path):
    import reader_models
    reader_models.CALLS.clear()
    assert run("--model-factory", "reader_models:edm", "--images", on_path / "imgs", "--metric", "flipd",
               "--device", "cpu", "--out", tmp_path / "a.csv") == 0
    assert reader_models.CALLS == ["cpu"]
    assert run("--model-factory", "reader_models:edm_no_device", "--images", on_path / "imgs", "--metric", "flipd",
               "--out", tmp_path / "b.csv") == 0
    assert read(tmp_path / "a.csv")[0]["flipd"] == read(tmp_path / "b.csv")[0]["flipd"]


def test_a_text_conditional_factory_scores_the_cfg_norm(on_path, tmp_path):
    out = tmp_path / "cfg.csv"
    assert run("--model-factory", "reader_models:sd", "--images", on_path / "imgs", "--metric", "cfgnorm",
               "--captions", on_path / "captions.csv", "--out", out) == 0
    rows = read(out)
    assert len(rows) == 3 and all(math.isfinite(float(r["cfg_norm"])) and float(r["cfg_norm"]) > 0 for r in rows)
    assert all(0 < float(r["sigma_t0"]) < 1 for r in rows)


@pytest.mark.parametrize("factory, extra, message", [
    ("reader_models:nothing", [], "has no 'nothing'"),
    ("no_such_module:f", [], "cannot import 'no_such_module'"),
    ("reader_models", [], "not of the form"),
    ("reader_models:not_a_model", [], "not a score model"),
    ("reader_models:edm_no_shape", [], "data_shape"),
    ("reader_models:edm", ["--captions", "captions.csv"], "not text-conditional"),
    ("reader_models:edm", ["--image-size", "16"], "reads 8x8 images"),
    ("reader_models:edm", ["--t0-reading", "linear_beta"], "has no `scheduler`"),
])
def test_factory_problems_are_named(on_path, tmp_path, capsys, factory, extra, message):
    assert run("--model-factory", factory, "--images", on_path / "imgs", "--metric", "flipd", *extra,
               "--out", tmp_path / "x.csv") == 1
    assert message in capsys.readouterr().err


def test_usage_errors_with_a_factory(on_path, tmp_path, capsys):
    assert run("--model-factory", "reader_models:edm", "--model", "x", "--images", on_path / "imgs", "--metric",
               "flipd", "--out", tmp_path / "x.csv") == 2
    assert "not both" in capsys.readouterr().err
    assert run("--model-factory", "reader_models:edm", "--dtype", "float16", "--images", on_path / "imgs",
               "--metric", "flipd", "--out", tmp_path / "x.csv") == 2
    assert "dtype its function gives" in capsys.readouterr().err


def test_other_weights_from_the_same_factory_are_not_resumed(on_path, tmp_path, capsys, monkeypatch):
    """Caches and tables are keyed by the weights' content, not the factory's name."""
    import reader_models
    out = tmp_path / "f.csv"
    assert run("--model-factory", "reader_models:edm", "--images", on_path / "imgs", "--metric", "flipd",
               "--out", out) == 0
    original = reader_models.edm

    def perturbed(device="cpu"):
        m = original(device)
        with torch.no_grad():
            m.net.mix.bias.add_(0.1)
        return m
    monkeypatch.setattr(reader_models, "edm", perturbed)
    assert run("--model-factory", "reader_models:edm", "--images", on_path / "imgs", "--metric", "flipd",
               "--out", out) == 1
    assert "weights" in capsys.readouterr().err


def test_devices_are_any_torch_device_torch_has(monkeypatch, tmp_path, setup, capsys):
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            resolve_device("cuda:1")
    import mempkg.core.devices as devices
    monkeypatch.setattr(devices, "mps_available", lambda: False)
    with pytest.raises(RuntimeError, match="no Apple MPS"):
        resolve_device("mps")
    assert run("--model-factory", "reader_models:edm", "--images", setup / "imgs", "--metric", "flipd",
               "--device", "mps", "--out", tmp_path / "x.csv") == 1
    assert "no Apple MPS" in capsys.readouterr().err
    monkeypatch.setattr(devices, "mps_available", lambda: True)
    assert resolve_device("mps") == "mps"
    assert resolve_device("auto") != "mps"          # auto never picks MPS (no float64 kernels there)
    with pytest.raises(ValueError, match="Unknown device"):
        resolve_device("tpu")
