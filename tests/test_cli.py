"""`python -m mempkg score` on tiny diffusers checkpoints saved in a temporary folder (offline, seconds)."""

import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from cli_helpers import read, run
from tiny_models import save_tiny_ddpm, save_tiny_sd

import mempkg.cli.scoring as scoring
from mempkg.cli.args import UserError, build_parser
from mempkg.cli.main import main
from mempkg.cli.table import COLUMN
from mempkg.data.fetch import center_crop_resize
from mempkg.estimators.complexity import png_size

ROOT = Path(__file__).resolve().parents[1]
NAMES = ["a_flat.png", "b_noise.png", "c_wide.jpg", "d_grey.png", "e_alpha.png"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_models")
    return {"sd": save_tiny_sd(root), "ddpm": save_tiny_ddpm(root),
            "ddpm_grey": save_tiny_ddpm(root / "grey", channels=1)}


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Five images of different sizes and modes: a constant, RGB noise, a wide JPEG, grey, RGBA."""
    folder = tmp_path_factory.mktemp("cli_images") / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(np.full((20, 20, 3), 90, np.uint8)).save(folder / NAMES[0])
    Image.fromarray(rng.integers(0, 256, (24, 18, 3), dtype=np.uint8)).save(folder / NAMES[1])
    Image.fromarray(rng.integers(0, 256, (16, 40, 3), dtype=np.uint8)).save(folder / NAMES[2], quality=90)
    Image.fromarray(np.tile(np.arange(0, 256, 16, dtype=np.uint8), (16, 1))).save(folder / NAMES[3])
    Image.fromarray(rng.integers(0, 256, (17, 17, 4), dtype=np.uint8), "RGBA").save(folder / NAMES[4])
    (folder / "notes.txt").write_text("not an image")
    return folder


@pytest.fixture(scope="module")
def captions(images):
    path = images.parent / "captions.csv"
    path.write_text("file,caption\n" + "".join(f'{n},"a cat, {i}"\n' for i, n in enumerate(NAMES)))
    return path


def values(path, column):
    return [float(r[column]) for r in read(path)]


# -- every metric ------------------------------------------------------------------------------------------

CASES = {
    "sd-flipd": ("sd", "flipd", ["--probes", "2"]),
    "sd-flipd-captions": ("sd", "flipd", ["--captions"]),
    "sd-volume-8px": ("sd", "volume", ["--axes", "3", "--steps", "4", "--image-size", "8"]),
    "sd-cfgnorm": ("sd", "cfgnorm", ["--captions"]),
    "ddpm-flipd": ("ddpm", "flipd", ["--probes", "exact", "--image-size", "8"]),
    "ddpm-volume": ("ddpm", "volume", ["--axes", "2", "--steps", "3", "--radius", "0.1"]),
    "grey-ddpm-flipd": ("ddpm_grey", "flipd", []),
}


@pytest.mark.parametrize("case", CASES)
def test_every_metric_gives_a_finite_number_per_image(case, models, images, captions, tmp_path, capsys):
    kind, metric, extra = CASES[case]
    extra = [a for e in extra for a in (["--captions", captions] if e == "--captions" else [e])]
    argv = ["--model", models[kind], "--images", images, "--metric", metric, "--out", tmp_path / "s.csv",
            "--batch-size", "2", *extra]
    assert run(*argv) == 0
    rows = read(tmp_path / "s.csv")
    column = COLUMN[metric]
    assert [r["file"] for r in rows] == NAMES
    assert all(math.isfinite(float(r[column])) and r["error"] == "" for r in rows)
    assert len({r[column] for r in rows}) == len(NAMES)                 # the images are told apart
    assert {r["model"] for r in rows} == {str(Path(models[kind]).resolve())}
    assert {r["image_size"] for r in rows} == {"16" if kind == "sd" and "--image-size" not in extra else "8"}
    if "--captions" in extra:
        assert [r["caption"] for r in rows] == [f"a cat, {i}" for i in range(len(NAMES))]
    if metric in ("flipd", "volume"):
        assert {r["conditional"] for r in rows} == {"true" if "--captions" in extra else "false"}
    out = capsys.readouterr().out
    assert f"{metric}: 5 images, 5 scored" in out
    record = (tmp_path / "s.csv.json").read_text()
    assert '"kind": "%s"' % ("stable_diffusion" if kind == "sd" else "ddpm") in record
    shape = {"sd": [4, 8, 8], "ddpm": [3, 8, 8], "ddpm_grey": [1, 8, 8]}[kind] if case != "sd-volume-8px" else [4, 4, 4]
    assert json.loads(record)["model"]["data_shape"] == shape


def test_png_sizes_are_png_size_of_the_images(images, tmp_path):
    assert run("--images", images, "--metric", "png", "--out", tmp_path / "orig.csv") == 0
    want = [int(png_size(np.asarray(Image.open(images / n).convert("RGB") if n != NAMES[4] else
                                    _over_white(images / n))[None])[0]) for n in NAMES]
    assert [int(v) for v in values(tmp_path / "orig.csv", "png_size")] == want
    # resized as the models see them
    assert run("--images", images, "--metric", "png", "--image-size", "8", "--out", tmp_path / "s8.csv") == 0
    pix = np.stack([np.asarray(im) for im in center_crop_resize([images / n for n in NAMES], 8, output="pil")])
    assert [int(v) for v in values(tmp_path / "s8.csv", "png_size")] == png_size(pix).tolist()
    assert {r["image_size"] for r in read(tmp_path / "s8.csv")} == {"8"}


def _over_white(path):
    im = Image.open(path)
    return Image.alpha_composite(Image.new("RGBA", im.size, (255, 255, 255, 255)), im).convert("RGB")


def test_end_to_end_through_python_dash_m(models, images, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1")
    out = tmp_path / "sub" / "flipd.csv"
    res = subprocess.run([sys.executable, "-m", "mempkg", "score", "--model", str(models["ddpm"]), "--images",
                          str(images), "--metric", "flipd", "--t0", "0.05", "--out", str(out)],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "flipd: 5 images, 5 scored" in res.stdout
    assert "Traceback" not in res.stderr and "accelerate" not in res.stderr     # library chatter kept quiet
    rows = read(out)
    assert len(rows) == 5 and all(math.isfinite(float(r["flipd"])) for r in rows)
    assert {r["t0"] for r in rows} == {"0.05"}
    # the same numbers in-process (to float rounding: the two processes may use different thread
    # counts, which changes the order of float32 sums)
    assert run("--model", models["ddpm"], "--images", images, "--metric", "flipd", "--t0", "0.05",
               "--out", tmp_path / "inproc.csv") == 0
    inproc = read(tmp_path / "inproc.csv")
    assert [r["file"] for r in inproc] == [r["file"] for r in rows]
    for a, b in zip(inproc, rows):
        assert math.isclose(float(a["flipd"]), float(b["flipd"]), rel_tol=1e-4, abs_tol=1e-4)
        assert {k: v for k, v in a.items() if k != "flipd"} == {k: v for k, v in b.items() if k != "flipd"}


def test_help_documents_every_option(capsys):
    assert main(["score", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())          # argparse wraps lines
    sub = build_parser().score_parser
    options = [s for a in sub._actions for s in a.option_strings if s.startswith("--")]
    assert len(options) >= 22
    for opt in options:
        assert opt in text, opt
    for word in ("default: 0.1;", "default: 1,", "default: 10,", "default: 100,", "default: 0.05", "default: 0.01",
                 "default: linear_beta", "101,000 UNet passes", "1,100 UNet passes",
                 "default: 3", "resuming", "exit codes", "file,caption"):
        assert word in text, word
    assert main([]) == 2
    page = (ROOT / "book" / "use_your_model.md").read_text()           # the book's page lists them too
    for opt in options:
        assert f"`{opt}`" in page or opt == "--help", opt


# -- same seed, resume, settings -----------------------------------------------------------------------------

def _ddpm_flipd(models, images, out, *extra):
    return run("--model", models["ddpm"], "--images", images, "--metric", "flipd", "--probes", "2",
               "--batch-size", "2", "--out", out, *extra)


@pytest.fixture(scope="module")
def reference(models, images, tmp_path_factory):
    """An uninterrupted run (FLIPD, 2 probes, batches of 2)."""
    out = tmp_path_factory.mktemp("ref") / "ref.csv"
    assert _ddpm_flipd(models, images, out) == 0
    return out


def test_same_seed_same_numbers_other_seed_other_numbers(models, images, reference, tmp_path):
    assert _ddpm_flipd(models, images, tmp_path / "again.csv") == 0
    assert (tmp_path / "again.csv").read_bytes() == reference.read_bytes()
    assert _ddpm_flipd(models, images, tmp_path / "seed1.csv", "--seed", "1") == 0
    a, b = values(reference, "flipd"), values(tmp_path / "seed1.csv", "flipd")
    assert all(x != y for x, y in zip(a, b))


def _spy(monkeypatch):
    """Record which images each call of the scoring step receives."""
    scored, real = [], scoring.score_batch

    def spy(args, model, pixels, names, captions, **kw):
        scored.extend(names)
        return real(args, model, pixels, names, captions, **kw)
    monkeypatch.setattr(scoring, "score_batch", spy)
    return scored


def test_an_interrupted_run_resumes_to_the_uninterrupted_file(models, images, reference, tmp_path, monkeypatch,
                                                             capsys):
    out = tmp_path / "s.csv"
    calls, real = [], scoring.score_batch

    def interrupted(*a, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **kw)
    monkeypatch.setattr(scoring, "score_batch", interrupted)
    assert _ddpm_flipd(models, images, out) == 130
    assert "run the same command again to resume" in capsys.readouterr().err
    assert [r["file"] for r in read(out)] == NAMES[:2]               # the first batch, complete
    scored = _spy(monkeypatch)
    assert _ddpm_flipd(models, images, out) == 0
    assert scored == NAMES[2:]
    assert "2 of 5 images already scored, skipped; scoring the other 3" in capsys.readouterr().err
    assert out.read_bytes() == reference.read_bytes()
    # a third run has nothing to do and leaves the file as it is
    assert _ddpm_flipd(models, images, out) == 0
    assert scored == NAMES[2:]
    assert "0 scored" in capsys.readouterr().out
    assert out.read_bytes() == reference.read_bytes()


def test_an_interrupt_before_the_first_batch_says_nothing_was_saved(models, images, tmp_path, monkeypatch, capsys):
    def interrupted(*a, **kw):
        raise KeyboardInterrupt
    monkeypatch.setattr(scoring, "score_batch", interrupted)
    assert _ddpm_flipd(models, images, tmp_path / "none.csv") == 130
    assert "nothing was saved" in capsys.readouterr().err
    assert not (tmp_path / "none.csv").exists()


def test_within_batch_progress_is_shown_per_step(models, images, tmp_path, capsys):
    assert run("--model", models["ddpm"], "--images", images, "--metric", "volume", "--axes", "2", "--steps", "3",
               "--batch-size", "5", "--out", tmp_path / "v.csv") == 0
    err = capsys.readouterr().err
    assert "volume, batch 1 of 1" in err and "3/3" in err


def test_a_truncated_file_with_a_partial_row_is_repaired_and_completed(models, images, reference, tmp_path,
                                                                      monkeypatch, capsys):
    out = tmp_path / "s.csv"
    lines = reference.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:3]) + lines[3][:17])                # 2 rows, then half of the third
    scored = _spy(monkeypatch)
    assert _ddpm_flipd(models, images, out) == 0
    assert scored == NAMES[2:]
    assert "incomplete row" in capsys.readouterr().err
    got, want = read(out), read(reference)
    assert [r["file"] for r in got] == NAMES
    for g, w in zip(got, want):                  # other batches: equal up to batched float rounding
        assert {k: v for k, v in g.items() if k != "flipd"} == {k: v for k, v in w.items() if k != "flipd"}
        assert float(g["flipd"]) == pytest.approx(float(w["flipd"]), rel=1e-5)


def test_an_image_scores_the_same_whatever_the_rest_of_the_folder(models, images, reference, tmp_path):
    sub = tmp_path / "three"
    sub.mkdir()
    for n in NAMES[1:4]:
        (sub / n).write_bytes((images / n).read_bytes())
    assert _ddpm_flipd(models, sub, tmp_path / "three.csv") == 0
    np.testing.assert_allclose(values(tmp_path / "three.csv", "flipd"), values(reference, "flipd")[1:4], rtol=1e-5)


def test_other_settings_are_refused_unless_overwrite(models, images, reference, tmp_path, capsys):
    out = tmp_path / "s.csv"
    out.write_bytes(reference.read_bytes())
    assert _ddpm_flipd(models, images, out, "--t0", "0.05") == 1
    err = capsys.readouterr().err
    assert "other settings" in err and "t0: 0.1 there, 0.05 now" in err and "--overwrite" in err
    assert out.read_bytes() == reference.read_bytes()
    assert run("--images", images, "--metric", "png", "--out", out) == 1
    assert "other columns" in capsys.readouterr().err
    assert _ddpm_flipd(models, images, out, "--t0", "0.05", "--overwrite") == 0
    assert {r["t0"] for r in read(out)} == {"0.05"} and len(read(out)) == 5


def test_a_table_made_with_other_weights_is_not_resumed(images, tmp_path, capsys):
    folder = save_tiny_ddpm(tmp_path / "m")
    out = tmp_path / "w.csv"
    args = ["--model", folder, "--images", images, "--metric", "flipd", "--probes", "1", "--out", out]
    assert run(*args) == 0
    first = {r["weights"] for r in read(out)}
    assert len(first) == 1 and len(first.pop()) == 16
    before = out.read_bytes()
    save_tiny_ddpm(tmp_path / "m", seed=1)                 # same folder, same configs, other weights
    assert run(*args) == 1
    err = capsys.readouterr().err
    assert "other settings" in err and "weights:" in err
    assert out.read_bytes() == before, "nothing may be written into a table made with other weights"
    assert run(*args, "--overwrite") == 0
    assert len({r["weights"] for r in read(out)}) == 1 and read(out)[0]["weights"] not in before.decode()


def test_a_second_run_on_the_same_out_fails_at_once(models, images, tmp_path, capsys):
    from mempkg.cli.table import exclusive

    out = tmp_path / "locked.csv"
    with exclusive(out):
        assert (tmp_path / "locked.csv.lock.owner").read_text().startswith(f"pid {os.getpid()}")
        assert _ddpm_flipd(models, images, out) == 1
        err = capsys.readouterr().err
        assert "being written by another run" in err and f"pid {os.getpid()}" in err
        assert not out.exists()
    assert not (tmp_path / "locked.csv.lock").exists(), "the lock file is removed when the run ends"
    assert _ddpm_flipd(models, images, out) == 0


def test_a_hub_id_is_read_from_the_local_cache_and_keyed_by_its_revision(models, images, tmp_path, monkeypatch):
    """A hub id offline: the configs and weights come from the Hugging Face cache (the layout hf download
    writes), and the table records the snapshot's commit as the weights' identity."""
    import shutil

    import huggingface_hub.constants as hub_constants
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--org--tiny-ddpm"
    shutil.copytree(models["ddpm"], repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    out = tmp_path / "hub.csv"
    assert run("--model", "org/tiny-ddpm", "--images", images, "--metric", "flipd", "--probes", "2",
               "--batch-size", "2", "--out", out) == 0
    assert {r["weights"] for r in read(out)} == {f"hub@{commit}"}
    assert {r["model"] for r in read(out)} == {"org/tiny-ddpm"}


def test_an_unreachable_hub_fails_in_seconds_not_after_retries(images, tmp_path):
    """No HF_HUB_OFFLINE and no network (the endpoint is a closed local port): one connection attempt, then
    the local cache only; huggingface_hub's own retries would take about 25 s."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(HF_ENDPOINT="http://127.0.0.1:9", HF_HUB_CACHE=str(tmp_path / "empty_cache"))
    import time
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "mempkg", "score", "--model", "org/not-cached", "--images", str(images),
                        "--metric", "flipd", "--out", str(tmp_path / "x.csv")], capture_output=True, text=True,
                       env=env, timeout=120)
    seconds = time.perf_counter() - t
    assert r.returncode == 1 and "not in the local Hugging Face cache" in r.stderr, r.stderr
    assert "Retrying" not in r.stderr
    assert seconds < 15, f"took {seconds:.1f} s"


