"""Errata of the paper's text that are not formulas of a lemma: the direction of the interpolation in Suppl. XI-B and
the broken cross-references and duplicated numbering of the main text and supplement.

The quoted lines (line numbers of the arXiv 2508.05461v2 text in the project's shared papers folder) are data of
the checks; ``paper_text_path()`` finds that text the way the benchmarks find data (``WTFLOW_PAPERS``, else
``../shared/papers`` beside the checkout) so that a test can confirm every quote, and the checks do not need it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ._base import HOLDS, HOLDS_WITH_CORRECTION, REFUTED, ClaimResult, check_size, fmt, printed_form

__all__ = [
    "CROSS_REFERENCES",
    "DEFINED",
    "EQUATION_NUMBERS",
    "PAPER_TEXT_NAME",
    "RESTATED",
    "check_cross_references",
    "check_xib_interpolation",
    "paper_text_path",
]

PAPER_TEXT_NAME = "wt-flow_time-reversed-flow-matching_arxiv-2508.05461v2.txt"

# Numbered statements the paper defines: kind -> numbers.
DEFINED = {
    "Lemma": (1, 2, 3, 4, 5, 6),
    "Theorem": (1, 2, 3, 4, 5),
    "Proposition": (1, 2),
    "Assumption": (1, 2),
    "Observation": (1, 2),
}
# Supplement statements that restate a main-text statement under a new number: (kind, number, line, restates).
RESTATED = (
    ("Theorem", 3, 622, "Theorem 1 (Initial Singularity)"),
    ("Theorem", 4, 741, "Theorem 2 (Lipschitzness of rFM)"),
)
# References in the text: (line, quote, [(kind, number cited)], intended target).
CROSS_REFERENCES = (
    (185, "Lemmas 10 and 29 collectively support Theorem 3", (("Lemma", 10), ("Lemma", 29), ("Theorem", 3)),
     "Lemmas 3 and 4 (eqs. 10 and 29) support Theorem 2 (Suppl. Theorem 4)"),
    (228, "as formally established in Lemma 33", (("Lemma", 33),), "Lemma 5 (eq. 33)"),
    (706, "Considering Lemma 33", (("Lemma", 33),), "Lemma 5 (eq. 33)"),
    (739, "Theorem (4) can be directly derived from Lemmas (3) and (29)", (("Lemma", 3), ("Lemma", 29)),
     "Lemmas 3 and 4"),
)  # fmt: skip
# Where each cited statement that exists actually points, when that is not what the sentence means.
WRONG_TARGETS = {(185, "Theorem", 3): "Theorem 3 is the Initial Singularity (a restatement of Theorem 1)"}
# Displayed equation numbers in order of appearance: (first line, last line, first number, last number).
EQUATION_NUMBERS = (
    (89, 222, 1, 14),  # main text
    (532, 584, 15, 26),  # Suppl. IX (backgrounds)
    (594, 811, 11, 44),  # Suppl. X (proofs): restarts at 11
)


def paper_text_path() -> Path | None:
    """The paper's text: $WTFLOW_PAPERS/<name>, else ../shared/papers/<name> beside the checkout; None if absent."""
    root = Path(__file__).resolve().parents[2]
    candidates = [Path(os.environ["WTFLOW_PAPERS"])] if os.environ.get("WTFLOW_PAPERS") else []
    candidates += [root.parent / "shared" / "papers", root / "shared" / "papers"]
    for folder in candidates:
        if (folder / PAPER_TEXT_NAME).is_file():
            return folder / PAPER_TEXT_NAME
    return None


XIB_PRINTED = {"x0_weight": "t"}


