"""Shared pieces of the centripetal-field checks (Theorem 1, Prop. 1-2, eq. 13, Observations 1-2): tolerances,
E chi_D, angles between fields and log-log slopes.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

__all__ = [
    "ANGLE_BAND",
    "ANGLE_FRACTION",
    "EXACT_TOL",
    "SLOPE_TOL",
    "SMALL_RATIO",
    "angles_deg",
    "expected_chi",
    "loglog_slope",
]

EXACT_TOL = 1e-10

SLOPE_TOL = 0.1  # fitted log-log exponents within this of the predicted one

SMALL_RATIO = 1e-3  # ||u(x, 0+)|| / ||x|| below this counts as a vanishing initial field

ANGLE_BAND = 10.0  # degrees around 180 (opposite) or 90 (orthogonal)

ANGLE_FRACTION = 0.95


def expected_chi(dim: int) -> float:
    """E||X|| for X ~ N(0, I_D): sqrt(2) Gamma((D+1)/2) / Gamma(D/2)."""
    return math.sqrt(2.0) * math.exp(special.gammaln((dim + 1) / 2) - special.gammaln(dim / 2))


def angles_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angles in degrees between the rows of a and b (N, D); NaN where either row is zero."""
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = (a * b).sum(1) / (na * nb)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def loglog_slope(t: np.ndarray, values: np.ndarray) -> float:
    return float(np.polyfit(np.log(t), np.log(values), 1)[0])
