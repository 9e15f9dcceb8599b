"""The reproduction scorecard: each paper claim the book tests, the paper's number, ours, and whether it held.

One row per claim. Only the papers' numbers and their citations are typed here; "ours" and "held"
are read from the chapters' ``results/<profile>/<notebook>/summary.json`` of one profile, by the
rule written in the row (the same rule the chapter applies in its own reproduction table; where a
chapter records its verdict, in ``claim_held`` or ``claims_held``, that verdict is used as is).

    rows = scorecard("quick")            # list of dicts, one per claim, in CLAIMS order
    print(to_markdown(rows))             # the book's scorecard page includes this table

A chapter that did not run under the profile gives "not run" rows rather than an error, so the
table can be built for any subset of chapters.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from .paths import results_root


@dataclass(frozen=True)
class Claim:
    """A paper's claim and how a chapter's summary decides it.

    ``ours(summary) -> str`` formats our numbers; ``held(summary) -> bool | None`` decides
    (None: the summary cannot decide, e.g. the chapter found no danger zone to test against);
    ``rule`` says in words what ``held`` checks."""

    paper: str                   # BibTeX key in book/references.bib
    claim: str
    paper_value: str             # the paper's own number or wording, with where it is stated
    notebook: str                # the chapter's stem, e.g. "01_von_mises"
    ours: Callable[[dict], str]
    held: Callable[[dict], Optional[bool]]
    rule: str


def _f(x, digits: int = 3) -> str:
    """A number for the table: fixed or scientific notation by size; '-' for missing."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    x = float(x)
    return f"{x:.1e}" if x != 0 and (abs(x) < 1e-2 or abs(x) >= 1e4) else f"{x:.{digits}g}"


def _auc(x) -> str:
    return "-" if x is None else f"{float(x):.3f}"


def _pct(x) -> str:
    return "-" if x is None else f"{100 * float(x):.1f}%"


def _verdict(summary: dict, key: str) -> Optional[bool]:
    v = summary.get("claims_held", {}).get(key)
    return None if v is None else bool(v)


HIGH_90S = 0.95            # "AUROCs uniformly in the high 90's" (Ross et al., Sec. 3)
SIGNIFICANT = 0.01         # Hasegawa & Yasuda test at p < 0.01

CLAIMS: tuple[Claim, ...] = (
    Claim("ross2024geometric", "an isolated training point is memorized: FLIPD ~ 0 there, ~ 1 elsewhere on the circle",
          "LID ~ 0 at the isolated point, ~ 1 on the circle (Fig. 3)", "01_von_mises",
          lambda s: f"FLIPD {_f(s['flipd_isolated'])} isolated, median {_f(s['flipd_median_others'])} elsewhere; "
                    f"{s.get('n_samples_copying_isolated', '-')} samples copy it",
          lambda s: bool(s["claim_held"]),
          "the chapter's verdict: |FLIPD| < 0.5 at the isolated point, |median - 1| < 0.25 elsewhere, and "
          "at least one sample copies it"),
    Claim("hasegawa2025volume", "trained images grow more along the PF-ODE than held-out ones",
          "mean L 594 (trained) vs 373 (held-out), p < 0.01 (CIFAR-10, N = 100 axes)", "02_cifar10_overfit",
          lambda s: f"mean L {_f(s['L_trained_mean'])} vs {_f(s['L_heldout_mean'])}, p = {_f(s['p_trained_vs_heldout'])}, "
                    f"AUROC {_auc(s['auroc_trained_vs_heldout'])}",
          lambda s: s["L_trained_mean"] > s["L_heldout_mean"] and s["p_trained_vs_heldout"] < SIGNIFICANT,
          f"trained mean L above held-out and p < {SIGNIFICANT}"),
    Claim("hasegawa2025volume", "memorized images grow more than unmemorized ones",
          "p < 0.01 (t-test)", "02_cifar10_overfit",
          lambda s: f"p = {_f(s.get('p_memorized_vs_other'))}, AUROC {_auc(s['auroc_memorized_vs_other'])}",
          lambda s: None if s.get("p_memorized_vs_other") is None else
          s["auroc_memorized_vs_other"] > 0.5 and s["p_memorized_vs_other"] < SIGNIFICANT,
          f"AUROC above 0.5 and p < {SIGNIFICANT}"),
    Claim("hasegawa2025volume", "one axis and one ODE step suffice to separate trained from held-out",
          "p < 0.01 with N = 1, K = 1 (Fig. 3)", "02_cifar10_overfit",
          lambda s: f"p = {_f(s['p_one_axis_one_step'])}, AUROC {_auc(s.get('auroc_one_axis_one_step'))}",
          lambda s: s["p_one_axis_one_step"] < SIGNIFICANT,
          f"p < {SIGNIFICANT} with one axis and one step"),
    Claim("dodson2026calm", "a danger zone at medium noise where posterior weight W and shell coverage C are both high",
          "a medium-sigma band (the paper's gap: sigma in [1, 5] on CIFAR-10)", "03_three_regimes",
          lambda s: (f"sigma in [{_f(s['danger_zone_low'])}, {_f(s['danger_zone_high'])}]"
                     if s.get("danger_zone_found", True) else "no band where both exceed the threshold"),
          lambda s: _verdict(s, "danger_zone"),
          "the chapter's verdict: W and C both exceed the chapter's threshold on some band of sigma"),
    Claim("dodson2026calm", "the train/test denoising-error gap opens at medium noise only",
          "gap at medium sigma, none at either end (Fig. 1)", "03_three_regimes",
          lambda s: f"gap peaks at sigma = {_f(s['mse_gap_peak_sigma'])}",
          lambda s: _verdict(s, "mse_gap_medium"),
          "the chapter's verdict: the peak is inside the grid and the gap at both ends is below half the peak"),
    Claim("dodson2026calm", "memorization peaks at medium noise, calm at both ends",
          "copies only at medium sigma (Fig. 2)", "03_three_regimes",
          lambda s: f"one-step copy rate peaks at sigma = {_f(s['peak_memorization_sigma'])} "
                    f"({_pct(s['peak_memorization_rate'])})",
          lambda s: _verdict(s, "memorization_peak_medium"),
          "the chapter's verdict: the peak is inside the grid and the rate at both ends is below half the peak"),
    Claim("dodson2026calm", "gap training (skipping the danger zone) lowers memorization",
          "0.7% of generations memorized, FID 2.35 (CIFAR-10 cars)", "03_three_regimes",
          lambda s: f"memorized {_pct(s['mem_rate_gap'])} with the gap, {_pct(s['mem_rate_baseline'])} baseline, "
                    f"{_pct(s['mem_rate_dummy'])} dummy",
          lambda s: _verdict(s, "gap_lowest_memorization"),
          "the chapter's verdict: the danger-zone gap memorizes least of baseline, gap and dummy "
          "(by two standard errors)"),
    Claim("ross2024geometric", "conditional FLIPD detects memorized (verbatim) images",
          "AUROC in the high 90s (99.2% on the poster)", "04_laion_verbatims",
          lambda s: f"AUROC {_auc(s['auroc_flipd_cond'])}",
          lambda s: s["auroc_flipd_cond"] >= HIGH_90S, f"AUROC >= {HIGH_90S}"),
    Claim("ross2024geometric", "unconditional FLIPD detects memorized images",
          "AUROC in the high 90s", "04_laion_verbatims",
          lambda s: f"AUROC {_auc(s['auroc_flipd_uncond'])}",
          lambda s: s["auroc_flipd_uncond"] >= HIGH_90S, f"AUROC >= {HIGH_90S}"),
    Claim("ross2024geometric", "the CFG norm on the real image detects memorized images",
          "AUROC in the high 90s", "04_laion_verbatims",
          lambda s: f"AUROC {_auc(s['auroc_cfg_norm'])} (Wen et al.'s, from noise: "
                    f"{_auc(s['auroc_cfg_norm_generation'])})",
          lambda s: s["auroc_cfg_norm"] >= HIGH_90S, f"AUROC >= {HIGH_90S} (Ross et al.'s version)"),
    Claim("ross2024geometric", "PNG size is a comparatively poor predictor",
          "\"comparatively poor\" (Fig. 4d; no number)", "04_laion_verbatims",
          lambda s: f"AUROC {_auc(s['auroc_png'])}",
          lambda s: s["auroc_png"] < min(s["auroc_flipd_cond"], s["auroc_flipd_uncond"], s["auroc_cfg_norm"]),
          "below the AUROC of each of the paper's other three detectors"),
)


