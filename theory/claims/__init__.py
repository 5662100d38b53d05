"""Every formal statement of the WT-Flow paper as an executable check.

``REGISTRY`` lists the statements in paper order; each ``Claim`` holds the paper's wording, what is
computed and a ``check(size)`` returning a ``ClaimResult`` (numbers, a verdict derived by a stated rule,
the correction, notes, and arrays for figures in ``result.data``). ``size`` is ``"quick"`` (tests) or
``"full"`` (``python -m theory.claims``, which writes CLAIMS.md and ERRATA.md to a run folder, or with
``--update`` to theory/). Every check also takes ``printed``, the paper's constants, exponents and signs as data:
``check(size, printed={...})`` re-derives the verdict for a changed printed form (tests/theory/test_mutations.py).

    from theory.claims import run_claim
    r = run_claim("lemma4", "quick")
    r.verdict, r.measured, r.data["ratio_sup_to_printed"]      # ratio per (D, T) for the bounds figure
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from . import annulus, cpf, features, lipschitz, normalization, paper_text
from ._base import (
    HOLDS,
    HOLDS_WITH_CORRECTION,
    LOOSE,
    NOT_CHECKABLE,
    REFUTED,
    SIZES,
    UNDETERMINED,
    VERDICTS,
    Claim,
    ClaimResult,
)
from .report import parse_claims_md, parse_errata_md, render_claims_md, render_errata_md, write_text_atomic

__all__ = [
    "HOLDS",
    "HOLDS_WITH_CORRECTION",
    "LOOSE",
    "NOT_CHECKABLE",
    "REFUTED",
    "REGISTRY",
    "SIZES",
    "UNDETERMINED",
    "VERDICTS",
    "Claim",
    "ClaimResult",
    "claim_by_id",
    "missing_requirements",
    "parse_claims_md",
    "parse_errata_md",
    "render_reports",
    "run_claim",
    "run_claims",
    "write_reports",
]

THEORY_DIR = Path(__file__).resolve().parent.parent

REGISTRY: tuple[Claim, ...] = (
    Claim(
        "lemma1",
        "Lemma 1",
        "Sec. I-B",
        "For D-dim N(0, I) and beta <= sqrt(D), all but at most 3e^{-c^{beta^2}} of the mass lies in "
        "sqrt(D) - beta <= ||x|| <= sqrt(D) + beta.",
        "Exact chi-law tail for D = 1..2^18 and beta in (0, sqrt(D)]; largest valid c for the printed "
        "3exp(-c^(beta^2)) "
        "and for the intended 3exp(-c beta^2).",
        annulus.check_lemma1,
    ),
    Claim(
        "theorem1",
        "Theorem 1",
        "Sec. I-C, Suppl. eq. 16",
        "The conditional field u(x, t | x_0) has an initial singularity at t = 0 that leaves u(x, 0 | x_0) undefined.",
        "Eq. 6 against (x - x_0)/t; blow-up exponent off x_0; value at x_0 and along the conditional path; forward "
        "FM's mirror singularity at t = 1.",
        cpf.check_theorem1,
    ),
    Claim(
        "lemma2",
        "Lemma 2",
        "eq. 9, Suppl. eqs. 17-18",
        "u(x, t) = -x/(1-t) - t/(1-t) grad log p_t(x).",
        "u from posterior means vs eq. 9 with the autograd score, for Gaussian, ring and point targets (population and "
        "empirical sources); cross-checked with theory.fields.",
        lipschitz.check_lemma2,
    ),
    Claim(
        "eq24",
        "d_t u and grad_x u formulas",
        "Suppl. eqs. 24, 31",
        "d_t u = -(x - E0)/t^2 + (2-t)/t^4 Cov x - (1-t)/t^4 Cov(X_0, ||X_0||^2); grad_x u = I/t - (1-t)/t^3 Cov.",
        "Both formulas vs autograd of u = (x - E0)/t for random atom sources; vs theory.fields.",
        lipschitz.check_eq24,
    ),
    Claim(
        "lemma3",
        "Lemma 3",
        "eq. 10, Suppl. eq. 19",
        "sup_{t in [T,1]} sup_{x in [-R,R]^D} ||d_t u|| = O(D^2/T^4), R <= sqrt(D).",
        "Certified supremum over sources on [0,1]^D (Assumption 1) from both sides: two-atom construction (realised by "
        "a source) and a Cauchy-Schwarz/Popoviciu upper bound; random and projected-Adam searches; D = 1..64, "
        "T = 0.01..0.3.",
        lipschitz.check_lemma3,
    ),
    Claim(
        "eq26",
        "Covariance bound",
        "Suppl. eq. 26",
        "||Cov[X_0 | X_t = x]||_op <= 2D for sources on [0,1]^D.",
        "Largest posterior variance over laws on [0,1]^D (Popoviciu, attained by atoms {0, 1}).",
        lipschitz.check_eq26,
    ),
    Claim(
        "eq28",
        "Lemma 3's bound",
        "Suppl. eqs. 27-28",
        "sup ||d_t u|| = D/T^2 + sqrt(D)/T^2 + 2(2-T)D^2/T^4 + 2(1-T)D^1.5/T^4 (printed with '=').",
        "Certified supremum (see lemma3) divided by eq. 28, per (D, T).",
        lipschitz.check_eq28,
    ),
    Claim(
        "r_substitution",
        "R -> sqrt(D) substitution",
        "Suppl. eq. 27 -> 28",
        "'Considering Lemma 5, for sufficiently high D' R is replaced by sqrt(D).",
        "Monotonicity of eq. 27 in R; eq. 27 at R = sqrt(D) vs eq. 28; box vs ball ||x|| <= sqrt(D) constructions.",
        lipschitz.check_r_substitution,
    ),
    Claim(
        "lemma4",
        "Lemma 4",
        "eq. 11, Suppl. eq. 29",
        "sup_{t in [T,1]} sup_{x in [-R,R]^D} ||grad_x u|| <= max{1/T, (1-T)D/T^3}.",
        "Exact supremum max_t max(1/t, (1-t)D/(4t^3) - 1/t) (Popoviciu + attaining construction, checked with autograd "
        "and searches) divided by the printed bound, per (D, T).",
        lipschitz.check_lemma4,
    ),
    Claim(
        "eq32",
        "Spectral bounds of grad_x u",
        "Suppl. eq. 32",
        "(1/T - (1-T)^D/T^3) I <= grad_x u <= I/T.",
        "Smallest and largest eigenvalue of grad_x u at the attaining construction vs the printed bounds.",
        lipschitz.check_eq32,
    ),
    Claim(
        "theorem2",
        "Theorem 2",
        "Sec. I-C, Suppl. Theorem 4",
        "Under Assumption 1, u is jointly xi-Lipschitz on R^D x [T, 1] with xi <= max{1/T, (1-T)D/T^3, O(D^2/T^4)}.",
        "Growth of ||d_t u(r e, T)|| with r (R^D vs bounded domains); joint constant from the certified suprema.",
        lipschitz.check_theorem2,
    ),
    Claim(
        "prop1",
        "Proposition 1 / eq. 12",
        "Sec. III-D, Suppl. eqs. 43-46",
        "Under Assumptions 1-2, u(x, t) -> E[X_1] - x = -x as t -> 0 (centripetal), magnitude increasing in d = "
        "||x_0||.",
        "Exact fields near t = 0 for population mixtures (rate), an empirical training set (at and off the atoms), a "
        "Gaussian on an affine subspace, a thin source, and the uniform sqrt(D)-sphere (LN-like).",
        cpf.check_proposition1,
    ),
    Claim(
        "eq13",
        "eq. 13 (CPF on a ring)",
        "Sec. III-D",
        "V(d) = -(1/2pi) int_0^2pi (R cos th - d, R sin th) dth = -d; |V(d)| increasing in d.",
        "The printed integral by quadrature; the exact ring-target field at (d, 0) for t -> 0; d < R and d > R.",
        cpf.check_eq13,
    ),
    Claim(
        "prop2",
        "Proposition 2",
        "Sec. III-D",
        "Under Assumptions 1-2, u(x, 0) of WT-Flow is orthogonal or opposite to the OT direction at each sample.",
        "Angle between the exact u(x, 0+) and the OT displacement (closed-form maps, and POT's ot.emd for n = "
        "64..2048) "
        "for BN-like and LN-like, isotropic and manifold sources, Gaussian and sphere targets, D = 2 and 64.",
        cpf.check_proposition2,
        needs=("ot",),
    ),
    Claim(
        "lemma5",
        "Lemma 5",
        "eq. 14, Suppl. eqs. 33-38",
        "Under Assumptions 1-2 and non-trivial data, ||LN(x)||_2 = R = sqrt(D).",
        "torch layer_norm on inputs violating the assumptions; eps and unbiased-variance variants; constant input.",
        normalization.check_lemma5,
    ),
    Claim(
        "lemma6",
        "Lemma 6",
        "Suppl. eqs. 39-42",
        "E||BN(x)||_F^2 ~ D; the batch average equals sum_c HW s_c^2/(s_c^2 + eps) -> D.",
        "Eq. 42 for sparse ReLU features, several batch sizes and eps; against torch batch_norm.",
        normalization.check_lemma6,
    ),
    Claim(
        "lemma6_per_sample",
        "BN per-sample norms",
        "Suppl. X-C after eq. 42, XI-B",
        "Individual BN norms fall below the Gaussian radius due to feature sparsity (Table XIII: 46-265 vs 512).",
        "Per-sample ||BN(x)||/sqrt(D) for ReLU(low-rank Gaussian) features with 0-99.7% zeros, batch (N = 8) and "
        "running statistics; Table XIII against the batch-statistics floor sqrt(D_eff/N).",
        normalization.check_lemma6_per_sample,
    ),
    Claim(
        "obs1",
        "Observation 1",
        "Sec. I-A",
        "rFM fails to map x_0 onto the Gaussian annulus: ||x_1|| < sqrt(D).",
        "Exact field integrated from t0 (dopri5) for a population and an empirical source, Gaussian target; mean "
        "endpoint norm vs E chi_D.",
        cpf.check_observation1,
    ),
    Claim(
        "obs2",
        "Observation 2",
        "Sec. I-A",
        "||x_t|| first contracts and then expands.",
        "Fraction of exact-field trajectories with an interior minimum of ||x_t||.",
        cpf.check_observation2,
    ),
    Claim(
        "wrn50_radius",
        "Gaussian radius of the features",
        "Suppl. XI-B eq. 48",
        "WideResNet-50 third-stage features at 512^2 give R = sqrt(CHW) = 512 (transistor, 256^2: 256).",
        "Layer3 shapes of timm's wide_resnet50_2 (no weights) on zeros of shape (1, 3, 512, 512) and (1, 3, 256, 256).",
        features.check_wrn50_radius,
        needs=("timm",),
    ),
    Claim(
        "xib_interpolation",
        "Interpolation in Suppl. XI-B",
        "Suppl. XI-B",
        "'The sample position at time t is computed as x_t = t x_0 + (1 - t) x_1.'",
        "The printed interpolation against the main text's X_t = (1 - t) X_0 + t X_1 on random x_0, x_1 and t.",
        paper_text.check_xib_interpolation,
    ),
    Claim(
        "cross_references",
        "Cross-references and numbering",
        "Secs. III-C, III-D, Suppl. IX-X",
        "References to 'Lemmas 10 and 29', 'Theorem 3', 'Lemma 33', 'Lemmas (3) and (29)'; equation and theorem "
        "numbering of main text and supplement.",
        "Each cited number against the statements the paper defines (quoted lines); duplicated equation numbers and "
        "restatements under new numbers.",
        paper_text.check_cross_references,
    ),
)


def claim_by_id(claim_id: str) -> Claim:
    """The registry entry with this id."""
    for claim in REGISTRY:
        if claim.claim_id == claim_id:
            return claim
    raise ValueError(f"unknown claim id {claim_id!r}; expected one of {', '.join(c.claim_id for c in REGISTRY)}")


def missing_requirements(claim: Claim) -> list[str]:
    """Import names the claim needs that are not installed."""
    return [name for name in claim.needs if importlib.util.find_spec(name) is None]


_RESULTS: dict[tuple[str, str], ClaimResult] = {}


def run_claim(claim_id: str, size: str = "quick", use_cache: bool = True) -> ClaimResult:
    """Run one check (checks are seeded, so a result is cached per (id, size) unless ``use_cache`` is False).

    Raises ImportError naming the package if a requirement is missing.
    """
    claim = claim_by_id(claim_id)
    if use_cache and (claim_id, size) in _RESULTS:
        return _RESULTS[(claim_id, size)]
    missing = missing_requirements(claim)
    if missing:
        raise ImportError(f"claim {claim_id!r} needs {', '.join(missing)} (install the project's 'bench' extra)")
    result = claim.check(size)
    if result.claim_id != claim_id:
        raise RuntimeError(f"check for {claim_id!r} returned a result for {result.claim_id!r}")
    _RESULTS[(claim_id, size)] = result
    return result


def run_claims(size: str = "quick", ids=None) -> tuple[dict[str, ClaimResult], dict[str, str]]:
    """Run the registry (or the listed ids): (results by id, skipped id -> reason)."""
    results, skipped = {}, {}
    for claim in REGISTRY:
        if ids is not None and claim.claim_id not in ids:
            continue
        missing = missing_requirements(claim)
        if missing:
            skipped[claim.claim_id] = f"needs {', '.join(missing)}"
            continue
        results[claim.claim_id] = run_claim(claim.claim_id, size)
    return results, skipped


def render_reports(results: dict[str, ClaimResult], skipped: dict[str, str], size: str) -> tuple[str, str]:
    """(CLAIMS.md text, ERRATA.md text)."""
    return render_claims_md(REGISTRY, results, size, skipped), render_errata_md(REGISTRY, results, size)


def write_reports(
    results: dict[str, ClaimResult], skipped: dict[str, str], size: str, out_dir=THEORY_DIR
) -> tuple[Path, Path]:
    """Write CLAIMS.md and ERRATA.md atomically into ``out_dir`` (default: theory/)."""
    claims_md, errata_md = render_reports(results, skipped, size)
    out_dir = Path(out_dir)
    return write_text_atomic(out_dir / "CLAIMS.md", claims_md), write_text_atomic(out_dir / "ERRATA.md", errata_md)
