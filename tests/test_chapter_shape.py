"""Each chapter is a story over one study call: a short notebook, no prose built in code, and a
study module whose ``run`` returns a frozen dataclass (issue 28)."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))
MAX_CODE_LINES = 150


def code_cells(notebook: Path) -> list[str]:
    """The code cells of a jupytext percent notebook (markdown cells and the header left out)."""
    cells = re.split(r"^# %%.*$", notebook.read_text(), flags=re.M)
    heads = re.findall(r"^# %%.*$", notebook.read_text(), flags=re.M)
    return [body for head, body in zip(heads, cells[1:]) if "[markdown]" not in head]


def code_lines(cell: str) -> list[str]:
    return [ln for ln in cell.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_notebook_holds_at_most_150_code_lines(notebook):
    """Non-blank, non-comment lines of every code cell, the parameters cell included."""
    n = sum(len(code_lines(c)) for c in code_cells(notebook))
    assert n <= MAX_CODE_LINES, f"{notebook.name}: {n} code lines (at most {MAX_CODE_LINES})"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_notebook_builds_no_prose_in_code(notebook):
    """A result is a table or a figure: no ``Markdown(f"...")``, no sentence joined from conditionals."""
    text = "\n".join(code_cells(notebook))
    assert not re.search(r"Markdown\(\s*f[\"']", text), f"{notebook.name} builds Markdown from an f-string"
    assert not re.search(r"Markdown\([^)]*\bif\b", text), f"{notebook.name} builds Markdown with a conditional"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_notebook_calls_its_study_once_and_defines_nothing_long(notebook):
    """One ``run(...)`` call of one ``mempkg.studies`` module; no class, no function over 5 lines."""
    tree = ast.parse("\n".join(code_cells(notebook)))
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
             and (getattr(n.func, "id", None) == "run" or getattr(n.func, "attr", None) == "run")]
    assert len(calls) == 1, f"{notebook.name}: {len(calls)} calls of run(...), expected one"
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)], f"{notebook.name} defines a class"
    long = [n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.end_lineno - n.lineno + 1 > 5]
    assert not long, f"{notebook.name} defines functions longer than 5 lines: {long}"


STUDIES = ["von_mises", "volume_growth", "three_regimes", "laion_verbatims", "three_lenses", "performance"]


@pytest.mark.parametrize("name", STUDIES)
def test_a_study_module_returns_a_frozen_result(name):
    """``mempkg.studies.<name>.run`` exists and is annotated to return a frozen dataclass."""
    module = importlib.import_module(f"mempkg.studies.{name}")
    run = getattr(module, "run")
    ret = run.__annotations__.get("return")
    cls = getattr(module, ret) if isinstance(ret, str) else ret
    assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen, f"{name}.run returns {ret!r}"
