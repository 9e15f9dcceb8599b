"""Small fixes to the HTML that Jupyter Book 1 writes: no console error, launch buttons that lead somewhere, and
chapter pages a reader reads.

Sphinx 7 (which Jupyter Book 1 pins) writes an inline script added after the builder started
twice: the copy it keeps as `None` and the one it re-adds as `''` no longer compare equal.
sphinx-thebe adds such a script, `const THEBE_JS_URL = ...`, and the second `const` is a
SyntaxError on every page. Keep the first of identical scripts.

With ``mempkg_launch`` set (``tools/book_config.py`` sets it when the build names its repository), the Binder and
Colab buttons of each chapter point at notebooks that exist: the theme would point them at
``book/notebooks/<chapter>.ipynb``, while the repository holds ``notebooks/<chapter>.py`` (jupytext). Binder
opens the notebook that ``binder/postBuild`` writes from that file; Colab opens the one `make publish` puts on
the notebooks branch.

The cell papermill injects after the ``parameters`` cell (tagged ``injected-parameters``) is left out of the page,
as a ``remove-cell`` tag would leave it out: the parameters cell shows the defaults a reader edits, and the
chapter's banner names the profile and every setting that was overridden. The executed notebook keeps the cell.

``static/book_html.css`` sets the chapters' layout: figures span the text column, code fits 88 characters to
the line in the column of a 1280 px window, text outputs wrap as in JupyterLab.
"""

from pathlib import Path
from urllib.parse import quote

from docutils import nodes

BINDER = "https://mybinder.org"
COLAB = "https://colab.research.google.com"


def _drop_repeated_scripts(app, pagename, templatename, context, doctree):
    seen, kept = set(), []
    for js in context.get("script_files", []):
        key = (js.filename or "", js.priority, tuple(sorted(js.attributes.items())))
        if key not in seen:
            seen.add(key)
            kept.append(js)
    context["script_files"] = kept


def launch_urls(launch: dict, chapter: str) -> dict:
    """``{"Binder": url, "Colab": url}`` of one chapter (its stem, e.g. ``01_von_mises``) for
    ``launch = {"repo": "owner/name", "branch": ..., "notebooks_branch": ...}``."""
    path = f"notebooks/{quote(chapter)}.ipynb"
    return {"Binder": f"{BINDER}/v2/gh/{launch['repo']}/{launch['branch']}?urlpath=lab/tree/{path}",
            "Colab": f"{COLAB}/github/{launch['repo']}/blob/{launch['notebooks_branch']}/{path}"}


def _point_launch_buttons_at_the_chapters(app, pagename, templatename, context, doctree):
    launch = app.config.mempkg_launch
    if not launch or not pagename.startswith("notebooks/"):
        return
    urls = launch_urls(launch, pagename.split("/", 1)[1])
    for group in context.get("header_buttons", []):
        if group.get("label") == "launch-buttons":
            for button in group.get("buttons", []):
                if button.get("text") in urls:
                    button["url"] = urls[button["text"]]


INJECTED = "injected-parameters"    # papermill's tag on the cell it adds


def _remove_injected_parameters(app, doctree):
    for cell in list(doctree.findall(nodes.container)):
        if cell.get("nb_element") == "cell_code" and INJECTED in cell.get("cell_metadata", {}).get("tags", []):
            cell.parent.remove(cell)


def _add_stylesheet(app, config):
    config.html_static_path.append(str(Path(__file__).parent / "static"))


def setup(app):
    app.add_config_value("mempkg_launch", {}, "html")
    app.connect("config-inited", _add_stylesheet)
    app.add_css_file("book_html.css")
    app.connect("doctree-read", _remove_injected_parameters)
    app.connect("html-page-context", _drop_repeated_scripts)
    # after sphinx-book-theme's add_launch_buttons (priority 501)
    app.connect("html-page-context", _point_launch_buttons_at_the_chapters, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
