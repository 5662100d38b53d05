"""Bessel-function pieces of the uniform-sphere target (von Mises-Fisher posteriors), in float64 numpy.

For the rFM path with a ``UniformSphere`` target of radius r in R^D, conditioning on X_t = x and a
source component k leaves a von Mises-Fisher (vMF) posterior over the direction of X_1 with
concentration kappa (see ``theory.fields``). Everything needed from it reduces to

* the normalised moment generating function of the uniform law on the unit sphere S^{D-1},
  M_D(kappa) = E[exp(kappa z_1)] = Gamma(nu + 1) (kappa / 2)^(-nu) I_nu(kappa), nu = D/2 - 1;
* the mean resultant length A_D(kappa) = I_{D/2}(kappa) / I_{D/2-1}(kappa) = d/dkappa log M_D(kappa),
  so that E[z] = A_D(kappa) mu for z ~ vMF(mu, kappa);
* A_D(kappa) / kappa (finite at kappa = 0, where it equals 1/D) and A_D'(kappa) = 1 - A^2 - (D - 1) A / kappa.

Large kappa and large D overflow or underflow the plain Bessel functions, so the work is done in
log-space with ``scipy.special.ive`` (exponentially scaled), a power series where kappa^2 <= nu + 1,
the large-argument (Hankel) series where kappa > max(2 (nu + 1)^2, 1e4) (``ive`` returns NaN beyond
about 1e9, and A' cancels there), and the uniform (Debye) asymptotic expansion of I_nu(nu z)
(DLMF 10.41.3, terms u_1..u_4 of DLMF 10.41.10) where ``ive`` underflows, which only happens for large orders.
Relative accuracy against mpmath is about 1e-13 for A and log I (1e-10 for orders near 1e5), see tests.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import gammaln, ive

__all__ = [
    "bessel_ratio",
    "log_bessel_ive",
    "log_sphere_mgf_scaled",
    "mean_resultant_length",
    "vmf_statistics",
]

_SERIES_TERMS = 40
_HANKEL_TERMS = 20
_HANKEL_MIN_KAPPA = 1e4
# Below this ive() has lost its relative precision (subnormal or zero).
_IVE_TINY = 1e-250


def _check_order(nu: float) -> float:
    nu = float(nu)
    if not (nu >= 0 and math.isfinite(nu)):
        raise ValueError(f"nu must be a finite order >= 0, got {nu!r}")
    return nu


def _check_dim(dim: int) -> int:
    if isinstance(dim, bool) or int(dim) != dim or dim < 2:
        raise ValueError(f"dim must be an integer D >= 2 (the sphere S^(D-1) lives in R^D), got {dim!r}")
    return int(dim)


def _as_kappa(kappa) -> np.ndarray:
    kappa = np.asarray(kappa, dtype=np.float64)
    if np.any(~np.isfinite(kappa)) or np.any(kappa < 0):
        raise ValueError("kappa must be finite and non-negative")
    return kappa


def _series_sum(nu: float, kappa: np.ndarray) -> np.ndarray:
    """sum_j (kappa^2/4)^j Gamma(nu+1) / (j! Gamma(nu+j+1)), i.e. Gamma(nu+1) (kappa/2)^-nu I_nu(kappa)."""
    q = 0.25 * kappa * kappa
    term = np.ones_like(kappa)
    total = np.ones_like(kappa)
    for j in range(1, _SERIES_TERMS + 1):
        term = term * q / (j * (nu + j))
        total = total + term
    return total


def _log_iv_debye(nu: float, kappa: np.ndarray) -> np.ndarray:
    """log I_nu(kappa) from the uniform asymptotic expansion in nu (relative error O(nu^-5))."""
    z = kappa / nu
    root = np.sqrt(1.0 + z * z)
    eta = root + np.log(z / (1.0 + root))
    p = 1.0 / root
    p2 = p * p
    u1 = p * (3.0 - 5.0 * p2) / 24.0
    u2 = p2 * (81.0 - 462.0 * p2 + 385.0 * p2**2) / 1152.0
    u3 = p * p2 * (30375.0 - 369603.0 * p2 + 765765.0 * p2**2 - 425425.0 * p2**3) / 414720.0
    u4 = (
        p2**2
        * (4465125.0 - 94121676.0 * p2 + 349922430.0 * p2**2 - 446185740.0 * p2**3 + 185910725.0 * p2**4)
        / 39813120.0
    )
    correction = 1.0 + u1 / nu + u2 / nu**2 + u3 / nu**3 + u4 / nu**4
    return -0.5 * np.log(2.0 * np.pi * nu) + nu * eta - 0.5 * np.log(root) + np.log(correction)


def _hankel(nu: float, kappa: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Large-argument series S(kappa) = sum_k (-1)^k a_k(nu) kappa^-k (DLMF 10.40.1) and S'(kappa) / S(kappa).

    I_nu(kappa) exp(-kappa) = S(kappa) / sqrt(2 pi kappa); used where kappa > 2 (nu + 1)^2, so |term ratio| < 1/(4k).
    """
    mu = 4.0 * nu * nu
    coeff = 1.0
    total = np.ones_like(kappa)
    derivative = np.zeros_like(kappa)
    inv = 1.0 / kappa
    power = np.ones_like(kappa)
    for k in range(1, _HANKEL_TERMS + 1):
        coeff = -coeff * (mu - (2.0 * k - 1.0) ** 2) / (8.0 * k)
        power = power * inv
        total = total + coeff * power
        derivative = derivative - k * coeff * power * inv
    return total, derivative / total


