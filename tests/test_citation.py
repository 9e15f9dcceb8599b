"""How to cite: CITATION.cff is valid CFF (cffconvert), and the introduction's BibTeX names the same book and the
three papers with the bibliography's titles."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_citation_cff_validates():
    cffconvert = pytest.importorskip("cffconvert.cli.create_citation", reason="cffconvert is not installed")
    citation = cffconvert.create_citation(str(ROOT / "CITATION.cff"), None)
    citation.validate()                                    # raises on a file that breaks the CFF 1.2.0 schema
    bibtex = citation.as_bibtex()
    assert "Memorization in diffusion models: a reproducible study" in bibtex


def test_the_citation_file_and_the_book_agree():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    intro = (ROOT / "book" / "intro.md").read_text()
    bib = (ROOT / "book" / "references.bib").read_text()
    assert "## How to cite" in intro and cff["title"] in intro and f"version = {{{cff['version']}}}" in intro
    for key in ("ross2024geometric", "hasegawa2025volume", "dodson2026calm"):
        title = re.search(rf"@\w+{{{key},.*?title\s*=\s*{{(.*?)}},", bib, re.S).group(1)
        assert f"@article{{{key}," in intro and title in intro, f"{key}: the introduction's BibTeX lost its title"
        assert any(ref["title"] == title for ref in cff["references"]), f"{key} is not in CITATION.cff"
