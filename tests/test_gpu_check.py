"""The CPU-runnable parts of `make gpu-check`: its arguments, the wheel-folder install into a temporary
target, the comparison with the CPU run, the record it writes stage by stage (and keeps when killed), the
budget per stage and per chapter, a second call merged into the first call's record, and the performance
page's table of records."""

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
    default, quick = gpu_check.parse([]), gpu_check.parse(["--chapters-profile", "quick"])
    assert (default.chapters_profile, default.reference) == ("tiny", ROOT / "results" / "tiny")
    assert quick.reference == ROOT / "results" / "quick", "the reference follows the chapters' profile"


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
    assert stages["tests"] == {"status": "failed", "error": "RuntimeError: CUDA error: no kernel image is available",
                               "seconds": stages["tests"]["seconds"], "expected_s": 30, "call": 1}
    assert stages["scale"]["status"] == "ok"


def fake_machine(monkeypatch) -> list:
    """No child python for the environment, and papermill replaced by a stand-in that writes the chapter's summary
    where the real run would (``$MEMPKG_RESULTS/<profile>/<chapter>/summary.json``); returns papermill's commands."""
    papermill, run = [], subprocess.run

    def fake_run(cmd, *args, **kwargs):
        if "jupytext" in cmd:
            return subprocess.CompletedProcess(cmd, 0, stdout=b"{}", stderr=b"")
        if "papermill" in cmd:
            papermill.append(cmd)
            summary = (Path(kwargs["env"]["MEMPKG_RESULTS"]) / cmd[cmd.index("profile") + 1] / Path(cmd[4]).stem
                       / "summary.json")
            summary.parent.mkdir(parents=True)
            summary.write_text(json.dumps({"verdicts": {"a": "held"}, "flipd_isolated": 1.0}))
            return subprocess.CompletedProcess(cmd, 0, stdout=b"", stderr=b"")
        return run(cmd, *args, **kwargs)
    monkeypatch.setattr(gpu_check.subprocess, "run", fake_run)
    monkeypatch.setattr(gpu_check, "environment", lambda device: {"device": device, "device_name": device})
    return papermill


def test_the_chapters_profile_reaches_papermill_and_picks_the_reference(tmp_path, monkeypatch):
    papermill = fake_machine(monkeypatch)
    ref = tmp_path / "ref" / "01_von_mises" / "summary.json"
    ref.parent.mkdir(parents=True)
    ref.write_text(json.dumps({"verdicts": {"a": "not held"}, "flipd_isolated": 1.05}))
    assert gpu_check.main(["--stages", "chapters", "--chapters-profile", "quick", "--scale", "tiny", "--device", "cpu",
                           "--budget", "100000", "--reference", str(tmp_path / "ref"), "--out", str(tmp_path)]) == 0
    assert len(papermill) == len(list((ROOT / "notebooks").glob("0*.py"))) >= 5
    assert all(cmd[cmd.index("profile") - 1:cmd.index("profile") + 4] == ["-p", "profile", "quick", "-p", "device"]
               for cmd in papermill)
    record = json.loads((tmp_path / "gpu-cpu.json").read_text())
    assert set(record["chapters"]) == {"quick"} and record["stages"]["chapters"]["chapters_profile"] == "quick"
    row = record["chapters"]["quick"]["01_von_mises"]
    assert row["status"] == "ok" and row["verdicts_same"] is False, "compared with --reference's summary"
    assert row["headline"]["flipd_isolated"]["within"] is True
    unreferenced = dict(record["chapters"]["quick"]["02_cifar10_overfit"], seconds=None)
    assert unreferenced == {"status": "ok", "seconds": None, "reference": None, "call": 1,
                            "expected_s": gpu_check.EXPECTED_CHAPTER_S["tiny"]["quick"]["02_cifar10_overfit"]}


def test_a_chapter_over_budget_is_skipped_after_the_later_stages_share(tmp_path, monkeypatch):
    """The chapters stage keeps the later stages' expected time (scale: 300 s): with 400 s, 100 s are left for the
    chapters, and only those expected to take less run; each skipped one says why."""
    papermill = fake_machine(monkeypatch)
    monkeypatch.setattr(gpu_check, "paper_scale", lambda device, scale: {"scale": scale})
    expected = {"01_von_mises": 5, "02_cifar10_overfit": 500, "03_three_regimes": 500, "04_laion_verbatims": 50,
                "05_three_lenses": 500, "06_performance": 500}
    monkeypatch.setitem(gpu_check.EXPECTED_CHAPTER_S["tiny"], "quick", expected)
    assert gpu_check.main(["--stages", "chapters,scale", "--chapters-profile", "quick", "--scale", "tiny",
                           "--device", "cpu", "--budget", "400", "--out", str(tmp_path)]) == 0
    assert [Path(cmd[4]).stem for cmd in papermill] == ["01_von_mises", "04_laion_verbatims"]
    record = json.loads((tmp_path / "gpu-cpu.json").read_text())
    rows = record["chapters"]["quick"]
    assert {name for name, row in rows.items() if row["status"] == "ok"} == {"01_von_mises", "04_laion_verbatims"}
    skipped = rows["03_three_regimes"]
    assert skipped["status"] == "skipped" and skipped["seconds"] == 0 and skipped["call"] == 1
    left = int(skipped["reason"].split(", ")[1].split()[0])
    assert skipped["reason"].startswith("over budget: expected 500 s, ") and 90 <= left <= 100
    assert record["stages"]["chapters"]["status"] == "ok" and record["stages"]["scale"]["status"] == "ok"


