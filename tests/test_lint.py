"""Static checks that catch what a test run may not reach: undefined names, unused or missing
imports (pyflakes' rules, via ruff) in the package, the notebooks, the tests and the benchmarks."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_pyflakes_rules_pass():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install ruff, or the project's [test] extra)")
    out = subprocess.run([ruff, "check", "--no-cache", "--select", "F", "mempkg", "notebooks", "tests", "benchmarks",
                          "tools"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
