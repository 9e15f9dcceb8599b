"""The built tiny book, checked as a reader sees it: every page opened in headless Chromium.

What a reviewer should look at
------------------------------
- **The screenshots**: `results/screenshots/tiny/<page>.png`, one full-page PNG per HTML page
  (e.g. `notebooks/03_three_regimes.png`), and `report.json` beside them with, per page, the
  documents the tab showed, the requests it made, its images and its math. The path is printed
  at the end of the pytest run. Look for figures that are missing or blank, math shown as raw
  TeX, and layout that a broken stylesheet would give.
- **What is asserted** for every page of `build/tiny/html` (all `*.html` except the template
  fragments under `_static/`: index.html, intro.html, background.html, scorecard.html, every
  chapter under notebooks/, use_your_model.html, references.html, genindex.html and search.html):
  no console error, uncaught exception or failed load (a 404, a blocked or refused request);
  no request to any host but 127.0.0.1 (data: and blob: URLs are fine); on each chapter page as
  many figures from notebook outputs as the executed notebook has image/png outputs, each
  decoded, of non-zero size and not a single colour; every math element typeset by MathJax,
  without a MathJax error, and no raw TeX (`$$`, `\\(`, `\\[`, `$..\\cmd..$`) left in the text;
  at a 1280 px window, neither the page nor a table of the text wider than its room, and on a
  chapter page no code block (a `pre` whose content is wider than its box), data frame or
  other scrolling box wider than its room either.
- **A chapter page reads as text and results** (each page under notebooks/, at 1280 px): the
  parameters cell shows its code; every cell tagged hide-input shows its outputs, with its code
  folded in the closed `<details>` toggle that myst-nb writes ("Show code cell source"); every
  other code cell but the set-up cell (the first after the parameters cell) shows no code;
  papermill's injected-parameters cell is not shown (book/_ext leaves it out); every figure
  from a notebook output is at least 90% of the text column wide and enlarged at most 1.25x
  its own pixels (plots.style() draws figures at twice their pixels, the book's CSS stretches
  them to the column).
- **How**: the book is served by a thread on 127.0.0.1 at a free port, and Debian's Chromium
  runs headless with its background services off, every host name but the loopback resolving
  to nothing, and a proxy on a closed local port for anything that would still go out. It is
  driven by Playwright for Python (tests/browser_helpers.py), a maintained driver, pinned in the
  project's [test] extra, pointed at the system Chromium through `executable_path`: nothing is
  downloaded (Playwright's own browser builds, from `playwright install`, are never used), and
  it talks to Chromium over a pipe, so no debugging port is open on the machine. Each page gets
  a fresh browser context; every request Playwright reports is recorded, and the requests for
  /favicon.ico it leaves out are read from the tab's DevTools network events.
- **A build that names its repository** (`BOOK_REPO`): a two-page book built both ways; the
  named one shows the launch, repository and download buttons with the URLs book/_ext writes
  (links read, never followed), the default one none of them.
- **That the checks can fail**: test_checks_catch_a_broken_page opens a synthetic page with a
  console.error, an uncaught exception, a script from https://example.com, a missing image,
  a blank figure, a 404 stylesheet, raw TeX, a MathJax error, a table wider than its column and
  a page wider than the window, and asserts each is reported;
  test_chapter_checks_catch_scrolling_code_and_unfolded_cells opens a chapter page laid out as
  myst-nb writes one, with the book's stylesheet, once well and once badly: a parameters line
  too long for its box, a data frame wider than the column, the injected cell shown, a
  computation cell's code shown, a hide-input cell left open, a narrow figure and an enlarged
  one.

Chromium comes from `apt-get install chromium` (.ci/run installs it when missing), Playwright
from `pip install playwright` (`make venv` installs it); without either these tests skip and say
so. Set CHROMIUM=/path/to/chrome to use another build.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from book_helpers import EXECUTED, HTML, NOTEBOOKS, PROFILE, RESULTS, ROOT, built_book, report  # noqa: E402
from browser_helpers import (  # noqa: E402
    Chromium,
    console_problems,
    figure_problems,
    figure_width_problems,
    find_chromium,
    fold_problems,
    injected_problems,
    math_problems,
    outside_requests,
    overflow_problems,
    png_outputs,
    serve,
    wide_block_problems,
)

SCREENSHOTS = RESULTS / "screenshots" / PROFILE


@pytest.fixture(scope="session")
def chromium():
    path = find_chromium()
    if path is None:
        pytest.skip("Chromium is not installed, so the book was not opened in a browser: "
                    "apt-get install chromium (.ci/run does), or set CHROMIUM=/path/to/chrome")
    pytest.importorskip("playwright.sync_api", reason="Playwright is not installed, so the book was not opened "
                        "in a browser: pip install playwright (make venv does)")
    return path


@pytest.fixture(scope="session")
def book():
    run = built_book()
    assert run.returncode == 0, "make book failed\n" + report(run)
    return run


def book_pages(html: Path) -> list[str]:
    """Every HTML page of the build, relative to it; _static/ holds theme template fragments."""
    return sorted(p.relative_to(html).as_posix() for p in html.rglob("*.html")
                  if p.relative_to(html).parts[0] not in ("_static", "_sources", "_images"))


def expected_figures(page: str) -> int:
    """Figures a page must show: its executed notebook's image/png outputs (none for other pages)."""
    notebook = EXECUTED / Path(page).with_suffix(".ipynb").name
    return png_outputs(notebook) if page.startswith("notebooks/") and notebook.is_file() else 0


