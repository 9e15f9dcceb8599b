"""Progress in the terminal, not on the page: in a notebook kernel without widgets (papermill, `make book`) a live
bar goes to the terminal that started the kernel and the page keeps one line of result; MEMPKG_PROGRESS chooses."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

CELL = ("import mempkg.core.progress as p\n"
        "p.PAGE_LINE_SECONDS = 0\n"
        "bar = p.bar(range(3), desc='demo', unit='step')\n"
        "for i in bar:\n"
        "    bar.set_postfix(loss='0.25')\n"
        "p.announce_eta('demo', 100.0, 1, 10)\n"
        "for i in p.bar(range(2), desc='quiet', disable=True):\n"
        "    pass\n"
        "print('done')")

RUN = ("import nbformat, sys\n"
       "from nbclient import NotebookClient\n"
       f"nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell({CELL!r})])\n"
       "NotebookClient(nb, kernel_name='python3', timeout=120).execute()\n"
       "sys.stdout.write(nbformat.writes(nb))\n")


def execute(tmp_path, mode: str | None):
    """Run the cell in a fresh kernel; returns (the page's text outputs, what reached the terminal)."""
    pytest.importorskip("nbclient", reason="nbclient is not installed (the book extra)")
    env = {k: v for k, v in os.environ.items() if k != "MEMPKG_PROGRESS"} | {"OMP_NUM_THREADS": "1"}
    if mode is not None:
        env["MEMPKG_PROGRESS"] = mode
    r = subprocess.run([sys.executable, "-c", RUN], capture_output=True, text=True, env=env, cwd=tmp_path,
                       timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    outputs = json.loads(r.stdout)["cells"][0]["outputs"]
    return "".join("".join(o.get("text", "")) for o in outputs), r.stderr


def test_in_a_kernel_the_bar_goes_to_the_terminal(tmp_path):
    """In a kernel the bar goes to the terminal and the page keeps one line."""
    page, terminal = execute(tmp_path, None)
    assert page == "demo: 3 steps in 0 s, loss=0.25\ndone\n"
    assert "demo: 100%|" in terminal and "3/3" in terminal
    assert "demo: about 17 min in all" in terminal, "the expected time is for whoever waits at the terminal"


def test_progress_notebook_keeps_the_bar_and_off_drops_it(tmp_path):
    """MEMPKG_PROGRESS=notebook keeps the bar on the page, and off drops it."""
    page, _ = execute(tmp_path, "notebook")
    assert "demo: 100%|" in page
    page, terminal = execute(tmp_path, "off")
    assert page == "demo: 3 steps in 0 s, loss=0.25\ndone\n" and "demo: 100%|" not in terminal


def test_outside_a_kernel_the_bar_is_stderr(capsys, monkeypatch):
    """Outside a kernel the bar is stderr, and a bad mode is a plain error."""
    from mempkg.core.progress import bar
    for _ in bar(range(2), desc="plain"):
        pass
    captured = capsys.readouterr()
    assert "plain: 100%" in captured.err and captured.out == ""
    monkeypatch.setenv("MEMPKG_PROGRESS", "loud")
    with pytest.raises(ValueError, match="MEMPKG_PROGRESS='loud'"):
        bar(range(2))
