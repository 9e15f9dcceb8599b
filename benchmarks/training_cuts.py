"""What cutting the chapters' training costs: each chapter run at the quick profile and with each cut.

    python benchmarks/training_cuts.py [--work DIR] [--parallel 2] [--cuts steps,width] [--record]

Chapters 02 to 05 spend most of their time training (the performance page, section 6). CUTS holds named cuts,
each with its settings per chapter:

- ``steps``: chapter 02's cut (section 7: 2x the learning rate and fewer steps, which kept 02's copies) applied
  to 03 and 05;
- ``width``: the UNets at half the channels at each level (``digits_narrow`` in 02, 03 and 05: 0.18 M parameters,
  not 0.70 M, a quarter of the arithmetic per step; the tiny Stable Diffusion's in 04) at the same steps.

Each chapter is executed with papermill under the quick profile as the profile has it ("reference") and once
per cut (the cut's settings passed as the chapter's ``settings`` parameter). Every run is its own process with
one torch thread, `--parallel` of them at a time (as `make notebooks` runs chapters on 2 cores), each into
``<work>/<run>/`` as its results root. The record sets, per chapter and cut, both runs' seconds, headline numbers
(with their standard errors where the chapter computes them) and verdicts side by side: what the cut saves, and
what it costs in the findings.

A run whose summary.json is already under ``<work>`` with the same overridden settings is not run again (delete
``<work>`` to re-run everything); the record names the commit it was written at. Writes
``<work>/training_cuts.json``; with `--record`, also book/measurements/training-cuts-quick.json, which the
performance page shows. `--cuts` runs some of the cuts; with `--record`, the record keeps the entries of the cuts
not run from the record before (each entry names its own date and commit).
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
REFERENCE = "reference"

_NARROW = ("the UNet at half the channels (16 and 32 per level, not 32 and 64; 0.18 M parameters, not 0.70 M), "
           "the same steps")

# cut name: {notebook: (chapter of mempkg.book.profiles.CHAPTERS, the cut's settings, what the cut is)}
CUTS = {
    "steps": {
        "03_three_regimes": ("three_regimes", {"train_steps": 2000, "lr": 0.002, "gap_train_steps": 1300},
                             "2/3 of the steps for the two EDM models and 0.65 for the gap models, "
                             "at 2x the learning rate"),
        "05_three_lenses": ("three_lenses", {"train_steps": 2500, "lr": 0.002},
                            "0.625 of the steps at 2x the learning rate"),
    },
    "width": {
        "02_cifar10_overfit": ("volume_growth", {"preset": "digits_narrow"}, _NARROW),
        "03_three_regimes": ("three_regimes", {"preset": "digits_narrow"}, _NARROW),
        "04_laion_verbatims": ("laion_verbatims", {"block_out_channels": [16, 32]},
                               "the tiny Stable Diffusion's UNet at half the channels (16 and 32 per level, not 32 "
                               "and 64), the same steps"),
        "05_three_lenses": ("three_lenses", {"preset": "digits_narrow"}, _NARROW),
    },
}


def runs(cuts: dict | None = None) -> tuple:
    """The runs of each chapter: the reference, then every cut by name."""
    return (REFERENCE, *(CUTS if cuts is None else cuts))


def wanted(names=None) -> list:
    """The runs the cuts ``names`` (default: all) need, as ``(run, notebook)``: each chapter they change as the
    profile has it, then each cut's chapters."""
    names = list(CUTS) if names is None else list(names)
    return ([(REFERENCE, nb) for nb in notebooks({n: CUTS[n] for n in names})]
            + [(name, nb) for name in names for nb in CUTS[name]])


def notebooks(cuts: dict | None = None) -> list:
    """The chapters some cut changes, in order of first appearance."""
    return list(dict.fromkeys(nb for by_nb in (CUTS if cuts is None else cuts).values() for nb in by_nb))


def _peak_se(s: dict):
    i = max(range(len(s["mem_rate_by_sigma"])), key=lambda j: s["mem_rate_by_sigma"][j])
    return s["mem_rate_se_by_sigma"][i]


def _binomial_se(key: str, chapter: str, n_key: str):
    """The standard error of a rate ``summary[key]`` over the profile's ``n_key`` draws (a cut changes neither)."""
    def se(s: dict):
        p, n = s.get(key), _profile_value(chapter, n_key)
        return None if p is None else (p * (1 - p) / n) ** 0.5
    return se


