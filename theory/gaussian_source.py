"""Closed forms of rFM for a Gaussian source X_0 ~ N(mu, Sigma) and the Gaussian target X_1 ~ N(0, I).

X_t = (1 - t) X_0 + t X_1 ~ N((1 - t) mu, S_t), S_t = (1 - t)^2 Sigma + t^2 I, and Cov(X_1 - X_0, X_t) = t I - (1 - t)
Sigma, so the exact field (eq. 8) is linear in x:

    u(x, t) = -mu + (t I - (1 - t) Sigma) S_t^{-1} (x - (1 - t) mu),        u(x, 0) = -x  (eq. 12).

All matrices are functions of Sigma and commute, so the flow of u is affine:

    x_t = (1 - t) mu + S_t^{1/2} Sigma^{-1/2} (x_0 - mu),                      x_1 = Sigma^{-1/2} (x_0 - mu),

since d/dt S_t^{1/2} = (t I - (1 - t) Sigma) S_t^{-1/2}. The exact flow map is the whitening transform: ||x_1|| is
the Mahalanobis distance of x_0, and after whitening (mu = 0, Sigma = I) the flow map is the identity with
x_t = sqrt((1 - t)^2 + t^2) x_0 (contract, then expand: Observation 2). One exact Euler step from t = 0 sends every
point to x_0 + u(x_0, 0) = 0; so the one-step endpoint of a learned field v is x_0 + v(x_0, 0), the network's
residual from the centripetal field -x, and its norm scores what the Gaussian picture does not explain.

Functions (float64 torch; x of shape (N, D), mean (D,), cov (D, D) symmetric positive semi-definite; the flow needs
it positive definite):

* ``gaussian_source_velocity(x, t, mean, cov)``   u(x, t)                                   (N, D)
* ``gaussian_source_flow(x0, t, mean, cov)``       x_t of the exact flow started at x0       (N, D)
* ``mahalanobis(x, mean, cov)``                    ||Sigma^{-1/2} (x - mu)|| = ||x_1||        (N,)
* ``one_step_residual(velocity, x0)``              x0 + v(x0, 0), the K = 1 Euler endpoint    (N, D)
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["gaussian_source_flow", "gaussian_source_velocity", "mahalanobis", "one_step_residual"]


def _spectrum(mean, cov) -> tuple[Tensor, Tensor, Tensor]:
    mean = torch.as_tensor(mean, dtype=torch.float64)
    cov = torch.as_tensor(cov, dtype=torch.float64)
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1] or mean.shape != cov.shape[:1]:
        raise ValueError(f"mean must be (D,) and cov (D, D), got {tuple(mean.shape)} and {tuple(cov.shape)}")
    if not bool(torch.isfinite(cov).all() and torch.isfinite(mean).all()):
        raise ValueError("mean and cov must be finite")
    lam, vecs = torch.linalg.eigh(0.5 * (cov + cov.T))
    if float(lam.min()) < -1e-10 * max(1.0, float(lam.abs().max())):
        raise ValueError(f"cov must be positive semi-definite, smallest eigenvalue {float(lam.min()):g}")
    return mean, lam.clamp_min(0.0), vecs


def _check_t(t: float, name: str) -> float:
    t = float(t)
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"{name}: t must lie in [0, 1], got {t!r}")
    return t


def gaussian_source_velocity(x: Tensor, t: float, mean, cov) -> Tensor:
    """u(x, t) for X_0 ~ N(mean, cov) (cov may be singular) and X_1 ~ N(0, I), (N, D).

    In the eigenbasis of Sigma (eigenvalues lam) the gain (t - (1 - t) lam) / ((1 - t)^2 lam + t^2) is -1 at t = 0
    for lam > 0 (eq. 12) and 1/t for lam = 0 (a direction without spread: the singular limit of Prop. 1).
    """
    t = _check_t(t, "gaussian_source_velocity")
    mean, lam, vecs = _spectrum(mean, cov)
    denominator = (1 - t) ** 2 * lam + t**2
    if bool((denominator == 0).any()):
        raise ValueError("u(x, 0) is undefined along directions where cov has zero variance (Theorem 1); use t > 0")
    gains = (t - (1 - t) * lam) / denominator
    centred = torch.as_tensor(x, dtype=torch.float64) - (1 - t) * mean
    return ((centred @ vecs) * gains) @ vecs.T - mean


def gaussian_source_flow(x0: Tensor, t: float, mean, cov) -> Tensor:
    """x_t = (1 - t) mean + S_t^{1/2} cov^{-1/2} (x0 - mean) for the exact flow from x0 at t = 0, (N, D)."""
    t = _check_t(t, "gaussian_source_flow")
    mean, lam, vecs = _spectrum(mean, cov)
    if float(lam.min()) <= 0:
        raise ValueError("the flow from t = 0 needs a positive definite cov (Theorem 1 otherwise)")
    gains = torch.sqrt((1 - t) ** 2 * lam + t**2) / torch.sqrt(lam)
    centred = torch.as_tensor(x0, dtype=torch.float64) - mean
    return (1 - t) * mean + ((centred @ vecs) * gains) @ vecs.T


def mahalanobis(x: Tensor, mean, cov) -> Tensor:
    """||cov^{-1/2} (x - mean)||, (N,): the norm of the exact rFM endpoint x_1 for the source N(mean, cov)."""
    return gaussian_source_flow(x, 1.0, mean, cov).norm(dim=1)


def one_step_residual(velocity: Callable[[Tensor, Tensor], Tensor], x0: Tensor) -> Tensor:
    """x0 + v(x0, 0): the endpoint of one Euler step from t = 0 to 1, i.e. the residual of v from the exact
    centripetal field -x (the exact Gaussian-source field gives 0 for every x0), (N, D)."""
    t = torch.zeros(x0.shape[0], dtype=x0.dtype, device=x0.device)
    return x0 + velocity(x0, t)
