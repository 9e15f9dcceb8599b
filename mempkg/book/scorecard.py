"""The reproduction scorecard: each paper claim the book tests, the paper's number, ours, and a verdict.

One row per claim. Only the papers' numbers and their citations are typed here; "ours" and the
verdict are read from the chapters' ``results/<profile>/<notebook>/summary.json`` of one profile, by
the rule written in the row. The chapters decide their own tables with the same rules
(:func:`decide`), so a verdict is stated in one place.

Every rule compares with what chance alone would give: a p-value of a test against the baseline
the rule names, an AUROC above 0.5, a share of memorization above the share a uniform spread would
put in the same band, each with a margin of two standard errors. A verdict is one of

* ``held``: every criterion of the rule is met, beyond its margin;
* ``contradicted``: a criterion is measured on the other side of its threshold, beyond its margin
  (or, for a test, significantly in the other direction);
* ``not shown``: neither: the effect is inside the noise (or the run too small to decide); the row
  says which criterion, with its value, threshold and margin;
* ``undecided``: a number the rule needs is ``null`` in the summary (the chapter could not compute
  it, and says why in ``<key>_reason``), so the row shows that reason instead of a verdict;
* ``stand-in``: the claim is about a model the run did not use (Stable Diffusion under the CPU
  profiles); the stand-in's numbers are shown beside it, but decide nothing;
* ``not run``: the chapter has no summary under the profile.

    rows = scorecard("quick")            # list of dicts, one per claim, in CLAIMS order
    print(to_markdown(rows))             # the book's scorecard page includes this table
    print(status_markdown(rows))         # the introduction's per-chapter status

Layer: book (imports every layer but the CLI).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Union

from ..core.tensors import check_choice
from .paths import results_root

HELD, CONTRADICTED, NOT_SHOWN = "held", "contradicted", "not shown"
UNDECIDED, STAND_IN, NOT_RUN = "undecided", "stand-in", "not run"
VERDICTS = (HELD, CONTRADICTED, NOT_SHOWN, UNDECIDED, STAND_IN, NOT_RUN)
PASS, AGAINST, NOISE = "pass", "against", "noise"      # one criterion's outcome

HIGH_90S = 0.95            # "AUROCs uniformly in the high 90's" (Ross et al., Sec. 3)
STABLE_AUROC = 0.05        # "stable" for t <= 0.1 (Ross et al., App. A.1): AUROCs within 0.05 of each other
SIGNIFICANT = 0.01         # Hasegawa & Yasuda test at p < 0.01; the book's level for every test
FLIPD_TOL_ISOLATED = 0.5   # |FLIPD| below this reads as dimension 0 ...
FLIPD_TOL_OTHERS = 0.25    # ... and within this of 1 as dimension 1 (the circle)
SD_MODEL = "stable_diffusion"


Of = Callable[[dict], float]


@dataclass(frozen=True)
class Criterion:
    """One measured quantity of a claim against its threshold: ``value(summary) OP threshold``, where the
    threshold is a number or is read from the summary (e.g. the share of the grid the band holds, or the
    other models' rates less two standard errors). ``se`` (when given) is the value's standard error and
    ``n_se`` how many of them the value must clear the threshold by. ``paper`` is the paper's own value of
    the same quantity where it states one (a number, or a function of the summary that gives ``None`` when
    the run's quantity is not comparable with the paper's). The scorecard figure draws every criterion."""

    quantity: str                  # what is measured, as the figure's axis label says it
    value: Of
    op: str                        # "<", ">" or ">="
    threshold: Union[float, Of]
    se: Optional[Of] = None
    n_se: float = 0.0
    paper: Union[float, Callable[[dict], Optional[float]], None] = None
    scale: str = "linear"          # or "log" (p-values)
    limits: Optional[tuple[float, float]] = None   # a fixed axis, e.g. (0, 1) for AUROCs
    # when the value is measured against the claim: None reads it off the other side of the threshold beyond
    # the margin; a function of the summary says it itself (e.g. "an AUROC below 0.5 with p < 0.01");
    # False: never (a p-value above the level shows nothing either way)
    against: Union[None, bool, Callable[[dict], bool]] = None
    against_rule: str = ""         # with a function ``against``: what it checks, in words, for the verdict's line

    def __post_init__(self):
        check_choice("op", self.op, ("<", ">", ">="))
        check_choice("scale", self.scale, ("linear", "log"))
        if callable(self.against) and not self.against_rule:
            raise ValueError(f"criterion {self.quantity!r}: a function `against` needs `against_rule` in words.")

    def threshold_of(self, s: dict) -> float:
        return float(self.threshold(s) if callable(self.threshold) else self.threshold)

    def paper_of(self, s: dict) -> Optional[float]:
        v = self.paper(s) if callable(self.paper) else self.paper
        return None if v is None else float(v)

    def margin_of(self, s: dict) -> float:
        return self.n_se * float(self.se(s) or 0.0) if self.se is not None else 0.0

    def passes(self, s: dict) -> bool:
        v, t, m = float(self.value(s)), self.threshold_of(s), self.margin_of(s)
        return {"<": v + m < t, ">": v - m > t, ">=": v - m >= t}[self.op]

    def outcome(self, s: dict) -> str:
        """PASS, AGAINST (measured on the claim's other side beyond the margin) or NOISE (neither; also a
        value that is not a number, e.g. a flip that two alike models leave undefined)."""
        if self.passes(s):
            return PASS
        if callable(self.against):
            return AGAINST if self.against(s) else NOISE
        if self.against is False:
            return NOISE
        v, t, m = float(self.value(s)), self.threshold_of(s), self.margin_of(s)
        return AGAINST if (v - m > t if self.op == "<" else v + m < t) else NOISE

    def describe(self, s: dict) -> str:
        """What decided a verdict other than held. Inside the noise: 'quantity v, needs OP t (margin m)'.
        Against the claim: the custom rule in words, or 'quantity v, OTHER-OP t beyond the margin m'."""
        v, t, margin = fmt(float(self.value(s))), fmt(self.threshold_of(s)), self.margin_of(s)
        if self.outcome(s) == AGAINST:
            if callable(self.against):
                return f"{self.quantity} {v}: {self.against_rule}"
            other = ">" if self.op == "<" else "<"
            return f"{self.quantity} {v}, {other} {t}" + (f" beyond the margin {fmt(margin)}" if margin else "")
        return f"{self.quantity} {v}, needs {self.op} {t}" + (f" (margin {fmt(margin)})" if margin else "")


@dataclass(frozen=True)
class Claim:
    """A paper's claim and how a chapter's summary decides it: held when every criterion passes.

    ``needs`` are the summary keys the rule reads: when one is ``null`` the row is *undecided*, with
    the chapter's ``<key>_reason``. ``ours(summary) -> str`` formats our numbers; ``rule`` says in words
    what the criteria check; ``stand_in(summary) -> bool`` (when given) says that the run used a stand-in
    for the paper's model, so nothing is decided.
    """

    key: str                     # the verdict's name in the chapter's summary (verdicts)
    paper: str                   # BibTeX key in book/references.bib
    claim: str
    paper_value: str             # the paper's own number or wording, with where it is stated
    notebook: str                # the chapter's stem, e.g. "01_von_mises"
    needs: tuple[str, ...]
    ours: Callable[[dict], str]
    criteria: tuple[Criterion, ...]
    rule: str
    stand_in: Optional[Callable[[dict], bool]] = None

    def held(self, s: dict) -> bool:
        return all(c.passes(s) for c in self.criteria)

    def verdict(self, s: dict) -> tuple[str, str]:
        """(HELD, CONTRADICTED or NOT_SHOWN, and for the latter two which criteria decided it)."""
        outcomes = [(c, c.outcome(s)) for c in self.criteria]
        against = [c for c, o in outcomes if o == AGAINST]
        if against:
            return CONTRADICTED, "against: " + "; ".join(c.describe(s) for c in against)
        noise = [c for c, o in outcomes if o == NOISE]
        if noise:
            return NOT_SHOWN, "inside the noise: " + "; ".join(c.describe(s) for c in noise)
        return HELD, ""


def fmt(x, digits: int = 3) -> str:
    """A number for the table: fixed or scientific notation by size; '-' for missing."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    x = float(x)
    return f"{x:.1e}" if x != 0 and (abs(x) < 1e-2 or abs(x) >= 1e4) else f"{x:.{digits}g}"


def fmt_auroc(x, se=None) -> str:
    if x is None:
        return "-"
    return f"{float(x):.3f}" + (f" +- {float(se):.3f}" if se is not None else "")


def fmt_pct(x) -> str:
    return "-" if x is None else f"{100 * float(x):.1f}%"


def _sd_stand_in(s: dict) -> bool:
    return s.get("model") != SD_MODEL


def seed_rule(s: dict) -> list[bool]:
    """Chapter 01, per training seed: FLIPD ~ 0 at the isolated point, ~ 1 elsewhere, and more
    samples within the copy radius of the isolated point than the true density puts there."""
    return [abs(fi) < FLIPD_TOL_ISOLATED and abs(fo - 1) < FLIPD_TOL_OTHERS and p < SIGNIFICANT
            for fi, fo, p in zip(s["flipd_isolated_by_seed"], s["flipd_median_others_by_seed"],
                                 s["p_copies_vs_true_density_by_seed"])]


def peak_criteria(values: str, se: str, what: str) -> tuple[Criterion, Criterion]:
    """A per-noise curve (summary keys ``values`` and ``se``) peaks at medium noise: its maximum exceeds each
    end by two standard errors of both (so it lies strictly inside the grid, and noise alone rarely
    passes), and both ends are below half of it by two standard errors of the end. Against the claim: an
    end above every interior point, or above half the peak, by two standard errors."""
    def peak(s):
        return max(map(float, s[values]))

    def clear_of_ends(s):
        v, e = [float(x) for x in s[values]], [float(x) for x in s[se]]
        i = max(range(len(v)), key=v.__getitem__)
        return max(v[j] + 2 * e[j] for j in (0, len(v) - 1)) + 2 * e[i]

    def end(s):
        v = [float(x) for x in s[values]]
        return 0 if v[0] >= v[-1] else len(v) - 1

    def end_on_top(s):    # against: an end above every interior point by two standard errors of both
        v, e = [float(x) for x in s[values]], [float(x) for x in s[se]]
        j = end(s)
        return len(v) > 2 and all(v[j] - 2 * e[j] > v[i] + 2 * e[i] for i in range(1, len(v) - 1))

    return (Criterion(f"peak of the {what}", peak, ">", clear_of_ends, against=end_on_top,
                      against_rule="an end lies above every interior point by two standard errors of both"),
            Criterion(f"{what}, larger end", lambda s: float(s[values][end(s)]), "<", lambda s: peak(s) / 2,
                      se=lambda s: float(s[se][end(s)]), n_se=2))


def peak_in_middle(values, se) -> bool:
    """The rule of :func:`peak_criteria` on two lists."""
    s = {"v": list(values), "e": list(se)}
    return all(c.passes(s) for c in peak_criteria("v", "e", "curve"))


def beats_criterion(quantity: str, mine: Of, my_se: Of, others: Callable[[dict], list[tuple[float, float]]],
                    paper=None) -> Criterion:
    """``mine`` below every other (rate, s.e.) by two of the larger standard error of the pair; against the
    claim when some other is below ``mine`` by as much."""
    def against(s):
        return any(float(mine(s)) > r + 2 * max(float(my_se(s)), e) for r, e in others(s))

    return Criterion(quantity, mine, "<",
                     lambda s: min((r - 2 * max(float(my_se(s)), e) for r, e in others(s)), default=math.inf),
                     paper=paper, against=against,
                     against_rule="another is lower by two of the larger standard error of the pair")


def auroc_criterion(key: str, what: str, threshold: float = 0.5, paper=None, *, se_key: Optional[str] = None,
                    p_key: Optional[str] = None) -> Criterion:
    """AUROC above ``threshold``: by two standard errors (``se_key``), or, with a test (``p_key``), against the
    claim only when the AUROC is on the other side and the test significant."""
    against = None if p_key is None else (lambda s: s[key] < threshold and s[p_key] < SIGNIFICANT)
    return Criterion(f"AUROC, {what}", lambda s: s[key], ">=" if threshold > 0.5 else ">", threshold,
                     se=(lambda s: s.get(se_key)) if se_key else None, n_se=2 if se_key else 0.0,
                     paper=paper, limits=(0.0, 1.0), against=against,
                     against_rule=f"below {threshold:g} with p < {SIGNIFICANT:g}" if p_key else "")


def p_criterion(key: str, what: str) -> Criterion:
    """p below the book's level; a larger p shows nothing either way."""
    return Criterion(f"p, {what}", lambda s: s[key], "<", SIGNIFICANT, scale="log", against=False)


def _von_mises_ours(s: dict) -> str:
    k = sum(seed_rule(s))
    return (f"{k} of {len(seed_rule(s))} test seeds, read at the knee t0 = {fmt(s['t0'])} of selection seed "
            f"{s['seed']}; seed {s['seed']}: FLIPD {fmt(s['flipd_isolated'])} isolated, "
            f"median {fmt(s['flipd_median_others'])} elsewhere; "
            f"{s['n_samples_copying_isolated']} of {s['n_samples']} samples within {fmt(s['copy_radius'])} of it "
            f"against {s['n_true_density_copying_isolated']} of as many true-density draws "
            f"(p = {fmt(s['p_copies_vs_true_density'])})")


def _zone_share_ours(s: dict) -> str:
    return (f"{fmt_pct(s['memorization_share_in_zone'])} +- {fmt_pct(s['memorization_share_in_zone_se'])} of the "
            f"per-noise copying in sigma [{fmt(s['danger_zone_low'])}, {fmt(s['danger_zone_high'])}], which holds "
            f"{fmt_pct(s['zone_share_of_grid'])} of the swept noise levels; peak at sigma = "
            f"{fmt(s['peak_memorization_sigma'])}"
            + ("" if not s.get("densest_band_outside_zone") else
               f"; the densest band of the same width outside it, [{fmt(s['densest_band_outside_zone'][0])}, "
               f"{fmt(s['densest_band_outside_zone'][1])}], holds {fmt_pct(s['densest_band_outside_zone'][2])}"))


def _swap_row(s: dict, window: str, direction: str) -> dict:
    rows = [r for r in s["swap"] if r["name"] == window and r["direction"] == direction]
    if not rows:
        raise KeyError(f"swap row {window!r}, {direction!r}")
    return rows[0]


def _flip_of(window: str, direction: str, key: str = "flip") -> Of:
    """The swap row's flip (or its s.e.); a flip that is undefined (the models copy alike) is nan: not shown."""
    return lambda s: math.nan if _swap_row(s, window, direction)[key] is None else _swap_row(s, window, direction)[key]


def _swap_ours(prefix: str = "") -> Callable[[dict], str]:
    """Our numbers of the swap over the windows ``prefix + small/medium/large``."""
    def ours(s: dict) -> str:
        alone = s["swap_alone"]
        medium = [_swap_row(s, prefix + "medium", d) for d in ("memorizer runs", "generalizer runs")]
        return (f"alone: {s['swap_models']['memorizer']} copies {fmt_pct(alone['memorizer runs']['copy_rate'])}, "
                f"{s['swap_models']['generalizer']} {fmt_pct(alone['generalizer runs']['copy_rate'])}; medium window "
                f"[{fmt(medium[0]['window'][0])}, {fmt(medium[0]['window'][1])}] swapped: "
                f"{fmt_pct(medium[0]['copy_rate'])} and {fmt_pct(medium[1]['copy_rate'])}; "
                + ", ".join(f"{w}: {fmt_pct(_swap_row(s, prefix + w, 'memorizer runs')['copy_rate'])} and "
                            f"{fmt_pct(_swap_row(s, prefix + w, 'generalizer runs')['copy_rate'])}"
                            for w in ("small", "large")))
    return ours


def swap_criteria(prefix: str = "") -> tuple[Criterion, ...]:
    """The flip f above 1/2 for the medium window and below 1/2 for the small and large ones, both directions,
    each by two standard errors, over the windows ``prefix + small/medium/large``."""
    return tuple(Criterion(f"flip toward the donor, {prefix}{w} window, {d}", _flip_of(prefix + w, d),
                           ">" if w == "medium" else "<", 0.5, se=_flip_of(prefix + w, d, "flip_se"), n_se=2)
                 for w in ("small", "medium", "large") for d in ("memorizer runs", "generalizer runs"))


SWAP_RULE = ("with f = (swapped rate - base's own) / (donor's own - base's own), the share of the way the copy rate "
             "moves toward the donor's: f above 1/2 for the medium window in both directions and below 1/2 for the "
             "small and large windows in both, each by two standard errors (binomial over generations, the two models' "
             "own rates' included)")


OTHER_DETECTORS = {"flipd_cond": "conditional FLIPD", "flipd_uncond": "unconditional FLIPD",
                   "cfg_norm": "CFG norm"}


def _key(key: str, default=None) -> Of:
    return lambda s: s[key] if default is None else (s.get(key) or default)


def _pair_se(a: str, b: str) -> Of:
    return lambda s: max(s.get(f"auroc_se_{a}") or 0.0, s.get(f"auroc_se_{b}") or 0.0)


def _other_bands(s: dict) -> list[tuple[float, float]]:
    g = s["gap_band_index"]
    return [(float(r), float(e)) for i, (r, e) in enumerate(zip(s["mem_rate_by_band"], s["mem_rate_se_by_band"]))
            if i != g]


def _fd_margin(s: dict, other: str) -> float:
    return 2 * float(s.get(f"fd_diff_se_{other}") or 0.0)


CLAIMS: tuple[Claim, ...] = (
    Claim("isolated_memorized", "ross2024geometric",
          "an isolated training point is memorized: the model copies it more often than the data density would, "
          "and FLIPD reads ~ 0 there, ~ 1 elsewhere on the circle",
          "LID ~ 0 at the isolated point, ~ 1 on the circle; samples reproduce it (Fig. 3)", "01_von_mises",
          ("flipd_isolated_by_seed", "flipd_median_others_by_seed", "p_copies_vs_true_density_by_seed"),
          _von_mises_ours,
          (Criterion("|FLIPD| at the isolated point, worst seed",
                     lambda s: max(abs(float(x)) for x in s["flipd_isolated_by_seed"]), "<", FLIPD_TOL_ISOLATED,
                     paper=0.0),
           Criterion("|median FLIPD elsewhere - 1|, worst seed",
                     lambda s: max(abs(float(x) - 1) for x in s["flipd_median_others_by_seed"]), "<",
                     FLIPD_TOL_OTHERS, paper=0.0),
           Criterion("p, copies vs the true density, worst seed",
                     lambda s: max(map(float, s["p_copies_vs_true_density_by_seed"])), "<", SIGNIFICANT, scale="log",
                     against=False)),
          f"on every test seed, at the knee t0 chosen on the selection seed: |FLIPD| < {FLIPD_TOL_ISOLATED} at the "
          f"isolated point, median within "
          f"{FLIPD_TOL_OTHERS} of 1 elsewhere, and more samples within the copy radius of the isolated point than "
          f"the true von Mises density gives (one-sided binomial test against the exact mass, p < {SIGNIFICANT})"),
    Claim("trained_grow_more", "hasegawa2025volume", "trained images grow more along the PF-ODE than held-out ones",
          "mean L 594 (trained) vs 373 (held-out), p < 0.01 (CIFAR-10, N = 100 axes)", "02_cifar10_overfit",
          ("L_trained_mean", "L_heldout_mean", "p_trained_vs_heldout", "auroc_trained_vs_heldout"),
          lambda s: f"mean L {fmt(s['L_trained_mean'])} vs {fmt(s['L_heldout_mean'])} over {s['n_images_per_group']} "
                    f"images per group (each averaged with its flip), p = {fmt(s['p_trained_vs_heldout'])}, "
                    f"AUROC {fmt_auroc(s['auroc_trained_vs_heldout'])}",
          (auroc_criterion("auroc_trained_vs_heldout", "larger L means trained", p_key="p_trained_vs_heldout"),
           p_criterion("p_trained_vs_heldout", "trained vs held-out L")),
          f"over images (each averaged with its flip): AUROC of 'larger L means trained' above 0.5 and "
          f"Welch p < {SIGNIFICANT}"),
    Claim("memorized_grow_more", "hasegawa2025volume", "memorized images grow more than unmemorized ones",
          "p < 0.01 (t-test)", "02_cifar10_overfit",
          ("p_memorized_vs_other", "auroc_memorized_vs_other"),
          lambda s: f"p = {fmt(s['p_memorized_vs_other'])}, AUROC {fmt_auroc(s['auroc_memorized_vs_other'])}, "
                    f"{s['n_memorized_found']} images extracted",
          (auroc_criterion("auroc_memorized_vs_other", "larger L means memorized", p_key="p_memorized_vs_other"),
           p_criterion("p_memorized_vs_other", "memorized vs other L")),
          f"AUROC of 'larger L means memorized' above 0.5 and Welch p < {SIGNIFICANT}"),
    Claim("one_axis_one_step", "hasegawa2025volume",
          "one axis and one ODE step suffice to separate trained from held-out, and memorized from unmemorized",
          "p < 0.01 with N = 1, K = 1 (Fig. 3)", "02_cifar10_overfit",
          ("p_one_axis_one_step", "auroc_one_axis_one_step", "p_one_axis_one_step_memorized",
           "auroc_one_axis_one_step_memorized"),
          lambda s: f"trained vs held-out: p = {fmt(s['p_one_axis_one_step'])}, AUROC "
                    f"{fmt_auroc(s['auroc_one_axis_one_step'])}; memorized vs unmemorized: p = "
                    f"{fmt(s['p_one_axis_one_step_memorized'])}, AUROC {fmt_auroc(s['auroc_one_axis_one_step_memorized'])}",
          (auroc_criterion("auroc_one_axis_one_step", "one axis, one step", p_key="p_one_axis_one_step"),
           p_criterion("p_one_axis_one_step", "one axis, one step"),
           auroc_criterion("auroc_one_axis_one_step_memorized", "one axis, one step, memorized",
                           p_key="p_one_axis_one_step_memorized"),
           p_criterion("p_one_axis_one_step_memorized", "one axis, one step, memorized")),
          f"with one axis and one step, for both pairs (trained vs held-out, memorized vs unmemorized): in the "
          f"paper's direction (AUROC of 'larger L means trained / memorized' above 0.5) and Welch p < {SIGNIFICANT}"),
    Claim("memorization_in_danger_zone", "dodson2026calm",
          "memorization concentrates in the danger zone, where posterior weight W and shell coverage C are both high",
          "copying happens in the medium-sigma band where W and C are high (Figs. 2, 3, 5)", "03_three_regimes",
          ("memorization_share_in_zone", "memorization_share_in_zone_se", "zone_share_of_grid",
           "max_share_outside_zone"),
          _zone_share_ours,
          (Criterion("share of the copying in the W/C band", lambda s: s["memorization_share_in_zone"], ">",
                     lambda s: s["zone_share_of_grid"], se=lambda s: s["memorization_share_in_zone_se"], n_se=2,
                     limits=(0.0, 1.0)),
           Criterion("share in the W/C band over the densest band outside it",
                     lambda s: s["memorization_share_in_zone"], ">", lambda s: s["max_share_outside_zone"],
                     se=lambda s: s["memorization_share_in_zone_se"], n_se=2, limits=(0.0, 1.0))),
          "the share of the per-noise copy rate (held-out inputs, summed over the sigma grid) inside the W/C band "
          "exceeds, by two bootstrap standard errors, both the band's share of the grid (copying spread evenly over "
          "log sigma) and the share of every band of the same width that shares no grid point with it"),
    Claim("swap_medium_only", "dodson2026calm",
          "handing the medium-noise steps to the other model flips whether generations copy; the small- and "
          "large-noise steps do not",
          "only the medium window flips the outcome, \"between 92.2% and 0%\" (Table 1, Fig. 10; CIFAR-10)",
          "03_three_regimes", ("swap", "swap_windows"), _swap_ours(), swap_criteria(),
          SWAP_RULE + "; the windows lie below, inside and above this run's danger zone"),
    Claim("swap_medium_only_paper_windows", "dodson2026calm",
          "the same, on the paper's own windows: the medium-noise steps flip whether generations copy",
          "only the medium window (steps 6 to 13 of the 18-step grid, sigma 0.14 to 8.4) flips the outcome "
          "(Table 1, Fig. 10; CIFAR-10)",
          "03_three_regimes", ("swap", "swap_paper_windows"), _swap_ours("paper's "), swap_criteria("paper's "),
          SWAP_RULE + "; the windows are the paper's steps of the same grid (small 14 to 17, medium 6 to 13, large "
          "0 to 5), whatever this run's danger zone"),
    Claim("mse_gap_medium", "dodson2026calm", "the train/test denoising-error gap opens at medium noise only",
          "gap at medium sigma, none at either end (Fig. 1)", "03_three_regimes",
          ("mse_gap_by_sigma", "mse_gap_se_by_sigma"),
          lambda s: f"gap peaks at sigma = {fmt(s['mse_gap_peak_sigma'])} ({fmt(max(s['mse_gap_by_sigma']))}; ends "
                    f"{fmt(s['mse_gap_by_sigma'][0])} and {fmt(s['mse_gap_by_sigma'][-1])})",
          peak_criteria("mse_gap_by_sigma", "mse_gap_se_by_sigma", "train/test error gap"),
          "the peak lies inside the sigma grid, above the gap at both ends by two standard errors (over images) of "
          "each, and both ends are below half the peak"),
    Claim("memorization_peak_medium", "dodson2026calm", "memorization peaks at medium noise, calm at both ends",
          "copies only at medium sigma (Fig. 2)", "03_three_regimes", ("mem_rate_by_sigma", "mem_rate_se_by_sigma"),
          lambda s: f"one-step copy rate peaks at sigma = {fmt(s['peak_memorization_sigma'])} "
                    f"({fmt_pct(s['peak_memorization_rate'])}; ends {fmt_pct(s['mem_rate_by_sigma'][0])} and "
                    f"{fmt_pct(s['mem_rate_by_sigma'][-1])})",
          peak_criteria("mem_rate_by_sigma", "mem_rate_se_by_sigma", "one-step copy rate"),
          "the peak lies inside the sigma grid, above the rate at both ends by two binomial standard errors of "
          "each, and both ends are below half the peak"),
    Claim("gap_lowest_memorization", "dodson2026calm", "gap training (skipping the danger zone) lowers memorization",
          "0.7% of generations memorized, lowest of baseline, gap and dummy (CIFAR-10 cars)", "03_three_regimes",
          ("mem_rate_gap", "mem_rate_se_gap", "mem_rate_baseline", "mem_rate_se_baseline", "mem_rate_dummy",
           "mem_rate_se_dummy"),
          lambda s: f"memorized {fmt_pct(s['mem_rate_gap'])} with the gap, {fmt_pct(s['mem_rate_baseline'])} baseline, "
                    f"{fmt_pct(s['mem_rate_dummy'])} dummy",
          (beats_criterion("copy rate of the gap model's generations", lambda s: s["mem_rate_gap"],
                           lambda s: s["mem_rate_se_gap"],
                           lambda s: [(s[f"mem_rate_{n}"], s[f"mem_rate_se_{n}"]) for n in ("baseline", "dummy")],
                           paper=0.007),),
          "the danger-zone gap memorizes least of baseline, gap and dummy (each the mean over its training seeds), "
          "below each of the other two by two standard errors over seeds (the larger of the pair's)"),
    Claim("gap_best_quality", "dodson2026calm", "gap training gives the best sample quality",
          "FID 2.35, best of baseline, gap and dummy (CIFAR-10 cars)", "03_three_regimes",
          ("fd_gap", "fd_baseline", "fd_dummy", "fd_kind", "fd_diff_se_baseline", "fd_diff_se_dummy"),
          lambda s: f"{'FID' if s['fd_kind'] == 'inception' else 'classifier FD'} {fmt(s['fd_gap'])} with the gap, "
                    f"{fmt(s['fd_baseline'])} baseline, {fmt(s['fd_dummy'])} dummy",
          (Criterion("Frechet distance of the gap model", lambda s: s["fd_gap"], "<",
                     lambda s: min(s[f"fd_{n}"] - _fd_margin(s, n) for n in ("baseline", "dummy")),
                     paper=lambda s: 2.35 if s["fd_kind"] == "inception" else None,
                     against=lambda s: any(s["fd_gap"] > s[f"fd_{n}"] + _fd_margin(s, n)
                                           for n in ("baseline", "dummy")),
                     against_rule="baseline's or dummy's is lower by two standard errors of the difference"),),
          "the gap's Frechet distance (mean over its training seeds) is below baseline's and dummy's, each by two "
          "standard errors of the difference, paired by seed"),
    Claim("danger_zone_band_best", "dodson2026calm", "of all noise bands one could skip, the danger zone helps most",
          "the gap is placed on the danger zone, sigma in [1, 5] (CIFAR-10)", "03_three_regimes",
          ("mem_rate_by_band", "mem_rate_se_by_band", "gap_band_index"),
          lambda s: "lowest memorization when skipping sigma in "
                    f"[{fmt(s['best_gap_band'][0])}, {fmt(s['best_gap_band'][1])}]; the danger zone is "
                    f"[{fmt(s['gap_low'])}, {fmt(s['gap_high'])}]",
          (beats_criterion("copy rate, skipping the danger zone",
                           lambda s: s["mem_rate_by_band"][s["gap_band_index"]],
                           lambda s: s["mem_rate_se_by_band"][s["gap_band_index"]], _other_bands),),
          "of the equal-mass bands trained (each skipped by one model), the danger zone gives the lowest memorization, "
          "below every other band trained by two standard errors (the larger of the pair's; over seeds where a band "
          "has several, binomial over generations where it has one)"),
    Claim("flipd_cond_detects", "ross2024geometric", "conditional FLIPD detects memorized (verbatim) images",
          "AUROC in the high 90s (Sec. 3; the workshop poster's 99.2% is unverified: no text of it was found)",
          "04_laion_verbatims", ("auroc_flipd_cond",),
          lambda s: f"AUROC {fmt_auroc(s['auroc_flipd_cond'], s.get('auroc_se_flipd_cond'))}",
          (auroc_criterion("auroc_flipd_cond", "conditional FLIPD", HIGH_90S, se_key="auroc_se_flipd_cond"),),
          f"Stable Diffusion: AUROC >= {HIGH_90S}", _sd_stand_in),
    Claim("flipd_uncond_detects", "ross2024geometric", "unconditional FLIPD detects memorized images",
          "AUROC in the high 90s", "04_laion_verbatims", ("auroc_flipd_uncond",),
          lambda s: f"AUROC {fmt_auroc(s['auroc_flipd_uncond'], s.get('auroc_se_flipd_uncond'))}",
          (auroc_criterion("auroc_flipd_uncond", "unconditional FLIPD", HIGH_90S, se_key="auroc_se_flipd_uncond"),),
          f"Stable Diffusion: AUROC >= {HIGH_90S}", _sd_stand_in),
    Claim("cfg_norm_detects", "ross2024geometric", "the CFG norm on the real image detects memorized images",
          "AUROC in the high 90s", "04_laion_verbatims", ("auroc_cfg_norm",),
          lambda s: f"AUROC {fmt_auroc(s['auroc_cfg_norm'], s.get('auroc_se_cfg_norm'))} (Wen et al.'s, from noise: "
                    f"{fmt_auroc(s.get('auroc_cfg_norm_generation'))})",
          (auroc_criterion("auroc_cfg_norm", "CFG norm on the real image", HIGH_90S, se_key="auroc_se_cfg_norm"),),
          f"Stable Diffusion: AUROC >= {HIGH_90S} (Ross et al.'s version)", _sd_stand_in),
    Claim("cfg_norm_stable_small_t0", "ross2024geometric",
          "the detectors' performance is stable for t0 <= 0.1 (hyperparameters tuned by hand)",
          "\"stable\" for t <= 0.1 (App. A.1; no number)", "04_laion_verbatims",
          ("cfg_auroc_range_t0_le_0_1", "cfg_auroc_range_t0_le_0_1_se"),
          lambda s: f"AUROC of the real-image CFG norm spans {fmt(s['cfg_auroc_range_t0_le_0_1'])} +- "
                    f"{fmt(s['cfg_auroc_range_t0_le_0_1_se'])} over the swept t0 <= 0.1",
          (Criterion("largest minus smallest CFG-norm AUROC over t0 <= 0.1", _key("cfg_auroc_range_t0_le_0_1"), "<",
                     STABLE_AUROC, se=_key("cfg_auroc_range_t0_le_0_1_se"), n_se=2, limits=(0.0, 1.0)),),
          f"Stable Diffusion: over the swept t0 <= 0.1, the largest minus the smallest AUROC of the real-image CFG "
          f"norm is below {STABLE_AUROC} by two bootstrap standard errors (the same images resampled at every t0)",
          _sd_stand_in),
    Claim("png_poor", "ross2024geometric", "PNG size is a comparatively poor predictor",
          "\"comparatively poor\" (Fig. 4d; no number)", "04_laion_verbatims",
          ("auroc_png", "auroc_flipd_cond", "auroc_flipd_uncond", "auroc_cfg_norm"),
          lambda s: f"AUROC {fmt_auroc(s['auroc_png'], s.get('auroc_se_png'))}",
          tuple(Criterion(f"AUROC, {name}", _key("auroc_" + k), ">", 0.5, se=_key("auroc_se_" + k, 0.0), n_se=2,
                          limits=(0.0, 1.0), against=False) for k, name in OTHER_DETECTORS.items())
          + tuple(Criterion(f"AUROC, PNG size, against {name}", _key("auroc_png"), "<", _key("auroc_" + k),
                            se=_pair_se("png", k), n_se=2, limits=(0.0, 1.0)) for k, name in OTHER_DETECTORS.items()),
          "Stable Diffusion: each of the paper's other three detectors above chance (AUROC 0.5) by two standard "
          "errors, and PNG size below each of them by two standard errors (the larger of the pair's)", _sd_stand_in),
)


def claims_of(notebook: str) -> tuple[Claim, ...]:
    """The claims a chapter decides, in table order."""
    return tuple(c for c in CLAIMS if c.notebook == notebook)


def judge(claim: Claim, summary: dict) -> tuple[str, str]:
    """(verdict, ours) of one claim on one chapter summary; see the module docstring for the verdicts.

    A key in ``claim.needs`` that is missing from the summary is an error (the chapter's code and
    this table disagree); one that is ``null`` makes the claim undecided, ``ours`` then giving the
    chapter's ``<key>_reason``."""
    missing = [k for k in claim.needs if k not in summary]
    if missing:
        raise KeyError(f"{claim.notebook}'s summary lacks {missing[0]!r}; re-run the notebook with the current code.")
    nulls = [k for k in claim.needs if summary[k] is None]
    if nulls:
        reasons = sorted({summary.get(f"{k}_reason") or f"{k} was not computed" for k in nulls})
        return UNDECIDED, "; ".join(reasons)
    try:
        ours = claim.ours(summary)
    except KeyError as err:
        raise KeyError(f"{claim.notebook}'s summary lacks {err}; re-run the notebook with the current code.") from err
    if claim.stand_in is not None and claim.stand_in(summary):
        return STAND_IN, f"stand-in model ({summary.get('model', '?')}): see chapter {claim.notebook[:2]}; {ours}"
    verdict, why = claim.verdict(summary)
    return verdict, ours + (f" ({why})" if why else "")


def decide(notebook: str, summary: dict) -> dict[str, str]:
    """``{claim key: verdict}`` for every claim of ``notebook``: what a chapter stores as ``claims_held``
    and prints in its own table, by the same rules as the scorecard."""
    return {c.key: judge(c, summary)[0] for c in claims_of(notebook)}


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
    """One dict per claim: key, paper, claim, paper_value, ours, held (one of ``VERDICTS``), rule,
    notebook, profile (the profile recorded in the summary)."""
    summaries = load_summaries(profile, root)
    rows = []
    for c in claims:
        s = summaries.get(c.notebook)
        row = dict(key=c.key, paper=c.paper, claim=c.claim, paper_value=c.paper_value, notebook=c.notebook,
                   rule=c.rule)
        if s is None:
            rows.append(dict(row, ours="-", held=NOT_RUN, profile=profile))
            continue
        verdict, ours = judge(c, s)
        rows.append(dict(row, ours=ours, held=verdict, profile=s.get("profile", profile)))
    return rows


def criteria_rows(profile: str, root: Optional[Path] = None, claims=CLAIMS) -> list[dict]:
    """One dict per criterion of every claim, in table order: number (the claim's row in the table), key,
    notebook, quantity, op, value, margin (what the value must clear the threshold by), threshold, paper,
    passes, outcome (PASS, AGAINST or NOISE), scale, limits, held (the claim's verdict) and reason (why there is no value: the claim is
    undecided or its chapter did not run). What the scorecard figure draws."""
    summaries = load_summaries(profile, root)
    out = []
    for number, c in enumerate(claims, start=1):
        s = summaries.get(c.notebook)
        verdict, ours = judge(c, s) if s is not None else (NOT_RUN, "the chapter did not run")
        for k in c.criteria:
            row = dict(number=number, key=c.key, notebook=c.notebook, quantity=k.quantity, op=k.op, scale=k.scale,
                       limits=k.limits, held=verdict, value=None, margin=None, threshold=None, paper=None,
                       passes=None, outcome=None, reason=None)
            if verdict in (NOT_RUN, UNDECIDED):
                out.append(dict(row, reason=ours))
                continue
            out.append(dict(row, value=float(k.value(s)), margin=k.margin_of(s), threshold=k.threshold_of(s),
                            paper=k.paper_of(s), passes=k.passes(s), outcome=k.outcome(s)))
    return out


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|")


def _chapter_link(notebook: str) -> str:
    return f"{{doc}}`notebook {notebook[:2]} </notebooks/{notebook}>`"


def tally(rows: list[dict]) -> str:
    """'15 claims: 8 held, 2 contradicted, ...' (verdicts that occur, in ``VERDICTS`` order)."""
    counts = {v: sum(r["held"] == v for r in rows) for v in VERDICTS}
    return f"{len(rows)} claims: " + ", ".join(f"{n} {v}" for v, n in counts.items() if n)


# a mark and a colour per verdict, so that the column reads at a glance (marks in every common font)
MARKS = {HELD: ("\u2713", "#1a7f37"), CONTRADICTED: ("\u2717", "#cf222e"), NOT_SHOWN: ("\u2248", "#bc4c00"),
         UNDECIDED: ("?", "#9a6700"),
         STAND_IN: ("\u25d0", "#6e7781"), NOT_RUN: ("\u2013", "#6e7781")}


def verdict_badge(held: str) -> str:
    """The verdict as inline HTML: its mark and word in its colour, bold."""
    mark, colour = MARKS[held]
    return f'<span style="color: {colour}; font-weight: bold">{mark} {held}</span>'


def to_markdown(rows: list[dict]) -> str:
    """A MyST Markdown table a reader scans (claim with its paper, the paper's number, ours, the verdict as a
    mark and a word), then each claim's rule and chapter as a numbered list below it; citations and chapter
    links as Sphinx roles; the profile(s) the rows were read from are stated above it."""
    profiles = sorted({r["profile"] for r in rows})
    head = (f"Read from the summaries of profile {', '.join(f'`{p}`' for p in profiles)}.\n\n"
            "| # | Claim | Paper's number | Ours | Held? |\n" + "| --- " * 5 + "|\n")
    body = "".join(
        f"| {i} | {{cite:t}}`{r['paper']}`: {_cell(r['claim'])} | {_cell(r['paper_value'])} | {_cell(r['ours'])} "
        f"| {verdict_badge(r['held'])} |\n" for i, r in enumerate(rows, start=1))
    rules = "".join(f"{i}. *{r['claim']}*: {r['rule']} ({_chapter_link(r['notebook'])})\n"
                    for i, r in enumerate(rows, start=1))
    return head + body + f"\n{tally(rows)}.\n\n**The rules**, by row, and the chapter that tests each:\n\n{rules}"


def chapter_rows(notebook: str, summary: dict, keys: Optional[tuple[str, ...]] = None):
    """A chapter's own scorecard rows (claim, paper's number, ours, verdict), for the end of a section.

    Args:
        notebook: the chapter's stem, e.g. ``"02_cifar10_overfit"``.
        summary: the chapter's summary as this run computed it (before or after it is written).
        keys: the claims to show, in this order; ``None``: every claim of the chapter.
    Returns:
        an ``IPython.display.Markdown`` table, the verdicts phrased as on the scorecard page.
    """
    from IPython.display import Markdown  # optional (extra 'book'): only inside a notebook

    mine = {c.key: c for c in claims_of(notebook)}
    unknown = sorted(set(keys or ()) - set(mine))
    if unknown:
        raise KeyError(f"{notebook} decides no claim {unknown[0]!r}; its claims: {', '.join(mine)}.")
    lines = ["| Claim | Paper's number | Ours | Verdict |", "| --- | --- | --- | --- |"]
    for key in keys or tuple(mine):
        c = mine[key]
        verdict, ours = judge(c, summary)
        lines.append(f"| {_cell(c.claim)} | {_cell(c.paper_value)} | {_cell(ours)} | {verdict_badge(verdict)} |")
    rules = "".join(f"\n- *{mine[k].claim}*: {mine[k].rule}." for k in (keys or tuple(mine)))
    return Markdown("\n".join(lines) + "\n\nThe rule" + ("s" if len(keys or mine) > 1 else "") + ":" + rules + "\n")


def status_markdown(rows: list[dict]) -> str:
    """Per chapter, how its claims fared: the introduction's status table (MyST Markdown)."""
    chapters = list(dict.fromkeys(r["notebook"] for r in rows))
    profiles = sorted({r["profile"] for r in rows})
    lines = [f"Status under profile {', '.join(f'`{p}`' for p in profiles)}, from the {{doc}}`scorecard`:\n",
             "| Chapter | Claims | " + " | ".join(v.capitalize() for v in VERDICTS) + " |",
             "| --- " * (2 + len(VERDICTS)) + "|"]
    for nb in chapters:
        mine = [r for r in rows if r["notebook"] == nb]
        lines.append(f"| {_chapter_link(nb)} | {len(mine)} | "
                     + " | ".join(str(sum(r["held"] == v for r in mine)) for v in VERDICTS) + " |")
    return "\n".join(lines) + f"\n\n{tally(rows)}.\n"
