"""Progress bars for long loops (layer: core): live bars on the terminal, one line of result on the page.

Where a bar goes, by ``MEMPKG_PROGRESS`` (``auto`` when unset):

* ``auto``: in a notebook kernel with ipywidgets (a reader working interactively), the widget bar in the
  notebook; in a kernel without them (papermill, `make book`: the book's environment has no widgets, whose
  outputs would make the pages load require.js from a CDN), the live bar goes to the terminal that started the
  kernel -- ipykernel's stderr ``fileno()`` is that terminal's descriptor -- and the notebook gets one line when
  a loop of ten seconds or more ends ("edm: 4000 steps in 8 min, loss=0.24"); elsewhere, stderr;
* ``notebook``: the text bar in the notebook's output (the earlier behaviour);
* ``terminal``: as ``auto`` in a kernel without widgets;
* ``off``: no bar (the one-line results stay).

Text bars update rarely (every 10 s, or every 2 s on an interactive terminal), so a log keeps a few lines of
progress rather than hundreds.
"""

from __future__ import annotations

import importlib.util
import io
import os
import sys
import time

from tqdm.std import tqdm

MODES = ("auto", "notebook", "terminal", "off")
PAGE_LINE_SECONDS = 10.0          # a loop at least this long leaves one line of result on the page
_terminal = None                  # the kernel's terminal stream, opened once


def mode() -> str:
    """The progress mode from ``MEMPKG_PROGRESS`` (see the module docstring); a plain error for a bad value."""
    value = os.environ.get("MEMPKG_PROGRESS", "auto").strip().lower() or "auto"
    if value not in MODES:
        raise ValueError(f"MEMPKG_PROGRESS={value!r}: choose one of {MODES}.")
    return value


def in_kernel() -> bool:
    """Whether this process is a Jupyter kernel whose stderr is the notebook's output."""
    return "ipykernel" in sys.modules and type(sys.stderr).__module__.startswith("ipykernel")


def terminal_stream():
    """A text stream on the terminal that started this kernel (not the notebook), or ``None`` when there is
    none to write to. ipykernel's stderr reports that terminal's descriptor as its ``fileno()``."""
    global _terminal
    if _terminal is None:
        try:
            fd = sys.stderr.fileno()
        except (AttributeError, OSError, io.UnsupportedOperation, ValueError):
            fd = sys.__stderr__.fileno() if sys.__stderr__ is not None else None
        if fd is None:
            return None
        _terminal = os.fdopen(os.dup(fd), "w", buffering=1, encoding="utf-8", errors="replace")
    return _terminal


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class _PageLineBar(tqdm):
    """A text bar on another stream that, when closed after a long loop, prints one line of result to the page."""

    def __init__(self, *args, page=None, **kwargs):
        self._page, self._started, self._closed = page, time.monotonic(), False
        super().__init__(*args, **kwargs)

    def close(self):
        if self._closed or self.disable:
            self._closed = True
            return super().close()
        self._closed = True
        elapsed, n, total, desc, postfix = (time.monotonic() - self._started, self.n, self.total, self.desc,
                                            self.postfix)
        super().close()
        if self._page is not None and n and elapsed >= PAGE_LINE_SECONDS:
            done = f"{n}" if not total or n == total else f"{n} of {total}"
            print(f"{desc or 'loop'}: {done} {self.unit}s in {_duration(elapsed)}" + (f", {postfix}" if postfix else ""),
                  file=self._page, flush=True)


def bar(iterable=None, *, total=None, desc: str = "", disable: bool = False, unit: str = "it"):
    """A tqdm bar over ``iterable``, placed by :func:`mode` (see the module docstring)."""
    m = mode()
    kernel = in_kernel()
    widgets = importlib.util.find_spec("ipywidgets") is not None
    if m == "auto" and kernel and widgets:
        from tqdm.auto import tqdm as widget_tqdm  # optional: widgets only in an interactive notebook
        return widget_tqdm(iterable, total=total, desc=desc, disable=disable, unit=unit)
    if kernel and m in ("auto", "terminal", "off"):
        stream = terminal_stream() if m != "off" else None
        return _PageLineBar(iterable, total=total, desc=desc, disable=disable, unit=unit, page=sys.stdout,
                            file=stream if stream is not None else io.StringIO(), mininterval=10.0, ascii=True,
                            ncols=80)
    if m == "off":
        return tqdm(iterable, total=total, desc=desc, disable=True, unit=unit)
    interactive = hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
    return tqdm(iterable, total=total, desc=desc, disable=disable, mininterval=2.0 if interactive else 10.0,
                ascii=not interactive, ncols=80, file=sys.stderr, unit=unit)


def notice_stream():
    """Where a one-off progress notice goes (the expected time of a long run): the terminal in a kernel
    without widgets, else stderr."""
    m = mode()
    if in_kernel() and (m in ("terminal", "off") or m == "auto" and importlib.util.find_spec("ipywidgets") is None):
        return terminal_stream() or sys.stderr
    return sys.stderr


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
              f"{done} of {total} {unit}s.", file=notice_stream(), flush=True)
