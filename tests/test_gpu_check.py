"""The CPU-runnable parts of `make gpu-check`: its arguments, the wheel-folder install into a temporary
target, the comparison with the CPU run, the record it writes stage by stage (and keeps when killed), the
budget, and the performance page's table of records."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
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
    assert {"date", "torch", "device_name", "stages", "paper_scale"} <= set(record) and record["complete"]
    assert record["stages"]["scale"]["status"] == "ok" and record["stages"]["scale"]["seconds"] > 0
    assert record["paper_scale"]["scale"] == "tiny"
    assert record["paper_scale"]["float32"]["flipd_forward_passes"] > 1       # FLIPD costs more than a forward
    table = performance.gpu_records(tmp_path)
    assert list(table["precision"]) == ["float32", "tf32"] and (table["FLIPD (1 probe, SD v1.5 UNet), images/s"] > 0).all()


def test_a_run_killed_after_its_first_stage_keeps_that_stage(tmp_path):
    """SIGKILL once the record shows ``tests`` done (every GPU test skips on a CPU: seconds), while ``scale``
    runs (minutes at tiny on a CPU): the record on disk is whole and holds the first stage."""
    cmd = [sys.executable, str(ROOT / "tools" / "gpu_check.py"), "--device", "cpu", "--scale", "tiny",
           "--stages", "tests,scale", "--out", str(tmp_path)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    path, record, deadline = tmp_path / "gpu-cpu.json", {}, time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if path.is_file():
                record = json.loads(path.read_text())      # os.replace: never a half-written file
                if record["stages"]["tests"]["status"] not in ("pending", "running"):
                    break
            time.sleep(0.05)
        assert proc.poll() is None, "still running when killed (the second stage is the one cut off)"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    record = json.loads(path.read_text())
    assert record["complete"] is False and record["device_name"] == "cpu" and record["torch"]
    tests = record["stages"]["tests"]
    assert tests["status"] == "ok" and tests["seconds"] > 0 and record["gpu_tests"]["passed"]
    assert record["stages"]["scale"]["status"] in ("pending", "running") and "paper_scale" not in record


def test_a_stage_over_budget_is_skipped_and_says_why(tmp_path, capsys):
    assert gpu_check.main(["--stages", "tests,scale", "--scale", "tiny", "--device", "cpu", "--budget", "1",
                           "--out", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "gpu-cpu.json").read_text())
    for stage in ("tests", "scale"):
        entry = record["stages"][stage]
        assert entry["status"] == "skipped" and entry["seconds"] == 0
        assert entry["reason"].startswith(f"over budget: expected {gpu_check.EXPECTED_S['tiny'][stage]} s, ")
    assert record["complete"] and record["budget_s"] == 1 and "gpu_tests" not in record
    assert "expected: tests 30 s, scale 300 s" in capsys.readouterr().out, "the expected times are announced"


def test_a_failed_stage_is_recorded_and_the_next_one_still_runs(tmp_path, monkeypatch):
    def broken():
        raise RuntimeError("CUDA error: no kernel image is available\nFor debugging consider CUDA_LAUNCH_BLOCKING=1")
    monkeypatch.setattr(gpu_check, "run_gpu_tests", broken)
    monkeypatch.setattr(gpu_check, "paper_scale", lambda device, scale: {"scale": scale})
    assert gpu_check.main(["--stages", "tests,scale", "--scale", "tiny", "--device", "cpu",
                           "--out", str(tmp_path)]) == 1
    stages = json.loads((tmp_path / "gpu-cpu.json").read_text())["stages"]
    assert stages["tests"] == {"status": "failed", "error": "RuntimeError: CUDA error: no kernel image is available", "seconds": stages["tests"]["seconds"],
                               "expected_s": 30}
    assert stages["scale"]["status"] == "ok"


def test_no_record_gives_an_empty_table_with_the_columns(tmp_path):
    table = performance.gpu_records(tmp_path / "nowhere")
    assert table.empty and list(table.columns[:3]) == ["device", "date", "precision"]
