"""`make book PROFILE=tiny` builds with warnings as errors, and the pages load nothing from outside.

Uses the notebooks that test_notebooks.py executes (book_helpers.py runs them once per session),
so the book build finds them up to date and executes nothing.
"""

from __future__ import annotations

import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from book_helpers import HTML, NOTEBOOKS, built_book, report  # noqa: E402


@pytest.fixture(scope="session")
def book():
    run = built_book()
    assert run.returncode == 0, "make book failed\n" + report(run)
    return run


class Resources(HTMLParser):
    """Every URL a page loads by itself: scripts, stylesheets, preloads, icons, images, frames."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("script", "img", "iframe", "source", "embed") and a.get("src"):
            self.urls.append(a["src"])
        elif tag == "link" and a.get("href") and a.get("rel") != "canonical":
            rel = set((a.get("rel") or "").split())
            if rel & {"stylesheet", "preload", "modulepreload", "icon", "shortcut", "prefetch"}:
                self.urls.append(a["href"])


def resources(page: Path) -> list[str]:
    parser = Resources()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser.urls


def is_external(url: str) -> bool:
    return bool(urlsplit(url).scheme in ("http", "https") or url.startswith("//"))


def test_book_prints_index_path_last(book):
    index = HTML / "index.html"
    assert index.is_file()
    assert book.stdout.strip().splitlines()[-1] == f"Book: {index}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_is_a_chapter(book, notebook):
    page = HTML / "notebooks" / f"{notebook.stem}.html"
    assert page.is_file(), f"no page for {notebook}: is it in book/_toc.yml?"


def test_pages_load_nothing_from_outside(book):
    pages = sorted(HTML.rglob("*.html"))
    assert pages
    external = {f"{p.relative_to(HTML)}: {u}" for p in pages for u in resources(p) if is_external(u)}
    assert not external, "pages load from the network:\n" + "\n".join(sorted(external))


def test_mathjax_is_served_from_the_book(book):
    page = HTML / "background.html"      # the page with the most math
    scripts = [u for u in resources(page) if "mathjax" in u.lower()]
    assert scripts, f"{page.name} loads no MathJax"
    for src in scripts:
        path = (page.parent / urlsplit(src).path).resolve()
        assert path.is_file(), f"{page.name} loads {src}, which is not in the build"
        fonts = path.parent / "output" / "chtml" / "fonts" / "woff-v2"
        assert (fonts / "MathJax_Main-Regular.woff").is_file(), f"no MathJax fonts in {fonts}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_scorecard_rows_render_as_a_table(book, notebook):
    """A chapter that decides claims shows them as an HTML table with a Verdict column, not as pipes."""
    from mempkg.book.scorecard import claims_of

    if not claims_of(notebook.stem):
        pytest.skip(f"{notebook.stem} decides no scorecard claim")
    html = (HTML / "notebooks" / f"{notebook.stem}.html").read_text()
    assert "<p>Verdict</p></th>" in html, f"{notebook.stem}: no rendered scorecard table"
    assert "| Claim |" not in html, f"{notebook.stem}: a scorecard table shows as raw Markdown"
