"""What cutting chapters 03 and 05's training costs: each chapter run at the quick profile and with its training cut.

    python benchmarks/training_cuts.py [--work DIR] [--parallel 2] [--record]

Chapters 03 and 05 spend most of their time training EDM models (the performance page, section 6). Chapter 02's
training was cut at a 2x learning rate and half the steps without losing its copies (section 7); CUTS applies the
same kind of cut to 03 and 05. Each chapter of CUTS is executed twice with papermill under the quick profile: as
the profile has it ("reference") and with the cut's settings ("cut", passed as the chapter's ``settings``
parameter). Every run is its own process with one torch thread, `--parallel` of them at a time (as `make
notebooks` runs chapters on 2 cores), each into ``<work>/<run>/`` as its results root. The record sets each
chapter's seconds and its headline numbers (with their standard errors where the chapter computes them) and
verdicts side by side: what the cut saves, and what it costs in the findings.

A run whose summary.json is already under ``<work>`` with the same overridden settings is not run again (delete
``<work>`` to re-run everything); the record names the commit it was written at. Writes
``<work>/training_cuts.json``; with `--record`, also book/measurements/training-cuts-quick.json, which the
performance page shows.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "book" / "measurements" / "training-cuts-quick.json"
PROFILE = "quick"
RUNS = ("reference", "cut")

# notebook: (chapter of mempkg.book.profiles.CHAPTERS, the cut's settings, what the cut is)
CUTS = {
    "03_three_regimes": ("three_regimes", {"train_steps": 2000, "lr": 0.002, "gap_train_steps": 1300},
                         "2/3 of the steps for the two EDM models and 0.65 for the gap models, "
                         "at 2x the learning rate"),
    "05_three_lenses": ("three_lenses", {"train_steps": 2500, "lr": 0.002},
                        "0.625 of the steps at 2x the learning rate"),
}


def _peak_se(s: dict):
    i = max(range(len(s["mem_rate_by_sigma"])), key=lambda j: s["mem_rate_by_sigma"][j])
    return s["mem_rate_se_by_sigma"][i]


def _copy_rate_se(s: dict):
    # binomial, over the profile's generations (the cut does not change their number)
    p, n = s["generation_copy_rate"], _profile_value("three_lenses", "n_generations")
    return (p * (1 - p) / n) ** 0.5


# notebook: [(label, key of its summary, standard error: a key, a function of the summary, or None, unit)]
# unit: "%" (a rate), "auroc", "" (a plain number)
HEADLINES = {
    "03_three_regimes": [
        ("one-step copy rate at its peak", "peak_memorization_rate", _peak_se, "%"),
        ("sigma of that peak", "peak_memorization_sigma", None, ""),
        ("share of the copying in the danger zone", "memorization_share_in_zone", "memorization_share_in_zone_se", "%"),
        ("the zone's share of the sigma grid", "zone_share_of_grid", None, "%"),
        ("copy rate of the whole-set model, at most", "max_mem_rate_whole", None, "%"),
        ("generations copied: baseline", "mem_rate_baseline", "mem_rate_se_baseline", "%"),
        ("generations copied: gap", "mem_rate_gap", "mem_rate_se_gap", "%"),
        ("generations copied: dummy", "mem_rate_dummy", "mem_rate_se_dummy", "%"),
        ("Frechet distance: baseline", "fd_baseline", "fd_se_baseline", ""),
        ("Frechet distance: gap", "fd_gap", "fd_se_gap", ""),
        ("Frechet distance: dummy", "fd_dummy", None, ""),
    ],
    "05_three_lenses": [
        ("AUROC, FLIPD", "auroc_flipd", "auroc_se_flipd", "auroc"),
        ("AUROC, volume growth", "auroc_volume", "auroc_se_volume", "auroc"),
        ("AUROC, one-step memorization", "auroc_onestep", "auroc_se_onestep", "auroc"),
        ("AUROC, reproduction", "auroc_reproduction", "auroc_se_reproduction", "auroc"),
        ("AUROC, PNG size", "auroc_png", "auroc_se_png", "auroc"),
        ("generations that copy a training image", "generation_copy_rate", _copy_rate_se, "%"),
        ("training images copied by some generation", "n_memorized", None, ""),
        ("FLIPD's t0 (knee)", "t0", None, ""),
    ],
}


def check_cuts(cuts: dict = CUTS) -> None:
    """Refuse (ValueError) a cut whose chapter or settings the quick profile does not have, before running anything."""
    from mempkg.book.profiles import CHAPTERS

    for nb, (chapter, overrides, _) in cuts.items():
        if chapter not in CHAPTERS:
            raise ValueError(f"{nb}: no chapter {chapter!r} in mempkg.book.profiles.CHAPTERS")
        unknown = sorted(set(overrides) - set(CHAPTERS[chapter][PROFILE]))
        if unknown:
            raise ValueError(f"{nb}: the {PROFILE} profile of {chapter!r} has no setting {', '.join(unknown)}")
        if not (ROOT / "notebooks" / f"{nb}.py").is_file():
            raise ValueError(f"notebooks/{nb}.py does not exist")


def summary_path(work: Path, run: str, nb: str) -> Path:
    return work / run / PROFILE / nb / "summary.json"


def overrides_of(nb: str, run: str) -> dict:
    chapter, overrides, _ = CUTS[nb]
    return {chapter: dict(overrides)} if run == "cut" else {}


def done(work: Path, run: str, nb: str) -> bool:
    """Whether ``<work>`` holds this run's summary, run with the same overridden settings."""
    path = summary_path(work, run, nb)
    if not path.is_file():
        return False
    return json.loads(path.read_text()).get("settings_overridden", {}) == overrides_of(nb, run)


