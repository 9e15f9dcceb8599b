"""`python -m mempkg` conventions: --version, --t0-reading and sigma_t0, volume presets, devices, jsonl, the lock."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from cli_helpers import read as read_csv
from cli_helpers import run
from tiny_models import save_tiny_ddpm, save_tiny_sd

import mempkg
from mempkg.cli.args import build_parser, check_args
from mempkg.cli.main import main
from mempkg.cli.scoring import load_scheduler, t0_on_model_clock
from mempkg.core.schedules import DiscreteVPSchedule, linear_beta_schedule
from mempkg.models.pretrained import inspect_model

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("conv_models")
    return {"sd": save_tiny_sd(root), "ddpm": save_tiny_ddpm(root)}


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("conv_images") / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def parsed(*argv):
    parser = build_parser()
    args = parser.parse_args(["score", *argv])
    check_args(parser, args)
    return args


def test_version_prints_the_package_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"mempkg {mempkg.__version__}"


def test_volume_defaults_are_quick_and_paper_settings_restore_100x1000(capsys):
    base = ["--images", "x", "--model", "m", "--metric", "volume", "--out", "o.csv"]
    assert (parsed(*base).axes, parsed(*base).steps) == (10, 100)
    assert (parsed(*base, "--paper-settings").axes, parsed(*base, "--paper-settings").steps) == (100, 1000)
    a = parsed(*base, "--paper-settings", "--axes", "3")
    assert (a.axes, a.steps) == (3, 1000)                     # an explicit option wins over the preset
    assert run("--images", "x", "--model", "m", "--metric", "flipd", "--out", "o.csv", "--paper-settings") == 2
    assert "--metric volume only" in capsys.readouterr().err


def test_any_torch_device_parses_and_a_bad_one_says_what_to_pass(images, tmp_path, capsys):
    base = ["--images", "x", "--model", "m", "--metric", "flipd", "--out", "o.csv"]
    for device in ("cuda:1", "mps", "cpu", "cuda", "auto"):
        assert parsed(*base, "--device", device).device == device
    assert run("--images", images, "--model", "m", "--metric", "flipd", "--out", tmp_path / "o.csv",
               "--device", "gpu0") == 2
    err = capsys.readouterr().err
    assert "'gpu0' is not a torch device" in err and "cuda:1" in err and "mps" in err
    assert not (tmp_path / "o.csv").exists()


def test_a_cuda_index_torch_cannot_see_fails_before_loading(models, images, tmp_path, capsys):
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    assert run("--model", models["ddpm"], "--images", images, "--metric", "flipd", "--out", tmp_path / "o.csv",
               "--device", f"cuda:{n}") == 1
    assert f"torch sees {n} CUDA GPU(s)" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("kind", ["ddpm", "sd"])
def test_t0_readings_give_their_schedules_sigma_in_every_row(kind, models, images, tmp_path):
    """sigma_t0 is the linear-beta VP sigma of t0 by default and the scheduler's own sigma with
    --t0-reading scheduler; the two differ for the same --t0."""
    sched = load_scheduler(inspect_model(models[kind]))
    sigmas = {}
    for reading in ("linear_beta", "scheduler"):
        out = tmp_path / f"{reading}.csv"
        extra = [] if reading == "linear_beta" else ["--t0-reading", "scheduler"]
        assert run("--model", models[kind], "--images", images, "--metric", "flipd", "--t0", "0.1", "--out", out,
                   *extra) == 0
        rows = read_csv(out)
        assert {r["t0_reading"] for r in rows} == {reading} and {r["t0"] for r in rows} == {"0.1"}
        (sigma,) = {float(r["sigma_t0"]) for r in rows}
        sigmas[reading] = sigma
    assert sigmas["linear_beta"] == pytest.approx(float(linear_beta_schedule(sched).sigma(0.1)), rel=1e-9)
    assert sigmas["scheduler"] == pytest.approx(float(DiscreteVPSchedule.from_scheduler(sched).sigma(0.1)), rel=1e-9)
    assert abs(sigmas["linear_beta"] - sigmas["scheduler"]) > 1e-4


def test_linear_beta_t0_scores_as_the_scheduler_time_of_equal_sigma(models, images, tmp_path):
    """FLIPD at t0 on the linear-beta clock equals FLIPD at the scheduler time with the same sigma."""
    lb, own = tmp_path / "lb.csv", tmp_path / "own.csv"
    assert run("--model", models["ddpm"], "--images", images, "--metric", "flipd", "--t0", "0.2", "--out", lb) == 0
    t_model = json.loads((tmp_path / "lb.csv.json").read_text())["model"]["t0_on_its_schedule"]
    _, t = t0_on_model_clock(load_scheduler(inspect_model(models["ddpm"])), 0.2, "linear_beta")
    assert t == t_model and t != 0.2
    assert run("--model", models["ddpm"], "--images", images, "--metric", "flipd", "--t0", repr(t_model),
               "--t0-reading", "scheduler", "--out", own) == 0
    a, b = read_csv(lb), read_csv(own)
    assert [r["flipd"] for r in a] == [r["flipd"] for r in b]
    assert float(a[0]["sigma_t0"]) == pytest.approx(float(b[0]["sigma_t0"]), rel=1e-6)


def test_jsonl_rows_parse_and_equal_the_csv_rows(models, images, tmp_path):
    csv_out, jsonl_out = tmp_path / "s.csv", tmp_path / "s.jsonl"
    for out in (csv_out, jsonl_out):                        # --format from the suffix, and given explicitly
        assert run("--model", models["ddpm"], "--images", images, "--metric", "flipd", "--out", out) == 0
    assert run("--model", models["ddpm"], "--images", images, "--metric", "flipd", "--format", "jsonl",
               "--out", tmp_path / "explicit.txt") == 0
    rows = read_csv(csv_out)
    objs = [json.loads(line) for line in jsonl_out.read_text().splitlines()]
    assert (tmp_path / "explicit.txt").read_text() == jsonl_out.read_text()
    assert len(objs) == len(rows) == 3
    for r, o in zip(rows, objs):
        assert list(o) == list(r)
        assert isinstance(o["flipd"], float) and o["flipd"] == float(r["flipd"])
        assert isinstance(o["sigma_t0"], float) and o["error"] is None
        assert {k: v for k, v in o.items() if k not in ("flipd", "sigma_t0", "error")} == \
            {k: v for k, v in r.items() if k not in ("flipd", "sigma_t0", "error")}
    before = jsonl_out.read_bytes()                          # a re-run resumes the jsonl table: nothing to do
    assert run("--model", models["ddpm"], "--images", images, "--metric", "flipd", "--out", jsonl_out) == 0
    assert jsonl_out.read_bytes() == before


HOLDER = """
import sys
from mempkg.cli.table import exclusive
with exclusive(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_the_lock_holds_across_two_processes(models, images, tmp_path, capsys):
    out = tmp_path / "shared.csv"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert run("--model", models["ddpm"], "--images", images, "--metric", "flipd", "--out", out) == 1
        err = capsys.readouterr().err
        assert "being written by another run" in err and f"pid {holder.pid}" in err
        assert not out.exists()
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    assert holder.returncode == 0
    assert run("--model", models["ddpm"], "--images", images, "--metric", "flipd", "--out", out) == 0
    assert not Path(str(out) + ".lock").exists() and not Path(str(out) + ".lock.owner").exists()
