"""``python -m mempkg``: the command line (see :mod:`mempkg.cli` and ``python -m mempkg score --help``)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
