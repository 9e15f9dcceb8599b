"""`make publish`: the built HTML goes to a gh-pages branch with .nojekyll, through ghp-import, tested against a
local bare repository; --dry-run pushes nothing; the checkout's own branches are never touched."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import publish  # noqa: E402


@pytest.fixture
def site(tmp_path):
    pytest.importorskip("ghp_import", reason="ghp-import is not installed")
    html = tmp_path / "html"
    (html / "_static").mkdir(parents=True)
    (html / "index.html").write_text("<html>book</html>")
    (html / "_static" / "style.css").write_text("body {}")
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    return html, bare


def branches(bare: Path) -> str:
    return subprocess.run(["git", "branch", "--list"], cwd=bare, capture_output=True, text=True).stdout


def test_dry_run_lists_the_files_and_pushes_nothing(site, capsys):
    html, bare = site
    assert publish.main(["--html", str(html), "--remote", str(bare), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would push (dry run) 3 files" in out and ".nojekyll" in out and "index.html" in out
    assert "gh-pages" not in branches(bare)


def test_publish_pushes_a_branch_with_nojekyll_and_keeps_its_history(site):
    html, bare = site
    before = subprocess.run(["git", "branch", "--list"], cwd=ROOT, capture_output=True, text=True).stdout
    first = publish.publish(html, str(bare))
    assert first["pushed"] and set(first["files"]) == {".nojekyll", "index.html", "_static/style.css"}
    (html / "index.html").write_text("<html>book, rebuilt</html>")
    second = publish.publish(html, str(bare))
    assert second["previous_branch_found"] and second["history"] == 2
    shown = subprocess.run(["git", "show", "gh-pages:index.html"], cwd=bare, capture_output=True, text=True).stdout
    assert shown == "<html>book, rebuilt</html>"
    after = subprocess.run(["git", "branch", "--list"], cwd=ROOT, capture_output=True, text=True).stdout
    assert after == before, "publishing never creates a branch in the checkout"


def test_a_missing_build_is_a_plain_error(tmp_path):
    with pytest.raises(SystemExit, match="no index.html: build the book first"):
        publish.publish(tmp_path, str(tmp_path / "remote.git"), dry_run=True)


def test_chapters_go_to_the_notebooks_branch_for_colab(site, tmp_path):
    """The chapters go to the notebooks branch for Colab, each installing the package first."""
    import jupytext
    import nbformat

    _, bare = site
    out = publish.publish_notebooks("owner/name", str(bare), ref="v1")
    chapters = sorted(p.stem for p in (ROOT / "notebooks").glob("*.py"))
    assert out["pushed"] and set(out["files"]) == {"README.md"} | {f"notebooks/{c}.ipynb" for c in chapters}
    assert ".nojekyll" not in out["files"]
    for c in chapters:
        text = subprocess.run(["git", "show", f"notebooks:notebooks/{c}.ipynb"], cwd=bare, capture_output=True,
                              text=True, check=True).stdout
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
        first = nb.cells[0]
        assert first.cell_type == "code" and "git+https://github.com/owner/name@v1" in first.source
        assert 'if "google.colab" in sys.modules:' in first.source
        compile(first.source, "cell", "exec")
        source = jupytext.read(ROOT / "notebooks" / f"{c}.py")
        assert [x.source for x in nb.cells[1:]] == [x.source for x in source.cells], "the chapter, unchanged"
        assert any("parameters" in x.metadata.get("tags", []) for x in nb.cells), "papermill's parameters cell"
        assert not any(x.get("outputs") for x in nb.cells if x.cell_type == "code")


def test_the_notebooks_only_mode_needs_the_repository(site, capsys, monkeypatch):
    _, bare = site
    monkeypatch.delenv("BOOK_REPO", raising=False)
    with pytest.raises(SystemExit):
        publish.main(["--remote", str(bare), "--notebooks-only"])
    assert "--notebooks-only needs --repo" in capsys.readouterr().err
    assert publish.main(["--remote", str(bare), "--notebooks-only", "--repo", "owner/name", "--dry-run"]) == 0
    assert "would push (dry run)" in capsys.readouterr().out and "notebooks" not in branches(bare)
