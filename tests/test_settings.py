"""Settings as parameters: a reader's overrides take effect, an unknown one is a clear error, and the
banner and the summary say what was overridden."""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

import pytest

from mempkg.book import profiles

sys.path.insert(0, str(Path(__file__).parent))
from book_helpers import NOTEBOOKS  # noqa: E402


def test_overrides_and_knobs_merge_over_the_profile():
    P = profiles.resolve("tiny", "cpu")
    S = P.settings("volume_growth", {"radius": 0.1}, n_axes=5, n_steps=None)
    base = profiles.CHAPTERS["volume_growth"]["tiny"]
    assert S.radius == 0.1 and S.n_axes == 5
    assert S.n_steps == base.n_steps, "a knob left at None must keep the profile's value"
    assert base.radius == 0.05 and base.n_axes == 2, "the profile's own instance must not change"
    assert P.overridden == {"volume_growth": {"radius": 0.1, "n_axes": 5}}


def test_an_override_equal_to_the_profile_is_not_reported():
    P = profiles.resolve("tiny", "cpu")
    P.settings("volume_growth", {"radius": profiles.CHAPTERS["volume_growth"]["tiny"].radius})
    assert P.overridden == {"volume_growth": {}}


def test_an_unknown_setting_names_the_valid_ones():
    """An unknown setting names the valid ones and where they are documented."""
    P = profiles.resolve("tiny", "cpu")
    with pytest.raises(ValueError) as e:
        P.settings("volume_growth", {"n_axis": 3})
    msg = str(e.value)
    assert "'n_axis'" in msg and "n_axes" in msg and "radius" in msg and "mempkg/book/profiles.py" in msg


@pytest.mark.parametrize("overrides, knobs, pattern", [
    ({"n_axes": 2}, {"n_axes": 3}, "given twice"),
    ({}, {"n_axes": "many"}, "is a number"),
    ({}, {"n_axes": 2.5}, "whole number"),
    ({"ablation_radii": 0.1}, {}, "is a list"),
    ({"method": 3}, {}, "is a string"),
    ({"download": "yes"}, {}, "true or false"),
])
def test_a_contradiction_or_a_value_of_the_wrong_kind_is_refused(overrides, knobs, pattern):
    with pytest.raises(ValueError, match=pattern):
        profiles.resolve("tiny", "cpu").settings("volume_growth", overrides, **knobs)


def test_yaml_kinds_are_read_as_the_profile_kinds():
    S = profiles.resolve("tiny", "cpu").settings("volume_growth", {"n_axes": 4.0, "radius": 1, "ablation_axes": (1, 3)})
    assert S.n_axes == 4 and isinstance(S.n_axes, int)
    assert S.radius == 1.0 and isinstance(S.radius, float)
    assert S.ablation_axes == (1, 3) and isinstance(S.ablation_axes, tuple)


def test_settings_are_frozen_and_a_misspelt_field_fails_at_once():
    """A typo in a notebook (``S.n_axis``) or an assignment to a setting is an error where it is written."""
    import dataclasses
    S = profiles.resolve("tiny", "cpu").settings("volume_growth")
    with pytest.raises(AttributeError):
        S.n_axis
    with pytest.raises(dataclasses.FrozenInstanceError):
        S.n_axes = 3