def _regions(nu: float, kappa: np.ndarray):
    """Masks: power series (kappa^2 <= nu + 1), Hankel series (large kappa), ive(), Debye (ive underflowed)."""
    series = kappa * kappa <= nu + 1.0
    hankel = ~series & (kappa > np.maximum(2.0 * (nu + 1.0) ** 2, _HANKEL_MIN_KAPPA))
    middle = ~series & ~hankel
    with np.errstate(all="ignore"):
        scaled = np.where(middle, ive(nu, np.where(middle, kappa, 1.0)), np.nan)
    ive_ok = middle & np.isfinite(scaled) & (scaled > _IVE_TINY)
    debye = middle & ~ive_ok
    return series, hankel, ive_ok, debye, scaled


def _log_ive_outside_series(nu: float, kappa: np.ndarray, hankel, ive_ok, debye, scaled) -> np.ndarray:
    out = np.full_like(kappa, np.nan)
    kh = kappa[hankel]
    out[hankel] = np.log(_hankel(nu, kh)[0]) - 0.5 * np.log(2.0 * np.pi * kh)
    out[ive_ok] = np.log(scaled[ive_ok])
    kd = kappa[debye]
    if kd.size:
        out[debye] = _log_iv_debye(nu, kd) - kd
    return out


def log_bessel_ive(nu: float, kappa) -> np.ndarray:
    """log(I_nu(kappa) exp(-kappa)) for kappa >= 0 (array), without overflow or underflow; -inf at kappa = 0, nu > 0."""
    nu = _check_order(nu)
    kappa = _as_kappa(kappa)
    series, hankel, ive_ok, debye, scaled = _regions(nu, kappa)
    out = _log_ive_outside_series(nu, kappa, hankel, ive_ok, debye, scaled)
    ks = kappa[series]
    with np.errstate(divide="ignore"):
        out[series] = nu * np.log(0.5 * ks) - gammaln(nu + 1.0) + np.log(_series_sum(nu, ks)) - ks
    if nu == 0.0:
        out[kappa == 0] = 0.0
    return out