def load_summaries(profile: str, root: Optional[Path] = None) -> dict[str, dict]:
    """``{notebook: summary}`` for every chapter with a summary.json under ``<root>/<profile>/``."""
    base = Path(root) if root is not None else results_root()
    out = {}
    for path in sorted((base / profile).glob("*/summary.json")):
        try:
            out[path.parent.name] = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"{path} is not readable JSON ({err}); re-run its notebook to rewrite it.") from err
    return out


def scorecard(profile: str, root: Optional[Path] = None, claims=CLAIMS) -> list[dict]:
    """One dict per claim: paper, claim, paper_value, ours, held ("yes" / "no" / "undecided" /
    "not run"), rule, notebook, profile (the profile recorded in the summary)."""
    summaries = load_summaries(profile, root)
    rows = []
    for c in claims:
        s = summaries.get(c.notebook)
        row = dict(paper=c.paper, claim=c.claim, paper_value=c.paper_value, notebook=c.notebook, rule=c.rule)
        if s is None:
            rows.append(dict(row, ours="-", held="not run", profile=profile))
            continue
        try:
            ours, held = c.ours(s), c.held(s)
        except KeyError as err:
            raise KeyError(f"{c.notebook}'s summary.json under profile {profile!r} lacks {err}; "
                           f"re-run the notebook with the current code.") from err
        verdict = "undecided" if held is None else ("yes" if held else "no")
        rows.append(dict(row, ours=ours, held=verdict, profile=s.get("profile", profile)))
    return rows


def to_markdown(rows: list[dict]) -> str:
    """A MyST Markdown table: citations and chapter links as Sphinx roles; the profile(s) the rows
    were read from are stated above it."""
    def cell(text: str) -> str:
        return str(text).replace("|", "\\|")

    profiles = sorted({r["profile"] for r in rows})
    head = (f"Read from the summaries of profile {', '.join(f'`{p}`' for p in profiles)}.\n\n"
            "| Paper | Claim | Paper's number | Ours | Held? | Rule | Chapter |\n" + "| --- " * 7 + "|\n")
    body = "".join(
        f"| {{cite:t}}`{r['paper']}` | {cell(r['claim'])} | {cell(r['paper_value'])} | {cell(r['ours'])} "
        f"| **{r['held']}** | {cell(r['rule'])} | {{doc}}`notebook {r['notebook'][:2]} </notebooks/{r['notebook']}>` |\n"
        for r in rows)
    counts = {v: sum(r["held"] == v for r in rows) for v in ("yes", "no", "undecided", "not run")}
    tally = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
    return head + body + f"\n{len(rows)} claims: {tally}.\n"
