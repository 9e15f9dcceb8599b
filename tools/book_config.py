"""Name the book's repository in a build's _config.yml: repository, issues and download buttons, and Binder and
Colab launch buttons (`make book BOOK_REPO=owner/name`).

    python tools/book_config.py build/<profile>/src/_config.yml --repo owner/name [--branch main]
                                [--notebooks-branch notebooks]

`make book` copies book/ into build/<profile>/src/ and, when BOOK_REPO is set, runs this on the copy: the
built pages then carry links to https://github.com/owner/name, its issues and the launch services (followed
only when a reader clicks them). Without BOOK_REPO nothing changes and the pages name no service on the network.

The repository holds the chapters as jupytext ``.py`` files, and Jupyter Book would point its launch buttons at
``notebooks/<chapter>.ipynb`` under the book's folder, which does not exist. ``book/_ext/book_html.py`` rewrites
them from the ``mempkg_launch`` value written here:

- **Binder** opens ``notebooks/<chapter>.ipynb`` in JupyterLab on ``--branch``; ``binder/postBuild`` installs the
  package and writes those notebooks from the ``.py`` sources when Binder builds the image;
- **Colab** opens ``notebooks/<chapter>.ipynb`` on ``--notebooks-branch``, a branch that `make publish` fills with
  the chapters converted to notebooks, each opening with a cell that installs the package in Colab
  (``tools/publish.py``).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
BINDER = "https://mybinder.org"
COLAB = "https://colab.research.google.com"


def name_repository(config: dict, repo: str, branch: str = "main", notebooks_branch: str = "notebooks") -> dict:
    """``config`` (a Jupyter Book _config.yml, parsed) with the repository set and its buttons on."""
    if not REPO.match(repo):
        raise ValueError(f"BOOK_REPO={repo!r} is not of the form owner/name (a GitHub repository).")
    out = dict(config)
    out["repository"] = {"url": f"https://github.com/{repo}", "branch": branch, "path_to_book": "book"}
    out["html"] = dict(config.get("html") or {}, use_repository_button=True, use_issues_button=True)
    out["launch_buttons"] = dict(config.get("launch_buttons") or {}, binderhub_url=BINDER, colab_url=COLAB,
                                 notebook_interface="jupyterlab")
    sphinx = dict(config.get("sphinx") or {})
    sphinx["config"] = dict(sphinx.get("config") or {}, mempkg_launch={
        "repo": repo, "branch": branch, "notebooks_branch": notebooks_branch})
    out["sphinx"] = sphinx
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config", type=Path)
    ap.add_argument("--repo", required=True)
    ap.add_argument("--branch", default="main")
    ap.add_argument("--notebooks-branch", default="notebooks")
    args = ap.parse_args(argv)
    try:
        config = name_repository(yaml.safe_load(args.config.read_text()), args.repo, args.branch,
                                 args.notebooks_branch)
    except ValueError as e:
        ap.error(str(e))
    args.config.write_text("# written by tools/book_config.py from book/_config.yml\n"
                           + yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
