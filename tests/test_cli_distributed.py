"""`torchrun --nproc-per-node 2 -m mempkg score` on CPU (gloo): shards, part files, rank 0's merge.

Each case launches two processes through torch's own launcher (``python -m torch.distributed.run``), as a
reader would on a machine with two GPUs, and compares the merged table with one process's, row for row.
"""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import random_images as make_images
from cli_helpers import read
from tiny_models import save_tiny_ddpm

from mempkg.cli.distributed import launch_env, other_parts, part_path, rank_device
from mempkg.cli.args import UserError

ROOT = Path(__file__).resolve().parents[1]
N_IMAGES = 7                  # odd: the two shards differ in size


@pytest.fixture(scope="module")
def ddpm(tmp_path_factory):
    return save_tiny_ddpm(tmp_path_factory.mktemp("dist_model"))


def env():
    return dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1")


def score(*argv, nproc=None, cwd):
    """``python -m mempkg score ...``, or under ``torchrun --standalone --nproc-per-node N -m mempkg score ...``."""
    launcher = [] if nproc is None else ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc)]
    cmd = [sys.executable, *launcher, "-m", "mempkg", "score", *map(str, argv)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env(), cwd=cwd, timeout=600)


def flipd_args(model, images, out):
    # batch size 1: every image goes through the network alone in both runs, so the floats agree exactly
    return ["--model", model, "--images", images, "--metric", "flipd", "--probes", "2", "--t0", "0.05",
            "--batch-size", "1", "--device", "cpu", "--out", out]


def test_two_processes_give_the_one_process_table_row_for_row(ddpm, tmp_path):
    images = make_images(tmp_path / "imgs", N_IMAGES)
    one = score(*flipd_args(ddpm, images, tmp_path / "one.csv"), cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    two = score(*flipd_args(ddpm, images, tmp_path / "two.csv"), nproc=2, cwd=tmp_path)
    assert two.returncode == 0, two.stderr
    rows_one, rows_two = read(tmp_path / "one.csv"), read(tmp_path / "two.csv")
    assert len(rows_two) == N_IMAGES
    assert rows_two == rows_one                                   # every cell, the scores included
    record = json.loads((tmp_path / "two.csv.json").read_text())
    assert [p["rank"] for p in record["processes"]] == [0, 1]
    assert [p["scored"] for p in record["processes"]] == [4, 3]   # every second file of the sorted list each
    assert record["images"]["scored"] == N_IMAGES
    assert not list(tmp_path.glob("two.csv.part-*"))              # the parts are gone once merged
    assert "flipd: 7 images, 7 scored" in two.stdout


def test_a_rank_that_died_loses_only_its_unfinished_batch(ddpm, tmp_path):
    """Rank 1 of an earlier two-process run died after its first batch: its part file holds that row. The
    same command scores only the rest of rank 1's shard, and the merged table equals one process's."""
    images = make_images(tmp_path / "imgs", N_IMAGES)
    one = score(*flipd_args(ddpm, images, tmp_path / "one.csv"), cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    rows = read(tmp_path / "one.csv")
    shard1 = [r for r in rows if r["file"] in sorted(r["file"] for r in rows)[1::2]]
    part = part_path(tmp_path / "two.csv", 1, 2)
    with open(part, "w", newline="") as f:                      # the dead rank's part: header + its first batch
        w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerow(shard1[0])
        f.write("img_03.png,12.3")                                # and a partial row cut off mid-write
    two = score(*flipd_args(ddpm, images, tmp_path / "two.csv"), nproc=2, cwd=tmp_path)
    assert two.returncode == 0, two.stderr
    assert read(tmp_path / "two.csv") == rows
    record = json.loads((tmp_path / "two.csv.json").read_text())
    assert [(p["already_scored"], p["scored"]) for p in record["processes"]] == [(0, 4), (1, 2)]


def test_a_second_run_scores_only_the_new_images_and_keeps_the_rest(ddpm, tmp_path):
    images = make_images(tmp_path / "imgs", 3)
    out = tmp_path / "scores.jsonl"
    args = ["--model", ddpm, "--images", images, "--metric", "flipd", "--probes", "1", "--batch-size", "2",
            "--device", "cpu", "--out", out]
    first = score(*args, nproc=2, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = {json.loads(line)["file"]: json.loads(line) for line in out.read_text().splitlines()}
    make_images(images, 2, start=3)
    second = score(*args, nproc=2, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    after = {json.loads(line)["file"]: json.loads(line) for line in out.read_text().splitlines()}
    assert len(after) == 5 and all(after[f] == before[f] for f in before)
    record = json.loads((tmp_path / "scores.jsonl.json").read_text())
    assert record["images"]["already_scored"] == 3 and record["images"]["scored"] == 2


def test_ranks_that_disagree_on_the_images_fail(tmp_path):
    """Rank 1 sees another folder (as on a machine where --images is not the same): both ranks stop."""
    make_images(tmp_path / "imgs", 3)
    script = tmp_path / "differ.py"
    script.write_text("import os, sys\nfrom mempkg.cli.main import main\n"
                      "folder = sys.argv[1] if os.environ['RANK'] == '0' else sys.argv[2]\n"
                      "sys.exit(main(['score', '--images', folder, '--metric', 'png', '--out', 'x.csv']))\n")
    other = make_images(tmp_path / "imgs_other", 3, start=10)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(script),
           str(tmp_path / "imgs"), str(other)]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env(), cwd=tmp_path, timeout=300)
    assert res.returncode != 0
    assert "other images than this rank" in res.stderr


def test_launch_environment_and_paths(monkeypatch, tmp_path):
    for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    assert launch_env() is None
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert launch_env() is None
    monkeypatch.setenv("WORLD_SIZE", "4")
    with pytest.raises(UserError, match="RANK"):
        launch_env()
    monkeypatch.setenv("RANK", "5")
    with pytest.raises(UserError, match="outside"):
        launch_env()
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert launch_env() == (2, 4, 0)
    assert part_path(tmp_path / "s.csv", 2, 4) == tmp_path / "s.csv.part-2-of-4"
    for name in ("s.csv.part-0-of-4", "s.csv.part-1-of-2", "s.csv.part-x-of-2", "t.csv.part-0-of-2"):
        (tmp_path / name).write_text("")
    assert other_parts(tmp_path / "s.csv", 4) == [tmp_path / "s.csv.part-1-of-2"]
    assert rank_device("cpu", 1) == "cpu"
