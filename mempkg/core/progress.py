"""Progress bars for long loops (layer: core): a widget in an interactive notebook, plain text elsewhere.

tqdm's ``auto`` flavour warns and falls back to text when ipywidgets is missing (as in the
book's environment: widget outputs would make the built pages load require.js from a CDN);
this chooses the text bar directly and updates it rarely, so an executed notebook keeps a few
lines of progress rather than hundreds.
"""

from __future__ import annotations

import importlib.util
import sys

from tqdm.std import tqdm


def bar(iterable=None, *, total=None, desc: str = "", disable: bool = False):
    """A tqdm bar over ``iterable``: the widget bar when ipywidgets is importable, else text
    refreshed at most every 10 seconds (or every 2 on an interactive terminal)."""
    if importlib.util.find_spec("ipywidgets") is not None and "ipykernel" in sys.modules:
        from tqdm.auto import tqdm as widget_tqdm  # optional: widgets only in an interactive notebook
        return widget_tqdm(iterable, total=total, desc=desc, disable=disable)
    interactive = hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
    return tqdm(iterable, total=total, desc=desc, disable=disable, mininterval=2.0 if interactive else 10.0,
                ascii=not interactive, ncols=80, file=sys.stderr)
