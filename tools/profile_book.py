"""Where a book's time goes: each chapter's run time and its stages, from one run with an empty cache (`make profile-book`).

    python tools/profile_book.py --profile quick --run        # execute every chapter into a fresh cache, then record
    python tools/profile_book.py --profile quick --results R --executed E   # record an earlier run
    python tools/profile_book.py --profile quick --estimate   # how long the book should take on this machine

With ``--run`` the chapters are executed by `make notebooks` into a fresh results folder
(``build/profile-<profile>/results``) and build folder (``build/profile-<profile>``), so nothing cached earlier
is used and the book's own ``results/<profile>`` is not touched. Then it reads

* each chapter's run time: papermill's ``duration`` in the executed notebook, and its start and end. `make
  notebooks` runs several chapters at once (JOBS), so the book's time is the wall clock of the run (with
  ``--run``; else from the first start to the last end), not the sum of the chapters' times; ``at_once`` is
  the most chapters that ran at the same time;
* each chapter's torch threads: those its cache records ran with;
* each stage's time: every cache record the chapter wrote holds the seconds its computation took
  (``mempkg.book.cache``: training a model, sampling, each estimator, each control). Stages of one name
  (e.g. the 30 settings of an ablation) are summed; "not cached" is the rest of the chapter's time
  (loading, the kernel's start, plotting, small computations).

It writes ``book/measurements/book-<profile>.json`` (machine, date, commit, threads, chapters and stages): the
introduction's run-time table and the performance page read it, and it is committed, so the times the book
quotes are this measurement's, with its machine and date. ``--out`` writes elsewhere. A record that was there
before, of another commit, is kept in the new one as ``previous`` (its date, commit, machine and each chapter's
minutes), so the performance page shows each chapter before and after a change, both measured.

Two machines of the same description (a cloud VM's CPU model and cores) can run the book at different speeds
(57 and 42 min for the same chapters' code, in the record of 2026-12-02), so a record also holds the machine's speed: ``mempkg.book.perf.machine_speed``, steps per second of one training
step of the book's digits UNet at one thread, run alone before and after the chapters (``--probe-after`` probes
after an earlier run that is recorded right away), and, of the measurement it replaces, the chapters' files that
changed between the two commits. The performance page then says how much of a difference is the machine's.

``--estimate`` (`make book-time`) runs only the probe, here and now, and says how long the record's book should
take on this machine: the record's wall clock times the ratio of the two probes
(``mempkg.book.perf.expected_book_seconds``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from mempkg.book.perf import (SPEED_PROBE, book_times_markdown, changed_files, expected_book_markdown, git_commit,
                              machine_record, machine_speed, notebook_times, run_span)

ROOT = Path(__file__).resolve().parents[1]


def chapter_record(notebook: Path, results: Path) -> dict:
    """One chapter: its papermill duration, start and end, the seconds of every cache record it wrote, by stage
    name, and the torch threads those records ran with."""
    times = notebook_times(notebook)
    stages: dict[str, dict] = {}
    threads: set[int] = set()
    for rec_path in sorted((results / notebook.stem).glob("*.json")):
        if rec_path.name == "summary.json":
            continue
        try:
            rec = json.loads(rec_path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if "name" not in rec or rec.get("seconds") is None:
            continue
        s = stages.setdefault(rec["name"], {"stage": rec["name"], "seconds": 0.0, "count": 0})
        s["seconds"] += float(rec["seconds"])
        s["count"] += 1
        if rec.get("threads"):
            threads.add(int(rec["threads"]))
    duration = times["duration"]
    cached = sum(s["seconds"] for s in stages.values())
    ordered = sorted(stages.values(), key=lambda s: -s["seconds"])
    return {"notebook": notebook.stem, "seconds": duration,
            "start": times["start"] and times["start"].isoformat(), "end": times["end"] and times["end"].isoformat(),
            "threads": max(threads) if threads else None,
            "stages": [dict(s, seconds=round(s["seconds"], 1)) for s in ordered],
            "not_cached_seconds": None if duration is None else round(max(duration - cached, 0.0), 1)}


def collect(profile: str, results: Path, executed: Path, wall_seconds: float | None = None,
            commit: str | None = None) -> dict:
    notebooks = sorted(executed.glob("*.ipynb"))
    if not notebooks:
        raise SystemExit(f"{executed} holds no executed notebook: run with --run, or point --executed at a build.")
    commit = commit or git_commit(ROOT)
    chapters = [chapter_record(nb, results / profile) for nb in notebooks]
    span = run_span([notebook_times(nb) for nb in notebooks])
    if wall_seconds is None and span:
        wall_seconds = span["seconds"]
    return {"profile": profile, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "commit": commit,
            "machine": machine_record(), "empty_cache": True,
            "wall_seconds": None if wall_seconds is None else round(wall_seconds, 1),
            "at_once": span["at_once"] if span else None,
            "total_seconds": round(sum(c["seconds"] or 0.0 for c in chapters), 1), "chapters": chapters}


def previous_of(old: dict | None, commit: str | None) -> dict | None:
    """What the new record keeps of the one it replaces: date, commit, machine, its speed probe, each chapter's
    seconds, and the chapters' files (``mempkg/``, ``notebooks/``) that changed between its commit and ``commit``
    (``None`` when git cannot tell). ``None`` when there was none, or when it measured the same commit (a re-run
    keeps the older ``previous``)."""
    if not old:
        return None
    if old.get("commit") == commit:
        return old.get("previous")
    return {"date": old.get("date"), "commit": old.get("commit"), "machine": old.get("machine"),
            "speed": old.get("speed"), "total_seconds": old.get("total_seconds"),
            "wall_seconds": old.get("wall_seconds"), "at_once": old.get("at_once"),
            "changed_files": changed_files(ROOT, old.get("commit"), commit),
            "chapters": {c["notebook"]: c.get("seconds") for c in old.get("chapters", [])}}


def run(profile: str, build: Path, results: Path) -> float:
    """Execute every chapter into fresh folders; returns the wall-clock seconds."""
    shutil.rmtree(build, ignore_errors=True)
    results.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    env["MEMPKG_RESULTS"] = str(results.resolve())
    start = time.perf_counter()
    r = subprocess.run(["make", "--no-print-directory", "notebooks", f"PROFILE={profile}", f"BUILD={build}"],
                       cwd=ROOT, env=env)
    if r.returncode != 0:
        raise SystemExit(f"make notebooks failed under PROFILE={profile}; see its output above.")
    return time.perf_counter() - start


def estimate(profile: str, path: Path) -> int:
    """Print how long the book of the record at ``path`` should take on this machine (its probe run now)."""
    if not path.is_file():
        print(f"No run-time record of `{profile}` at {path}: `make profile-book PROFILE={profile}` writes one.")
        return 1
    record = json.loads(path.read_text())
    print(expected_book_markdown(record, machine_speed(), cores=os.cpu_count(),
                                 changed=changed_files(ROOT, record.get("commit"), git_commit(ROOT))))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--run", action="store_true", help="execute every chapter from an empty cache first")
    ap.add_argument("--results", type=Path, help="the results folder the run used (holds <profile>/)")
    ap.add_argument("--executed", type=Path, help="the folder of its executed notebooks")
    ap.add_argument("--out", type=Path, help="the record to write (with --estimate: to read); default "
                                          "book/measurements/book-<profile>.json")
    ap.add_argument("--commit", help="with --results/--executed: the commit the recorded run executed "
                                     "(default: this checkout's)")
    ap.add_argument("--probe-after", action="store_true",
                    help="with --results/--executed: probe the machine's speed now, as 'after' the run "
                         "(only right after the run it records, on the same machine)")
    ap.add_argument("--estimate", action="store_true",
                    help="only probe this machine's speed and say how long the recorded book should take here")
    args = ap.parse_args(argv)
    if args.estimate:
        if args.run or args.results or args.executed or args.probe_after or args.commit:
            ap.error("--estimate only probes this machine and reads the record (at --out); it runs and records nothing")
        return estimate(args.profile, args.out or ROOT / "book" / "measurements" / f"book-{args.profile}.json")
    build = Path("build") / f"profile-{args.profile}"
    results = args.results or build / "results"
    executed = args.executed or build / "src" / "notebooks"
    out = args.out or ROOT / "book" / "measurements" / f"book-{args.profile}.json"
    old = json.loads(out.read_text()) if out.is_file() else None      # checked before an hour-long run
    if old and old.get("profile") not in (None, args.profile):
        raise SystemExit(f"{out} records profile {old.get('profile')!r}, not {args.profile!r}: choose another --out.")
    wall, speed = None, {"probe": SPEED_PROBE, "before": None, "after": None}
    if args.run:
        if args.results or args.executed or args.probe_after or args.commit:
            ap.error("--run makes its own folders and probes the machine itself; --results, --executed, --commit "
                     "and --probe-after are for recording an earlier run")
        speed["before"] = machine_speed()
        wall = run(args.profile, build, results)
    if args.run or args.probe_after:
        speed["after"] = machine_speed()
    record = collect(args.profile, results, executed, wall, commit=args.commit)
    record["speed"] = speed if speed["before"] is not None or speed["after"] is not None else None
    record["previous"] = previous_of(old, record["commit"])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(book_times_markdown(record, stages=True))
    print(f"\nWritten: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
