"""Every claim check at quick size: the verdict its rule gives, and the numbers behind it asserted directly.

Building blocks (the independent posterior forms, the chi tails, the vMF ratio) are checked against a second
computation: autograd, quadrature, theory.fields or scipy.
"""

import importlib.util
import math

import numpy as np
import pytest
import torch
from scipy import stats

import theory
from theory.claims import (
    HOLDS,
    HOLDS_WITH_CORRECTION,
    LOOSE,
    NOT_CHECKABLE,
    REFUTED,
    REGISTRY,
    VERDICTS,
    ClaimResult,
    run_claim,
)
from theory.claims._posterior import (
    AtomSource,
    gaussian_source_velocity,
    one_minus_mean_resultant_length,
    subsphere_source_velocity,
)
from theory.claims.annulus import C_INTENDED_LIMIT, chi_log_tail
from theory.claims.cpf import angles_deg, expected_chi
from theory.claims.lipschitz import lemma3_construction, lemma3_upper_bound, lemma4_printed, lemma4_sup
from wtflow.distributions import GaussianMixture, StandardGaussian, UniformSphere


def quick(claim_id: str) -> ClaimResult:
    return run_claim(claim_id, "quick")


# ------------------------------------------------------------------------------------------------
# Building blocks
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dim", [1, 7, 400])
def test_chi_tail_quadrature_matches_scipy(dim):
    root = math.sqrt(dim)
    for beta in (0.3 * root, 0.5 * root):
        assert chi_log_tail(root + beta, dim, upper=True) == pytest.approx(stats.chi.logsf(root + beta, dim), rel=1e-9)
        assert chi_log_tail(root - beta, dim, upper=False) == pytest.approx(
            stats.chi.logcdf(root - beta, dim), rel=1e-9
        )


def test_chi_tail_beyond_scipy_underflow_follows_cramer_rate():
    # P(chi_D^2 > 4D) = exp(-D (3 - ln 4)/2 + O(log D)): scipy returns -inf here, the quadrature does not.
    dim = 2**18
    log_p = chi_log_tail(2 * math.sqrt(dim), dim, upper=True)
    assert stats.chi.logsf(2 * math.sqrt(dim), dim) == -np.inf
    assert -log_p / dim == pytest.approx(C_INTENDED_LIMIT, rel=1e-4)


