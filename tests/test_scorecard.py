"""The reproduction scorecard: rows decided by the stated rules, missing chapters shown as not run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mempkg.scorecard import CLAIMS, HIGH_90S, load_summaries, scorecard, to_markdown

ROOT = Path(__file__).resolve().parents[1]

GOOD = {
    "01_von_mises": {"flipd_isolated": 0.01, "flipd_median_others": 0.97, "n_samples_copying_isolated": 3,
                     "claim_held": True},
    "02_cifar10_overfit": {"L_trained_mean": 40.0, "L_heldout_mean": 20.0, "p_trained_vs_heldout": 1e-9,
                           "auroc_trained_vs_heldout": 1.0, "p_memorized_vs_other": 0.002,
                           "auroc_memorized_vs_other": 0.8, "p_one_axis_one_step": 1e-4,
                           "auroc_one_axis_one_step": 0.9},
    "03_three_regimes": {"danger_zone_low": 0.5, "danger_zone_high": 1.2, "danger_zone_found": True,
                         "mse_gap_peak_sigma": 0.6, "peak_memorization_sigma": 0.3, "peak_memorization_rate": 0.2,
                         "mem_rate_gap": 0.01, "mem_rate_baseline": 0.3, "mem_rate_dummy": 0.2,
                         "claims_held": {"danger_zone": True, "mse_gap_medium": True, "memorization_peak_medium": True,
                                         "gap_lowest_memorization": True}},
    "04_laion_verbatims": {"auroc_flipd_cond": 0.99, "auroc_flipd_uncond": 0.97, "auroc_cfg_norm": 0.96,
                           "auroc_cfg_norm_generation": 0.98, "auroc_png": 0.7},
}


def write(root: Path, profile: str, summaries: dict) -> Path:
    for nb, s in summaries.items():
        (root / profile / nb).mkdir(parents=True, exist_ok=True)
        (root / profile / nb / "summary.json").write_text(json.dumps(dict(s, profile=profile)))
    return root


def by_claim(rows):
    return {r["claim"]: r for r in rows}


def test_every_claim_holds_on_a_summary_built_to_satisfy_them(tmp_path):
    rows = scorecard("quick", write(tmp_path, "quick", GOOD))
    assert len(rows) == len(CLAIMS)
    assert [r["held"] for r in rows] == ["yes"] * len(CLAIMS)
    assert all(r["profile"] == "quick" for r in rows)


def test_each_rule_can_fail(tmp_path):
    bad = json.loads(json.dumps(GOOD))
    bad["01_von_mises"]["claim_held"] = False
    bad["02_cifar10_overfit"].update(L_trained_mean=10.0, p_memorized_vs_other=0.02, p_one_axis_one_step=0.5)
    bad["03_three_regimes"]["claims_held"] = {k: False for k in bad["03_three_regimes"]["claims_held"]}
    bad["04_laion_verbatims"].update(auroc_flipd_cond=HIGH_90S - 0.01, auroc_flipd_uncond=0.5, auroc_cfg_norm=0.6,
                                     auroc_png=0.8)
    rows = scorecard("quick", write(tmp_path, "quick", bad))
    assert [r["held"] for r in rows] == ["no"] * len(CLAIMS)


def test_missing_chapters_are_not_run_and_missing_verdicts_are_undecided(tmp_path):
    partial = {"03_three_regimes": dict(GOOD["03_three_regimes"], claims_held={"danger_zone": True})}
    rows = scorecard("tiny", write(tmp_path, "tiny", partial))
    held = {r["notebook"]: set() for r in rows}
    for r in rows:
        held[r["notebook"]].add(r["held"])
    assert held["01_von_mises"] == held["02_cifar10_overfit"] == held["04_laion_verbatims"] == {"not run"}
    assert held["03_three_regimes"] == {"yes", "undecided"}


def test_a_summary_without_a_needed_key_names_the_chapter_and_the_key(tmp_path):
    broken = {"02_cifar10_overfit": {k: v for k, v in GOOD["02_cifar10_overfit"].items() if k != "L_heldout_mean"}}
    with pytest.raises(KeyError, match="02_cifar10_overfit.*L_heldout_mean"):
        scorecard("quick", write(tmp_path, "quick", broken))


def test_unreadable_summary_is_a_clear_error(tmp_path):
    (tmp_path / "quick" / "01_von_mises").mkdir(parents=True)
    (tmp_path / "quick" / "01_von_mises" / "summary.json").write_text("{not json")
    with pytest.raises(ValueError, match="re-run its notebook"):
        load_summaries("quick", tmp_path)


def test_markdown_has_one_row_per_claim_and_escapes_pipes(tmp_path):
    md = to_markdown(scorecard("quick", write(tmp_path, "quick", GOOD)))
    lines = [ln for ln in md.splitlines() if ln.startswith("| {cite:t}")]
    assert len(lines) == len(CLAIMS)
    # every row has exactly 7 cells: pipes inside the text (|FLIPD|) are escaped
    assert all(len(re.split(r"(?<!\\)\|", ln)) == 9 for ln in lines)
    assert f"{len(CLAIMS)} claims: {len(CLAIMS)} yes." in md


def test_claims_cite_the_bibliography_and_name_existing_chapters():
    bib = (ROOT / "book" / "references.bib").read_text()
    keys = set(re.findall(r"@\w+\{([^,]+),", bib))
    for c in CLAIMS:
        assert c.paper in keys, f"{c.paper} is not in book/references.bib"
        assert (ROOT / "notebooks" / f"{c.notebook}.py").is_file(), f"no notebook {c.notebook}"


def test_markdown_names_the_profile(tmp_path):
    md = to_markdown(scorecard("tiny", write(tmp_path, "tiny", GOOD)))
    assert md.startswith("Read from the summaries of profile `tiny`.")
