"""Print the reproduction scorecard (Markdown) that the book's scorecard page includes.

`make book` writes it to build/<profile>/src/_generated/scorecard.md from the summaries under
$MEMPKG_RESULTS/<profile>/, so the table shows the run that built the book (mempkg.book.scorecard);
with --status, the per-chapter status table of the introduction (_generated/status.md); with --figure PATH,
also the scorecard figure (every criterion's value against its threshold and the paper's value) as a PNG.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from mempkg.book.plots import scorecard_figure
from mempkg.book.scorecard import criteria_rows, scorecard, status_markdown, to_markdown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", required=True)
    parser.add_argument("--results", type=Path, default=Path(os.environ.get("MEMPKG_RESULTS", "results")))
    parser.add_argument("--status", action="store_true", help="the per-chapter status table instead of the scorecard")
    parser.add_argument("--figure", type=Path, help="also write the scorecard figure here (PNG)")
    args = parser.parse_args()
    rows = scorecard(args.profile, args.results)
    if args.figure is not None:
        args.figure.parent.mkdir(parents=True, exist_ok=True)
        scorecard_figure(criteria_rows(args.profile, args.results)).savefig(args.figure, dpi=150)
    print((status_markdown if args.status else to_markdown)(rows), end="")


if __name__ == "__main__":
    main()