def test_atom_source_formulas_against_autograd():
    gen = torch.Generator().manual_seed(0)
    atoms = torch.rand(4, 5, generator=gen, dtype=torch.float64)
    src = AtomSource(atoms, torch.randn(4, generator=gen, dtype=torch.float64))
    x = torch.rand(1, 5, generator=gen, dtype=torch.float64)
    t = torch.tensor(0.3, dtype=torch.float64)
    dt_auto = torch.autograd.functional.jacobian(lambda s: src.velocity(x, s)[0], t)
    jac_auto = torch.autograd.functional.jacobian(lambda y: src.velocity(y.unsqueeze(0), t)[0], x[0])
    torch.testing.assert_close(src.time_derivative(x, t)[0], dt_auto, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(src.jacobian(x, t)[0], jac_auto, rtol=1e-9, atol=1e-12)


def test_gaussian_source_velocity_matches_fields_for_isotropic_gaussian():
    gen = torch.Generator().manual_seed(1)
    dim = 6
    mean = torch.randn(dim, generator=gen, dtype=torch.float64)
    x = torch.randn(10, dim, generator=gen, dtype=torch.float64)
    src = GaussianMixture(mean.unsqueeze(0), torch.tensor([0.7], dtype=torch.float64))
    for t in (1e-3, 0.2, 0.8):
        ours = gaussian_source_velocity(x, t, mean, 0.49 * torch.eye(dim, dtype=torch.float64))
        torch.testing.assert_close(ours, theory.marginal_velocity(x, t, src, StandardGaussian(dim)), rtol=1e-10, atol=0)


def test_subsphere_velocity_matches_quadrature_on_a_ring():
    # Ring source of radius r in 2-D: E0 = r E[e_theta] under the posterior exp((1 - t) x . X_0 / t^2).
    r = 1.7
    theta = torch.arange(4096, dtype=torch.float64) * (2 * math.pi / 4096)
    ring = r * torch.stack([torch.cos(theta), torch.sin(theta)], dim=1)
    x = torch.tensor([[1.7, 0.0], [0.5, -1.0], [3.0, 2.0]], dtype=torch.float64)
    for t in (0.05, 0.3, 0.7):
        post = torch.softmax((1 - t) * x @ ring.T / t**2, dim=1)
        expected = (x - post @ ring) / t
        ours = subsphere_source_velocity(x, t, torch.eye(2, dtype=torch.float64), r)
        torch.testing.assert_close(ours, expected, rtol=1e-10, atol=1e-12)


def test_vmf_gap_matches_theory_vmf_and_asymptotics():
    for k in (2, 16, 64):
        for kappa in (0.5, 30.0, 2e3):
            assert one_minus_mean_resultant_length(np.array([kappa]), k)[0] == pytest.approx(
                1 - theory.mean_resultant_length(k, kappa), rel=1e-9
            )
        # Large kappa: 1 - A = (k - 1)/(2 kappa) + O(kappa^-2), where ive() fails.
        kappa = 1e12
        assert one_minus_mean_resultant_length(np.array([kappa]), k)[0] == pytest.approx(
            (k - 1) / (2 * kappa), rel=1e-9
        )


def test_lemma4_sup_is_attained_and_not_exceeded_on_a_grid():
    # Brute force over x on the diagonal and t for atoms {0, 1}, D = 3, T = 0.1.
    dim, t_min = 3, 0.1
    src = AtomSource(torch.stack([torch.zeros(dim, dtype=torch.float64), torch.ones(dim, dtype=torch.float64)]))
    best = 0.0
    for t in np.linspace(t_min, 1.0, 10):
        grid = torch.linspace(-math.sqrt(dim), math.sqrt(dim), 801, dtype=torch.float64)
        xi = torch.cat([grid, torch.tensor([(1 - t) / 2], dtype=torch.float64)])  # plus the balanced point
        x = xi[:, None].expand(-1, dim)
        best = max(best, float(torch.linalg.matrix_norm(src.jacobian(x, float(t)), ord=2).max()))
    assert best <= lemma4_sup(dim, t_min) * (1 + 1e-9)
    assert best >= 0.999 * lemma4_sup(dim, t_min)
    assert lemma4_sup(dim, t_min) < lemma4_printed(dim, t_min)


def test_lemma3_construction_below_upper_bound_and_of_order_d2_t4():
    for dim, t_min in ((4, 0.1), (64, 0.05)):
        value, arg = lemma3_construction(dim, t_min, math.sqrt(dim))
        upper = lemma3_upper_bound(dim, t_min, math.sqrt(dim))
        assert value <= upper
        assert 0 <= arg["p"] <= 1 and t_min <= arg["t"] <= 1
    # Leading order (2 - T) D^2 / (4 T^4) at large D.
    assert value * t_min**4 / dim**2 == pytest.approx((2 - t_min) / 4, rel=0.1)


def test_angles_and_expected_chi():
    a = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    b = np.array([[-2.0, 0.0], [0.0, 3.0], [1.0, 1.0]])
    out = angles_deg(a, b)
    assert out[0] == pytest.approx(180.0) and out[1] == pytest.approx(90.0) and np.isnan(out[2])
    rng = np.random.default_rng(0)
    assert expected_chi(5) == pytest.approx(np.linalg.norm(rng.standard_normal((200000, 5)), axis=1).mean(), rel=5e-3)


# ------------------------------------------------------------------------------------------------
# Registry
# ------------------------------------------------------------------------------------------------


def test_registry_ids_unique_and_results_well_formed():
    ids = [c.claim_id for c in REGISTRY]
    assert len(ids) == len(set(ids))
    with pytest.raises(ValueError, match="verdict must be one of"):
        ClaimResult("x", "probably", {}, "rule")
    with pytest.raises(ValueError, match="needs why_not_checkable"):
        ClaimResult("x", NOT_CHECKABLE, {}, "rule")
    with pytest.raises(ValueError, match="unknown claim id 'nope'"):
        run_claim("nope")
    with pytest.raises(ValueError, match="size must be one of"):
        REGISTRY[0].check("medium")


# ------------------------------------------------------------------------------------------------
# Each claim: expected verdict, and the facts it rests on
# ------------------------------------------------------------------------------------------------


def test_lemma1():
    r = quick("lemma1")
    assert r.verdict == HOLDS_WITH_CORRECTION
    c_int, c_pr = r.data["c_max_intended"], r.data["c_max_printed"]
    assert c_int.min() >= C_INTENDED_LIMIT and c_int.min() < C_INTENDED_LIMIT + 0.01  # tends to (3 - ln 4)/2
    assert c_int.min() > 0.5  # so c = 1/2 is valid for every D examined
    assert np.all(c_pr > 1) and c_pr[-1] - 1 < 0.01  # printed form: largest valid c -> 1 from above
    assert r.data["cross_check_max_abs_diff"] < 1e-8


def test_theorem1():
    r = quick("theorem1")
    assert r.verdict == HOLDS
    t, norm = r.data["t"], r.data["norm_off_x0"]
    np.testing.assert_allclose(norm * t, norm[0] * t[0], rtol=1e-12)  # ||u|| = ||x - x_0|| / t


def test_lemma2():
    r = quick("lemma2")
    assert r.verdict == HOLDS_WITH_CORRECTION
    errs, meds = r.data["max_errors"], r.data["median_errors"]
    assert max(v for k, v in errs.items() if k.startswith("gaussian")) < 1e-9
    assert meds["ring, population D=2"] > 1e-2 and meds["point, population D=2"] > 1e-2
    assert "Gaussian" in r.correction or "N(0, I)" in r.correction


def test_eq24():
    r = quick("eq24")
    assert r.verdict == HOLDS
    assert float(r.measured["eq. 24 vs autograd d_t u (max rel.)"]) < 1e-8
    assert float(r.measured["independent forms vs theory.fields (max rel.)"]) < 1e-8


def test_lemma3():
    r = quick("lemma3")
    assert r.verdict == HOLDS
    d = r.data
    # Fitted growth orders of the certified bracket are D^2/T^4; realistic (equal-weight) sources grow much slower.
    for key in ("C", "U"):
        assert d["fits"][key]["D"] == pytest.approx(2.0, abs=0.25) and d["fits"][key]["T"] == pytest.approx(4, abs=0.25)
    assert d["fits"]["equal"]["D"] < 1.7 and d["fits"]["equal"]["T"] < 3.5
    assert np.all(d["C"] <= d["U"] * (1 + 1e-12))
    # Certified from both sides: at the largest D the gap is small and the order D^2/T^4 is attained.
    assert np.all(d["C"][-1] / d["U"][-1] > 0.9)
    assert np.all(d["C"][-1] * d["T"] ** 4 / d["dims"][-1] ** 2 > 0.3)
    # Searches never beat the upper bound; free-weight search gets close to the construction, random search does not.
    assert np.all(d["free"] <= d["U"]) and np.max(d["free"] / d["C"]) > 0.8
    assert d["random"][-1, 0] / d["C"][-1, 0] < 0.5
    np.testing.assert_allclose(d["realised"], d["C"], rtol=1e-6)


def test_eq26_eq28_r_substitution():
    r26, r28, rsub = quick("eq26"), quick("eq28"), quick("r_substitution")
    assert r26.verdict == LOOSE
    np.testing.assert_allclose(r26.data["lambda_max"] / r26.data["dims"], 0.25, rtol=1e-9)  # D/4, not 2D
    assert r28.verdict == LOOSE
    ratio = r28.data["ratio_sup_to_eq28"]
    assert np.all(ratio < 0.5) and np.all(r28.data["ratio_upper_to_eq28"] <= 1)
    assert ratio[-1].min() == pytest.approx(1 / 8, rel=0.15)  # (2-T)D^2/(4T^4) vs 2(2-T)D^2/T^4
    assert rsub.verdict == HOLDS


def test_lemma4_and_eq32():
    r = quick("lemma4")
    assert r.verdict == LOOSE
    d = r.data
    assert np.all(d["ratio_sup_to_printed"] <= 1)  # the printed bound is valid ...
    assert d["ratio_sup_to_printed"].max() <= 0.25 + 1e-3  # ... and at least ~4 times the supremum here
    np.testing.assert_allclose(d["construction_eq31"], d["value_at_T"], rtol=1e-8)
    np.testing.assert_allclose(d["construction_autograd"], d["construction_eq31"], rtol=1e-10)
    assert np.all(d["gradient_search_max"] <= d["certified_sup"] * (1 + 1e-9))
    assert np.all(d["gradient_search_max"] / d["certified_sup"] > 0.95)  # free weights: search finds the sup
    assert d["random_search_max"][-1, 0] / d["certified_sup"][-1, 0] < 0.5  # random points do not
    r32 = quick("eq32")
    assert r32.verdict == REFUTED
    lower, attained = r32.data["printed_lower"], r32.data["attained_min"]
    assert np.any(attained < lower) and np.all(attained[r32.data["dims"] == 1] >= lower[r32.data["dims"] == 1])


def test_theorem2():
    r = quick("theorem2")
    assert r.verdict == HOLDS_WITH_CORRECTION
    assert np.max(r.data["slope_errors"]) < 1e-6  # d_t u grows like ||x|| / T^2: unbounded on R^D
    assert np.all(np.isfinite(r.data["joint_constant_box"]))


def test_prop1():
    r = quick("prop1")
    assert r.verdict == HOLDS_WITH_CORRECTION
    np.testing.assert_allclose(r.data["population_slopes"], 1.0, atol=0.05)  # ||u + x|| = O(t)
    assert r.data["sphere_ratio"][0] < 1e-4  # LN-like support: u(x, 0+) = 0
    # Direct: empirical source, u at a training point vanishes while -m_k does not.
    atoms = torch.tensor([[1.0, 0.0], [-1.0, 0.5], [0.3, 2.0]], dtype=torch.float64)
    emp = GaussianMixture.empirical(atoms)
    u = theory.marginal_velocity(atoms, 0.01, emp, StandardGaussian(2))
    assert float(u.norm(dim=1).max()) < 1e-10


def test_eq13():
    r = quick("eq13")
    assert r.verdict == HOLDS_WITH_CORRECTION
    for (d, _), u in r.data["field_values"].items():
        np.testing.assert_allclose(u, [-d, 0.0], rtol=0, atol=1e-3 * d)  # centripetal, independent of R


@pytest.mark.skipif(importlib.util.find_spec("ot") is None, reason="POT (bench extra) not installed")
def test_prop2():
    r = quick("prop2")
    assert r.verdict == REFUTED
    rows = {(row["D"], row["regime"], row["name"].split()[0], row["target"]): row for row in r.data["rows"]}
    for dim in (2, 64):
        iso = rows[(dim, "BN", "isotropic", "gaussian")]
        assert iso["closed_form_class"] == "opposite" and iso["u0_over_x_median"] == pytest.approx(1.0)
        assert rows[(dim, "LN", "uniform", "gaussian")]["u0_over_x_median"] < 1e-6
        assert rows[(dim, "LN", "uniform", "sphere")]["closed_form_class"] == "OT is the identity"
        assert rows[(dim, "LN", "uniform", "sphere")]["u0_over_x_median"] == 0.0
        # In the paper's own terms (u = -x) the LN -> Gaussian case is aligned with OT: the refutation.
        ln = rows[(dim, "LN", "uniform", "gaussian")]
        assert ln["paper_field_class"] == "aligned" and ln["closed_form_class"] == "opposite"
        assert float(np.median(ln["paper_field_angles"])) < 1.0
    # 4-dim manifold at BN radius in D = 64: per-direction spread 4 > 1, so OT points inward like u: aligned.
    assert rows[(64, "BN", "4-dim", "gaussian")]["closed_form_class"] == "aligned"
    # Finite-sample OT in 64-D: angles near 80 deg although the exact answer is 180 deg.
    assert 60 < iso["finite_median_by_n"][256] < 100


def test_same_sphere_source_and_target_give_zero_field():
    # Prop. 2's LN case with the sphere target: on the common sphere X_0 = X_1 = x, so u = 0 for all t (theory.fields).
    gen = torch.Generator().manual_seed(3)
    dim = 16
    x = torch.randn(6, dim, generator=gen, dtype=torch.float64)
    x = math.sqrt(dim) * x / x.norm(dim=1, keepdim=True)
    emp = GaussianMixture.empirical(x)
    for t in (0.01, 0.5, 0.9):
        assert float(theory.marginal_velocity(x, t, emp, UniformSphere(dim)).norm(dim=1).max()) < 1e-10


def test_lemma5():
    r = quick("lemma5")
    assert r.verdict == HOLDS_WITH_CORRECTION  # the image is the (D-2)-sphere in the zero-mean hyperplane
    image = {k: v for k, v in r.measured.items() if k.startswith("image")}
    assert any(v == "15" for v in image.values())  # D = 16: rank D - 1
    assert 1e-8 < float(r.measured["float32 torch layer_norm, same inputs: max | ||LN(x)||/sqrt(D) - 1 |"]) < 1e-4
    implied = r.data["implied_sigma2_over_eps"]
    assert 40 < min(implied.values()) < max(implied.values()) < 200


def test_lemma6_and_per_sample():
    assert quick("lemma6").verdict == HOLDS
    r = quick("lemma6_per_sample")
    assert r.verdict == HOLDS_WITH_CORRECTION
    rows = r.data["rows"]
    # Batch average of ||BN||^2 is D_eff: every batch has a sample at or above sqrt(D_eff), so not all fall below.
    assert all(row["batch_min_max_sq_over_d_eff"] >= 1 for row in rows)
    assert all(0 < row["batch_fraction_below_d_eff"] < 1 for row in rows)
    assert all(row["batch_mean"] < 1 for row in rows)
    assert rows[0]["batch_mean"] > 0.95 and rows[-1]["batch_mean"] < 0.6
    table = r.data["table_xiii_over_radius"]
    assert sum(v < 1 / math.sqrt(8) for v in table.values()) == 14


def test_observations():
    r1, r2 = quick("obs1"), quick("obs2")
    assert r1.verdict == NOT_CHECKABLE
    runs = r1.data["runs"]
    for (dim, label), run in runs.items():
        if label == "population":
            assert run["mean_end_over_echi"] == pytest.approx(
                1.0, abs=4 * 0.75 / math.sqrt(run["n"]) / expected_chi(dim)
            )
            assert run["interior_min_fraction"] == 1.0
    assert r2.verdict == HOLDS_WITH_CORRECTION


def test_wrn50_radius():
    if importlib.util.find_spec("timm") is None:
        pytest.skip("timm (bench extra) not installed")
    r = quick("wrn50_radius")
    assert r.verdict == REFUTED
    assert r.data["shapes"] == {512: (1024, 32, 32), 256: (1024, 16, 16)}
    assert r.data["radius"][512] == 1024.0


def test_every_claim_has_a_derived_verdict():
    for claim in REGISTRY:
        if claim.needs and any(importlib.util.find_spec(n) is None for n in claim.needs):
            continue
        r = quick(claim.claim_id)
        assert r.verdict in VERDICTS and r.rule
        assert r.verdict in (HOLDS, NOT_CHECKABLE) or r.correction, f"{claim.claim_id}: no correction"