def test_a_changed_caption_is_refused(models, images, captions, tmp_path, capsys):
    args = ["--model", models["sd"], "--images", images, "--metric", "cfgnorm", "--out", tmp_path / "c.csv"]
    assert run(*args, "--captions", captions) == 0
    other = tmp_path / "other.csv"
    other.write_text(captions.read_text().replace("a cat, 3", "a dog, 3"))
    assert run(*args, "--captions", other) == 1
    err = capsys.readouterr().err
    assert "another caption" in err and f"{NAMES[3]}: 'a cat, 3' there, 'a dog, 3' now" in err
    assert [r["caption"] for r in read(tmp_path / "c.csv")][3] == "a cat, 3"


# -- what goes wrong -----------------------------------------------------------------------------------------

def test_bad_image_folders_fail_early_with_a_message(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "nested" / "inner").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(tmp_path / "nested" / "inner" / "x.png")
    (tmp_path / "afile.png").write_bytes(b"")
    cases = {"nowhere": "no such folder", "afile.png": "is a file, not a folder",
             "empty": "holds no image files", "nested": "pass --recursive"}
    for folder, message in cases.items():
        assert run("--images", tmp_path / folder, "--metric", "png", "--out", tmp_path / "o.csv") == 1
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
    assert run("--images", tmp_path / "nested", "--recursive", "--metric", "png", "--out", tmp_path / "r.csv") == 0
    assert [r["file"] for r in read(tmp_path / "r.csv")] == ["inner/x.png"]


