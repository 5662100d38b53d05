"""theory.vmf: Bessel ratios and sphere moment generating functions against mpmath, closed forms, quadrature and MC."""

import math

import mpmath
import numpy as np
import pytest

from theory import vmf

mpmath.mp.dps = 40

ORDERS = [0.0, 0.5, 1.0, 5.5, 63.0, 300.0, 1000.0]
KAPPAS = [1e-8, 0.3, 1.5, 10.0, 100.0, 1e3, 2e4, 1e7, 1e11, 1e14]


@pytest.mark.parametrize("nu", ORDERS)
def test_log_bessel_and_ratio_match_mpmath(nu):
    kappa = np.array(KAPPAS)
    log_ive = vmf.log_bessel_ive(nu, kappa)
    ratio, over, derivative = vmf._statistics(nu, kappa)
    for i, k in enumerate(KAPPAS):
        i_nu, i_next = mpmath.besseli(nu, k), mpmath.besseli(nu + 1, k)
        exact_log = float(mpmath.log(i_nu) - k)
        exact_ratio = float(i_next / i_nu)
        assert abs(log_ive[i] - exact_log) <= 1e-13 * max(1.0, abs(exact_log)), (nu, k)
        assert abs(ratio[i] - exact_ratio) <= 5e-13 * exact_ratio, (nu, k)
        assert over[i] == pytest.approx(exact_ratio / k, rel=5e-13)
        exact_derivative = float(1 - (i_next / i_nu) ** 2 - (2 * nu + 1) * (i_next / i_nu) / k)
        # dA/dkappa = 1 - A^2 - (2 nu + 1) A / kappa cancels for kappa >> 1; the Hankel region (kappa > 2 (nu+1)^2,
        # kappa > 1e4) avoids that; in between the absolute error stays ~1e-16 D (relative error grows like kappa^2).
        assert abs(derivative[i] - exact_derivative) <= 1e-8 * exact_derivative + 1e-15 * (2 * nu + 2), (nu, k)


def test_large_order_debye_region_matches_mpmath():
    # ive() underflows here, so the uniform (Debye) expansion is used.
    nu, kappa = 75263.0, np.array([100.0, 1000.0, 3e4])
    log_ive = vmf.log_bessel_ive(nu, kappa)
    ratio = vmf.bessel_ratio(nu, kappa)
    for i, k in enumerate(kappa):
        exact = mpmath.besseli(nu, k)
        assert log_ive[i] == pytest.approx(float(mpmath.log(exact) - k), rel=1e-13)
        assert ratio[i] == pytest.approx(float(mpmath.besseli(nu + 1, k) / exact), rel=1e-9)


def test_closed_forms_in_three_dimensions():
    # D = 3: M_3(kappa) = sinh(kappa) / kappa and A_3(kappa) = coth(kappa) - 1/kappa (Langevin function).
    kappa = np.array([1e-6, 0.01, 0.7, 3.0, 40.0, 500.0])
    expected_log = np.log(-np.expm1(-2 * kappa) / (2 * kappa))  # log(sinh k / k) - k
    np.testing.assert_allclose(vmf.log_sphere_mgf_scaled(3, kappa), expected_log, rtol=1e-13, atol=1e-15)
    with np.errstate(over="ignore"):
        langevin = 1 / np.tanh(kappa) - 1 / kappa
    langevin[0] = kappa[0] / 3  # series: the closed form cancels catastrophically at 1e-6
    np.testing.assert_allclose(vmf.mean_resultant_length(3, kappa), langevin, rtol=1e-9)


def test_ring_matches_angle_quadrature():
    # D = 2: z = (cos a, sin a) uniform on the circle; E[exp(k cos a)] and the mean of cos a under exp(k cos a).
    angles = np.linspace(0, 2 * np.pi, 20001)[:-1]  # periodic trapezoid rule: spectrally accurate
    for k in [0.0, 0.2, 2.0, 25.0, 300.0]:
        weights = np.exp(k * (np.cos(angles) - 1))
        assert vmf.log_sphere_mgf_scaled(2, [k])[0] == pytest.approx(np.log(weights.mean()), abs=1e-13)
        mean_cos = (np.cos(angles) * weights).sum() / weights.sum()
        assert vmf.mean_resultant_length(2, [k])[0] == pytest.approx(mean_cos, abs=1e-13)


def test_mean_resultant_length_against_monte_carlo_in_ten_dimensions():
    # Self-normalised importance sampling from the uniform sphere; 4 standard errors of the estimate.
    rng = np.random.default_rng(0)
    dim, n = 10, 400_000
    z = rng.standard_normal((n, dim))
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    for kappa in [0.5, 4.0]:
        w = np.exp(kappa * (z[:, 0] - 1))
        estimate = (w * z[:, 0]).sum() / w.sum()
        w_normalised = w / w.sum()
        standard_error = math.sqrt(((w_normalised * (z[:, 0] - estimate)) ** 2).sum())
        exact = vmf.mean_resultant_length(dim, [kappa])[0]
        assert abs(estimate - exact) < 4 * standard_error, (kappa, estimate, exact, standard_error)
        assert standard_error < 2e-3
        mgf = np.log(np.exp(kappa * z[:, 0]).mean()) - kappa
        assert vmf.log_sphere_mgf_scaled(dim, [kappa])[0] == pytest.approx(mgf, abs=5e-3)


def test_limits_and_derivative():
    for dim in [2, 3, 17, 128]:
        ratio, over, derivative = vmf.vmf_statistics(dim, np.array([0.0]))
        assert ratio[0] == 0.0 and over[0] == pytest.approx(1 / dim) and derivative[0] == pytest.approx(1 / dim)
        kappa = np.array([0.5, 3.0, 30.0, 3e3])
        h = 1e-5 * kappa
        finite_difference = (vmf.mean_resultant_length(dim, kappa + h) - vmf.mean_resultant_length(dim, kappa - h)) / (
            2 * h
        )
        np.testing.assert_allclose(vmf.vmf_statistics(dim, kappa)[2], finite_difference, rtol=1e-6)
        assert vmf.log_sphere_mgf_scaled(dim, [0.0])[0] == 0.0
        # d/dkappa log M_D(kappa) = A_D(kappa)
        log_mgf = lambda k, dim=dim: vmf.log_sphere_mgf_scaled(dim, k) + k  # noqa: E731
        np.testing.assert_allclose(
            (log_mgf(kappa + h) - log_mgf(kappa - h)) / (2 * h), vmf.mean_resultant_length(dim, kappa), rtol=1e-6
        )


def test_bad_input():
    with pytest.raises(ValueError, match="kappa"):
        vmf.bessel_ratio(1.0, [-1.0])
    with pytest.raises(ValueError, match="kappa"):
        vmf.log_bessel_ive(1.0, [np.nan])
    with pytest.raises(ValueError, match="nu"):
        vmf.bessel_ratio(-0.5, [1.0])
    with pytest.raises(ValueError, match="D >= 2"):
        vmf.mean_resultant_length(1, [1.0])