def test_the_banner_and_the_summary_list_the_overrides(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMPKG_RESULTS", str(tmp_path))
    P = profiles.resolve("tiny", "cpu")
    P.settings("volume_growth", {"radius": 0.1})
    banner = P.banner("volume_growth").data
    assert "overridden" in banner and "`radius=0.1` (profile: `0.05`)" in banner
    summary = json.loads(P.write_summary("nb", {"x": 1.0}, seed=0).read_text())
    assert summary["settings_overridden"] == {"volume_growth": {"radius": 0.1}}
    plain = profiles.resolve("tiny", "cpu")
    plain.settings("volume_growth")
    assert "overridden" not in plain.banner("volume_growth").data


def parameters_cell(notebook: Path) -> str:
    m = re.search(r'# %% tags=\["parameters"\]\n(.*?)\n# %%', notebook.read_text(), re.S)
    assert m, f"{notebook} has no cell tagged 'parameters'"
    return m.group(1)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_chapter_takes_settings_and_passes_each_knob_it_names(notebook):
    cell = parameters_cell(notebook)
    names = [n.targets[0].id for n in ast.parse(cell).body if isinstance(n, ast.Assign)]
    assert "settings" in names, f"{notebook.name}: no `settings = {{}}` parameter"
    inputs = {"model", "train_images", "heldout_images", "memorized_images", "nonmemorized_images", "captions"}
    knobs = [n for n in names if n not in {"profile", "seed", "device", "settings"} | inputs]   # not settings
    call = re.search(r"S = P\.settings\(\"(\w+)\", settings,?(.*?)\)\n", notebook.read_text(), re.S)
    assert call, f"{notebook.name}: the settings are not read with P.settings(chapter, settings, knob=knob, ...)"
    chapter, passed = call.group(1), re.findall(r"(\w+)=(\w+)", call.group(2))
    assert all(k == v for k, v in passed), f"{notebook.name}: a knob is passed under another name: {passed}"
    valid = profiles.CHAPTERS[chapter]["tiny"].names()
    for k, _ in passed:
        assert k in valid, f"{notebook.name}: knob {k!r} is not a setting of {chapter!r}"
        assert re.search(rf"^# \S.*\n{k} = None *$", cell, re.M), \
            f"{notebook.name}: knob {k} needs its comment on the line above it"
    # every named knob of the cell that is a setting is passed (chapter 04's t0 etc. are notebook-level)
    missing = [k for k in knobs if k in valid and k not in dict(passed)]
    assert not missing, f"{notebook.name}: knobs named in the cell but not passed to P.settings: {missing}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_papermill_reads_every_parameter_of_the_cell(notebook):
    """`papermill --help-notebook` lists each parameter; a comment it cannot parse hides the parameter."""
    translators = pytest.importorskip("papermill.translators")
    cell = parameters_cell(notebook)
    names = [n.targets[0].id for n in ast.parse(cell).body if isinstance(n, ast.Assign)]
    assert [p.name for p in translators.PythonTranslator.inspect({"source": cell})] == names


def run_chapter(notebook: str, tmp_path: Path, **parameters):
    jupytext = pytest.importorskip("jupytext")
    papermill = pytest.importorskip("papermill")
    root = Path(__file__).resolve().parents[1]
    return papermill.execute_notebook(jupytext.read(root / "notebooks" / f"{notebook}.py"), str(tmp_path / "out.ipynb"),
                                      parameters=dict(profile="tiny", **parameters), kernel_name="python3",
                                      language="python", cwd=str(root), progress_bar=False)


def test_a_chapter_run_with_overrides_uses_them_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMPKG_RESULTS", str(tmp_path / "results"))
    nb = run_chapter("01_von_mises", tmp_path, train_steps=50, settings={"n_samples": 64})
    summary = json.loads((tmp_path / "results" / "tiny" / "01_von_mises" / "summary.json").read_text())
    assert summary["settings_overridden"] == {"von_mises": {"train_steps": 50, "n_samples": 64}}
    text = json.dumps(nb["cells"])
    assert "Settings overridden by the reader" in text and "train_steps=50" in text


def test_a_chapter_run_with_an_unknown_setting_fails_at_once_and_says_why(tmp_path, monkeypatch):
    papermill = pytest.importorskip("papermill")
    monkeypatch.setenv("MEMPKG_RESULTS", str(tmp_path / "results"))
    with pytest.raises(papermill.PapermillExecutionError, match="Unknown setting 'n_axis'"):
        run_chapter("02_cifar10_overfit", tmp_path, settings={"n_axis": 3})
    assert not (tmp_path / "results" / "tiny" / "02_cifar10_overfit" / "summary.json").exists()


def test_the_banner_says_how_to_re_execute_the_chapter(monkeypatch):
    monkeypatch.delenv("MEMPKG_BOOK_REPO", raising=False)
    P = profiles.resolve("tiny", "cpu")
    P.settings("volume_growth")
    text = P.banner("volume_growth").data
    assert "<details><summary>Re-execute this chapter</summary>" in text
    assert "notebooks/02_cifar10_overfit.py \\\n  | papermill - 02_cifar10_overfit.ipynb -p profile tiny" in text
    assert "-p profile full" in text and "-p model my_ddpm -p train_images" in text and "-y \"settings: {" in text
    assert "https://github.com" not in text
    monkeypatch.setenv("MEMPKG_BOOK_REPO", "owner/name")
    assert "(https://github.com/owner/name/blob/main/notebooks/02_cifar10_overfit.py)" in P.banner("volume_growth").data
    assert "-p model" not in profiles.reexecute_markdown("von_mises", "quick"), "chapter 01 takes no model"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_set_up_cell_is_collapsed_so_a_chapter_opens_on_its_question(notebook):
    text = notebook.read_text()
    after = text[text.index('# %% tags=["parameters"]'):]
    nxt = re.search(r"\n# %%.*\n", after[5:]).group(0)
    assert 'tags=["hide-input"]' in nxt, f"{notebook.name}: the cell after the parameters (imports, profile) is not hide-input"


def test_the_banner_names_the_run_inputs_it_is_given():
    """``seed`` and a reader's model show in the banner; an input left at None does not."""
    P = profiles.resolve("tiny", "cpu")
    P.settings("volume_growth")
    text = P.banner("volume_growth", seed=3, model="my_ddpm", train_images=None).data
    assert "**Run with** `seed=3`, `model=my_ddpm`.\n" in text and "`train_images=" not in text
