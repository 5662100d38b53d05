"""theory.fields with the UniformSphere target: angle quadrature (D = 2), Monte Carlo (D = 3), finite differences,
the s -> 0 limit for point-mass sources, and the errors where no density exists."""

import math

import pytest
import torch

import theory
from wtflow.distributions import GaussianMixture, UniformSphere

F64 = torch.float64


def mixture(dim, stds, seed=0, scale=1.0):
    gen = torch.Generator().manual_seed(seed)
    k = len(stds)
    weights = torch.rand(k, generator=gen, dtype=F64) + 0.2
    means = scale * torch.randn(k, dim, generator=gen, dtype=F64)
    return GaussianMixture(means, stds=torch.tensor(stds, dtype=F64), weights=weights / weights.sum())


def points(n, dim, seed=1, scale=1.5):
    return scale * torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=F64)


def unit(i, dim):
    return torch.eye(dim, dtype=F64)[i]


def five_point(f, h):
    return (-f(2 * h) + 8 * f(h) - 8 * f(-h) + f(-2 * h)) / (12 * h)


def ring_quadrature(x, t, source, radius, n_angles=4000):
    """log p_t, E[X_1|x], Cov[X_1|x] by the periodic trapezoid rule over the angle of X_1 on the ring (D = 2)."""
    angles = torch.arange(n_angles, dtype=F64) * (2 * math.pi / n_angles)
    z = radius * torch.stack([angles.cos(), angles.sin()], 1)  # (Q, 2)
    sigma2 = (1 - t)[:, None] ** 2 * source.stds**2  # (N, K)
    centres = (1 - t)[:, None, None, None] * source.means[None, :, None] + t[:, None, None, None] * z[None, None]
    sq = (x[:, None, None, :] - centres).pow(2).sum(-1)  # (N, K, Q)
    log_joint = (
        source.weights.log()[None, :, None] - torch.log(2 * math.pi * sigma2)[..., None] - 0.5 * sq / sigma2[..., None]
    )
    flat = log_joint.reshape(len(x), -1)
    log_p = torch.logsumexp(flat, 1) - math.log(n_angles)
    w = torch.softmax(flat, 1).reshape(log_joint.shape).sum(1)  # (N, Q)
    mean = w @ z
    second = torch.einsum("nq,qi,qj->nij", w, z, z)
    return log_p, mean, second - mean[:, :, None] * mean[:, None, :]


def test_ring_against_angle_quadrature():
    source, target = mixture(2, [0.3, 0.6, 0.25]), UniformSphere(2, radius=1.5)
    x = points(6, 2, seed=2, scale=1.2)
    t = torch.tensor([0.0, 0.05, 0.3, 0.5, 0.8, 0.95], dtype=F64)
    log_p, mean_x1, cov_x1 = ring_quadrature(x, t, source, 1.5)
    torch.testing.assert_close(theory.log_density(x, t, source, target), log_p, rtol=0, atol=1e-11)
    torch.testing.assert_close(theory.posterior_mean_x1(x, t, source, target), mean_x1, rtol=0, atol=1e-12)
    tc = t[:, None]
    # X_0 = (x - t X_1) / (1 - t) given X_t = x
    torch.testing.assert_close(theory.posterior_mean_x0(x, t, source, target), (x - tc * mean_x1) / (1 - tc))
    torch.testing.assert_close(theory.marginal_velocity(x, t, source, target), (mean_x1 - x) / (1 - tc))
    cov_x0 = theory.posterior_cov_x0(x, t, source, target)
    torch.testing.assert_close(cov_x0, (t / (1 - t))[:, None, None] ** 2 * cov_x1, rtol=0, atol=1e-10)
    # t = 0 with a population source: u(x, 0) = -x (eq. 12), E[X_1 | x] = E[X_1] = 0.
    torch.testing.assert_close(theory.marginal_velocity(x[:1], 0.0, source, target), -x[:1], rtol=0, atol=1e-15)


