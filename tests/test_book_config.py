"""BOOK_REPO: a build that names its repository shows the repository and issues buttons with the right URLs;
one that names none shows no link to a service on the network."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import book_config  # noqa: E402


def test_the_repository_is_named_and_its_buttons_switched_on():
    config = yaml.safe_load((ROOT / "book" / "_config.yml").read_text())
    assert config["html"]["use_repository_button"] is False and "repository" not in config   # the default
    named = book_config.name_repository(config, "owner/name")
    assert named["repository"]["url"] == "https://github.com/owner/name"
    assert named["html"]["use_repository_button"] and named["html"]["use_issues_button"]
    assert named["html"]["favicon"] == config["html"]["favicon"], "the rest of the configuration is kept"
    assert named["launch_buttons"] == config["launch_buttons"], "launch buttons stay off (see the tool's docstring)"
    with pytest.raises(ValueError, match="owner/name"):
        book_config.name_repository(config, "https://github.com/owner/name")


def build(folder: Path, repo: str | None) -> str:
    """A one-page Jupyter Book with the book's theme settings, built; returns its page's HTML."""
    folder.mkdir()
    config = {"title": "t", "only_build_toc_files": True, "execute": {"execute_notebooks": "off"},
              "html": {"use_repository_button": False, "use_issues_button": False, "use_edit_page_button": False},
              "launch_buttons": {"thebe": False, "binderhub_url": "", "jupyterhub_url": "", "colab_url": ""}}
    (folder / "_config.yml").write_text(yaml.safe_dump(config))
    if repo:
        assert book_config.main([str(folder / "_config.yml"), "--repo", repo]) == 0
    (folder / "_toc.yml").write_text("format: jb-book\nroot: intro\n")
    (folder / "intro.md").write_text("# A page\n\nText.\n")
    jb = Path(sys.executable).parent / "jupyter-book"
    if not jb.exists():
        pytest.skip("jupyter-book is not installed")
    r = subprocess.run([str(jb), "build", str(folder), "-W", "-n"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return (folder / "_build" / "html" / "intro.html").read_text()


def test_a_named_build_links_the_repository_and_its_issues_and_the_default_links_nothing(tmp_path):
    named = build(tmp_path / "named", "owner/name")
    assert 'href="https://github.com/owner/name"' in named
    assert "https://github.com/owner/name/issues" in named
    plain = build(tmp_path / "plain", None)
    assert "github.com" not in plain