# notebook: [(label, key of its summary, standard error: a key, a function of the summary, or None, unit)]
# unit: "%" (a rate), "auroc", "" (a plain number)
HEADLINES = {
    "02_cifar10_overfit": [
        ("samples that copy a training image", "copy_rate_overfit",
         _binomial_se("copy_rate_overfit", "volume_growth", "n_samples"), "%"),
        ("planted duplicates extracted", "n_planted_found", None, ""),
        ("training images extracted", "n_memorized_found", None, ""),
        ("AUROC, trained vs held out (volume growth)", "auroc_trained_vs_heldout", None, "auroc"),
        ("AUROC, memorized vs other trained", "auroc_memorized_vs_other", None, "auroc"),
        ("AUROC, one axis and one step", "auroc_one_axis_one_step", None, "auroc"),
    ],
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
        ("generations that copy a training image", "generation_copy_rate",
         _binomial_se("generation_copy_rate", "three_lenses", "n_generations"), "%"),
        ("training images copied by some generation", "n_memorized", None, ""),
        ("FLIPD's t0 (knee)", "t0", None, ""),
    ],
    "04_laion_verbatims": [
        ("memorized captions whose generation copies their image", "reproduced_fraction",
         _binomial_se("reproduced_fraction", "laion_verbatims", "n_show"), "%"),
        ("AUROC, FLIPD conditional", "auroc_flipd_cond", "auroc_se_flipd_cond", "auroc"),
        ("AUROC, FLIPD unconditional", "auroc_flipd_uncond", "auroc_se_flipd_uncond", "auroc"),
        ("AUROC, CFG norm (real image)", "auroc_cfg_norm", "auroc_se_cfg_norm", "auroc"),
        ("AUROC, CFG norm (from noise)", "auroc_cfg_norm_generation", "auroc_se_cfg_norm_generation", "auroc"),
    ],
}


def check_cuts(cuts: dict | None = None) -> None:
    """Refuse (ValueError) a cut whose chapter or settings the quick profile does not have, or which is named as the
    reference run, before running anything."""
    from mempkg.book.profiles import CHAPTERS

    for name, by_nb in (CUTS if cuts is None else cuts).items():
        if name == REFERENCE or not name.isidentifier():
            raise ValueError(f"a cut may not be named {name!r}: name it by a word other than {REFERENCE!r}")
        for nb, (chapter, overrides, _) in by_nb.items():
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
    """The chapter's settings overridden in ``run`` (``{chapter: {setting: value}}``; none for the reference)."""
    if run == REFERENCE:
        return {}
    chapter, overrides, _ = CUTS[run][nb]
    return {chapter: dict(overrides)}


def done(work: Path, run: str, nb: str) -> bool:
    """Whether ``<work>`` holds this run's summary, run with the same overridden settings."""
    path = summary_path(work, run, nb)
    if not path.is_file():
        return False
    return json.loads(path.read_text()).get("settings_overridden", {}) == overrides_of(nb, run)


def start(work: Path, run: str, nb: str) -> subprocess.Popen:
    """Execute one chapter under the quick profile (with the settings of cut ``run``) into ``<work>/<run>``."""
    out = work / run
    out.mkdir(parents=True, exist_ok=True)
    notebook = out / f"{nb}.in.ipynb"
    subprocess.run([sys.executable, "-m", "jupytext", "--to", "ipynb", "--set-kernel", "python3", "-o", str(notebook),
                    str(ROOT / "notebooks" / f"{nb}.py")], check=True, capture_output=True)
    settings = next(iter(overrides_of(nb, run).values()), {})
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MEMPKG_RESULTS=str(out),
               HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", PYTHONWARNINGS="ignore::UserWarning:papermill.iorw")
    with open(out / f"{nb}.log", "w") as log:               # the child writes to its own copy of the handle
        return subprocess.Popen([sys.executable, "-m", "papermill", str(notebook), str(out / f"{nb}.ipynb"),
                                 "-p", "profile", PROFILE, "-y", json.dumps({"settings": settings}),
                                 "--cwd", str(ROOT)], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)


def _standard_error(summary: dict, se):
    """A headline's standard error: ``se`` is a summary key, a function of the summary, or ``None`` (none)."""
    return None if se is None else se(summary) if callable(se) else summary.get(se)


def verdicts_of(nb: str, summary: dict) -> dict:
    """``{claim: verdict}`` of the scorecard's claims on this chapter, by the scorecard's rules
    (:func:`mempkg.book.scorecard.judge`). A claim the scorecard leaves to a stand-in model (chapter 04's tiny
    Stable Diffusion) is judged by its criteria all the same, as "held (stand-in)" or "did not hold (stand-in)":
    a cut can change those too."""
    from mempkg.book.scorecard import HELD, NOT_HELD, STAND_IN, claims_of, judge

    out = {}
    for claim in claims_of(nb):
        verdict, _ = judge(claim, summary)
        if verdict == STAND_IN:
            verdict = f"{HELD if claim.held(summary) else NOT_HELD} ({STAND_IN})"
        out[claim.key] = verdict
    return out