def test_three_dimensions_against_monte_carlo():
    # Self-normalised importance sampling of (k, z) from the prior with weights N(x; (1-t) m_k + t z, sigma_k^2 I).
    source, target = mixture(3, [0.8, 1.1], seed=3), UniformSphere(3, radius=2.0)
    x, t = points(3, 3, seed=4, scale=1.0), 0.4
    gen = torch.Generator().manual_seed(5)
    n = 400_000
    z = torch.randn(n, 3, generator=gen, dtype=F64)
    z = 2.0 * z / z.norm(dim=1, keepdim=True)
    k = torch.multinomial(source.weights, n, replacement=True, generator=gen)
    sigma2 = ((1 - t) * source.stds[k]) ** 2
    exact = theory.posterior_mean_x1(x, t, source, target)
    for i in range(3):
        log_w = -1.5 * torch.log(sigma2) - 0.5 * (x[i] - (1 - t) * source.means[k] - t * z).pow(2).sum(1) / sigma2
        w = torch.softmax(log_w, 0)
        estimate = w @ z
        standard_error = ((w[:, None] * (z - estimate)) ** 2).sum(0).sqrt()
        assert standard_error.max() < 0.01
        assert ((estimate - exact[i]).abs() < 4 * standard_error).all(), (estimate, exact[i], standard_error)
    # tr Cov[X_1 | x] = E||X_1||^2 - ||E[X_1|x]||^2 = r^2 - ||E[X_1|x]||^2 exactly.
    cov_x0 = theory.posterior_cov_x0(x, t, source, target)
    trace_x1 = torch.diagonal(cov_x0, dim1=1, dim2=2).sum(1) * ((1 - t) / t) ** 2
    torch.testing.assert_close(trace_x1, 4.0 - exact.pow(2).sum(1), rtol=1e-12, atol=1e-12)
    assert torch.linalg.eigvalsh(cov_x0).min() > -1e-12


@pytest.mark.parametrize("dim", [2, 3, 7])
def test_score_jacobian_and_time_derivative_against_finite_differences(dim):
    source, target = mixture(dim, [0.5, 0.9, 0.7], seed=6), UniformSphere(dim)
    x = points(4, dim, seed=7, scale=1.0)
    t = torch.tensor([0.0, 0.2, 0.5, 0.75], dtype=F64)
    h = 1e-4  # five-point stencil: truncation O(h^4), roundoff ~ eps / h
    score = theory.score(x, t, source, target)
    fd_score = torch.stack(
        [five_point(lambda e, j=j: theory.log_density(x + e * unit(j, dim), t, source, target), h) for j in range(dim)],
        1,
    )
    torch.testing.assert_close(score, fd_score, rtol=1e-8, atol=1e-8)
    jacobian = theory.velocity_jacobian(x, t, source, target)
    fd_jacobian = torch.stack(
        [
            five_point(lambda e, j=j: theory.marginal_velocity(x + e * unit(j, dim), t, source, target), h)
            for j in range(dim)
        ],
        2,
    )
    torch.testing.assert_close(jacobian, fd_jacobian, rtol=1e-8, atol=1e-8)
    inner = slice(1, None)  # the t-stencil needs t - 2h >= 0
    time_derivative = theory.velocity_time_derivative(x[inner], t[inner], source, target)
    fd_time = five_point(lambda e: theory.marginal_velocity(x[inner], t[inner] + e, source, target), h)
    torch.testing.assert_close(time_derivative, fd_time, rtol=1e-8, atol=1e-8)
    # At t = 0 (population source): grad u = -I.
    torch.testing.assert_close(jacobian[0], -torch.eye(dim, dtype=F64), rtol=0, atol=1e-14)


def test_lemma2_does_not_hold_for_the_sphere_target():
    # Lemma 2 relies on X_t | X_0 ~ N((1-t) X_0, t^2 I); with the sphere target u = (E[X_1|x] - x) / (1 - t) instead.
    source, target = mixture(3, [0.5, 0.9], seed=8), UniformSphere(3)
    x, t = points(5, 3, seed=9), 0.5
    u = theory.marginal_velocity(x, t, source, target)
    lemma2 = -x / (1 - t) - t / (1 - t) * theory.score(x, t, source, target)
    assert (u - lemma2).abs().max() > 0.1


