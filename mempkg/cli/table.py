"""The output table (CSV or JSON lines) with resume: complete rows appended per batch, fsynced (layer: cli)."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import socket
from pathlib import Path

import filelock

from ..core.files import atomic_write
from .args import UserError, note

COLUMN = {"flipd": "flipd", "volume": "log_volume_growth", "cfgnorm": "cfg_norm", "png": "png_size"}


NUMBER_COLUMNS = frozenset(COLUMN.values()) | {"sigma_t0"}   # numbers in jsonl; every other cell stays a string


def format_value(v) -> str:
    """A CSV cell: floats at full precision (repr), booleans as true/false, None empty."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def _csv_text(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def json_value(column: str, cell: str):
    """A CSV cell as a JSON value: an empty cell is null, a score or sigma_t0 a number, the rest the cell's string."""
    if cell == "":
        return None
    if column in NUMBER_COLUMNS:
        try:
            return int(cell)
        except ValueError:
            return float(cell)
    return cell


def _jsonl_text(columns: list[str], rows: list[list[str]]) -> str:
    return "".join(json.dumps({c: json_value(c, v) for c, v in zip(columns, r)}) + "\n" for r in rows)


class ScoreTable:
    """The output table: a CSV (a header, then one row per image) or JSON lines (one object per image, the
    columns as keys), appended a batch at a time.

    Every append writes complete rows in one call, then flushes and fsyncs; a run killed mid-write
    leaves at most a partial last line, which the next run drops (and says so). Rows carry the run's
    settings; opening a table whose rows were made with other settings raises :class:`UserError` unless
    ``overwrite``. :meth:`finish` rewrites the table atomically, sorted by file, one row per file.
    """

    def __init__(self, path, columns: list[str], settings: dict[str, str], overwrite: bool = False,
                 fmt: str = "csv"):
        self.path, self.fmt = Path(path).expanduser(), fmt
        self.columns, self.settings = list(columns), dict(settings)
        self.rows: dict[str, dict[str, str]] = {}
        if self.path.is_dir():
            raise UserError(f"--out {path} is a folder; give a file name such as {Path(path) / 'scores.csv'}.")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.created = False                     # the file is (re)written at the first append, not before
        if self.path.exists() and self.path.stat().st_size > 0 and not overwrite:
            self._load()
        elif self.path.exists() and overwrite:
            note(f"note: --overwrite: {self.path} will be replaced.")

    def _load(self) -> None:
        text = self.path.read_text(encoding="utf-8", errors="replace")
        repaired = not text.endswith("\n")
        if repaired:
            cut = text.rfind("\n") + 1
            note(f"note: {self.path} ends in an incomplete row (an interrupted write); it is dropped.")
            text = text[:cut]
        rows = list(csv.reader(io.StringIO(text))) if self.fmt == "csv" else self._parse_jsonl(text)
        if not rows or rows[0] != self.columns:
            have = ", ".join(rows[0]) if rows else "nothing"
            raise UserError(f"--out {self.path} already exists with other columns ({have}) than this run writes "
                            f"({', '.join(self.columns)}): it holds another metric, or was made with(out) "
                            "captions. Write to another --out, or pass --overwrite to replace it.")
        diffs: dict[str, set] = {}
        for r in rows[1:]:
            if len(r) != len(self.columns):
                continue                         # cannot happen with complete rows; never trusted
            row = dict(zip(self.columns, r))
            for k, v in self.settings.items():
                if row[k] != v:
                    diffs.setdefault(k, set()).add(row[k])
            self.rows[row["file"]] = row
        if diffs:
            said = "; ".join(f"{k}: {', '.join(sorted(v))} there, {self.settings[k]} now" for k, v in diffs.items())
            raise UserError(f"--out {self.path} holds scores made with other settings ({said}). Re-run with its "
                            "settings to resume it, write to another --out, or pass --overwrite to replace it.")
        self.created = True
        if repaired or len(self.rows) != len(rows) - 1:
            self._rewrite()                      # drop the partial line and any repeated file now

    def _parse_jsonl(self, text: str) -> list[list[str]]:
        """JSON lines as CSV-like rows: the first object's keys as a header, then every object's cells."""
        try:
            objs = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError:
            raise UserError(f"--out {self.path} is not a JSON-lines file; write to another --out, or pass "
                            "--overwrite to replace it.") from None
        if not objs:
            return [self.columns]
        header = list(objs[0])
        return [header] + [[format_value(o.get(c)) for c in header] for o in objs if list(o) == header]

    def _text(self, rows: list[list[str]], header: bool) -> str:
        if self.fmt == "jsonl":
            return _jsonl_text(self.columns, rows)
        return _csv_text(([self.columns] if header else []) + rows)

    def done(self) -> set[str]:
        """Files with a score (rows with an error do not count: they are retried)."""
        return {f for f, r in self.rows.items() if not r.get("error")}

    def append(self, rows: list[dict]) -> None:
        if not self.created:
            self._rewrite()
        cells = [[format_value(r.get(c, self.settings.get(c))) for c in self.columns] for r in rows]
        with open(self.path, "a", encoding="utf-8", newline="") as f:
            f.write(self._text(cells, header=False))
            f.flush()
            os.fsync(f.fileno())
        for c in cells:
            self.rows[c[0]] = dict(zip(self.columns, c))

    def _rewrite(self) -> None:
        body = [[self.rows[f][c] for c in self.columns] for f in sorted(self.rows)]
        atomic_write(self.path, lambda f: f.write(self._text(body, header=True)), mode="w")
        self.created = True

    finish = _rewrite


@contextlib.contextmanager
def exclusive(out):
    """Hold ``<out>.lock`` for the run (a :mod:`filelock` lock, released by the system if the process dies): a
    second run on the same ``--out`` fails at once with a message instead of redoing the work and interleaving
    rows. ``<out>.lock.owner`` names the holder for that message."""
    path = Path(out).expanduser()
    lock_path = path.with_name(path.name + ".lock")
    owner = path.with_name(path.name + ".lock.owner")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(lock_path), timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        try:
            holder = owner.read_text(encoding="utf-8").strip() or "another process"
        except OSError:
            holder = "another process"
        raise UserError(f"--out {path} is being written by another run ({holder}). Wait for it to finish, or write "
                        "to another --out.") from None
    try:
        owner.write_text(f"pid {os.getpid()} on {socket.gethostname()}\n", encoding="utf-8")
        yield
    finally:
        for p in (owner, lock_path):         # before the release, so that no later holder's file is removed
            with contextlib.suppress(OSError):
                p.unlink()
        lock.release()
