"""Closed-form rFM theory: exact marginal fields for Gaussian-mixture sources (``theory.fields``, ``theory.vmf``).

Public API (float64, x of shape (N, D) or (N, *event_shape), t a float or an (N,) tensor):
``marginal_velocity`` (eq. 8), ``posterior_mean_x0``, ``posterior_mean_x1``, ``score``, ``log_density``,
``posterior_cov_x0``, ``velocity_jacobian`` (eq. 31), ``velocity_time_derivative`` (eq. 24) and
``exact_field(source, target)``, a velocity for ``wtflow.solvers``; ``theory.gaussian_source``: closed-form field and
flow map for a Gaussian source N(mu, Sigma) (the flow map is the whitening transform).
"""

from .fields import (
    ExactField,
    exact_field,
    log_density,
    marginal_velocity,
    posterior_cov_x0,
    posterior_mean_x0,
    posterior_mean_x1,
    score,
    velocity_jacobian,
    velocity_time_derivative,
    velocity_time_derivative_eq24,
)
from .gaussian_source import gaussian_source_flow, gaussian_source_velocity, mahalanobis, one_step_residual
from .vmf import bessel_ratio, log_bessel_ive, log_sphere_mgf_scaled, mean_resultant_length, vmf_statistics

__all__ = [
    "ExactField",
    "bessel_ratio",
    "exact_field",
    "gaussian_source_flow",
    "gaussian_source_velocity",
    "log_bessel_ive",
    "log_density",
    "log_sphere_mgf_scaled",
    "mahalanobis",
    "marginal_velocity",
    "one_step_residual",
    "mean_resultant_length",
    "posterior_cov_x0",
    "posterior_mean_x0",
    "posterior_mean_x1",
    "score",
    "velocity_jacobian",
    "velocity_time_derivative",
    "velocity_time_derivative_eq24",
    "vmf_statistics",
]
