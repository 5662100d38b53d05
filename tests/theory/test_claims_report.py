"""The committed theory/CLAIMS.md and theory/ERRATA.md agree with a fresh quick-size run.

Numbers differ between quick and full size; ids, verdicts and corrections must not.
"""

import importlib.util
from pathlib import Path

import pytest

from theory.claims import REGISTRY, parse_claims_md, parse_errata_md, render_reports, run_claims
from theory.claims.report import write_text_atomic

THEORY = Path(__file__).resolve().parents[2] / "theory"


@pytest.fixture(scope="module")
def quick_reports():
    results, skipped = run_claims("quick")
    return results, skipped, *render_reports(results, skipped, "quick")


def test_committed_claims_table_matches_quick_run(quick_reports):
    results, skipped, claims_md, _ = quick_reports
    committed = parse_claims_md((THEORY / "CLAIMS.md").read_text(encoding="utf-8"))
    fresh = parse_claims_md(claims_md)
    assert set(committed) == {c.claim_id for c in REGISTRY}, "CLAIMS.md must list every registry entry"
    for claim_id, verdict in fresh.items():
        if claim_id in skipped:
            continue
        assert committed[claim_id] == verdict, f"{claim_id}: committed {committed[claim_id]!r}, quick run {verdict!r}"
    # Only checks whose packages are missing here may be absent from the fresh run.
    assert set(committed) - set(results) == set(skipped)


def test_committed_errata_match_quick_run(quick_reports):
    results, skipped, _, errata_md = quick_reports
    committed = parse_errata_md((THEORY / "ERRATA.md").read_text(encoding="utf-8"))
    fresh = parse_errata_md(errata_md)
    assert {k for k in committed if k not in skipped} == set(fresh)
    for claim_id, (verdict, correction) in fresh.items():
        assert committed[claim_id] == (verdict, correction)
        assert correction == results[claim_id].correction


def test_errata_entries_belong_to_claims_with_corrections(quick_reports):
    results, _, claims_md, errata_md = quick_reports
    errata = parse_errata_md(errata_md)
    verdicts = parse_claims_md(claims_md)
    for claim_id, (verdict, correction) in errata.items():
        assert verdicts[claim_id] == verdict and correction
    assert set(errata) == {k for k, r in results.items() if r.correction}


def test_skips_only_for_missing_optional_packages(quick_reports):
    _, skipped, _, _ = quick_reports
    for claim_id in skipped:
        claim = next(c for c in REGISTRY if c.claim_id == claim_id)
        assert claim.needs and any(importlib.util.find_spec(n) is None for n in claim.needs)


def test_write_text_atomic(tmp_path):
    path = write_text_atomic(tmp_path / "x.md", "hello\n")
    assert path.read_text() == "hello\n" and [p.name for p in tmp_path.iterdir()] == ["x.md"]
