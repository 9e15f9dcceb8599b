"""Run the Makefile's `notebooks` and `book` targets under the tiny profile, once per test session.

Shared by test_notebooks.py and test_book.py: both call these functions, and the cache makes
`make notebooks` run once however the tests are ordered or selected.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROFILE = "tiny"
BUILD = ROOT / "build" / PROFILE
EXECUTED = BUILD / "src" / "notebooks"
FAILED = BUILD / "failed"
HTML = BUILD / "html"
RESULTS = ROOT / "results"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))


def _env() -> dict[str, str]:
    # A parent `make test` passes its own command-line variables (PROFILE=...) down through
    # MAKEFLAGS; drop them so these runs see only PROFILE=tiny.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("HF_DATASETS_OFFLINE", "1")
    env["MEMPKG_RESULTS"] = str(RESULTS)
    return env


def make(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    """`make ARGS PROFILE=tiny` in the repository root, in the environment running the tests."""
    cmd = ["make", "--no-print-directory", *args, f"PROFILE={PROFILE}"]
    in_env = sys.prefix != sys.base_prefix or (Path(sys.prefix) / "conda-meta").is_dir()
    if in_env:  # run the notebooks with the packages under test, e.g. a conda environment
        cmd.append(f"VENV={sys.prefix}")
    return subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=timeout)


def report(run: subprocess.CompletedProcess, lines: int = 40) -> str:
    """The command, its exit status and the end of its output, for an assertion message."""
    out = (run.stdout + run.stderr).splitlines()
    return f"$ {' '.join(run.args)}  (exit {run.returncode})\n" + "\n".join(out[-lines:])


@functools.cache
def executed_notebooks() -> subprocess.CompletedProcess:
    """Execute every notebook afresh: old executed copies and cached tiny results are removed
    first, so the run exercises the current code rather than what an earlier run left."""
    shutil.rmtree(EXECUTED, ignore_errors=True)
    shutil.rmtree(FAILED, ignore_errors=True)
    shutil.rmtree(RESULTS / PROFILE, ignore_errors=True)
    return make("--keep-going", "notebooks")


@functools.cache
def built_book() -> subprocess.CompletedProcess:
    """`make book PROFILE=tiny` on top of the notebooks executed above (they are up to date)."""
    executed_notebooks()
    return make("book")


def error_outputs(notebook: Path) -> list[str]:
    """`ename: evalue` of every error output in an .ipynb file."""
    cells = json.loads(notebook.read_text())["cells"]
    return [f"{o.get('ename')}: {o.get('evalue')}"
            for c in cells if c["cell_type"] == "code"
            for o in c.get("outputs", []) if o.get("output_type") == "error"]