def test_a_second_call_merges_into_the_first_calls_record(tmp_path, monkeypatch):
    """Per stage and per chapter the newest wins, a skip never replaces a measurement, and --fresh starts over."""
    fake_machine(monkeypatch)
    monkeypatch.setattr(gpu_check, "paper_scale", lambda device, scale: {"scale": scale, "flipd": 1})
    summaries = iter(["1 passed (call 1)", "1 passed (call 2)", "1 passed (fresh)"])
    monkeypatch.setattr(gpu_check, "run_gpu_tests", lambda: {"passed": True, "summary": next(summaries)})
    quick = {name: 500 for name in gpu_check.EXPECTED_CHAPTER_S["tiny"]["quick"]}
    monkeypatch.setitem(gpu_check.EXPECTED_CHAPTER_S["tiny"], "quick", quick)
    out = ["--scale", "tiny", "--device", "cpu", "--out", str(tmp_path)]
    assert gpu_check.main(["--stages", "tests,chapters,scale", "--budget", "100000", *out]) == 0
    assert gpu_check.main(["--stages", "tests", "--budget", "100000", *out]) == 0
    quick["01_von_mises"] = 5          # call 3: scale (300 s) and all but one quick chapter over a 200 s budget
    assert gpu_check.main(["--stages", "scale,chapters", "--chapters-profile", "quick", "--budget", "200", *out]) == 0
    quick.update({"01_von_mises": 500, "04_laion_verbatims": 5})       # call 4: the other way round
    assert gpu_check.main(["--stages", "chapters", "--chapters-profile", "quick", "--budget", "200", *out]) == 0
    record = json.loads((tmp_path / "gpu-cpu.json").read_text())
    assert [c["stages"] for c in record["calls"]] == [["tests", "chapters", "scale"], ["tests"],
                                                      ["scale", "chapters"], ["chapters"]]
    stages = record["stages"]
    assert (stages["tests"]["call"], record["gpu_tests"]["summary"]) == (2, "1 passed (call 2)"), "the newest wins"
    assert (stages["scale"]["call"], stages["scale"]["status"], record["paper_scale"]["flipd"]) == (1, "ok", 1), \
        "call 3 skipped scale: call 1's measurement stays"
    assert (stages["chapters"]["call"], stages["chapters"]["chapters_profile"]) == (4, "quick")
    assert {row["call"] for row in record["chapters"]["tiny"].values()} == {1}, "call 1's tiny chapters stay"
    rows = record["chapters"]["quick"]
    assert (rows["01_von_mises"]["status"], rows["01_von_mises"]["call"]) == ("ok", 3), "kept from call 3"
    assert (rows["04_laion_verbatims"]["status"], rows["04_laion_verbatims"]["call"]) == ("ok", 4)
    assert (rows["02_cifar10_overfit"]["status"], rows["02_cifar10_overfit"]["call"]) == ("skipped", 4)
    assert gpu_check.main(["--stages", "tests", "--fresh", *out]) == 0
    fresh = json.loads((tmp_path / "gpu-cpu.json").read_text())
    assert len(fresh["calls"]) == 1 and "paper_scale" not in fresh and set(fresh["stages"]) == {"tests"}


def test_a_call_cut_off_leaves_its_stages_marked_for_the_next(tmp_path, monkeypatch):
    fake_machine(monkeypatch)
    (tmp_path / "gpu-cpu.json").write_text(json.dumps({"calls": [{"call": 1}], "stages": {
        "tests": {"status": "ok", "seconds": 5.0, "call": 1}, "chapters": {"status": "running", "seconds": None},
        "scale": {"status": "pending", "seconds": None}}}))
    monkeypatch.setattr(gpu_check, "run_gpu_tests", lambda: {"passed": True, "summary": "ok"})
    assert gpu_check.main(["--stages", "tests", "--scale", "tiny", "--device", "cpu", "--out", str(tmp_path)]) == 0
    stages = json.loads((tmp_path / "gpu-cpu.json").read_text())["stages"]
    assert stages["chapters"]["status"] == "failed" and stages["chapters"]["error"].startswith("cut off")
    assert stages["scale"]["status"] == "skipped" and stages["scale"]["reason"].startswith("not reached")
    assert stages["tests"]["call"] == 2


def test_inception_weights_in_the_wheel_folder_go_to_torch_hub_cache(tmp_path, monkeypatch):
    """What torchmetrics' FID loads offline: $TORCH_HOME/hub/checkpoints/<torch-fidelity's file name>."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    assert gpu_check.place_inception_weights(wheels) == []
    (wheels / "weights-inception-2015-12-05-6726825d.pth").write_bytes(b"weights")
    (cached,) = gpu_check.place_inception_weights(wheels)
    assert cached == str(tmp_path / "torch" / "hub" / "checkpoints" / "weights-inception-2015-12-05-6726825d.pth")
    (wheels / "weights-inception-2015-12-05-6726825d.pth").write_bytes(b"other")
    gpu_check.place_inception_weights(wheels)
    assert Path(cached).read_bytes() == b"weights", "a file already in the cache is kept"


def test_no_record_gives_an_empty_table_with_the_columns(tmp_path):
    table = performance.gpu_records(tmp_path / "nowhere")
    assert table.empty and list(table.columns[:3]) == ["device", "date", "precision"]