def test_unreadable_images_fail_by_default_and_are_recorded_with_skip(models, images, tmp_path, capsys,
                                                                      monkeypatch):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for n in NAMES[:3]:
        (folder / n).write_bytes((images / n).read_bytes())
    (folder / "garbage.png").write_bytes(b"this is not a png")
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    jpeg = buf.getvalue()
    (folder / "truncated.jpg").write_bytes(jpeg[:len(jpeg) * 4 // 5])  # header fine, body cut: found when decoded
    with Image.open(folder / "truncated.jpg") as im:
        im.verify()
    args = ["--model", models["ddpm"], "--images", folder, "--metric", "flipd", "--batch-size", "2"]
    # before anything loads, by name
    assert run(*args, "--out", tmp_path / "fail.csv") == 1
    err = capsys.readouterr().err
    assert "garbage.png" in err and "--on-error skip" in err and "Traceback" not in err
    assert not (tmp_path / "fail.csv").exists()
    (folder / "garbage.png").unlink()
    assert run(*args, "--out", tmp_path / "fail.csv") == 1             # while decoding; earlier batches kept
    err = capsys.readouterr().err
    assert "truncated.jpg" in err and "cannot be read" in err
    assert len(read(tmp_path / "fail.csv")) == 2
    # skip: recorded with the reason, the rest scored, and retried on a re-run
    (folder / "garbage.png").write_bytes(b"this is not a png")
    assert run(*args, "--on-error", "skip", "--out", tmp_path / "skip.csv") == 0
    assert "2 unreadable" in capsys.readouterr().out
    rows = {r["file"]: r for r in read(tmp_path / "skip.csv")}
    assert len(rows) == 5
    assert rows["garbage.png"]["flipd"] == "" and "unreadable image" in rows["garbage.png"]["error"]
    assert rows["truncated.jpg"]["flipd"] == "" and "truncated" in rows["truncated.jpg"]["error"]
    assert all(math.isfinite(float(rows[n]["flipd"])) for n in NAMES[:3])
    Image.new("RGB", (8, 8), (10, 200, 30)).save(folder / "garbage.png")          # fixed
    scored = _spy(monkeypatch)
    assert run(*args, "--on-error", "skip", "--out", tmp_path / "skip.csv") == 0
    assert scored == ["garbage.png"]
    rows = {r["file"]: r for r in read(tmp_path / "skip.csv")}
    assert rows["garbage.png"]["error"] == "" and math.isfinite(float(rows["garbage.png"]["flipd"]))
    assert rows["truncated.jpg"]["error"] != ""


def test_caption_problems_are_named(models, images, tmp_path, capsys):
    args = ["--model", models["sd"], "--images", images, "--metric", "cfgnorm", "--out", tmp_path / "o.csv"]
    bad = {"nofile.csv": "name,caption\nx,y\n", "nocap.csv": "file,text\na_flat.png,y\n",
           "partial.csv": "file,caption\na_flat.png,a cat\nb_noise.png,a dog\n",
           "dup.csv": "file,caption\n" + "".join(f"{n},c\n" for n in NAMES) + "a_flat.png,again\n"}
    want = {"nofile.csv": "lacks the column(s) file", "nocap.csv": "lacks the column(s) caption",
            "partial.csv": "3 of 5 images have no caption", "dup.csv": "more than one caption"}
    for name, text in bad.items():
        (tmp_path / name).write_text(text)
        assert run(*args, "--captions", tmp_path / name) == 1
        err = capsys.readouterr().err
        assert want[name] in err and "Traceback" not in err, err
    assert run(*args, "--captions", tmp_path / "missing.csv") == 1
    assert "no such file" in capsys.readouterr().err
    assert run(*args) == 2                                           # cfgnorm without captions: usage
    assert "needs --captions" in capsys.readouterr().err


def test_model_problems_are_named(models, images, captions, tmp_path, capsys):
    nounet = tmp_path / "nounet"
    (nounet / "scheduler").mkdir(parents=True)
    unet_only = tmp_path / "unet_only"
    (unet_only / "unet").mkdir(parents=True)
    (unet_only / "unet" / "config.json").write_text((Path(models["ddpm"]) / "unet" / "config.json").read_text())
    half_sd = tmp_path / "half_sd"
    for c in ("unet", "scheduler"):
        (half_sd / c).mkdir(parents=True)
        for f in (Path(models["sd"]) / c).glob("*.json"):
            (half_sd / c / f.name).write_text(f.read_text())
    cases = {nounet: "has no unet/ subfolder", unet_only: "no scheduler/",
             half_sd: "lacks vae/, text_encoder/, tokenizer/", tmp_path / "nowhere": "no such folder",
             "mempkg-tests/no-such-model": "not in the local Hugging Face cache"}
    for model, message in cases.items():
        assert run("--model", model, "--images", images, "--metric", "flipd", "--out", tmp_path / "o.csv") == 1
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err
    assert run("--model", models["ddpm"], "--images", images, "--metric", "cfgnorm", "--captions", captions,
               "--out", tmp_path / "o.csv") == 1
    assert "text-conditional" in capsys.readouterr().err
    assert run("--model", models["ddpm"], "--images", images, "--metric", "volume", "--axes", "500",
               "--out", tmp_path / "o.csv") == 1
    assert "exceeds the data dimension D = 192" in capsys.readouterr().err
    assert run("--model", models["sd"], "--images", images, "--metric", "flipd", "--image-size", "18",
               "--out", tmp_path / "o.csv") == 1
    assert "multiple of 4" in capsys.readouterr().err              # the tiny VAE halves, the UNet halves again


def test_usage_errors_exit_2(images, tmp_path, capsys):
    base = ["--images", images, "--out", tmp_path / "o.csv"]
    for argv, message in [(["--metric", "flipd"], "needs --model"), (["--metric", "lid"], "invalid choice"),
                          (["--metric", "flipd", "--model", "m", "--t0", "0"], "(0, 1]"),
                          (["--metric", "flipd", "--model", "m", "--probes", "zero"], "'exact'"),
                          (["--metric", "volume", "--model", "m", "--axes", "-3"], "positive integer")]:
        assert run(*base, *argv) == 2
        assert message in capsys.readouterr().err


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(UserError, match="no such folder"):
        run("--images", tmp_path / "nowhere", "--metric", "png", "--out", tmp_path / "o.csv", "--debug")


# -- the pixel-space adapter ---------------------------------------------------------------------------------

def test_ddpm_score_model_is_minus_eps_over_sigma_at_label_N_t_minus_1(models):
    from diffusers import DDPMScheduler, UNet2DModel

    from mempkg.core.protocol import check_score_model
    from mempkg.models.adapters import DDPMScoreModel

    unet = UNet2DModel.from_pretrained(models["ddpm"], subfolder="unet")
    scheduler = DDPMScheduler.from_pretrained(models["ddpm"], subfolder="scheduler")
    model = DDPMScoreModel(unet, scheduler)
    check_score_model(model)
    assert model.data_shape == (3, 8, 8)
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        eps = unet(x, torch.tensor([99.0, 499.0])).sample
        got = model.score(x, torch.tensor([0.1, 0.5]))
    sigma = (1 - scheduler.alphas_cumprod[[99, 499]].double()).sqrt().float().view(2, 1, 1, 1)
    torch.testing.assert_close(got, -eps / sigma, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="unconditional"):
        model.score(x, 0.1, cond=torch.zeros(2, 3))
    scheduler_v = DDPMScheduler.from_config(scheduler.config, prediction_type="v_prediction")
    with pytest.raises(ValueError, match="v_prediction"):
        DDPMScoreModel(unet, scheduler_v)


def test_the_mempkg_command_is_declared():
    tomllib = pytest.importorskip("tomllib")          # Python 3.11+

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["mempkg"] == "mempkg.cli.main:main"
    module, func = scripts["mempkg"].split(":")
    assert callable(getattr(__import__(module, fromlist=[func]), func))