def test_point_masses_are_the_small_std_limit():
    means = mixture(3, [0.0, 0.0, 0.0], seed=10, scale=2.0).means
    weights = torch.tensor([0.5, 0.3, 0.2], dtype=F64)
    empirical = GaussianMixture(means, stds=0.0, weights=weights)
    target = UniformSphere(3, radius=1.2)
    x = points(5, 3, seed=11)
    t = torch.tensor([0.1, 0.3, 0.5, 0.7, 0.9], dtype=F64)
    functions = [
        theory.marginal_velocity,
        theory.posterior_mean_x1,
        theory.posterior_cov_x0,
        theory.velocity_jacobian,
        theory.velocity_time_derivative,
    ]
    limits = [f(x, t, empirical, target) for f in functions]
    errors = []
    for s in [1e-2, 1e-3]:
        population = GaussianMixture(means, stds=s, weights=weights)
        errors.append([(f(x, t, population, target) - lim).abs().max().item() for f, lim in zip(functions, limits)])
    for coarse, fine in zip(*errors):
        assert fine < 1e-3 and fine < coarse / 30, errors  # O(s^2) convergence
    # Exactly on sphere k the limit is the conditional expectation: X_1 = (x - (1 - t) m_k) / t, X_0 = m_k.
    direction = torch.tensor([0.6, 0.0, 0.8], dtype=F64)
    on_sphere = ((1 - 0.4) * means[1] + 0.4 * 1.2 * direction)[None]
    u = theory.marginal_velocity(on_sphere, 0.4, GaussianMixture(means[1:2], stds=0.0), target)
    torch.testing.assert_close(u[0], 1.2 * direction - means[1], rtol=0, atol=1e-13)
    # No density: log p_t and the score raise, as do t = 0 (Theorem 1) and t = 1.
    with pytest.raises(ValueError, match="no Lebesgue density"):
        theory.log_density(x, 0.5, empirical, target)
    with pytest.raises(ValueError, match="no Lebesgue density"):
        theory.score(x, 0.5, empirical, target)
    with pytest.raises(ValueError, match="Theorem 1"):
        theory.marginal_velocity(x, 0.0, empirical, target)
    with pytest.raises(ValueError, match="t = 1"):
        theory.marginal_velocity(x, 1.0, mixture(3, [0.5, 0.5], seed=12), target)


def test_mixed_source_drops_point_masses_off_their_spheres():
    full = mixture(3, [0.0, 0.6, 0.0, 0.9], seed=13)
    population = GaussianMixture(
        full.means[[1, 3]], stds=full.stds[[1, 3]], weights=full.weights[[1, 3]] / full.weights[[1, 3]].sum()
    )
    target = UniformSphere(3, radius=1.5)
    x, t = points(4, 3, seed=14), torch.tensor([0.05, 0.2, 0.5, 0.8], dtype=F64)
    for f in [theory.marginal_velocity, theory.score, theory.velocity_jacobian, theory.velocity_time_derivative]:
        torch.testing.assert_close(f(x, t, full, target), f(x, t, population, target), rtol=1e-12, atol=1e-12)
    # At t = 0 the point masses are atoms of X_0: u(x, 0) = -x still holds off them, but there is no density.
    torch.testing.assert_close(theory.marginal_velocity(x, 0.0, full, target), -x, rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match="no Lebesgue density"):
        theory.score(x, 0.0, full, target)


def test_large_dimension_and_concentration_stay_finite():
    dim = 256
    source = mixture(dim, [1e-3, 0.2], seed=15, scale=0.5)
    target = UniformSphere(dim)
    x = points(3, dim, seed=16, scale=1.0)
    t = torch.tensor([0.05, 0.5, 0.95], dtype=F64)
    mean_x1 = theory.posterior_mean_x1(x, t, source, target)
    assert torch.isfinite(mean_x1).all() and (mean_x1.norm(dim=1) <= target.radius * (1 + 1e-12)).all()
    for f in [theory.marginal_velocity, theory.score, theory.log_density, theory.velocity_time_derivative]:
        assert torch.isfinite(f(x, t, source, target)).all()
    field = theory.exact_field(mixture(4, [0.3, 0.5], seed=17), UniformSphere(4))
    assert field(points(8, 4, seed=18).float(), torch.full((8,), 0.5)).dtype == torch.float32
