"""Closed forms for a Gaussian source N(mu, Sigma) and the N(0, I) target against the one-component mixture fields,
autograd / finite differences of the flow and an integrated exact field."""

import pytest
import torch

import theory
from wtflow.distributions import GaussianMixture, StandardGaussian
from wtflow.solvers import solve

F64 = torch.float64


def _cov(dim: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(dim, dim, generator=gen, dtype=F64)
    return a @ a.T / dim + 0.1 * torch.eye(dim, dtype=F64)


@pytest.mark.parametrize("t", [0.0, 1e-6, 0.3, 0.9, 1.0])
def test_isotropic_case_equals_the_one_component_mixture_field(t):
    gen = torch.Generator().manual_seed(1)
    mean, std = torch.randn(5, generator=gen, dtype=F64), 0.7
    x = torch.randn(8, 5, generator=gen, dtype=F64)
    mixture = GaussianMixture(mean[None], torch.tensor([std], dtype=F64))
    expected = theory.marginal_velocity(x, t, mixture, StandardGaussian(5))
    got = theory.gaussian_source_velocity(x, t, mean, std**2 * torch.eye(5, dtype=F64))
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_field_at_zero_is_centripetal_and_one_exact_euler_step_lands_at_zero():
    mean, cov = torch.tensor([1.0, -2.0, 0.5], dtype=F64), _cov(3, 2)
    x = torch.randn(16, 3, dtype=F64, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(theory.gaussian_source_velocity(x, 0.0, mean, cov), -x, rtol=1e-12, atol=1e-12)

    def field(y, t):
        return theory.gaussian_source_velocity(y, float(t[0]), mean, cov)

    residual = theory.one_step_residual(field, x)
    assert float(residual.abs().max()) < 1e-12
    torch.testing.assert_close(solve(field, x, "euler", steps=1).x_end, residual, rtol=0, atol=1e-12)


def test_flow_map_solves_the_ode_and_ends_in_the_whitening_transform():
    dim = 4
    mean, cov = torch.randn(dim, dtype=F64, generator=torch.Generator().manual_seed(4)), _cov(dim, 5)
    x0 = torch.randn(6, dim, dtype=F64, generator=torch.Generator().manual_seed(6)) @ torch.linalg.cholesky(cov).T
    x0 = x0 + mean
    for t in (0.1, 0.5, 0.8):
        h = 1e-6
        derivative = (
            theory.gaussian_source_flow(x0, t + h, mean, cov) - theory.gaussian_source_flow(x0, t - h, mean, cov)
        ) / (2 * h)
        at_t = theory.gaussian_source_flow(x0, t, mean, cov)
        torch.testing.assert_close(
            derivative, theory.gaussian_source_velocity(at_t, t, mean, cov), rtol=1e-7, atol=1e-7
        )
    lam, vecs = torch.linalg.eigh(cov)
    whiten = vecs @ torch.diag(lam.rsqrt()) @ vecs.T
    end = theory.gaussian_source_flow(x0, 1.0, mean, cov)
    torch.testing.assert_close(end, (x0 - mean) @ whiten, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(theory.mahalanobis(x0, mean, cov), end.norm(dim=1), rtol=1e-12, atol=0.0)
    # Integrating the closed-form field with RK4 reaches the same endpoint.

    def field(y, t):
        return theory.gaussian_source_velocity(y, float(t[0]), mean, cov)

    integrated = solve(field, x0, "rk4", steps=200).x_end
    torch.testing.assert_close(integrated, end, rtol=1e-8, atol=1e-8)


def test_whitened_source_flow_is_a_radial_rescaling_with_minimum_at_one_half():
    x0 = torch.randn(5, 3, dtype=F64, generator=torch.Generator().manual_seed(7))
    eye = torch.eye(3, dtype=F64)
    zero = torch.zeros(3, dtype=F64)
    for t in (0.0, 0.25, 0.5, 1.0):
        expected = ((1 - t) ** 2 + t**2) ** 0.5 * x0
        torch.testing.assert_close(theory.gaussian_source_flow(x0, t, zero, eye), expected, rtol=1e-14, atol=1e-14)


def test_bad_inputs_raise():
    x = torch.zeros(2, 3, dtype=F64)
    with pytest.raises(ValueError, match="positive semi-definite"):
        theory.gaussian_source_velocity(x, 0.5, torch.zeros(3), -torch.eye(3))
    with pytest.raises(ValueError, match="t must lie"):
        theory.gaussian_source_velocity(x, 1.5, torch.zeros(3), torch.eye(3))
    with pytest.raises(ValueError, match="zero variance"):
        theory.gaussian_source_velocity(x, 0.0, torch.zeros(3), torch.diag(torch.tensor([1.0, 1.0, 0.0])))
    with pytest.raises(ValueError, match="positive definite"):
        theory.gaussian_source_flow(x, 0.5, torch.zeros(3), torch.diag(torch.tensor([1.0, 1.0, 0.0])))
