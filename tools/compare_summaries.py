"""Compare the chapter summaries of two result folders: which numbers changed, and which are timings.

    python tools/compare_summaries.py BEFORE AFTER [--profile tiny]

BEFORE and AFTER are result roots (``$MEMPKG_RESULTS``, holding ``<profile>/<notebook>/summary.json``).
A refactoring that should not change the numbers passes when every difference is a wall-clock
measurement (keys naming seconds, costs, speed-ups, the measuring time, or the Pareto front and the cheapest
lens built from costs); the exit status is 1 when any other number, string or key differs.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

# Keys whose values come from a clock, not from the experiment: they differ between any two runs.
TIMING = re.compile(r"(seconds|_cost_|cost_forward|_per_limit|_per_forward|per_axis_step|per_distance|per_sigma|"
                    r"speedup|cost_exponent|cost_growth|measured_at|pareto_front|cheapest_as_good|machine)")


def differences(a, b, key: str = ""):
    """(key path, before, after) for every leaf that differs; a key present on one side only counts."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            path = f"{key}.{k}" if key else str(k)
            if k not in a or k not in b:
                yield path, a.get(k, "<absent>"), b.get(k, "<absent>")
            else:
                yield from differences(a[k], b[k], path)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (u, v) in enumerate(zip(a, b)):
            yield from differences(u, v, f"{key}[{i}]")
    elif a != b:
        yield key, a, b


def is_timing(key: str) -> bool:
    return bool(TIMING.search(key.split(".")[0].split("[")[0]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--profile", default="tiny")
    args = ap.parse_args(argv)
    roots = [args.before / args.profile, args.after / args.profile]
    notebooks = sorted({p.parent.name for r in roots for p in r.glob("*/summary.json")})
    if not notebooks:
        print(f"no summary.json under {roots[0]} or {roots[1]}", file=sys.stderr)
        return 1
    changed = 0
    for nb in notebooks:
        files = [r / nb / "summary.json" for r in roots]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            print(f"{nb}: missing {', '.join(missing)}")
            changed += 1
            continue
        a, b = (json.loads(f.read_text()) for f in files)
        diffs = list(differences(a, b))
        real = [d for d in diffs if not is_timing(d[0])]
        timing = len(diffs) - len(real)
        n = sum(1 for _ in differences(a, {}))
        print(f"{nb}: {n - len({d[0].split('.')[0].split('[')[0] for d in diffs})} of {n} keys identical; "
              f"{timing} timing values differ; "
              f"{len(real)} other differences")
        for k, x, y in real:
            print(f"    {k}: {x!r} -> {y!r}")
        changed += bool(real)
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
