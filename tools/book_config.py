"""Name the book's repository in a build's _config.yml: the repository and issues buttons (`make book BOOK_REPO=owner/name`).

    python tools/book_config.py build/<profile>/src/_config.yml --repo owner/name [--branch main]

`make book` copies book/ into build/<profile>/src/ and, when BOOK_REPO is set, runs this on the copy: the
built pages then carry links to https://github.com/owner/name and its issues (followed only when a reader
clicks them). Without BOOK_REPO nothing changes and the pages name no service on the network. Binder and
Colab launch buttons stay off: Jupyter Book would point them at notebooks/<chapter>.ipynb, and the
repository holds the chapters as jupytext .py files, so they would lead nowhere.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


def name_repository(config: dict, repo: str, branch: str = "main") -> dict:
    """``config`` (a Jupyter Book _config.yml, parsed) with the repository set and its buttons on."""
    if not REPO.match(repo):
        raise ValueError(f"BOOK_REPO={repo!r} is not of the form owner/name (a GitHub repository).")
    out = dict(config)
    out["repository"] = {"url": f"https://github.com/{repo}", "branch": branch, "path_to_book": "book"}
    out["html"] = dict(config.get("html") or {}, use_repository_button=True, use_issues_button=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config", type=Path)
    ap.add_argument("--repo", required=True)
    ap.add_argument("--branch", default="main")
    args = ap.parse_args(argv)
    try:
        config = name_repository(yaml.safe_load(args.config.read_text()), args.repo, args.branch)
    except ValueError as e:
        ap.error(str(e))
    args.config.write_text("# written by tools/book_config.py from book/_config.yml\n"
                           + yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
