"""BOOK_REPO: a build that names its repository shows the repository, issues, download, Binder and Colab buttons
with URLs that lead to files that exist (the launch buttons to the chapter's notebook, not to a .ipynb the
repository lacks); one that names none shows no link to a service on the network."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "book" / "_ext"))
import book_config  # noqa: E402
import book_html  # noqa: E402

CHAPTER = "01_von_mises"


def test_the_repository_is_named_and_its_buttons_switched_on():
    config = yaml.safe_load((ROOT / "book" / "_config.yml").read_text())
    assert config["html"]["use_repository_button"] is False and "repository" not in config   # the default
    assert not any(config["launch_buttons"][k] for k in ("binderhub_url", "colab_url", "jupyterhub_url", "thebe"))
    named = book_config.name_repository(config, "owner/name")
    assert named["repository"]["url"] == "https://github.com/owner/name"
    assert named["html"]["use_repository_button"] and named["html"]["use_issues_button"]
    assert named["html"]["favicon"] == config["html"]["favicon"], "the rest of the configuration is kept"
    assert named["launch_buttons"]["binderhub_url"] == "https://mybinder.org"
    assert named["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert named["sphinx"]["config"]["mempkg_launch"] == {"repo": "owner/name", "branch": "main",
                                                          "notebooks_branch": "notebooks"}
    assert named["sphinx"]["local_extensions"] == config["sphinx"]["local_extensions"]
    assert named["sphinx"]["config"]["mathjax_path"] == config["sphinx"]["config"]["mathjax_path"]
    with pytest.raises(ValueError, match="owner/name"):
        book_config.name_repository(config, "https://github.com/owner/name")


def test_launch_urls_name_the_notebooks_binder_and_branch():
    """The launch URLs name the notebooks that Binder and the notebooks branch hold."""
    urls = book_html.launch_urls({"repo": "o/n", "branch": "main", "notebooks_branch": "nb"}, CHAPTER)
    assert urls["Binder"] == f"https://mybinder.org/v2/gh/o/n/main?urlpath=lab/tree/notebooks/{CHAPTER}.ipynb"
    assert urls["Colab"] == f"https://colab.research.google.com/github/o/n/blob/nb/notebooks/{CHAPTER}.ipynb"
    # what Binder runs: its postBuild writes exactly that notebook from the chapter's jupytext source
    post = (ROOT / "binder" / "postBuild").read_text()
    assert "jupytext --to ipynb notebooks/*.py" in post and (ROOT / "binder" / "postBuild").stat().st_mode & 0o111
    assert (ROOT / "notebooks" / f"{CHAPTER}.py").is_file()
    env = yaml.safe_load((ROOT / "binder" / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "jupytext" in pip and any(p.startswith("torch") for p in pip)


def build(folder: Path, repo: str | None) -> str:
    """A two-page Jupyter Book with the book's theme settings and extension: a Markdown page and a notebook
    page named like a chapter. Built; returns the notebook page's HTML."""
    folder.mkdir()
    config = yaml.safe_load((ROOT / "book" / "_config.yml").read_text())
    config = {k: config[k] for k in ("html", "launch_buttons", "execute")} | {
        "title": "t", "only_build_toc_files": True, "sphinx": {
            "local_extensions": {"book_html": "_ext"},
            "config": {"html_context": config["sphinx"]["config"]["html_context"]}}}
    (folder / "_config.yml").write_text(yaml.safe_dump(config))
    shutil.copytree(ROOT / "book" / "_ext", folder / "_ext")
    shutil.copy(ROOT / "book" / config["html"]["favicon"], folder)
    if repo:
        assert book_config.main([str(folder / "_config.yml"), "--repo", repo]) == 0
    (folder / "_toc.yml").write_text(f"format: jb-book\nroot: intro\nchapters:\n  - file: notebooks/{CHAPTER}\n")
    (folder / "intro.md").write_text("# A page\n\nText.\n")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# A chapter"),
                                         nbformat.v4.new_code_cell("1 + 1")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    (folder / "notebooks").mkdir()
    nbformat.write(nb, folder / "notebooks" / f"{CHAPTER}.ipynb")
    jb = Path(sys.executable).parent / "jupyter-book"
    if not jb.exists():
        pytest.skip("jupyter-book is not installed")
    r = subprocess.run([str(jb), "build", str(folder), "-W", "-n"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return (folder / "_build" / "html" / "notebooks" / f"{CHAPTER}.html").read_text()


def hrefs(html: str) -> set[str]:
    return {h.replace("&amp;", "&") for h in re.findall(r'href="(https?://[^"]+)"', html)}


def test_a_named_build_shows_every_button_with_the_right_url(tmp_path):
    """A build naming its repository shows every button with the right URL; the default links nothing."""
    named = hrefs(build(tmp_path / "named", "owner/name"))
    assert "https://github.com/owner/name" in named
    assert any(h.startswith("https://github.com/owner/name/issues") for h in named)
    urls = book_html.launch_urls({"repo": "owner/name", "branch": "main", "notebooks_branch": "notebooks"}, CHAPTER)
    assert urls["Binder"] in named and urls["Colab"] in named
    assert not any("book/notebooks" in h for h in named), "no launch button points at the theme's own guess"
    page = (tmp_path / "named" / "_build" / "html" / "notebooks" / f"{CHAPTER}.html").read_text()
    assert f"_sources/notebooks/{CHAPTER}.ipynb" in page, "the download button offers the executed notebook"
    plain = build(tmp_path / "plain", None)
    assert not hrefs(plain) and "github.com" not in plain and "colab" not in plain and "mybinder" not in plain