def chapter_problems(page: str, visit) -> list[str]:
    """What a chapter page must not do beyond any page: scroll a box sideways, show code it should fold,
    show papermill's injected cell, show a figure narrower than the text or blurred by enlarging."""
    if not page.startswith("notebooks/"):
        return []
    return wide_block_problems(visit) + fold_problems(visit) + injected_problems(visit) + figure_width_problems(visit)


class _SummaryLine:
    """Prints where the screenshots are at the end of the run, where pytest's capture can't hide it."""

    def __init__(self, line: str):
        self.line = line

    def pytest_terminal_summary(self, terminalreporter):
        terminalreporter.write_line(self.line)


@pytest.fixture(scope="session")
def visits(book, chromium, request):
    """Open every page once; {page: PageReport}. Screenshots and report.json go to SCREENSHOTS."""
    pages = book_pages(HTML)
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    start = time.monotonic()
    with Chromium(chromium) as browser, serve(HTML) as base:
        visits = {page: browser.visit(base + page, page, SCREENSHOTS / page.replace(".html", ".png"))
                  for page in pages}
        version = browser.version
    seconds = time.monotonic() - start
    summary = {"browser": version, "seconds": round(seconds, 1), "pages": {
        page: {"documents": [d.removeprefix(base) for d in v.documents], "seconds": round(v.seconds, 2),
               "screenshot": v.screenshot.relative_to(SCREENSHOTS).as_posix() if v.screenshot else None,
               "requests": [u.removeprefix(base) for u in v.requests],
               "problems": console_problems(v) + outside_requests(v) + math_problems(v)
               + figure_problems(v, expected_figures(page)) + overflow_problems(v) + chapter_problems(page, v),
               **{k: v.facts.get(k) for k in ("title", "images", "math", "mathjax")}}
        for page, v in visits.items()}}
    (SCREENSHOTS / "report.json").write_text(json.dumps(summary, indent=1))
    where = SCREENSHOTS.relative_to(ROOT) if SCREENSHOTS.is_relative_to(ROOT) else SCREENSHOTS
    request.config.pluginmanager.register(_SummaryLine(
        f"Browser check: {len(pages)} pages of {HTML.relative_to(ROOT)} opened in {version} in {seconds:.0f} s; "
        f"screenshots and report.json in {where}/"), "book-screenshots")
    return visits


def test_every_page_is_opened_and_screenshot(visits):
    needed = {"index.html", "intro.html", "background.html"} | {f"notebooks/{nb.stem}.html" for nb in NOTEBOOKS}
    assert needed <= set(visits), f"pages not found in {HTML}: {sorted(needed - set(visits))}"
    missing = [p for p, v in visits.items() if not (v.screenshot and v.screenshot.stat().st_size > 0)]
    assert not missing, f"no screenshot of {missing}"
    assert visits["index.html"].documents[-1].endswith("/intro.html"), \
        f"index.html does not lead to intro.html: {visits['index.html'].documents}"


def test_pages_log_no_console_errors(visits):
    problems = [line for v in visits.values() for line in console_problems(v)]
    assert not problems, "console errors and failed loads:\n" + "\n".join(problems)


def test_no_request_leaves_localhost(visits):
    assert sum(len(v.requests) for v in visits.values()) > len(visits), "requests were not recorded"
    problems = [line for v in visits.values() for line in outside_requests(v)]
    assert not problems, "requests to other hosts:\n" + "\n".join(problems)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapter_figures_are_shown(visits, notebook):
    page = f"notebooks/{notebook.stem}.html"
    assert page in visits, f"no page {page} in the book"
    problems = figure_problems(visits[page], expected_figures(page))
    assert not problems, "\n".join(problems)


