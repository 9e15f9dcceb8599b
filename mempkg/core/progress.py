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


def announce_eta(desc: str, first_seconds: float, done: int, total: int, threshold: float = 60.0,
                 unit: str = "step") -> None:
    """Print (to stderr) the time a run is expected to take, from the ``done`` of ``total`` units timed so far
    (``first_seconds``), when that is more than ``threshold`` seconds: a long run says so before the wait."""
    if done <= 0 or total <= done:
        return
    expected = first_seconds / done * total
    if expected > threshold:
        left = expected - first_seconds
        print(f"{desc}: about {_duration(expected)} in all ({_duration(left)} left), from the first "
              f"{done} of {total} {unit}s.", file=sys.stderr, flush=True)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
