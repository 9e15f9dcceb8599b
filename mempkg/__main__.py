"""``python -m mempkg``: the command line (see :mod:`mempkg.cli.main` and ``python -m mempkg score --help``)."""

import sys

from .cli.main import main

if __name__ == "__main__":
    sys.exit(main())
