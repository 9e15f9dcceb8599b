"""The licence is stated where readers and tools look for it, and the version is written in one place."""

import re
import tomllib
from pathlib import Path

import mempkg

ROOT = Path(__file__).resolve().parents[1]


def test_licence_file_names_mit_for_code_and_cc_by_for_the_book():
    text = (ROOT / "LICENSE").read_text()
    assert "MIT License" in text and "Permission is hereby granted, free of charge" in text
    assert "CC BY 4.0" in text and "creativecommons.org/licenses/by/4.0" in text


def test_pyproject_and_citation_carry_the_licence_and_the_one_version():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT" and "LICENSE" in project["license-files"]
    assert "version" in project["dynamic"] and "version" not in project, "the version lives in mempkg.core only"
    cff = (ROOT / "CITATION.cff").read_text()
    assert re.search(r"^license: MIT$", cff, re.M)
    assert re.search(rf"^version: {re.escape(mempkg.__version__)}$", cff, re.M), "CITATION.cff's version is stale"
    assert len(re.findall(r"type: doi, value: \"10\.48550/arXiv\.\d{4}\.\d{5}\"", cff)) == 3
    bib = (ROOT / "book" / "intro.md").read_text()
    assert f"version = {{{mempkg.__version__}}}" in bib, "the book's citation block names another version"


def test_book_footer_states_the_text_licence():
    config = (ROOT / "book" / "_config.yml").read_text()
    assert re.search(r"extra_footer:.*CC BY 4\.0", config, re.S)