def test_images_load_on_every_page(visits):
    problems = [line for page, v in visits.items() if not page.startswith("notebooks/")
                for line in figure_problems(v, expected=0)]
    assert not problems, "\n".join(problems)


def test_no_page_overflows_horizontally_at_1280_px(visits):
    """No page, table of the text, nor on a chapter page any code block or scrolling box (a data frame),
    is wider than its room: a reader never scrolls sideways."""
    assert all("page_overflow" in v.facts for v in visits.values()), "the overflow was not measured"
    problems = [line for page, v in visits.items()
                for line in overflow_problems(v) + (wide_block_problems(v) if page.startswith("notebooks/") else [])]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapter_cells_show_results_and_fold_their_code(visits, notebook):
    """The parameters cell shows its code; a hide-input cell its outputs, its code folded behind the toggle;
    any other cell but the set-up cell shows no code."""
    page = f"notebooks/{notebook.stem}.html"
    assert page in visits, f"no page {page} in the book"
    problems = fold_problems(visits[page])
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_injected_parameters_cell_is_not_shown(visits, notebook):
    """papermill's cell of injected parameters is in the executed notebook, and not on its page."""
    page = f"notebooks/{notebook.stem}.html"
    assert page in visits, f"no page {page} in the book"
    cells = json.loads((EXECUTED / f"{notebook.stem}.ipynb").read_text())["cells"]
    assert any("injected-parameters" in c["metadata"].get("tags", []) for c in cells), \
        f"{notebook.stem}.ipynb has no injected-parameters cell: is the check blind?"
    problems = injected_problems(visits[page])
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapter_figures_span_the_text_column(visits, notebook):
    """Each figure is at least 90% of the text column wide, and enlarged at most 1.25x its pixels."""
    page = f"notebooks/{notebook.stem}.html"
    assert page in visits, f"no page {page} in the book"
    assert any(i["output"] and i["shown"] for i in visits[page].facts.get("images", [])), \
        f"{page} shows no figure: is the check blind?"
    problems = figure_width_problems(visits[page])
    assert not problems, "\n".join(problems)


def test_math_is_typeset(visits):
    assert visits["background.html"].facts.get("math", 0) > 0, "background.html has no math: is the check blind?"
    problems = [line for v in visits.values() for line in math_problems(v)]
    assert not problems, "\n".join(problems)


# ---- the checks themselves, on a synthetic two-page site (no book build; a few seconds) --------

PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}</title>
<link rel="icon" href="data:,">
<script>window.MathJax = {{options: {{processHtmlClass: "math"}}}}</script>
<script defer src="mathjax/tex-chtml-full.js"></script>{head}</head>
<body><h1>{title}</h1>{body}</body></html>"""


def synthetic_site(root: Path) -> Path:
    from PIL import Image

    shutil.copytree(ROOT / "book" / "_vendor" / "mathjax", root / "mathjax")
    figure = Image.new("RGB", (40, 30), "white")
    figure.paste((30, 60, 200), (5, 5, 20, 25))
    figure.save(root / "figure.png")
    Image.new("RGB", (40, 30), "white").save(root / "blank.png")
    (root / "good.html").write_text(PAGE.format(title="good", head="", body=(
        '<p>The score <span class="math">\\(\\nabla_x \\log p_t(x)\\)</span>.</p>'
        '<div class="cell_output"><img src="figure.png"></div><pre>print("$$ \\\\(")</pre>')))
    (root / "bad.html").write_text(PAGE.format(
        title="bad",
        head=('<link rel="stylesheet" href="missing.css">'
              '<script src="https://example.com/tracker.js"></script>'
              '<script>console.error("boom from the page"); setTimeout(() => { throw new Error("late failure") });'
              '</script>'),
        body=('<p>Inline math the parser missed: $\\alpha + 1$.</p>'
              '<p><span class="math">\\(x^\\)</span></p>'
              '<div class="cell_output"><img src="figure.png"></div>'
              '<div class="cell_output"><img src="missing.png"></div>'
              '<div class="cell_output"><img src="blank.png"></div>'
              '<img src="http://203.0.113.7/pixel.png">'
              '<div style="width: 600px"><table><tr><td>wide</td><td style="white-space: nowrap">'
              + "an unbreakable cell " * 20 + '</td></tr></table></div>'
              '<div style="width: 2000px">a page wider than the window</div>')))
    # MathJax missing altogether: Sphinx's delimiters stay in the text
    (root / "nomathjax.html").write_text(
        '<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body>'
        '<p>Math: <span class="math">\\(x^2\\)</span></p><div class="math">$$\\sum_i x_i$$</div></body></html>')
    return root


def test_checks_catch_a_broken_page(chromium, tmp_path):
    site = synthetic_site(tmp_path)
    with Chromium(chromium) as browser, serve(site) as base:
        good = browser.visit(base + "good.html", "good.html", tmp_path / "good.png")
        bad = browser.visit(base + "bad.html", "bad.html")
        untypeset = browser.visit(base + "nomathjax.html", "nomathjax.html")

    assert good.facts["math"] == 1 and good.facts["mathjax"] == "typeset"
    assert (tmp_path / "good.png").stat().st_size > 0
    assert console_problems(good) + outside_requests(good) + figure_problems(good, 1) + math_problems(good) == []
    assert overflow_problems(good) == []

    def reported(problems, *needles):
        text = "\n".join(problems)
        missing = [n for n in needles if n not in text]
        assert not missing, f"{missing} not reported in:\n{text}"
        assert all(line.startswith("bad.html: ") for line in problems), "a problem does not name its page"
        assert len(set(problems)) == len(problems), f"a problem reported twice:\n{text}"

    reported(console_problems(bad), "console.error: boom from the page", "uncaught Error: late failure",
             "missing.css: HTTP 404", "missing.png: HTTP 404", "example.com/tracker.js")
    reported(outside_requests(bad), "requested https://example.com/tracker.js",
             "requested http://203.0.113.7/pixel.png")
    reported(figure_problems(bad, 4), "3 figure(s) from notebook outputs, the executed notebook has 4",
             "image missing.png did not load", "figure blank.png is a single colour")
    reported(overflow_problems(bad), "the page is", "px wider than the 1280 px window",
             "a table (starting 'wide') is")
    reported(math_problems(bad), 'MathJax error: "Missing superscript or subscript argument"',
             "raw TeX in the text: ", "missed: $\\alpha + 1$")
    assert math_problems(untypeset) == [
        "nomathjax.html: 2 math element(s) but MathJax is not loaded",
        "nomathjax.html: 2 of 2 math element(s) not typeset, e.g. \\(x^2\\); $$\\sum_i x_i$$"],\
        math_problems(untypeset)


# A chapter page as myst-nb writes one (tags as classes of div.cell, hide-input as a closed details), in the
# theme's text column (688 px wide at a 1280 px window), with the book's stylesheet.
CHAPTER = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}</title><link rel="icon" href="data:,">
<link rel="stylesheet" href="book_html.css"><style>
body {{ margin: 0 }} main {{ display: flex }} nav {{ width: 256px; flex: none }}
article.bd-article {{ width: 752px; padding: 0 32px; box-sizing: border-box }}
pre {{ overflow: auto; padding: 16px; font-size: 14px; white-space: pre }} .output {{ overflow-x: auto }}
</style></head><body><main><nav>contents</nav><article class="bd-article"><h1>{title}</h1>{cells}</article></main>
</body></html>"""


def cell(source: str, tags: tuple[str, ...] = (), outputs: str = "", folded: str = "") -> str:
    """One code cell as myst-nb renders it; FOLDED: "" (input shown), "closed" or "open" (a hide-input toggle)."""
    code = f'<div class="cell_input"><div class="highlight"><pre>{source}</pre></div></div>'
    if folded:
        code = (f'<details class="admonition hide above-input"{" open" if folded == "open" else ""}><summary>'
                f'<p>Show code cell source</p></summary>{code}</details>')
    out = f'<div class="cell_output">{outputs}</div>' if outputs else ""
    return f'<div class="{" ".join(["cell", *(f"tag_{t}" for t in tags)])}">{code}{out}</div>'


