"""The parameters cell of each chapter reads on the page: a reader sees it whole at a 1280 px window
(the book's code fits 88 characters to the line there), each setting under its own comment."""

from __future__ import annotations

import io
import tokenize
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))
MAX_LINE = 88


def parameters_cell(notebook: Path) -> str:
    """The source of the notebook's one code cell tagged ``parameters``."""
    cells = [c for c in jupytext.read(notebook).cells
             if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{notebook.name}: {len(cells)} cells tagged parameters, expected one"
    return cells[0].source


def trailing_comments(source: str) -> list[str]:
    """Lines of SOURCE that hold code and a comment after it."""
    lines = source.splitlines()
    return [lines[tok.start[0] - 1] for tok in tokenize.generate_tokens(io.StringIO(source).readline)
            if tok.type == tokenize.COMMENT and lines[tok.start[0] - 1][: tok.start[1]].strip()]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_cell_lines_fit_88_characters(notebook):
    """Longer lines scroll sideways in the text column at a 1280 px window (tests/test_browser.py)."""
    long = [f"{len(line)}: {line}" for line in parameters_cell(notebook).splitlines() if len(line) > MAX_LINE]
    assert not long, f"{notebook.name}: parameters-cell lines over {MAX_LINE} characters:\n" + "\n".join(long)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_cell_comments_stand_on_their_own_lines(notebook):
    """Each setting's comment is on its own line above it, never trailing the code."""
    trailing = trailing_comments(parameters_cell(notebook))
    assert not trailing, f"{notebook.name}: comments trailing code in the parameters cell:\n" + "\n".join(trailing)


def test_the_shape_checks_catch_a_long_line_and_a_trailing_comment():
    source = '# the data seed\nseed = 0\nprofile = None  # "tiny"\nurl = "http://x/#not-a-comment"\n'
    assert trailing_comments(source) == ['profile = None  # "tiny"']
    assert trailing_comments("# a\n#\nx = {\n    # b\n    'k': 1,\n}\n") == []
