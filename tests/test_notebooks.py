"""Every chapter notebook runs end to end under the tiny profile and leaves a sane summary.

The notebooks are executed by `make notebooks PROFILE=tiny` (papermill), exactly as the book
build executes them, once per session (see book_helpers.py).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from book_helpers import (EXECUTED, FAILED, NOTEBOOKS, PROFILE, RESULTS,  # noqa: E402
                          error_outputs, executed_notebooks, report)


@pytest.fixture(scope="session")
def notebooks_run():
    return executed_notebooks()


def numbers(value, key=""):
    """(key path, number) for every number in a JSON value, nested ones included."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from numbers(v, f"{key}.{k}" if key else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from numbers(v, f"{key}[{i}]")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield key, value


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_under_tiny(notebooks_run, notebook):
    executed = EXECUTED / f"{notebook.stem}.ipynb"
    failed = FAILED / f"{notebook.stem}.ipynb"
    if not executed.is_file():
        errors = error_outputs(failed) if failed.is_file() else []
        pytest.fail(f"{notebook} did not run under PROFILE={PROFILE}; "
                    f"errors: {errors or 'none recorded'}; partly executed copy: {failed}\n"
                    + report(notebooks_run))
    nb = json.loads(executed.read_text())
    assert not error_outputs(executed), f"error outputs in {executed}: {error_outputs(executed)}"
    assert nb["metadata"]["papermill"]["parameters"].get("profile") == PROFILE, \
        "papermill did not inject the profile: is there a cell tagged 'parameters'?"
    figures = [o for c in nb["cells"] for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert figures, f"{executed} shows no figure (did something replace the inline matplotlib backend?)"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_writes_finite_summary(notebooks_run, notebook):
    summary = RESULTS / PROFILE / notebook.stem / "summary.json"
    assert summary.is_file(), f"{notebook} wrote no {summary} (did it run? see the test above)"
    data = json.loads(summary.read_text())
    assert data.get("profile") == PROFILE
    values = list(numbers(data))
    assert values, f"{summary} holds no number"
    not_finite = [k for k, v in values if not math.isfinite(v)]
    assert not not_finite, f"not finite in {summary}: {not_finite}"
