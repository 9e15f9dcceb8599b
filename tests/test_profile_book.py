"""`make profile-book`: each chapter's time and its stages, read from the executed notebooks and the seconds every
cache record holds; the tables the introduction and the performance page show name the machine and the date."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import nbformat
import pytest
import torch

from mempkg.book.cache import Cache
from mempkg.book.perf import book_times, book_times_markdown, expected_book_markdown, expected_book_seconds

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import profile_book  # noqa: E402


def test_a_computed_result_records_its_seconds_and_a_loaded_one_costs_nothing(tmp_path):
    cache = Cache(tmp_path)
    cache.get("slow", {"a": 1}, lambda: (time.sleep(0.2), torch.zeros(2))[1])
    record = json.loads(next(tmp_path.glob("slow-*.json")).read_text())
    assert 0.2 <= record["seconds"] < 5 and record["threads"] == torch.get_num_threads()
    cache.get("slow", {"a": 1}, lambda: pytest.fail("recomputed"))
    assert cache.hits == 1


def fake_run(tmp_path: Path) -> tuple[Path, Path]:
    results, executed = tmp_path / "results", tmp_path / "executed"
    executed.mkdir()
    for stem, duration, stages in (("01_a", 100.0, {"train": [60.0], "score": [5.0, 7.0]}), ("02_b", 30.0, {})):
        nb = nbformat.v4.new_notebook()
        nb.metadata["papermill"] = {"duration": duration}
        nbformat.write(nb, executed / f"{stem}.ipynb")
        folder = results / "quick" / stem
        folder.mkdir(parents=True)
        (folder / "summary.json").write_text("{}")
        for name, secs in stages.items():
            for i, s in enumerate(secs):
                (folder / f"{name}-{i}.json").write_text(json.dumps({"name": name, "seconds": s}))
        (folder / "old-0.json").write_text(json.dumps({"name": "old"}))      # a record from before seconds
    return results, executed


def test_the_record_sums_stages_by_name_and_leaves_the_rest_as_not_cached(tmp_path):
    results, executed = fake_run(tmp_path)
    out = tmp_path / "book-quick.json"
    assert profile_book.main(["--profile", "quick", "--results", str(results), "--executed", str(executed),
                              "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    a, b = record["chapters"]
    assert a["notebook"] == "01_a" and a["seconds"] == 100.0
    assert a["stages"] == [{"stage": "train", "seconds": 60.0, "count": 1}, {"stage": "score", "seconds": 12.0, "count": 2}]
    assert a["not_cached_seconds"] == 28.0 and b["stages"] == [] and b["not_cached_seconds"] == 30.0
    assert record["total_seconds"] == 130.0 and record["machine"]["cores"] and record["date"]
    assert book_times(tmp_path, "quick") == record and book_times(tmp_path, "full") is None
    table = book_times_markdown(record, stages=True)
    assert f"on {record['date']}" in table and record["machine"]["cpu"] in table and "**2 min**" in table
    assert f"| 01_a | 1.7 | {record['machine']['threads']} | train 1.0; score x 2 0.2; not cached 0.5 |" in table
    assert "{doc}`notebooks/01_a` | 1.7 |" in book_times_markdown(record) and "one chapter after another" in table


def test_no_executed_notebook_is_a_plain_error(tmp_path):
    with pytest.raises(SystemExit, match="no executed notebook"):
        profile_book.main(["--results", str(tmp_path), "--executed", str(tmp_path), "--out", str(tmp_path / "o")])


def first_record(tmp_path: Path, monkeypatch) -> tuple[Path, list[str]]:
    """A fake run recorded as commit aaa1111 into book-quick.json; returns that file and the arguments that record it."""
    results, executed = fake_run(tmp_path)
    out = tmp_path / "book-quick.json"
    argv = ["--profile", "quick", "--results", str(results), "--executed", str(executed), "--out", str(out)]
    monkeypatch.setattr(profile_book, "git_commit", lambda folder: "aaa1111")
    profile_book.main(argv)
    return out, argv


def test_a_new_measurement_keeps_the_one_it_replaces_and_the_page_shows_both(tmp_path, monkeypatch):
    out, argv = first_record(tmp_path, monkeypatch)
    assert json.loads(out.read_text())["previous"] is None                      # nothing was there before
    old = json.loads(out.read_text())
    old["chapters"][0]["seconds"] = 600.0
    old["total_seconds"] = 630.0
    out.write_text(json.dumps(old))
    monkeypatch.setattr(profile_book, "git_commit", lambda folder: "bbb2222")
    profile_book.main(argv)
    record = json.loads(out.read_text())
    assert record["commit"] == "bbb2222" and record["previous"]["commit"] == "aaa1111"
    assert record["previous"]["chapters"] == {"01_a": 600.0, "02_b": 30.0}
    table = book_times_markdown(record, stages=True)
    assert "| Chapter | Minutes | Before | Threads |" in table and "| 01_a | 1.7 | 10.0 |" in table
    assert "commit aaa1111" in table and "**10 min**" in table and "a machine of the same description" in table
    assert "is not recorded" in table                    # fake commits: git cannot tell which files changed
    profile_book.main(argv)                          # measuring the same commit again keeps the older previous
    assert json.loads(out.read_text())["previous"]["commit"] == "aaa1111"
    assert "Before" not in book_times_markdown(record)                           # the introduction's short table
    other = dict(record, profile="full")
    out.write_text(json.dumps(other))
    with pytest.raises(SystemExit, match="records profile 'full'"):
        profile_book.main(argv)


def test_the_speed_probe_runs_at_one_thread_and_sets_the_threads_back(monkeypatch):
    from mempkg.book import perf

    real, seen = perf.training_steps_per_second, []

    def probe(batch, steps, warmup, threads):
        seen.append((batch, threads))
        return real(8, 1, 1, threads=threads)

    monkeypatch.setattr(perf, "training_steps_per_second", probe)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert perf.machine_speed() > 0
        assert seen == [(128, 1)] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


def git(folder: Path, *args: str) -> str:
    import subprocess

    return subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True, text=True).stdout.strip()


def test_changed_files_lists_the_chapters_files_between_two_commits(tmp_path):
    from mempkg.book.perf import changed_files

    git(tmp_path, "init", "-q")
    git(tmp_path, "config", "user.email", "t@t")
    git(tmp_path, "config", "user.name", "t")
    (tmp_path / "mempkg").mkdir()
    (tmp_path / "mempkg" / "a.py").write_text("x = 1\n")
    (tmp_path / "README.md").write_text("r\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "one")
    first = git(tmp_path, "rev-parse", "--short", "HEAD")
    (tmp_path / "README.md").write_text("changed, but not a chapter's file\n")
    git(tmp_path, "commit", "-qam", "two")
    second = git(tmp_path, "rev-parse", "--short", "HEAD")
    (tmp_path / "mempkg" / "a.py").write_text("x = 2\n")
    git(tmp_path, "commit", "-qam", "three")
    third = git(tmp_path, "rev-parse", "--short", "HEAD")
    assert changed_files(tmp_path, first, second) == []
    assert changed_files(tmp_path, first, third) == ["mempkg/a.py"]
    assert changed_files(tmp_path, first, "0000000") is None and changed_files(tmp_path, None, third) is None


def test_the_page_splits_a_change_in_the_books_time_between_the_machine_and_the_code(tmp_path, monkeypatch):
    out, argv = first_record(tmp_path, monkeypatch)
    assert json.loads(out.read_text())["speed"] is None                 # not probed: an earlier run, recorded later
    old = json.loads(out.read_text())
    old["total_seconds"], old["chapters"][0]["seconds"] = 260.0, 230.0  # the earlier book took twice as long
    out.write_text(json.dumps(old))
    monkeypatch.setattr(profile_book, "git_commit", lambda folder: "bbb2222")
    monkeypatch.setattr(profile_book, "changed_files", lambda folder, a, b: [])
    monkeypatch.setattr(profile_book, "machine_speed", lambda: 6.0)
    profile_book.main(argv + ["--probe-after"])
    record = json.loads(out.read_text())
    assert record["speed"] == {"probe": record["speed"]["probe"], "before": None, "after": 6.0}
    assert record["previous"]["changed_files"] == [] and record["previous"]["speed"] is None
    table = book_times_markdown(record, stages=True)
    assert "ran at 6.00 steps per second after the chapters." in table
    assert "is the same in both commits" in table and "has no probe of its machine's speed" in table
    assert "6.00 steps per second" in book_times_markdown(record)          # the introduction's table names it too
    # both probed: the page gives the machine's ratio beside the book's
    record["previous"]["speed"] = {"probe": "p", "before": 3.0, "after": None}
    record["previous"]["changed_files"] = ["mempkg/book/perf.py", "notebooks/06_performance.py"]
    table = book_times_markdown(record, stages=True)
    assert "ran 2.00 times as fast for this measurement as for that one (6.00 against 3.00" in table
    assert "and the book 2.00 times as fast." in table
    assert "changed in `mempkg/book/perf.py`, `notebooks/06_performance.py`." in table
    for extra in (["--probe-after"], ["--commit", "abc"]):          # --run probes itself and is this checkout's
        with pytest.raises(SystemExit):
            profile_book.main(["--run", "--out", str(out)] + extra)
    profile_book.main(argv + ["--commit", "ccc3333"])                # an earlier run of another commit, recorded now
    assert json.loads(out.read_text())["commit"] == "ccc3333"


def budget_record(rates, profile_steps=None):
    rows = [{"setting": s, "batch_size": 128, "steps": st, "lr": 1e-3, "channels": [32, 64], "train_seconds": sec,
             "steps_per_second": st / sec, "final_loss": 0.05, "copy_rate": r, "n_parameters": 701345, "threads": 1}
            for (s, st, sec), r in zip((("the reference", 3000, 400.0), ("2/3 of the steps", 2000, 270.0),
                                        ("1/3 of the steps", 1000, 130.0)), rates)]
    record = {"date": "2026-12-02", "commit": "abc1234", "machine": {"cpu": "CPU X", "cores": 2, "torch": "2.13"},
              "parallel": 2, "n_samples": 500, "sample_steps": 200, "wall_seconds": 900.0, "rows": rows}
    if profile_steps is not None:
        record["profile_setting"] = {"batch_size": 128, "steps": profile_steps, "lr": 1e-3, "channels": [32, 64],
                                     "t_sampling": "uniform"}
    return record


def test_the_memorization_budget_table_decides_from_its_numbers(tmp_path):
    from mempkg.book.perf import memorization_budget, memorization_budget_markdown

    assert memorization_budget(tmp_path) is None
    (tmp_path / "memorization-budget.json").write_text(json.dumps(budget_record([0.92, 0.66, 0.09])))
    text = memorization_budget_markdown(memorization_budget(tmp_path))
    assert "torch 2.13, on 2026-12-02 (commit abc1234);" in text and "on CPU X with 2 cores" in text
    assert "| 2/3 of the steps | 128 | 2000 | 0.001 | uniform | 0.70 M | 0.68 | 66.0% |" in text
    assert "**No cheaper setting keeps 90% of the reference's copy rate** (92.0%); the best of them copies 66.0%." in text
    assert "quick profile" not in text and "separate runs" not in text          # an older record names no profile
    text = memorization_budget_markdown(budget_record([0.92, 0.85, 0.84]))       # both keep 90%: the cheaper wins
    assert "is **1/3 of the steps**: 84.0% in 0.33 of the training time" in text and "No cheaper" not in text


def test_the_memorization_budget_names_the_profiles_setting_and_each_rows_provenance():
    from mempkg.book.perf import memorization_budget_markdown

    text = memorization_budget_markdown(budget_record([0.92, 0.85, 0.84], profile_steps=2000))
    assert "| 2/3 of the steps (**the quick profile's**) | 128 | 2000 |" in text
    assert "The quick profile trains with **2/3 of the steps**: 85.0% of its samples are copies, 92% of the " \
           "reference's, in 0.68 of the reference's training time." in text
    text = memorization_budget_markdown(budget_record([0.92, 0.85, 0.84], profile_steps=1500))
    assert "The quick profile's setting (1500 steps at lr 0.001, uniform times) is not in this record" in text
    record = budget_record([0.92, 0.66, 0.09])
    record["rows"][1].update(date="2026-12-03", commit="def5678")               # a row measured later (--only)
    text = memorization_budget_markdown(record)
    assert "each row on the date and commit it names" in text and "| 66.0% | 2026-12-03, def5678 |" in text
    assert "The rows come from separate runs, so a share also carries any change in the machine's speed" in text
    assert "| 92.0% | 2026-12-02, abc1234 |" in text


def test_the_memorization_budget_merges_rows_by_their_settings_and_refuses_another_machine():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import memorization_budget as mb

    label, batch, steps, lr, channels, times = mb.SETTINGS[0]
    old = {"date": "2026-12-01", "commit": "aaa", "machine": {"cpu": "X"}, "parallel": 2, "n_samples": 500,
           "sample_steps": 200, "rows": [
               {"setting": "an old label", "batch_size": 128, "steps": steps, "lr": lr, "channels": list(channels),
                "copy_rate": 0.9},                                              # no t_sampling: uniform, as recorded
               {"setting": "gone", "batch_size": 128, "steps": 7, "lr": 1.0, "channels": [1, 1], "copy_rate": 0.1}]}
    _, b7, s7, l7, c7, t7 = mb.SETTINGS[7]
    new = dict(old, date="2026-12-02", commit="bbb", rows=[
        {"setting": mb.SETTINGS[7][0], "batch_size": b7 or 128, "steps": s7, "lr": l7, "channels": list(c7),
         "t_sampling": t7, "date": "2026-12-02", "commit": "bbb", "copy_rate": 0.8}])
    rows = mb.merged(old, new)["rows"]
    assert [r["setting"] for r in rows] == [label, mb.SETTINGS[7][0]]          # relabelled; a row not in SETTINGS goes
    assert (rows[0]["date"], rows[0]["commit"], rows[0]["t_sampling"]) == ("2026-12-01", "aaa", "uniform")
    assert (rows[1]["date"], rows[1]["copy_rate"]) == ("2026-12-02", 0.8)
    with pytest.raises(SystemExit, match="other machine"):
        mb.merged(old, dict(new, machine={"cpu": "Y"}))
    assert old["rows"][0]["setting"] == "an old label" and "t_sampling" not in old["rows"][0]   # old is not changed
    from mempkg.book.perf import budget_row_key                                  # the profile's setting is measured
    assert budget_row_key(mb.profile_setting()) in {budget_row_key(mb.setting_row(s)) for s in mb.SETTINGS}


def test_one_budget_setting_trains_samples_and_counts_copies():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import memorization_budget

    full = memorization_budget.one(None, 2, 1e-3, (32, 64), n_samples=6, sample_steps=3)
    half = memorization_budget.one(32, 2, 1e-3, (16, 32), n_samples=6, sample_steps=3, t_sampling="log-uniform")
    assert full["n_parameters"] == 701345 and half["n_parameters"] < full["n_parameters"] / 3
    assert all(0.0 <= r["copy_rate"] <= 1.0 and r["train_seconds"] > 0 for r in (full, half))


def test_a_run_span_is_the_wall_clock_of_notebooks_that_ran_together():
    from datetime import datetime, timedelta, timezone

    from mempkg.book.perf import run_span

    t0 = datetime(2026, 12, 2, tzinfo=timezone.utc)

    def nb(a, b):
        return {"start": t0 + timedelta(seconds=a), "end": t0 + timedelta(seconds=b)}

    assert run_span([nb(0, 100), nb(0, 60), nb(60, 150), nb(150, 170)]) == {"seconds": 170.0, "at_once": 2}
    assert run_span([nb(0, 100), nb(10, 20), nb(20, 90), nb(15, 30)]) == {"seconds": 100.0, "at_once": 3}
    assert run_span([nb(0, 100), nb(400, 500)]) is None                  # executed at different times
    assert run_span([nb(0, 100), {"start": None, "end": None}]) is None  # a time papermill did not record


def test_chapters_that_ran_at_once_are_timed_by_the_wall_clock_not_their_sum(tmp_path):
    results, executed = fake_run(tmp_path)
    for nb_path, (a, b) in zip(sorted(executed.glob("*.ipynb")), (("00:00:00", "00:01:40"), ("00:00:10", "00:00:40"))):
        nb = nbformat.read(nb_path, as_version=4)
        nb.metadata["papermill"].update(start_time=f"2026-12-02T{a}+00:00", end_time=f"2026-12-02T{b}+00:00")
        nbformat.write(nb, nb_path)
    (results / "quick" / "01_a" / "train-0.json").write_text(json.dumps({"name": "train", "seconds": 60.0,
                                                                       "threads": 1}))
    out = tmp_path / "book-quick.json"
    profile_book.main(["--profile", "quick", "--results", str(results), "--executed", str(executed), "--out", str(out)])
    record = json.loads(out.read_text())
    assert record["wall_seconds"] == 100.0 and record["at_once"] == 2 and record["total_seconds"] == 130.0
    assert record["chapters"][0]["threads"] == 1 and record["chapters"][1]["threads"] is None
    table = book_times_markdown(record)
    assert "**2 min** for the whole book" in table and "up to 2 at a time" in table and "add up to more (2 min)" in table
    assert "| {doc}`notebooks/01_a` | 1.7 | 1 |" in table and "| {doc}`notebooks/02_b` | 0.5 | not recorded |" in table


def test_the_makefile_starts_the_longest_chapters_first():
    """LONGEST_FIRST in the Makefile follows the committed empty-cache record (06_performance runs alone after)."""
    import re

    record = book_times(ROOT / "book" / "measurements", "quick")
    if record is None:
        pytest.skip("no quick record")
    named = re.search(r"^LONGEST_FIRST := (.*)$", (ROOT / "Makefile").read_text(), re.M).group(1).split()
    measured = [c["notebook"] for c in sorted(record["chapters"], key=lambda c: -c["seconds"])
                if c["notebook"] != "06_performance"]
    assert named == measured


def cuts_record(cut_rate=0.30, cut_verdicts=None):
    ref_v = {"a_claim": "held", "b_claim": "did not hold"}

    def row(label, key, r, c, sr, sc, unit):
        return {"label": label, "key": key, "unit": unit, "reference": r, "cut": c, "reference_se": sr, "cut_se": sc}
    return {"profile": "quick", "date": "2026-12-02", "commit": "abc1234", "parallel": 2, "threads": 1,
            "machine": {"cpu": "CPU X", "cores": 2, "torch": "2.13"}, "wall_seconds": None, "chapters": [
                {"notebook": "03_three_regimes", "chapter": "three_regimes", "cut": "fewer steps",
                 "settings": {"train_steps": 2000}, "profile_settings": {"train_steps": 3000},
                 "seconds": {"reference": 2400.0, "cut": 1500.0},
                 "verdicts": {"reference": ref_v, "cut": cut_verdicts or ref_v},
                 "rows": [row("copy rate", "rate", 0.80, cut_rate, 0.02, 0.02, "%"),
                          row("sigma", "sigma", 0.334, 0.334, None, None, "")]},
                {"notebook": "05_three_lenses", "chapter": "three_lenses", "cut": "fewer steps",
                 "settings": {"train_steps": 2500}, "profile_settings": {"train_steps": 4000},
                 "seconds": {"reference": 1200.0, "cut": 900.0}, "verdicts": {"reference": {}, "cut": {}},
                 "rows": [row("AUROC, FLIPD", "auroc_flipd", 0.979, 0.990, 0.011, 0.007, "auroc"),
                          row("copies", "n_memorized", 50, None, None, None, "")]}]}


def test_the_training_cuts_table_decides_from_its_numbers(tmp_path):
    from mempkg.book.perf import cut_shift, training_cuts, training_cuts_markdown

    assert training_cuts(tmp_path) is None
    (tmp_path / "training-cuts-quick.json").write_text(json.dumps(cuts_record()))
    text = training_cuts_markdown(training_cuts(tmp_path))
    assert "on CPU X with 2 cores, torch 2.13, on 2026-12-02 (commit abc1234)" in text
    assert ("**03_three_regimes**, cut: fewer steps (`train_steps=2000` (profile: `3000`)). It ran **25.0 min** "
            "against 40.0 min as the profile has it (38% less).") in text
    assert "Its verdicts are **the same** in both runs (1 held, 1 did not hold)." in text
    assert "| copy rate | 80.0% ± 2.0 | 30.0% ± 2.0 | -50.0 pp (-17.7 SE) |" in text
    assert "| sigma | 0.334 | 0.334 | +0 |" in text                                 # no standard error: no SE shift
    assert "Of the 1 numbers with standard errors, **1 moved by more than two**: copy rate (-17.7 SE)." in text
    assert "The chapter decides no claim of the scorecard" in text
    assert "| AUROC, FLIPD | 0.979 ± 0.011 | 0.990 ± 0.007 | +0.011 (+0.8 SE) |" in text
    assert "| copies | 50 | - | - |" in text                                       # not computed: no change shown
    assert "None of the 1 numbers with standard errors moved by more than two of them." in text
    assert "Together the cuts save 20.0 of these chapters' 60.0 minutes at one thread (33%)." in text
    text = training_cuts_markdown(cuts_record(cut_rate=0.79, cut_verdicts={"a_claim": "did not hold",
                                                                           "b_claim": "did not hold"}))
    assert "**Its verdicts change**: a_claim: held -> did not hold." in text and "the same" not in text
    assert "None of the 1 numbers" in text and "moved by more than two**" not in text
    assert cut_shift({"reference": 0.5, "cut": 0.5, "reference_se": 0.0, "cut_se": 0.0}) is None


def test_the_training_cuts_benchmark_reads_its_runs_and_refuses_a_setting_the_profile_lacks(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import training_cuts as tc

    monkeypatch.setattr(tc, "verdicts_of", lambda nb, s: s["verdicts"])     # these summaries hold only headlines

    tc.check_cuts()                                        # the committed cuts name settings the quick profile has
    with pytest.raises(ValueError, match="has no setting trian_steps"):
        tc.check_cuts({"steps": {"05_three_lenses": ("three_lenses", {"trian_steps": 1}, "typo")}})
    with pytest.raises(ValueError, match="no chapter"):
        tc.check_cuts({"steps": {"05_three_lenses": ("lenses", {}, "typo")}})
    with pytest.raises(ValueError, match="may not be named 'reference'"):
        tc.check_cuts({"reference": {}})
    assert tc.runs() == ("reference", "steps", "width") and tc.overrides_of("03_three_regimes", "reference") == {}
    assert tc.overrides_of("05_three_lenses", "width") == {"three_lenses": {"preset": "digits_narrow"}}
    assert tc.notebooks() == ["03_three_regimes", "05_three_lenses", "02_cifar10_overfit", "04_laion_verbatims"]
    assert tc.wanted(["steps"]) == [("reference", "03_three_regimes"), ("reference", "05_three_lenses"),
                                    ("steps", "03_three_regimes"), ("steps", "05_three_lenses")]
    values = {"reference": 0.5, "steps": 0.4, "width": 0.1}
    base = {"seconds": 100.0, "verdicts": {"x": "held"}, "mem_rate_by_sigma": [0.1, 0.3, 0.2],
            "mem_rate_se_by_sigma": [0.01, 0.03, 0.02]}
    for run, nb in tc.wanted():
        keys = [key for _, key, _, _ in tc.HEADLINES[nb]]
        s = dict(base, settings_overridden=tc.overrides_of(nb, run), **{k: values[run] for k in keys})
        path = tc.summary_path(tmp_path, run, nb)
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(s))
        assert tc.done(tmp_path, run, nb)
    record = tc.record_from(tmp_path, parallel=2, wall_seconds=None)
    ch = {(c["notebook"], c["cut_name"]): c for c in record["chapters"]}
    assert sorted(ch) == sorted([(nb, "steps") for nb in ("03_three_regimes", "05_three_lenses")]
                                + [(nb, "width") for nb in tc.notebooks()])
    copies = next(r for r in ch["02_cifar10_overfit", "width"]["rows"] if r["key"] == "copy_rate_overfit")
    assert copies["reference_se"] == pytest.approx((0.25 / 500) ** 0.5)       # binomial over the profile's samples
    assert ch["04_laion_verbatims", "width"]["profile_settings"] == {"block_out_channels": [32, 64]}
    regimes = ch["03_three_regimes", "steps"]
    assert regimes["settings"] == tc.CUTS["steps"]["03_three_regimes"][1]
    assert regimes["profile_settings"]["train_steps"] == 3000
    peak = next(r for r in regimes["rows"] if r["key"] == "peak_memorization_rate")
    assert (peak["reference"], peak["cut"], peak["reference_se"]) == (0.5, 0.4, 0.03)   # the SE at the peak's sigma
    assert ch["05_three_lenses", "width"]["profile_settings"] == {"preset": "digits"}
    assert next(r for r in ch["05_three_lenses", "width"]["rows"] if r["key"] == "auroc_flipd")["cut"] == 0.1
    # a record of some cuts keeps the others' entries from the record before, with their own date and commit;
    # a record from before cuts had names held the steps cut alone
    old = {"date": "2026-12-01", "commit": "old1234", "machine": {"cpu": "Old"},
           "chapters": [{k: v for k, v in c.items() if k not in ("cut_name", "date", "commit", "machine")}
                        for c in record["chapters"] if c["cut_name"] == "steps"]}
    merged = tc.record_from(tmp_path, parallel=2, wall_seconds=None, names=["width"], previous=old)
    assert merged["cuts"] == ["width"]
    kept = [c for c in merged["chapters"] if c["cut_name"] == "steps"]
    assert len(kept) == 2 and all((c["date"], c["commit"], c["machine"]) == ("2026-12-01", "old1234", {"cpu": "Old"})
                                  for c in kept)
    assert all(c["commit"] == merged["commit"] for c in merged["chapters"] if c["cut_name"] == "width")
    # a summary run with other settings is not this run's: it is run again
    path = tc.summary_path(tmp_path, "width", "05_three_lenses")
    path.write_text(json.dumps(dict(json.loads(path.read_text()), settings_overridden={})))
    assert not tc.done(tmp_path, "width", "05_three_lenses")


def test_the_training_cuts_benchmark_judges_a_stand_in_chapter_by_the_scorecard_criteria():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import training_cuts as tc

    s = {"model": "tiny_sd", "auroc_flipd_cond": 0.999, "auroc_se_flipd_cond": 0.001, "auroc_flipd_uncond": 0.97,
         "auroc_se_flipd_uncond": 0.01, "auroc_cfg_norm": 0.59, "auroc_se_cfg_norm": 0.03, "auroc_png": 0.48,
         "auroc_se_png": 0.07, "auroc_cfg_norm_generation": 0.97}
    v = tc.verdicts_of("04_laion_verbatims", s)
    assert v["flipd_cond_detects"] == "held (stand-in)" and v["cfg_norm_detects"] == "did not hold (stand-in)"
    assert v["png_poor"] == "held (stand-in)"                       # 0.48 is below the other three
    assert tc.verdicts_of("04_laion_verbatims", dict(s, auroc_flipd_cond=0.90))["flipd_cond_detects"] == \
        "did not hold (stand-in)"
    assert tc.verdicts_of("05_three_lenses", s) == {}                 # no claim of the scorecard


def test_the_training_cuts_table_names_each_cut_and_an_entry_kept_from_an_earlier_record():
    from mempkg.book.perf import training_cuts_markdown

    record = cuts_record()
    steps = [dict(c, cut_name="steps", date="2026-12-01", commit="old1234") for c in record["chapters"]]
    width = [dict(c, cut_name="width", cut="a narrower UNet", settings={"preset": "narrow"},
                  profile_settings={"preset": "digits"}, date=record["date"], commit=record["commit"],
                  seconds={"reference": 2400.0, "cut": 1200.0}) for c in record["chapters"][:1]]
    text = training_cuts_markdown(dict(record, chapters=steps + width))
    assert ("**03_three_regimes**, cut `steps`: fewer steps (`train_steps=2000` (profile: `3000`)). It ran **25.0 "
            "min** against 40.0 min as the profile has it (38% less; both measured on 2026-12-01 at commit "
            "old1234).") in text
    assert ("**03_three_regimes**, cut `width`: a narrower UNet (`preset=narrow` (profile: `digits`)). It ran "
            "**20.0 min** against 40.0 min as the profile has it (50% less).") in text
    assert ("Over its chapters, at one thread, the `steps` cut saves 20.0 of 60.0 minutes (33%); the `width` cut "
            "saves 20.0 of 40.0 minutes (50%).") in text
    assert "Together the cuts" not in text


def test_the_training_settings_benchmark_times_each_mode_and_refuses_another():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import train_settings

    assert train_settings.MODES == ("plain", "channels_last", "bf16_autocast", "compile")
    for mode in ("plain", "channels_last", "bf16_autocast"):       # compile is left to the benchmark: a minute
        assert train_settings.training_steps_per_second(4, steps=1, warmup=1, threads=None, mode=mode) > 0
    with pytest.raises(ValueError, match="is not one of"):
        train_settings.training_steps_per_second(4, steps=1, warmup=1, threads=None, mode="fp8")


def test_the_training_settings_table_names_the_fastest_from_its_numbers(tmp_path):
    from mempkg.book.perf import train_settings, train_settings_markdown

    assert train_settings(tmp_path) is None
    record = {"date": "2026-12-02", "commit": "abc1234", "machine": {"cpu": "CPU X", "cores": 2, "torch": "2.13"},
              "batch": 128, "steps": 60, "warmup": 10, "default_threads": 6.0, "one_thread": 4.5,
              "channels_last": 6.0, "bf16_autocast": 6.6, "compile": None, "two_one_thread_processes_total": 9.0}
    (tmp_path / "train-settings.json").write_text(json.dumps(record))
    text = train_settings_markdown(train_settings(tmp_path))
    assert "on CPU X with 2 cores, torch 2.13, on 2026-12-02 (commit abc1234)" in text
    assert "| bfloat16 autocast | 6.60 | 1.47 x one thread |" in text and "torch.compile" not in text  # no row
    assert "| one thread | 4.50 | 0.75 x torch's default threads |" in text
    assert ("At least 10% faster than what they change: channels_last memory format (1.33 x one thread); bfloat16 "
            "autocast (1.47 x one thread); two one-thread processes at once (their steps together) (1.50 x torch's "
            "default threads).") in text
    record.update(channels_last=4.6, bf16_autocast=4.9, two_one_thread_processes_total=6.5)
    assert "No setting is 10% faster than what it changes." in train_settings_markdown(record)


def test_over_rounds_a_setting_is_faster_only_when_it_was_faster_in_every_round():
    from mempkg.book.perf import train_settings_markdown

    rounds = {"default_threads": [8.0, 8.0, 8.0], "one_thread": [6.0, 5.0, 6.0],
              "channels_last": [5.7, 4.8, 5.6],                   # slower in every round
              "bf16_autocast": [6.9, 5.0, 6.9],                   # 1.15x twice, 1.00x once: the drift, not a gain
              "compile": [6.9, 5.75, 6.9],                        # 1.15x in every round
              "two_one_thread_processes_total": [12.0, 11.0, 13.0]}
    record = {"date": "2026-12-02", "commit": "abc1234", "machine": {"cpu": "CPU X", "cores": 2, "torch": "2.13"},
              "batch": 128, "steps": 60, "warmup": 10, "n_rounds": 3, "rounds": rounds,
              **{k: sorted(v)[1] for k, v in rounds.items()}}
    text = train_settings_markdown(record)
    assert "in 3 rounds" in text and "| Range over the rounds |" in text
    assert "| bfloat16 autocast | 6.90 | 1.15 x one thread | 1.00 to 1.15 |" in text
    assert ("At least 10% faster than what they change in every round: torch.compile (1.15 x one thread); two "
            "one-thread processes at once (their steps together) (1.50 x torch's default threads).") in text
    assert "bfloat16 autocast (" not in text


def test_the_training_settings_benchmark_times_every_setting_in_each_round(tmp_path):
    import subprocess

    script = ROOT / "benchmarks" / "train_settings.py"
    env = dict(os.environ, MEMPKG_RESULTS=str(tmp_path))
    bad = subprocess.run([sys.executable, str(script), "--rounds", "0"], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "--rounds must be at least 1" in bad.stderr
    ok = subprocess.run([sys.executable, str(script), "--batch", "2", "--steps", "1", "--warmup", "0",
                         "--rounds", "2", "--modes", "plain,channels_last"], capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stderr
    out = json.loads((tmp_path / "benchmarks" / "train_settings.json").read_text())
    assert out["n_rounds"] == 2 and all(len(v) == 2 for v in out["rounds"].values())
    assert set(out["rounds"]) == {"default_threads", "one_thread", "channels_last", "two_one_thread_processes_total"}
    a, b = out["rounds"]["one_thread"]
    assert out["one_thread"] == pytest.approx((a + b) / 2)                          # the median of the two rounds
    assert out["ratios_to_one_thread"]["channels_last"] == pytest.approx(
        (out["rounds"]["channels_last"][0] / a + out["rounds"]["channels_last"][1] / b) / 2)   # paired within a round


def test_the_training_cuts_benchmark_executes_each_chapter_as_the_profile_has_it_and_cut(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import training_cuts as tc

    # the real papermill route, on the cheapest chapter under tiny, with a cut that changes one setting
    monkeypatch.setattr(tc, "PROFILE", "tiny")
    monkeypatch.setattr(tc, "CUTS", {"plot": {"01_von_mises": ("von_mises", {"n_plot_samples": 20},
                                                                "fewer plotted samples")}})
    monkeypatch.setattr(tc, "HEADLINES", {"01_von_mises": [("chapter seconds", "seconds", None, "")]})
    assert tc.main(["--work", str(tmp_path), "--parallel", "2"]) == 0
    record = json.loads((tmp_path / "training_cuts.json").read_text())
    (ch,) = record["chapters"]
    assert ch["settings"] == {"n_plot_samples": 20} and ch["profile_settings"] == {"n_plot_samples": 100}
    assert ch["cut_name"] == "plot" and record["wall_seconds"] > 0 and all(v > 0 for v in ch["seconds"].values())
    overridden = {run: json.loads(tc.summary_path(tmp_path, run, "01_von_mises").read_text())["settings_overridden"]
                  for run in tc.runs()}
    assert overridden == {"reference": {}, "plot": {"von_mises": {"n_plot_samples": 20}}}
    with pytest.raises(SystemExit):
        tc.main(["--work", str(tmp_path), "--cuts", "widht"])              # an unknown cut: refused, nothing runs
    assert tc.main(["--work", str(tmp_path)]) == 0                           # both reused: nothing runs again
    again = json.loads((tmp_path / "training_cuts.json").read_text())
    assert again["wall_seconds"] == record["wall_seconds"]                  # the wall time of the run that ran them
    from mempkg.book.scorecard import claims_of

    assert set(again["chapters"][0]["verdicts"]["reference"]) == {c.key for c in claims_of("01_von_mises")}


def test_the_arithmetic_of_a_training_step_is_counted_and_judged_from_its_numbers():
    from mempkg.book.perf import training_arithmetic, training_arithmetic_markdown

    torch.set_num_threads(2)
    r = training_arithmetic(presets=("digits", "digits_narrow"), batch=8, steps=1, warmup=0)
    assert torch.get_num_threads() == 2                                   # set back
    big, small = r["presets"]["digits"], r["presets"]["digits_narrow"]
    # a convolution's work grows with the product of its in and out channels: half the channels, about a quarter
    assert 3.0 < big["gflop_per_step"] / small["gflop_per_step"] < 5.0
    assert big["parameters"] == 701_345 and small["parameters"] < big["parameters"] / 3
    assert big["gflops"] == pytest.approx(big["steps_per_second"] * big["gflop_per_step"])
    fake = {"batch": 128, "matmul_gflops": 100.0, "presets": {
        "digits": {"parameters": 7e5, "gflop_per_step": 12.0, "steps_per_second": 8.0, "gflops": 96.0},
        "digits_narrow": {"parameters": 2e5, "gflop_per_step": 3.0, "steps_per_second": 20.0, "gflops": 60.0}}}
    text = training_arithmetic_markdown(fake)
    assert "runs at 100 GFLOP/s" in text and "12.00 GFLOP per step at batch 128, 8.0 steps/s, so 96 GFLOP/s" in text
    assert "at 96% of the product's rate: it is bound by arithmetic" in text
    assert "`digits_narrow` does 4.0x less arithmetic and steps 2.5x as fast." in text
    fake["presets"]["digits"].update(steps_per_second=2.0, gflops=24.0)
    assert "only 24% of the product's rate: time goes to work other than arithmetic" in training_arithmetic_markdown(fake)


def test_the_estimate_scales_the_records_wall_clock_by_the_ratio_of_the_probes(tmp_path, monkeypatch, capsys):
    record = {"profile": "quick", "date": "2026-12-02", "commit": "aaa1111", "wall_seconds": 2400.0,
              "total_seconds": 4700.0, "at_once": 2, "machine": {"cpu": "AMD EPYC", "cores": 2},
              "speed": {"probe": "p", "before": 6.0, "after": 8.0}}            # the record's probe: their mean, 7
    assert expected_book_seconds(record, 7.0) == pytest.approx(2400.0)
    assert expected_book_seconds(record, 3.5) == pytest.approx(4800.0)       # half the speed, twice the time
    assert expected_book_seconds(dict(record, wall_seconds=None), 7.0) == pytest.approx(4700.0)
    assert expected_book_seconds(dict(record, speed=None), 7.0) is None
    with pytest.raises(ValueError, match="positive"):
        expected_book_seconds(record, 0.0)
    text = expected_book_markdown(record, 3.5)
    assert "expect **about 80 min** here (40 x 7.00 / 3.50)" in text and "JOBS" not in text
    assert "may take less" in expected_book_markdown(record, 3.5, cores=4)
    assert "may take more" in expected_book_markdown(record, 3.5, cores=1)
    assert "changed since that commit (`mempkg/a.py`)" in expected_book_markdown(record, 3.5, changed=["mempkg/a.py"])
    assert "no estimate can be made" in expected_book_markdown(dict(record, speed=None), 3.5)
    assert "How far to trust it" not in text                                  # no probed measurement before it
    # the record replaced one of a machine probed at 14 steps/s that took 25 min: from it, 50 min would have been
    # expected for the record's machine (probe 7), against the 40 measured
    prev = {"date": "2026-12-01", "machine": {"cpu": "CPU X"}, "wall_seconds": 1500.0, "speed": {"after": 14.0}}
    assert ("would have been 50 min against the 40 measured (+25%)."
            in expected_book_markdown(dict(record, previous=prev), 3.5))
    # the tool: probes once, reads the record, prints the estimate; refuses to mix it with a run
    out = tmp_path / "book-quick.json"
    out.write_text(json.dumps(record))
    monkeypatch.setattr(profile_book, "machine_speed", lambda: 14.0)
    monkeypatch.setattr(profile_book, "changed_files", lambda folder, a, b: [])
    assert profile_book.main(["--profile", "quick", "--estimate", "--out", str(out)]) == 0
    assert "expect **about 20 min** here" in capsys.readouterr().out
    assert profile_book.main(["--profile", "quick", "--estimate", "--out", str(tmp_path / "none.json")]) == 1
    with pytest.raises(SystemExit):
        profile_book.main(["--estimate", "--run", "--out", str(out)])