def synthetic_chapters(root: Path) -> Path:
    from PIL import Image

    figure = Image.new("RGB", (1400, 400), "white")
    figure.paste((30, 60, 200), (100, 100, 700, 300))
    figure.save(root / "wide.png")
    figure.resize((200, 60)).save(root / "small.png")
    shutil.copy(ROOT / "book" / "_ext" / "static" / "book_html.css", root)
    text = '<div class="output stream"><div class="highlight"><pre>{}</pre></div></div>'.format
    frame = ('<div class="output text_html"><table class="dataframe"><tr>'
             + "".join(f"<td>{i:03d}</td>" for i in range(200)) + "</tr></table></div>")
    setup = cell("import mempkg", ("hide-input",), text("Produced with profile tiny"), folded="closed")
    (root / "chapter.html").write_text(CHAPTER.format(title="chapter", cells="".join([
        cell("# the data seed\nseed = 0\n# " + "x" * 86, ("parameters",)),
        setup,
        cell("fig = plots.curve(result)", ("hide-input",), '<img src="wide.png">', folded="closed"),
        cell("result.table", ("hide-input",), text("a printed line " * 30), folded="closed"),
        '<div class="cell tag_remove-input"><div class="cell_output"><img src="wide.png"></div></div>'])))
    (root / "broken.html").write_text(CHAPTER.format(title="broken", cells="".join([
        cell("seed = 0        # the data seed, with a trailing comment that runs past eighty-eight characters",
             ("parameters",)),
        cell('# Parameters\nprofile = "tiny"', ("injected-parameters",)),
        cell("import mempkg", (), text("Produced with profile tiny")),
        cell("result = run(S, seed=seed)", (), text("done")),
        cell("table = result.table", ("hide-input",), frame, folded="open"),
        cell("plots.curve(result)", ("hide-input",), '<div style="width: 300px"><img src="wide.png"></div>',
             folded="closed"),
        cell("plots.samples(result)", ("hide-input",), '<img src="small.png">', folded="closed")])))
    return root


def test_chapter_checks_catch_scrolling_code_and_unfolded_cells(chromium, tmp_path):
    """A well laid out chapter page passes the chapter checks; one that scrolls a code block and a data frame
    sideways, shows the injected cell and a computation's code, and a narrow and an enlarged figure, fails
    each, naming the cell."""
    site = synthetic_chapters(tmp_path)
    with Chromium(chromium) as browser, serve(site) as base:
        good = browser.visit(base + "chapter.html", "chapter.html")
        bad = browser.visit(base + "broken.html", "broken.html")
    assert good.facts["column"] == 688 and len(good.facts["cells"]) == 5, good.facts
    for check in (wide_block_problems, fold_problems, injected_problems, figure_width_problems, overflow_problems):
        assert check(good) == [], check(good)

    def reported(problems, *needles):
        text = "\n".join(problems)
        missing = [n for n in needles if n not in text]
        assert not missing, f"{missing} not reported in:\n{text}"
        assert all(line.startswith("broken.html: ") for line in problems), "a problem does not name its page"

    reported(wide_block_problems(bad),
             "the code of the code cell tagged parameters starting 'seed = 0", "longest line has 95 characters",
             "an output (table) of the code cell tagged hide-input starting 'table = result.table'")
    reported(injected_problems(bad), "papermill's injected parameters are shown: '# Parameters'")
    reported(fold_problems(bad),
             "code cell 4 (no tag) starting 'result = run(S, seed=seed)': shows its code; tag it hide-input",
             "code cell 5 (hide-input) starting 'table = result.table': its code is shown, not folded")
    assert "code cell 3" not in "\n".join(fold_problems(bad)), "the set-up cell may show its code"
    reported(figure_width_problems(bad), "figure wide.png is 300 px wide, under 90% of the 688 px text column",
             "figure small.png is enlarged from 200 to 688 px, more than 1.25x its pixels")


def test_a_named_build_shows_buttons_with_right_urls(chromium, tmp_path):
    """BOOK_REPO: a chapter page built with it shows the launch, repository and download buttons, their links go
    where tools/book_config.py and book/_ext say (not followed: no request leaves 127.0.0.1); the default build
    of the same page shows no launch or repository button and links to no other host."""
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    import book_html
    import test_book_config as books

    pages = {}
    for name, repo in (("named", "owner/name"), ("plain", None)):
        books.build(tmp_path / name, repo)
        html = tmp_path / name / "_build" / "html"
        with Chromium(chromium) as browser, serve(html) as base:
            pages[name] = browser.visit(base + f"notebooks/{books.CHAPTER}.html")
    named, plain = pages["named"], pages["plain"]
    for v in pages.values():
        assert not outside_requests(v) and not console_problems(v), console_problems(v) + outside_requests(v)
    urls = book_html.launch_urls({"repo": "owner/name", "branch": "main", "notebooks_branch": "notebooks"},
                                 books.CHAPTER)
    links = set(named.facts["links_out"])
    assert {urls["Binder"], urls["Colab"], "https://github.com/owner/name"} <= links, sorted(links)
    assert any(u.startswith("https://github.com/owner/name/issues") for u in links)
    assert {"Launch interactive content", "Source repositories", "Download this page"} <= \
        set(named.facts["header_dropdowns"])
    assert plain.facts["links_out"] == [] and "Launch interactive content" not in plain.facts["header_dropdowns"]
