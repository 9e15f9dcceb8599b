"""A chapter's prose never states a measured number: tables, figures and the scorecard's rows do.

Every decimal and percentage in a chapter's markdown, outside equations, code and citations, must either
sit in a sentence that names it as a paper's (its authors, a table, figure, appendix, equation, lemma,
definition or section) or be one of the fixed constants below, each a setting or a definition, not a
result. A number typed from a run (an AUROC, a copy rate) fails here.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))

NUMBER = re.compile(r"(?<![\w.$\\{])(\d+(?:\.\d+)?\s?%|\d+\.\d+)")
THE_PAPERS = re.compile(r"paper|report|authors|poster|Table|Fig|Appendix|Lemma|Eq\.|Definition|Sec\.", re.I)
CONSTANTS = {
    "0.5": "chance for an AUROC; EDM's sigma_data",
    "0.1": "beta_min of the VP-SDE (the papers' schedule)",
    "0.002": "EDM's smallest sigma",
    "99%": "the central 99% chi-square shell of the book's earlier reading",
    "1%": "the isolated point's share: one training point of 100",
    "10%": "the caption dropout of classifier-free guidance",
    "6.5": "LAION-Aesthetics 6.5+, a data set's name",
}


def prose(path: Path) -> str:
    """The notebook's markdown cells, with equations, code spans and citation roles blanked."""
    cells = [c for c in path.read_text().split("# %%") if c.startswith(" [markdown]")]
    text = "\n".join(line[2:] for c in cells for line in c.splitlines()[1:] if line.startswith("# "))
    for pattern in (r"\$\$.*?\$\$", r"\$[^$]*\$", r"`[^`]*`", r"\{cite[^}]*\}`[^`]*`"):
        text = re.sub(pattern, " ", text, flags=re.S)
    return text


def typed_numbers(text: str) -> list[tuple[str, str]]:
    """(number, sentence) for every decimal or percentage not named as a paper's and not a constant."""
    out = []
    for sentence in re.split(r"(?<=[.;:])\s+|\n\n", text):
        if THE_PAPERS.search(sentence):
            continue
        out += [(m.group().replace(" ", ""), " ".join(sentence.split())) for m in NUMBER.finditer(sentence)
                if m.group().replace(" ", "") not in CONSTANTS]
    return out


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapter_prose_states_no_measured_number(notebook):
    found = typed_numbers(prose(notebook))
    assert not found, f"{notebook.name} states numbers in prose: " + "; ".join(f"{n!r} in {s[:100]!r}"
                                                                              for n, s in found)


def test_the_check_catches_a_typed_result_and_spares_the_papers():
    assert typed_numbers("Conditional FLIPD separates them with an AUROC of 0.84 here.") == [
        ("0.84", "Conditional FLIPD separates them with an AUROC of 0.84 here.")]
    assert typed_numbers("The model copies 83.6% of its generations.")[0][0] == "83.6%"
    assert typed_numbers("The paper reports 78.8% and 0.7% (Table 2).") == []
    assert typed_numbers("An AUROC of 0.5 is chance.") == []
    assert prose(NOTEBOOKS[0]) and "$" not in prose(NOTEBOOKS[0])
