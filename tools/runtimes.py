"""Print the Markdown table of notebook run times that the book's introduction includes.

`make book` writes its output to build/<profile>/src/_generated/runtimes.md, so the times in
the book are those of the run that built it: papermill's `metadata.papermill.duration` of each
executed notebook, and the device from the notebook's results/<profile>/<stem>/summary.json.
When they ran in one go (`make notebooks` runs several at once, JOBS), the wall clock from the
first start to the last end follows. Those re-use whatever was cached; the time of every chapter
from an empty cache follows, from the record `make profile-book` wrote (book/measurements/book-<profile>.json), with its machine and date.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from datetime import datetime
from importlib import metadata
from pathlib import Path

from mempkg.book.perf import book_times, book_times_markdown, cpu_name, notebook_times, run_span


def gpu_name() -> str:
    import torch  # only when a notebook ran on CUDA: importing torch takes seconds

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU visible now"


def row(notebook: Path, profile: str, results: Path) -> tuple[str, str, str, str]:
    papermill = json.loads(notebook.read_text())["metadata"].get("papermill", {})
    duration = papermill.get("duration")
    summary = results / profile / notebook.stem / "summary.json"
    device = json.loads(summary.read_text()).get("device", "") if summary.is_file() else ""
    seconds = f"{duration:.0f}" if duration is not None else "not recorded"
    return f"{{doc}}`notebooks/{notebook.stem}`", profile, seconds, str(device) or "not recorded"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", required=True)
    parser.add_argument("--results", type=Path,
                        default=Path(os.environ.get("MEMPKG_RESULTS", "results")))
    parser.add_argument("--measurements", type=Path, default=Path(__file__).resolve().parents[1] / "book" / "measurements")
    parser.add_argument("notebooks", nargs="*", type=Path, help="executed .ipynb files")
    args = parser.parse_args()

    if not args.notebooks:
        print(f"No notebook was executed for the `{args.profile}` profile.")
        return
    rows = [row(nb, args.profile, args.results) for nb in args.notebooks]
    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = "not installed"
    machine = (f"{cpu_name()}, {os.cpu_count()} CPU cores, {platform.system()} {platform.machine()}, "
               f"Python {platform.python_version()}, torch {torch_version}")
    if any(r[3].startswith("cuda") for r in rows):
        machine += f", GPU: {gpu_name()}"
    print(f"Measured by the build of this page on {datetime.now():%Y-%m-%d} ({machine}), "
          "as papermill's wall-clock time of each notebook; results already cached under "
          f"`results/{args.profile}/` make a re-run faster.\n")
    print("| Chapter | Profile | Seconds | Device |")
    print("| --- | --- | ---: | --- |")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    times = [notebook_times(nb) for nb in args.notebooks]
    span = run_span(times)
    if span is None:
        print("\nThese notebooks did not all run in one go (some were executed earlier), so their times do not "
              "add up to a build's time.")
    else:
        how = "one after another" if span["at_once"] == 1 else f"up to {span['at_once']} at a time"
        print(f"\nThey ran in one go, {how} (`make notebooks`, JOBS): "
              f"**{span['seconds'] / 60:.1f} min** from the first start to the last end, against "
              f"{sum(t['duration'] or 0.0 for t in times) / 60:.1f} min for their own times added up.")
    print("\n**From an empty cache.** ", end="")
    record = book_times(args.measurements, args.profile)
    if record is None:
        print(f"No empty-cache measurement of `{args.profile}` is recorded yet (`make profile-book "
              f"PROFILE={args.profile}` writes one).")
    else:
        print(book_times_markdown(record), end="")


if __name__ == "__main__":
    main()
