"""Shared pieces of the claim checks: verdicts, the result object and the registry entry.

A check is a function ``check(size) -> ClaimResult`` where ``size`` is ``"quick"`` (used by the
tests, seconds) or ``"full"`` (used by ``python -m theory.claims``). It computes numbers and then
derives its verdict from them with a rule whose tolerances are module constants quoted in
``ClaimResult.rule``; no verdict is ever stored.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = [
    "HOLDS",
    "HOLDS_WITH_CORRECTION",
    "LOOSE",
    "NOT_CHECKABLE",
    "REFUTED",
    "SIZES",
    "UNDETERMINED",
    "VERDICTS",
    "Claim",
    "ClaimResult",
    "check_size",
    "fmt",
    "printed_form",
    "single_threaded",
]

HOLDS = "holds"
HOLDS_WITH_CORRECTION = "holds with correction"
LOOSE = "loose by a factor"
REFUTED = "refuted"
NOT_CHECKABLE = "not checkable"
# A certified lower value and a certified upper value bracket the quantity, and the printed value lies between them.
UNDETERMINED = "undetermined"
VERDICTS = (HOLDS, HOLDS_WITH_CORRECTION, LOOSE, REFUTED, NOT_CHECKABLE, UNDETERMINED)

SIZES = ("quick", "full")


def check_size(size: str) -> str:
    """Validate the ``size`` argument of a check."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    return size


def printed_form(claim_id: str, paper: dict[str, Any], printed: dict[str, Any] | None) -> dict[str, Any]:
    """The printed constants, exponents and signs a check compares against: the paper's (``paper``) with the
    entries of ``printed`` replacing them (the mutation tests change them as data). Unknown keys raise."""
    printed = dict(printed or {})
    unknown = sorted(set(printed) - set(paper))
    if unknown:
        raise ValueError(f"{claim_id}: unknown printed-form key(s) {unknown}; expected from {sorted(paper)}")
    return paper | printed


def single_threaded(func: Callable) -> Callable:
    """Run ``func`` with one torch thread: the checks use many tiny tensors, for which thread hand-offs
    dominate (and stall badly when the cores are shared with other processes)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return func(*args, **kwargs)
        finally:
            torch.set_num_threads(previous)

    return wrapper


def fmt(value: float, digits: int = 4) -> str:
    """Compact number formatting for the tables (``4 significant digits``)."""
    if value != value:  # NaN
        return "nan"
    if value in (float("inf"), float("-inf")):
        return str(value)
    return f"{value:.{digits}g}"


@dataclass
class ClaimResult:
    """What one check measured and what follows from it.

    Attributes:
        claim_id: registry id, e.g. ``"lemma1"``.
        verdict: one of ``VERDICTS``, derived by ``rule`` from ``measured``.
        measured: the key numbers, name -> value (floats, ints or short strings).
        rule: the verdict rule with its tolerances, in words.
        correction: what the statement should say instead ("" when none is needed); it never
            contains size-dependent numbers, so quick and full runs give the same text.
        why_not_checkable: reason, when the verdict is ``not checkable``.
        notes: further observations (may contain measured numbers).
        data: arrays for figures and notebooks (numpy arrays, lists, dicts), not rendered.
    """

    claim_id: str
    verdict: str
    measured: dict[str, Any]
    rule: str
    correction: str = ""
    why_not_checkable: str = ""
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")
        if self.verdict == NOT_CHECKABLE and not self.why_not_checkable:
            raise ValueError(f"{self.claim_id}: a 'not checkable' verdict needs why_not_checkable")

    @property
    def verdict_text(self) -> str:
        """The verdict as printed in the table (with the reason for ``not checkable``)."""
        if self.verdict == NOT_CHECKABLE:
            return f"{NOT_CHECKABLE} ({self.why_not_checkable})"
        return self.verdict


@dataclass(frozen=True)
class Claim:
    """One formal statement of the paper and the function that checks it.

    Attributes:
        claim_id: short stable id used by the tests and the generated files.
        label: the paper's name for it, e.g. ``"Lemma 1"``.
        where: the section / equation it lives in.
        paper: the paper's wording, shortened.
        computes: what the check computes, in one or two sentences.
        check: ``check(size) -> ClaimResult``.
        needs: optional import names the check requires (e.g. ``("timm",)``); absent -> skipped.
    """

    claim_id: str
    label: str
    where: str
    paper: str
    computes: str
    check: Callable[[str], ClaimResult]
    needs: tuple[str, ...] = ()
