"""A second run of every notebook reuses the first run's cache and gives the same numbers.

Runs after the session's `make notebooks PROFILE=tiny` (book_helpers), re-executing each notebook
in-process with papermill against the same results folder: every cached value is then loaded
rather than computed, which exercises the cache's read path end to end.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from book_helpers import NOTEBOOKS, PROFILE, RESULTS, executed_notebooks  # noqa: E402


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_rerun_loads_the_cache_and_reproduces_the_summary(notebook, tmp_path, monkeypatch):
    jupytext = pytest.importorskip("jupytext")
    papermill = pytest.importorskip("papermill")
    run = executed_notebooks()
    assert run.returncode == 0, "the first run failed; see test_notebooks.py"
    summary = RESULTS / PROFILE / notebook.stem / "summary.json"
    first = json.loads(summary.read_text())
    monkeypatch.setenv("MEMPKG_RESULTS", str(RESULTS))
    papermill.execute_notebook(jupytext.read(notebook), str(tmp_path / "rerun.ipynb"),
                               parameters={"profile": PROFILE}, kernel_name="python3", language="python",
                               cwd=str(notebook.parents[1]), progress_bar=False)
    second = json.loads(summary.read_text())
    first.pop("seconds", None), second.pop("seconds", None)
    assert second == first
