"""The book's sources page: it is in the table of contents, cites the three papers, and the chapters link it
instead of NOTES.md, a file outside the repository that readers cannot open."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "book" / "sources.md"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))
PAPERS = ("ross2024geometric", "hasegawa2025volume", "dodson2026calm")


def toc_files(toc: dict) -> list[str]:
    """Every ``file`` entry of a Jupyter Book ``_toc.yml``, the root first."""
    return [toc["root"]] + [c["file"] for part in toc.get("parts", []) for c in part.get("chapters", [])]


def test_sources_page_exists_and_is_listed_in_the_toc():
    """The page is a file of the book with its title, and the table of contents builds it."""
    assert PAGE.is_file(), "book/sources.md is missing"
    assert PAGE.read_text().startswith("# Sources and departures\n")
    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    assert "sources" in toc_files(toc), "book/_toc.yml does not list the sources page"


def test_sources_page_cites_each_paper_by_its_bibtex_key():
    """Each paper's key appears in a {cite} role, and the key is in the bibliography."""
    text = PAGE.read_text()
    bib = (ROOT / "book" / "references.bib").read_text()
    cited = {k.strip() for keys in re.findall(r"\{cite(?::[tp])?\}`([^`]+)`", text) for k in keys.split(",")}
    for key in PAPERS:
        assert key in cited, f"book/sources.md cites no {key}"
        assert re.search(rf"@\w+{{{key},", bib), f"{key} is not in book/references.bib"


def test_no_chapter_cites_notes_md_outside_the_repository():
    """NOTES.md is not in the repository: a chapter links the sources page instead."""
    assert NOTEBOOKS, "no notebooks found"
    hits = [f"{nb.name}:{i}: {line.strip()}" for nb in NOTEBOOKS
            for i, line in enumerate(nb.read_text().splitlines(), 1) if "NOTES.md" in line]
    assert not hits, "chapters cite NOTES.md; link {doc}`../sources` instead:\n" + "\n".join(hits)


def test_the_chapters_link_the_page_with_a_resolvable_doc_role():
    """A chapter's link to the page is ``{doc}`../sources``` (the chapters build from book's notebooks/)."""
    links = [(nb.name, m) for nb in NOTEBOOKS for m in re.findall(r"\{doc\}`([^`]*sources[^`]*)`", nb.read_text())]
    assert links, "no chapter links the sources page"
    wrong = [f"{name}: {target}" for name, target in links if target != "../sources"]
    assert not wrong, "links that would not resolve from book/notebooks/:\n" + "\n".join(wrong)
