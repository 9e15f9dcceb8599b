"""Print the build's own run-time table: papermill's duration of each executed notebook (`make book`).

    python tools/runtimes.py --profile quick build/quick/src/notebooks/*.ipynb > runtimes.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from datetime import date
from pathlib import Path

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--profile", required=True)
ap.add_argument("--results", type=Path, default=Path(os.environ.get("MEMPKG_RESULTS", "results")))
ap.add_argument("notebooks", nargs="*", type=Path, help="executed .ipynb files")
args = ap.parse_args()
info = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").is_file() else []
cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), platform.machine())
print(f"Measured by the build of this page on {date.today()} ({cpu}, {os.cpu_count()} cores, {platform.system()}, "
      f"Python {platform.python_version()}): papermill's wall-clock seconds per notebook, which reuse whatever "
      f"`results/{args.profile}/` had cached.\n\n| Chapter | Profile | Seconds | Device |\n| --- | --- | ---: | --- |")
for nb in args.notebooks:
    seconds = json.loads(nb.read_text())["metadata"].get("papermill", {}).get("duration")
    summary = args.results / args.profile / nb.stem / "summary.json"
    device = json.loads(summary.read_text()).get("device") if summary.is_file() else None
    print(f"| {{doc}}`notebooks/{nb.stem}` | {args.profile} | "
          f"{'not recorded' if seconds is None else f'{seconds:.0f}'} | {device or 'not recorded'} |")
