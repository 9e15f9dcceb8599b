"""The CPU-runnable parts of `make gpu-check`: its arguments, the wheel-folder install into a temporary
target, the comparison with the CPU run, the record it writes and the performance page's table of records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import gpu_check  # noqa: E402

from mempkg.studies import performance  # noqa: E402


def test_arguments_are_checked(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        gpu_check.parse(["--stages", "tests,bench"])
    assert e.value.code == 2 and "unknown stage(s) bench" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        gpu_check.parse(["--wheels", str(tmp_path / "nowhere")])
    assert "not a folder of wheels" in capsys.readouterr().err
    assert gpu_check.parse([]).stages == ["tests", "chapters", "scale"], "no --wheels: nothing to install"
    assert gpu_check.parse(["--wheels", str(tmp_path)]).stages[0] == "install"


def test_the_project_wheel_installs_from_a_folder_into_a_temporary_target(tmp_path, monkeypatch):
    """What the GPU machine does with the wheel folder: no index, no dependencies, a target of its own."""
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels),
                    str(ROOT)], check=True, capture_output=True)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setenv("PYTHONPATH", "")
    target = gpu_check.install_wheels(wheels, tmp_path / "site")
    assert (target / "mempkg" / "core" / "schedules.py").is_file() and sys.path[0] == str(target)
    code = "import mempkg, sys; print(mempkg.__file__)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                       env=dict(os.environ, PYTHONPATH=os.environ["PYTHONPATH"]))
    assert r.stdout.strip().startswith(str(target)), "children import the installed copy first"


def test_chapters_are_compared_on_verdicts_and_headlines_within_tolerance():
    cpu = {"verdicts": {"a": "held"}, "auroc_flipd": 0.90, "auroc_volume": 0.70}
    same = gpu_check.compare_summaries("05_three_lenses", {"verdicts": {"a": "held"}, "auroc_flipd": 0.95,
                                                           "auroc_volume": 0.72}, cpu)
    assert same["verdicts_same"] and all(h["within"] for h in same["headline"].values())
    off = gpu_check.compare_summaries("05_three_lenses", {"verdicts": {"a": "not held"}, "auroc_flipd": 0.6,
                                                          "auroc_volume": 0.7}, cpu)
    assert not off["verdicts_same"] and off["headline"]["auroc_flipd"]["within"] is False
    assert gpu_check.compare_summaries("05_three_lenses", cpu, None) == {"reference": None}


def test_the_scale_stage_writes_a_record_the_performance_page_reads(tmp_path):
    """The whole scale stage at the tiny sizes on the CPU, through main(), then the page's reader."""
    assert gpu_check.main(["--stages", "scale", "--scale", "tiny", "--device", "cpu", "--out", str(tmp_path)]) == 0
    (path,) = tmp_path.glob("gpu-*.json")
    record = json.loads(path.read_text())
    assert {"date", "torch", "device_name", "stage_seconds", "paper_scale"} <= set(record)
    assert record["paper_scale"]["scale"] == "tiny"
    assert record["paper_scale"]["float32"]["flipd_forward_passes"] > 1       # FLIPD costs more than a forward
    table = performance.gpu_records(tmp_path)
    assert list(table["precision"]) == ["float32", "tf32"] and (table["FLIPD (1 probe, SD v1.5 UNet), images/s"] > 0).all()


def test_no_record_gives_an_empty_table_with_the_columns(tmp_path):
    table = performance.gpu_records(tmp_path / "nowhere")
    assert table.empty and list(table.columns[:3]) == ["device", "date", "precision"]
