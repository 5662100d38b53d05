"""Mutation tests: each claim's printed form (constant, exponent, sign, direction) is data of its check; changing it
must move the verdict in the right direction. One test per registry claim, at quick size."""

import importlib.util

import pytest

from theory.claims import REFUTED, REGISTRY, UNDETERMINED, claim_by_id
from theory.claims.paper_text import CROSS_REFERENCES, DEFINED, WRONG_TARGETS

HOLDS, CORRECTED, LOOSE, NOT_CHECKABLE = "holds", "holds with correction", "loose by a factor", "not checkable"


def _corrected_references():
    """The paper's references with every missing or wrong citation removed (what a corrected text would cite)."""
    return tuple(
        (
            line,
            quote,
            tuple((k, n) for k, n in cited if n in DEFINED[k] and (line, k, n) not in WRONG_TARGETS),
            intended,
        )
        for line, quote, cited, intended in CROSS_REFERENCES
    )


# claim id -> (verdict as printed, mutated printed form, verdict after the mutation)
MUTATIONS = {
    "lemma1": (CORRECTED, {"form": "product"}, HOLDS),
    "theorem1": (HOLDS, {"t_exponent": 2.0}, REFUTED),
    "lemma2": (CORRECTED, {"score_coefficient": +1.0}, REFUTED),
    "eq24": (HOLDS, {"cov_x_offset": 1.0}, REFUTED),
    "lemma3": (HOLDS, {"D_exponent": 1.0}, REFUTED),
    "eq26": (LOOSE, {"coefficient": 0.2}, REFUTED),
    "eq28": (LOOSE, {"scale": 0.1}, REFUTED),
    "r_substitution": (HOLDS, {"radius_exponent": 1.0}, REFUTED),
    "lemma4": (LOOSE, {"coefficient": 0.25}, HOLDS),
    "eq32": (REFUTED, {"power_form": False, "coefficient": 0.25}, HOLDS),
    "theorem2": (CORRECTED, {"domain": "box"}, HOLDS),
    "prop1": (CORRECTED, {"limit_coefficient": -2.0}, REFUTED),
    "eq13": (CORRECTED, {"sign": +1.0}, HOLDS),
    "prop2": (REFUTED, {"directions": ("orthogonal", "opposite", "aligned", "mixed")}, CORRECTED),
    "lemma5": (CORRECTED, {"radius_squared_offset": -1.0}, REFUTED),
    "lemma6": (HOLDS, {"eps_in_denominator": False}, REFUTED),
    "lemma6_per_sample": (CORRECTED, {"fraction_below": 0.5}, HOLDS),
    "obs1": (NOT_CHECKABLE, {"radius_factor": 2.0}, HOLDS),
    "obs2": (CORRECTED, {"order": "expand-then-contract"}, REFUTED),
    "wrn50_radius": (REFUTED, {"radius_512": 1024.0, "radius_256": 512.0}, HOLDS),
    "xib_interpolation": (CORRECTED, {"x0_weight": "1-t"}, HOLDS),
    "cross_references": (REFUTED, {"references": _corrected_references()}, CORRECTED),
}


def test_every_claim_has_a_mutation():
    assert set(MUTATIONS) == {c.claim_id for c in REGISTRY}


@pytest.mark.parametrize("claim_id", list(MUTATIONS))
def test_mutated_printed_form_changes_the_verdict(claim_id):
    claim = claim_by_id(claim_id)
    if claim.needs and any(importlib.util.find_spec(n) is None for n in claim.needs):
        pytest.skip(f"{claim_id} needs {claim.needs} (the project's 'bench' extra)")
    printed, mutation, mutated = MUTATIONS[claim_id]
    assert claim.check("quick").verdict == printed
    assert claim.check("quick", printed=mutation).verdict == mutated


def test_eq28_inside_the_certified_gap_is_undetermined():
    """A bound between the certified lower value C and the upper estimate U is neither confirmed nor refuted."""
    check = claim_by_id("eq28").check
    data = check("quick").data
    scale = 1.05 * float(data["ratio_sup_to_eq28"].max())  # just above the largest C / eq. 28
    assert float(data["ratio_upper_to_eq28"].max()) > scale  # ... and below U / eq. 28 there
    result = check("quick", printed={"scale": scale})
    assert result.verdict == UNDETERMINED
    assert "certified lower" in result.measured["undetermined at (D, T)"]


def test_observation1_verdict_follows_the_endpoints():
    from theory.claims.observations import observation1_verdict

    counts = {2: 64, 16: 64}
    assert observation1_verdict({2: 0.5, 16: 0.5}, counts) == HOLDS
    assert observation1_verdict({2: 1.0, 16: 1.0}, counts) == NOT_CHECKABLE
    assert observation1_verdict({2: 1.5, 16: 1.5}, counts) == REFUTED


def test_unknown_printed_key_is_refused():
    with pytest.raises(ValueError, match="unknown printed-form key"):
        claim_by_id("eq13").check("quick", printed={"sgn": 1.0})