def chapter_record(nb: str, name: str, reference: dict, cut: dict) -> dict:
    """One chapter's part of the record under cut ``name``: the cut, both runs' seconds and verdicts, and the
    headline rows."""
    chapter, overrides, what = CUTS[name][nb]
    rows = [{"label": label, "key": key, "unit": unit, "reference": reference.get(key), "cut": cut.get(key),
             "reference_se": _standard_error(reference, se), "cut_se": _standard_error(cut, se)}
            for label, key, se, unit in HEADLINES[nb]]
    return {"notebook": nb, "chapter": chapter, "cut_name": name, "cut": what, "settings": dict(overrides),
            "profile_settings": {k: _profile_value(chapter, k) for k in overrides},
            "seconds": {"reference": reference["seconds"], "cut": cut["seconds"]},
            "verdicts": {"reference": verdicts_of(nb, reference), "cut": verdicts_of(nb, cut)},
            "rows": rows}


def _profile_value(chapter: str, key: str):
    from mempkg.book.profiles import CHAPTERS

    return CHAPTERS[chapter][PROFILE][key]


def record_from(work: Path, parallel: int, wall_seconds, names=None, previous: dict | None = None) -> dict:
    """The record, from the summaries under ``<work>`` for the cuts ``names`` (default: all); the entries of other
    cuts are taken from ``previous`` (a record written before), each keeping its own date and commit."""
    from mempkg.book.perf import git_commit, machine_record

    names = list(CUTS) if names is None else list(names)
    date, commit = time.strftime("%Y-%m-%d"), git_commit(ROOT)
    machine = {k: v for k, v in machine_record().items() if k in ("cpu", "cores", "system", "torch")}
    chapters = []
    for name in CUTS:
        if name in names:
            for nb in CUTS[name]:
                s = {run: json.loads(summary_path(work, run, nb).read_text()) for run in (REFERENCE, name)}
                chapters.append(dict(chapter_record(nb, name, s[REFERENCE], s[name]), date=date, commit=commit,
                                     machine=machine))
        elif previous is not None:
            # a record from before cuts had names held the "steps" cut alone
            chapters += [dict(ch, cut_name=name, date=ch.get("date", previous.get("date")),
                              commit=ch.get("commit", previous.get("commit")),
                              machine=ch.get("machine", previous.get("machine")))
                         for ch in previous.get("chapters", []) if ch.get("cut_name", "steps") == name]
    return {"profile": PROFILE, "date": date, "commit": commit, "machine": machine, "cuts": names,
            "parallel": parallel, "threads": 1, "wall_seconds": wall_seconds, "chapters": chapters}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, help="results root of the runs [results/benchmarks/training_cuts]")
    ap.add_argument("--parallel", type=int, default=2, help="chapters executed at once, one thread each")
    ap.add_argument("--cuts", default=",".join(CUTS), help=f"comma-separated cuts to run, of {', '.join(CUTS)}")
    ap.add_argument("--record", action="store_true", help=f"also write {RECORD.relative_to(ROOT)}")
    args = ap.parse_args(argv)
    if args.parallel < 1:
        ap.error("--parallel must be at least 1")
    names = [c for c in args.cuts.split(",") if c]
    unknown = [c for c in names if c not in CUTS]
    if unknown or not names:
        ap.error(f"--cuts takes some of {', '.join(CUTS)}; got {args.cuts!r}")
    check_cuts()
    from mempkg.book.paths import results_root
    from mempkg.core.files import write_json_atomic

    work = (args.work or results_root() / "benchmarks" / "training_cuts").resolve()
    todo = [(run, nb) for run, nb in wanted(names) if not done(work, run, nb)]
    reused = [(run, nb) for run, nb in wanted(names) if (run, nb) not in todo]
    queue = list(todo)
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
    wall = round(time.perf_counter() - began, 1) if todo and not reused else None
    last = work / "training_cuts.json"
    if not todo and last.is_file():
        # nothing ran: the wall time is that of the invocation that ran all of these cuts' runs (None if it
        # reused some, and so had none)
        before = json.loads(last.read_text())
        wall = before.get("wall_seconds") if before.get("cuts") == names else None
    previous = json.loads(RECORD.read_text()) if args.record and RECORD.is_file() else None
    record = record_from(work, args.parallel, wall, names, previous)
    write_json_atomic(work / "training_cuts.json", record)
    print(f"Written: {work / 'training_cuts.json'}")
    if args.record:
        write_json_atomic(RECORD, record)
        print(f"Written: {RECORD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
