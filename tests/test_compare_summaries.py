"""tools/compare_summaries.py: timing differences pass, any other difference fails."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import compare_summaries  # noqa: E402


def write(root: Path, summary: dict, notebook: str = "01_x") -> Path:
    (root / "tiny" / notebook).mkdir(parents=True)
    (root / "tiny" / notebook / "summary.json").write_text(json.dumps(summary))
    return root


def test_only_timings_differ_passes(tmp_path, capsys):
    a = write(tmp_path / "a", {"auroc": 0.9, "seconds": 3.0, "cost_forward_passes_flipd": 5.1, "verdicts": {"x": "held"}})
    b = write(tmp_path / "b", {"auroc": 0.9, "seconds": 4.0, "cost_forward_passes_flipd": 4.2, "verdicts": {"x": "held"}})
    assert compare_summaries.main([str(a), str(b)]) == 0
    assert "2 timing values differ; 0 other differences" in capsys.readouterr().out


def test_a_changed_number_a_changed_verdict_or_a_lost_key_fails(tmp_path, capsys):
    a = write(tmp_path / "a", {"auroc": 0.9, "verdicts": {"x": "held"}, "n": 3})
    b = write(tmp_path / "b", {"auroc": 0.91, "verdicts": {"x": "not held"}})
    assert compare_summaries.main([str(a), str(b)]) == 1
    out = capsys.readouterr().out
    assert "auroc: 0.9 -> 0.91" in out and "verdicts.x" in out and "n: 3 -> '<absent>'" in out
