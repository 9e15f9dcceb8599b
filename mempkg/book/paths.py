"""Where things live: every path the package writes is derived here.

Layer: book (imports every layer but the CLI).
"""

from __future__ import annotations

import os
from pathlib import Path


def repo_root(start: Path | None = None) -> Path | None:
    """The nearest folder at or above ``start`` (default: cwd) holding this project's pyproject.toml."""
    here = Path(start or os.getcwd()).resolve()
    for p in (here, *here.parents):
        f = p / "pyproject.toml"
        if f.is_file() and "mempkg" in f.read_text(errors="ignore"):
            return p
    pkg_parent = Path(__file__).resolve().parent.parent     # editable install: the checkout
    return pkg_parent if (pkg_parent / "pyproject.toml").is_file() else None


def results_root() -> Path:
    """``$MEMPKG_RESULTS`` if set, else ``<repo root>/results``, else ``./results``."""
    env = os.environ.get("MEMPKG_RESULTS")
    if env:
        return Path(env).resolve()
    root = repo_root()
    return (root if root is not None else Path.cwd()) / "results"


def results_dir(profile: str, notebook: str) -> Path:
    """``results/<profile>/<notebook>/``, created on demand."""
    d = results_root() / profile / notebook
    d.mkdir(parents=True, exist_ok=True)
    return d
