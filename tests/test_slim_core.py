"""The package's core (estimators, adapters, the CLI) runs without the book stack.

``pip install mempkg`` installs only the core dependencies; pandas, matplotlib, seaborn, scikit-image,
scikit-learn, pyarrow and the notebook tools come with the ``book`` and ``full`` extras. A subprocess
that cannot import any of them imports ``mempkg`` and scores a folder of images with the CLI.
"""

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
from PIL import Image
from tiny_models import save_tiny_ddpm

ROOT = Path(__file__).resolve().parents[1]
BOOK_STACK = ("pandas", "matplotlib", "seaborn", "skimage", "sklearn", "pyarrow", "jupyter_book", "papermill",
              "jupytext", "IPython", "datasets", "torchmetrics")
BLOCKED_RUN = f"""
import runpy, sys
for name in {BOOK_STACK!r}:
    sys.modules[name] = None      # as if not installed: import raises ImportError, find_spec gives None
sys.argv = ["mempkg"] + sys.argv[1:]
runpy.run_module("mempkg", run_name="__main__")
"""


def test_core_dependencies_leave_out_the_book_stack():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {d.split(">")[0].split("=")[0].split("[")[0].strip().lower() for d in project["dependencies"]}
    assert core.isdisjoint({"jupyter-book", "papermill", "seaborn", "scikit-image", "matplotlib", "pandas",
                            "scikit-learn", "pyarrow"}), core
    assert {"torch", "diffusers", "numpy", "scipy", "pillow", "tqdm", "transformers"} <= core
    extras = project["optional-dependencies"]
    assert "seaborn" in " ".join(extras["book"]) and "torchmetrics[image]" in extras["full"]
    assert extras["all"] == ["mempkg[book,test]"]


def test_cli_scores_images_without_the_book_stack(tmp_path):
    model = save_tiny_ddpm(tmp_path / "model")
    images = tmp_path / "imgs"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(images / f"{i}.png")
    out = tmp_path / "scores.csv"
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-c", BLOCKED_RUN, "score", "--model", str(model), "--images", str(images),
                          "--metric", "flipd", "--t0", "0.05", "--out", str(out)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert len(out.read_text().strip().splitlines()) == 4          # a header and one row per image
