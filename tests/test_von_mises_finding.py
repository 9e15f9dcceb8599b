"""The chapter's claim under the `quick` profile: the isolated point is reproduced more often than the
true density would give and has FLIPD ~ 0 while the other training points sit near 1 (Ross, Kamkari et
al., Fig. 3), on every training seed of the profile.

Runs the notebook itself under `quick` (about a minute on 2 CPU cores) into a temporary
results folder, so it checks the code as it is, not a cache.
"""

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_quick_profile_reproduces_the_isolated_point_finding(tmp_path, monkeypatch):
    jupytext = pytest.importorskip("jupytext")
    papermill = pytest.importorskip("papermill")
    monkeypatch.setenv("MEMPKG_RESULTS", str(tmp_path / "results"))
    nb = jupytext.read(ROOT / "notebooks" / "01_von_mises.py")
    papermill.execute_notebook(nb, str(tmp_path / "out.ipynb"), parameters={"profile": "quick"},
                               kernel_name="python3", language="python", cwd=str(ROOT), progress_bar=False)
    s = json.loads((tmp_path / "results" / "quick" / "01_von_mises" / "summary.json").read_text())
    assert s["profile"] == "quick"
    assert abs(s["flipd_isolated"]) < 0.5, s
    assert abs(s["flipd_median_others"] - 1) < 0.25, s
    assert s["n_samples_copying_isolated"] > s["true_density_copy_probability"] * s["n_samples"], s
    assert s["p_copies_vs_true_density"] < 0.01, s
    assert s["nearest_sample_to_isolated"] < 0.1 * s["isolation_gap_rad"], s
    assert len(s["p_copies_vs_true_density_by_seed"]) == s["n_train_seeds"] - 1 == 3   # seed 0 picks the knee
    assert s["verdicts"] == {"isolated_memorized": "held"}