def log_sphere_mgf_scaled(dim: int, kappa) -> np.ndarray:
    """log M_D(kappa) - kappa, with M_D(kappa) = E[exp(kappa z_1)] for z uniform on the unit sphere S^(D-1).

    Equals 0 at kappa = 0 and behaves like -((D-1)/2) log(kappa) + const for large kappa.
    """
    dim = _check_dim(dim)
    nu = 0.5 * dim - 1.0
    kappa = _as_kappa(kappa)
    series, hankel, ive_ok, debye, scaled = _regions(nu, kappa)
    out = _log_ive_outside_series(nu, kappa, hankel, ive_ok, debye, scaled)
    rest = ~series
    out[rest] = out[rest] + gammaln(nu + 1.0) - nu * np.log(0.5 * kappa[rest])
    ks = kappa[series]
    out[series] = np.log(_series_sum(nu, ks)) - ks
    return out


def bessel_ratio(nu: float, kappa) -> np.ndarray:
    """I_{nu+1}(kappa) / I_nu(kappa) for kappa >= 0 (0 at kappa = 0), stable for large kappa and large nu."""
    nu = _check_order(nu)
    kappa = _as_kappa(kappa)
    return _statistics(nu, kappa)[0]


def _statistics(nu: float, kappa: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(A, A / kappa, dA/dkappa) with A = I_{nu+1} / I_nu; dA/dkappa = 1 - A^2 - (2 nu + 1) A / kappa."""
    series, hankel, ive_ok, debye, scaled = _regions(nu, kappa)
    ratio = np.empty_like(kappa)
    over = np.empty_like(kappa)
    derivative = np.empty_like(kappa)
    ks = kappa[series]
    # I_{nu+1}/I_nu = kappa / (2 (nu + 1)) * S_{nu+1} / S_nu with the power series S of _series_sum.
    over[series] = _series_sum(nu + 1.0, ks) / (2.0 * (nu + 1.0) * _series_sum(nu, ks))
    ratio[series] = ks * over[series]
    # Large kappa: with S the Hankel series, 1 - A = (nu + 1/2) / kappa - S'/S, and
    # A' = -2 S'/S - (1 - A)^2 + (2 nu + 1)(1 - A) / kappa avoids the O(1/kappa) cancellation of the plain formula.
    kh = kappa[hankel]
    log_derivative = _hankel(nu, kh)[1]
    gap = (nu + 0.5) / kh - log_derivative
    ratio[hankel] = 1.0 - gap
    over[hankel] = ratio[hankel] / kh
    derivative[hankel] = -2.0 * log_derivative - gap * gap + (2.0 * nu + 1.0) * gap / kh
    middle = ive_ok | debye
    km = kappa[middle]
    if km.size:
        with np.errstate(all="ignore"):
            upper = ive(nu + 1.0, km)
        direct = ive_ok[middle] & np.isfinite(upper) & (upper > _IVE_TINY)
        values = np.empty_like(km)
        values[direct] = upper[direct] / scaled[middle][direct]
        logs = ~direct
        values[logs] = np.exp(log_bessel_ive(nu + 1.0, km[logs]) - log_bessel_ive(nu, km[logs]))
        ratio[middle] = values
        over[middle] = values / km
    plain = ~hankel
    derivative[plain] = 1.0 - ratio[plain] ** 2 - (2.0 * nu + 1.0) * over[plain]
    return ratio, over, derivative


def mean_resultant_length(dim: int, kappa) -> np.ndarray:
    """A_D(kappa) = I_{D/2}(kappa) / I_{D/2-1}(kappa): E[z] = A_D(kappa) mu for z ~ vMF(mu, kappa) on S^(D-1)."""
    dim = _check_dim(dim)
    return bessel_ratio(0.5 * dim - 1.0, kappa)


def vmf_statistics(dim: int, kappa) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(A, A / kappa, dA/dkappa) of the vMF law on S^(D-1); A / kappa -> 1/D and dA/dkappa -> 1/D at kappa = 0.

    With mu the mean direction, E[z] = A mu and Cov[z] = (A / kappa) I + (1 - D A / kappa - A^2) mu mu^T.
    """
    dim = _check_dim(dim)
    kappa = _as_kappa(kappa)
    return _statistics(0.5 * dim - 1.0, kappa)
