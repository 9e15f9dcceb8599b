"""Print the reproduction scorecard (Markdown) that the book's scorecard page includes.

`make book` writes it to build/<profile>/src/_generated/scorecard.md from the summaries under
$MEMPKG_RESULTS/<profile>/, so the table shows the run that built the book (mempkg.scorecard).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from mempkg.scorecard import scorecard, to_markdown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", required=True)
    parser.add_argument("--results", type=Path, default=Path(os.environ.get("MEMPKG_RESULTS", "results")))
    args = parser.parse_args()
    print(to_markdown(scorecard(args.profile, args.results)), end="")


if __name__ == "__main__":
    main()
