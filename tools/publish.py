"""Publish a built book: push ``build/<profile>/html`` to a ``gh-pages`` branch with ghp-import (`make publish`).

    python tools/publish.py [--profile quick] [--remote URL_OR_PATH] [--branch gh-pages] [--dry-run]
                            [--repo owner/name] [--notebooks-branch notebooks] [--notebooks-only]

The branch is written in a temporary repository, never in this checkout (its history holds sources only):
the remote's existing branch is fetched first, so the published history grows one commit per publish;
ghp-import adds ``.nojekyll`` (GitHub Pages would otherwise hide the ``_static`` and ``_sphinx_design``
folders). ``--dry-run`` makes the same commit and lists what would be pushed, without pushing.
The remote defaults to this checkout's ``origin``.

With ``--repo`` (default: ``$BOOK_REPO``), the chapters also go, as notebooks, to ``--notebooks-branch``: the
Colab buttons of a book built with ``BOOK_REPO`` open them there (``book/_ext/book_html.py``). Each is the
jupytext conversion of ``notebooks/<chapter>.py``, unexecuted, after one cell that installs the package from
the repository when it runs in Colab (and does nothing elsewhere). ``--notebooks-only`` publishes just those
(the book workflow does, since GitHub Pages serves its HTML from an artifact).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COLAB_INSTALL = """\
# In Colab, install the book's package first (elsewhere this cell does nothing).
import sys
if "google.colab" in sys.modules:
    get_ipython().run_line_magic("pip", "install -q 'mempkg[full] @ git+https://github.com/{repo}@{ref}'")"""


def git_env() -> dict:
    """The environment, with a committer identity for the publishing commit where none is set."""
    identity = {"GIT_AUTHOR_NAME": "memorization book", "GIT_AUTHOR_EMAIL": "book@localhost",
                "GIT_COMMITTER_NAME": "memorization book", "GIT_COMMITTER_EMAIL": "book@localhost"}
    return dict(identity, **os.environ)


def git(*args, cwd, check=True) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, check=check, capture_output=True, text=True, env=git_env())


def default_remote() -> str | None:
    r = git("remote", "get-url", "origin", cwd=ROOT, check=False)
    return r.stdout.strip() or None


def source_commit() -> str:
    r = git("rev-parse", "--short", "HEAD", cwd=ROOT, check=False)
    return r.stdout.strip() or "unknown"


def ghp_import_command() -> list[str]:
    exe = shutil.which("ghp-import", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if exe is None:
        raise SystemExit("ghp-import is not installed: make venv installs it (the book extra), or pip install ghp-import.")
    return [exe]


def colab_notebooks(dest: Path, repo: str, ref: str = "main", sources: Path = ROOT / "notebooks") -> list[Path]:
    """Write ``dest/notebooks/<chapter>.ipynb`` for every ``sources/*.py``: its jupytext conversion (parameters
    cell and tags kept, no outputs) after a cell that installs ``mempkg`` from ``repo`` at ``ref`` in Colab."""
    import jupytext    # the book extra
    import nbformat

    out = []
    (Path(dest) / "notebooks").mkdir(parents=True, exist_ok=True)
    for src in sorted(Path(sources).glob("*.py")):
        nb = jupytext.read(src)
        nb.cells.insert(0, nbformat.v4.new_code_cell(COLAB_INSTALL.format(repo=repo, ref=ref),
                                                     metadata={"tags": ["colab-install"]}))
        nb.metadata.pop("jupytext", None)
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.validate(nb)
        path = Path(dest) / "notebooks" / f"{src.stem}.ipynb"
        nbformat.write(nb, path)
        out.append(path)
    if not out:
        raise SystemExit(f"{sources} holds no chapter (*.py).")
    (Path(dest) / "README.md").write_text(
        f"# Chapters as notebooks\n\nWritten by `tools/publish.py` from `notebooks/*.py` of "
        f"https://github.com/{repo} at `{ref}`, for the book's Colab buttons. Edit the `.py` files there, "
        "not these.\n")
    return out


def publish_notebooks(repo: str, remote: str, branch: str = "notebooks", ref: str = "main",
                      dry_run: bool = False) -> dict:
    """The chapters as Colab notebooks (:func:`colab_notebooks`), pushed to ``branch`` of ``remote``."""
    with tempfile.TemporaryDirectory(prefix="mempkg-notebooks-") as tmp:
        colab_notebooks(Path(tmp), repo, ref)
        return publish(Path(tmp), remote, branch, dry_run, f"The chapters as notebooks, from {source_commit()}",
                       nojekyll=False)


def publish(html: Path, remote: str, branch: str = "gh-pages", dry_run: bool = False, message: str = "",
            nojekyll: bool = True) -> dict:
    """Commit ``html`` to ``branch`` on top of the remote's branch, in a temporary repository, and push it
    (not with ``dry_run``). Returns what was (or would be) pushed: files, bytes, the commit, the remote.
    ``nojekyll`` adds ``.nojekyll`` and requires an ``index.html`` (a site)."""
    html = Path(html)
    if nojekyll and not (html / "index.html").is_file():
        raise SystemExit(f"{html} holds no index.html: build the book first (make book).")
    with tempfile.TemporaryDirectory(prefix="mempkg-publish-") as tmp:
        git("init", "-q", cwd=tmp)
        git("remote", "add", "origin", remote, cwd=tmp)
        fetched = git("fetch", "-q", "origin", f"{branch}:{branch}", cwd=tmp, check=False).returncode == 0
        cmd = ghp_import_command() + (["-n"] if nojekyll else []) + ["-b", branch, "-m", message or f"Publish the book ({html})"]
        if not dry_run:
            cmd += ["-p", "-r", "origin"]
        r = subprocess.run(cmd + [str(html.resolve())], cwd=tmp, capture_output=True, text=True, env=git_env())
        if r.returncode != 0:
            raise SystemExit(f"ghp-import failed: {r.stderr.strip() or r.stdout.strip()}")
        files = git("ls-tree", "-r", "--name-only", branch, cwd=tmp).stdout.split()
        size = sum(int(line.split()[3]) for line in
                   git("ls-tree", "-r", "-l", branch, cwd=tmp).stdout.splitlines() if line.split()[3] != "-")
        commit = git("rev-parse", "--short", branch, cwd=tmp).stdout.strip()
        parents = len(git("log", "--format=%H", branch, cwd=tmp).stdout.split())
    return {"remote": remote, "branch": branch, "files": files, "bytes": size, "commit": commit,
            "history": parents, "previous_branch_found": fetched, "pushed": not dry_run}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--html", type=Path, help="the built HTML (default build/<profile>/html)")
    ap.add_argument("--remote", default=os.environ.get("PUBLISH_REMOTE") or None)
    ap.add_argument("--branch", default="gh-pages")
    ap.add_argument("--dry-run", action="store_true", help="commit and list, but do not push")
    ap.add_argument("--repo", default=os.environ.get("BOOK_REPO") or None,
                    help="owner/name on GitHub: also publish the chapters as notebooks for Colab")
    ap.add_argument("--ref", default="main", help="the branch or tag the Colab notebooks install the package from")
    ap.add_argument("--notebooks-branch", default="notebooks")
    ap.add_argument("--notebooks-only", action="store_true", help="publish the Colab notebooks only")
    args = ap.parse_args(argv)
    remote = args.remote or default_remote()
    if remote is None:
        ap.error("no --remote and this checkout has no origin: name the repository to publish to")
    if args.notebooks_only and not args.repo:
        ap.error("--notebooks-only needs --repo owner/name (or BOOK_REPO)")
    if not args.notebooks_only:
        html = args.html or ROOT / "build" / args.profile / "html"
        report(publish(html, remote, args.branch, args.dry_run,
                       f"Publish the {args.profile} book built from {source_commit()}"))
    if args.repo:
        report(publish_notebooks(args.repo, remote, args.notebooks_branch, args.ref, args.dry_run))
    return 0


def report(out: dict) -> None:
    verb = "pushed" if out["pushed"] else "would push (dry run)"
    print(f"{verb} {len(out['files'])} files ({out['bytes'] / 1e6:.1f} MB) as commit {out['commit']} to branch "
          f"{out['branch']} of {out['remote']} ({out['history']} commit(s) in its history)")
    for f in out["files"][:10]:
        print(f"  {f}")
    if len(out["files"]) > 10:
        print(f"  ... and {len(out['files']) - 10} more")


if __name__ == "__main__":
    sys.exit(main())