def check_xib_interpolation(size: str = "quick", printed: dict | None = None) -> ClaimResult:
    """Suppl. XI-B: 'x_t = t x_0 + (1 - t) x_1' against the main text's X_t = (1 - t) X_0 + t X_1 (Sec. III-B).

    ``printed``: {"x0_weight": "t" (printed) or "1-t"}: the weight of the data x_0 in the printed interpolation."""
    check_size(size)
    weight = printed_form("xib_interpolation", XIB_PRINTED, printed)["x0_weight"]
    if weight not in ("t", "1-t"):
        raise ValueError(f"xib_interpolation: x0_weight must be 't' or '1-t', got {weight!r}")
    rng = np.random.default_rng(11)
    x0, x1 = rng.standard_normal((2, 16, 8))
    ts = np.linspace(0.0, 1.0, 11)[:, None, None]
    a = ts if weight == "t" else 1 - ts
    printed_path = a * x0 + (1 - a) * x1
    main = (1 - ts) * x0 + ts * x1
    reversed_main = ts * x0 + (1 - ts) * x1
    err_main = float(np.abs(printed_path - main).max())
    err_reversed = float(np.abs(printed_path - reversed_main).max())
    if err_main < 1e-12:
        verdict = HOLDS
    elif err_reversed < 1e-12:
        verdict = HOLDS_WITH_CORRECTION
    else:
        verdict = REFUTED
    return ClaimResult(
        claim_id="xib_interpolation",
        verdict=verdict,
        measured={
            "max |printed x_t - main-text x_t| over t in [0, 1]": fmt(err_main, 3),
            "max |printed x_t - main-text x_{1-t}|": fmt(err_reversed, 3),
            "printed x_t at t = 0 is": "x_0 (data)" if weight == "1-t" else "x_1 (noise)",
        },
        rule=(
            "Evaluate the printed interpolation and the main text's X_t = (1 - t) X_0 + t X_1 on random x_0, x_1 and "
            "t in [0, 1]: equal -> 'holds'; equal to the main text at 1 - t (direction reversed) -> 'holds with "
            "correction'; otherwise 'refuted'."
        ),
        correction=(
            "Suppl. XI-B writes x_t = t x_0 + (1 - t) x_1, the forward FM path (noise at t = 0). The paper's rFM path "
            "(Sec. III-B, Suppl. eq. 12 of X-A, Algorithm 1) is x_t = (1 - t) x_0 + t x_1: data at t = 0, noise at "
            "t = 1. Read XI-B with t replaced by 1 - t."
            if verdict == HOLDS_WITH_CORRECTION
            else ""
        ),
    )


CROSS_REFERENCES_PRINTED = {"references": CROSS_REFERENCES}


def _duplicated_equation_numbers() -> list[int]:
    seen: dict[int, int] = {}
    for _, _, first, last in EQUATION_NUMBERS:
        for number in range(first, last + 1):
            seen[number] = seen.get(number, 0) + 1
    return sorted(n for n, count in seen.items() if count > 1)


def _cross_reference_correction(verdict: str, listing: str, restated: str) -> str:
    numbering = (
        "Duplicated numbering: the main text numbers eqs. (1)-(14), Suppl. IX continues with (15)-(26), and Suppl. X "
        "restarts at (11) and runs to (44), so eqs. (11)-(26) exist twice (the registry cites the supplement's as "
        f"'Suppl. eq. N'); {restated}, while Lemmas 2-5 and Proposition 1 keep their numbers when restated."
    )
    if verdict == REFUTED:
        return f"Broken references: {listing}. {numbering}"
    return numbering if verdict == HOLDS_WITH_CORRECTION else ""


def check_cross_references(size: str = "quick", printed: dict | None = None) -> ClaimResult:
    """Cross-references of the paper: every cited Lemma/Theorem must exist and mean what the sentence needs; statement
    and equation numbers must be unique.

    ``printed``: {"references": tuple of (line, quote, ((kind, number), ...), intended)} (default: as printed)."""
    check_size(size)
    references = printed_form("cross_references", CROSS_REFERENCES_PRINTED, printed)["references"]
    missing, wrong = [], []
    for line, _, cited, _ in references:
        for kind, number in cited:
            if number not in DEFINED[kind]:
                missing.append(f"line {line}: {kind} {number}")
            elif (line, kind, number) in WRONG_TARGETS:
                wrong.append(f"line {line}: {kind} {number} ({WRONG_TARGETS[(line, kind, number)]})")
    duplicated_eqs = _duplicated_equation_numbers()
    broken = bool(missing or wrong)
    verdict = REFUTED if broken else (HOLDS_WITH_CORRECTION if duplicated_eqs or RESTATED else HOLDS)
    listing = "; ".join(
        f"line {line} '{quote}' -> read {intended}" for line, quote, cited, intended in references
        if any(number not in DEFINED[kind] or (line, kind, number) in WRONG_TARGETS for kind, number in cited)
    )  # fmt: skip
    restated = "; ".join(f"Suppl. {kind} {n} (line {line}) restates {what}" for kind, n, line, what in RESTATED)
    return ClaimResult(
        claim_id="cross_references",
        verdict=verdict,
        measured={
            "references to statements that do not exist": ", ".join(missing) or "none",
            "references to the wrong statement": ", ".join(wrong) or "none",
            "equation numbers used twice": f"({duplicated_eqs[0]})-({duplicated_eqs[-1]})"
            if duplicated_eqs
            else "none",
            "statements restated under a new number": f"{len(RESTATED)}",
        },
        rule=(
            "Each cited Lemma/Theorem number must be one the paper defines (Lemmas 1-6, Theorems 1-5, Propositions "
            "1-2) and must be the statement the sentence needs; a missing or wrong target -> 'refuted'. Otherwise "
            "duplicated equation numbers or restatements under new numbers -> 'holds with correction'; else 'holds'."
        ),
        correction=_cross_reference_correction(verdict, listing, restated),
        data={"missing": missing, "wrong": wrong, "duplicated_equation_numbers": duplicated_eqs},
    )