def start(work: Path, run: str, nb: str) -> subprocess.Popen:
    """Execute one chapter under the quick profile (the cut's settings for run "cut") into ``<work>/<run>``."""
    out = work / run
    out.mkdir(parents=True, exist_ok=True)
    notebook = out / f"{nb}.in.ipynb"
    subprocess.run([sys.executable, "-m", "jupytext", "--to", "ipynb", "--set-kernel", "python3", "-o", str(notebook),
                    str(ROOT / "notebooks" / f"{nb}.py")], check=True, capture_output=True)
    settings = overrides_of(nb, run).get(CUTS[nb][0], {})
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MEMPKG_RESULTS=str(out),
               HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", PYTHONWARNINGS="ignore::UserWarning:papermill.iorw")
    with open(out / f"{nb}.log", "w") as log:               # the child writes to its own copy of the handle
        return subprocess.Popen([sys.executable, "-m", "papermill", str(notebook), str(out / f"{nb}.ipynb"),
                                 "-p", "profile", PROFILE, "-y", json.dumps({"settings": settings}),
                                 "--cwd", str(ROOT)], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)


def _standard_error(summary: dict, se):
    """A headline's standard error: ``se`` is a summary key, a function of the summary, or ``None`` (none)."""
    return None if se is None else se(summary) if callable(se) else summary.get(se)


def chapter_record(nb: str, reference: dict, cut: dict) -> dict:
    """One chapter's part of the record: the cut, both runs' seconds and verdicts, and the headline rows."""
    chapter, overrides, what = CUTS[nb]
    rows = [{"label": label, "key": key, "unit": unit, "reference": reference.get(key), "cut": cut.get(key),
             "reference_se": _standard_error(reference, se), "cut_se": _standard_error(cut, se)}
            for label, key, se, unit in HEADLINES[nb]]
    return {"notebook": nb, "chapter": chapter, "cut": what, "settings": dict(overrides),
            "profile_settings": {k: _profile_value(chapter, k) for k in overrides},
            "seconds": {"reference": reference["seconds"], "cut": cut["seconds"]},
            "verdicts": {"reference": reference.get("verdicts", {}), "cut": cut.get("verdicts", {})},
            "rows": rows}


def _profile_value(chapter: str, key: str):
    from mempkg.book.profiles import CHAPTERS

    return CHAPTERS[chapter][PROFILE][key]


def record_from(work: Path, parallel: int, wall_seconds) -> dict:
    """The record, from the summaries under ``<work>``."""
    from mempkg.book.perf import git_commit, machine_record

    chapters = []
    for nb in CUTS:
        s = {run: json.loads(summary_path(work, run, nb).read_text()) for run in RUNS}
        chapters.append(chapter_record(nb, s["reference"], s["cut"]))
    machine = {k: v for k, v in machine_record().items() if k in ("cpu", "cores", "system", "torch")}
    return {"profile": PROFILE, "date": time.strftime("%Y-%m-%d"), "commit": git_commit(ROOT), "machine": machine,
            "parallel": parallel, "threads": 1, "wall_seconds": wall_seconds, "chapters": chapters}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, help="results root of the runs [results/benchmarks/training_cuts]")
    ap.add_argument("--parallel", type=int, default=2, help="chapters executed at once, one thread each")
    ap.add_argument("--record", action="store_true", help=f"also write {RECORD.relative_to(ROOT)}")
    args = ap.parse_args(argv)
    if args.parallel < 1:
        ap.error("--parallel must be at least 1")
    check_cuts()
    from mempkg.book.paths import results_root
    from mempkg.core.files import write_json_atomic

    work = (args.work or results_root() / "benchmarks" / "training_cuts").resolve()
    queue = [(run, nb) for nb in CUTS for run in RUNS if not done(work, run, nb)]
    reused = [(run, nb) for nb in CUTS for run in RUNS if (run, nb) not in queue]
    for run, nb in reused:
        print(f"{nb} ({run}): reusing {summary_path(work, run, nb)}", flush=True)
    running, began = [], time.perf_counter()
    while queue or running:
        while queue and len(running) < args.parallel:
            run, nb = queue.pop(0)
            print(f"{nb} ({run}): running, log in {work / run / (nb + '.log')}", flush=True)
            running.append((run, nb, start(work, run, nb)))
        finished = next((r for r in running if r[2].poll() is not None), None)
        if finished is None:
            time.sleep(2.0)
            continue
        running.remove(finished)
        run, nb, proc = finished
        if proc.returncode != 0:
            raise SystemExit(f"{nb} ({run}) failed (exit {proc.returncode}); see {work / run / (nb + '.log')}.")
        print(f"{nb} ({run}): done", flush=True)
    record = record_from(work, args.parallel, None if reused else round(time.perf_counter() - began, 1))
    write_json_atomic(work / "training_cuts.json", record)
    print(f"Written: {work / 'training_cuts.json'}")
    if args.record:
        write_json_atomic(RECORD, record)
        print(f"Written: {RECORD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
