"""theory.fields with the Gaussian and point targets: closed forms against autograd and independent computations."""

import math

import pytest
import torch

import theory
from wtflow.distributions import GaussianMixture, Point, StandardGaussian, UniformSphere
from wtflow.solvers import euler, solve_adaptive

F64 = torch.float64


def mixture(dim, stds, seed=0, weights=None, scale=1.5):
    gen = torch.Generator().manual_seed(seed)
    k = len(stds)
    means = scale * torch.randn(k, dim, generator=gen, dtype=F64)
    if weights is None:
        weights = torch.rand(k, generator=gen, dtype=F64) + 0.2
        weights = weights / weights.sum()
    return GaussianMixture(means, stds=torch.tensor(stds, dtype=F64), weights=weights)


def points(n, dim, seed=1, scale=1.5):
    return scale * torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=F64)


SOURCES = {
    "population": [0.3, 0.7, 0.5, 0.9],
    "empirical": [0.0, 0.0, 0.0, 0.0],
    "mixed": [0.0, 0.4, 0.0, 0.8],
}
TIMES = torch.tensor([0.02, 0.1, 0.3, 0.5, 0.8, 0.97, 1.0], dtype=F64)


def reference_log_density(x, t, source):
    """Direct (N, K, D) evaluation of log sum_k w_k N(x; (1 - t) m_k, v_k I), differentiable in x and t."""
    means, stds, weights = source.means.flatten(1), source.stds, source.weights
    dim = means.shape[1]
    t = t.reshape(-1, 1)
    v = (1 - t) ** 2 * stds**2 + t**2  # (N, K)
    sq = (x[:, None, :] - (1 - t)[..., None] * means[None]).pow(2).sum(-1)
    return torch.logsumexp(weights.log() - 0.5 * dim * torch.log(2 * math.pi * v) - 0.5 * sq / v, dim=1)


def lemma2_velocity(x, t, source):
    """u = -x/(1-t) - t/(1-t) grad log p_t (eq. 9), built by autograd from the reference density."""
    x = x.requires_grad_(True) if not x.requires_grad else x
    grad = torch.autograd.grad(reference_log_density(x, t, source).sum(), x, create_graph=True)[0]
    tc = t.reshape(-1, 1)
    return -x / (1 - tc) - tc / (1 - tc) * grad


@pytest.mark.parametrize("kind", list(SOURCES))
def test_log_density_score_and_lemma2(kind):
    source, target = mixture(3, SOURCES[kind]), StandardGaussian(3)
    x = points(len(TIMES), 3)
    log_p = theory.log_density(x, TIMES, source, target)
    torch.testing.assert_close(log_p, reference_log_density(x, TIMES, source), rtol=0, atol=1e-12)
    xr = x.clone().requires_grad_(True)
    grad = torch.autograd.grad(reference_log_density(xr, TIMES, source).sum(), xr)[0]
    score = theory.score(x, TIMES, source, target)
    torch.testing.assert_close(score, grad, rtol=1e-12, atol=1e-11)
    u = theory.marginal_velocity(x, TIMES, source, target)
    inner = TIMES < 1
    tc = TIMES[:, None]
    lemma2 = -x / (1 - tc) - tc / (1 - tc) * score
    torch.testing.assert_close(u[inner], lemma2[inner], rtol=1e-11, atol=1e-11)
    # eq. (8): u = E[X_1|x] - E[X_0|x], and X_t = (1 - t) X_0 + t X_1 holds in conditional mean.
    mean_x0 = theory.posterior_mean_x0(x, TIMES, source, target)
    mean_x1 = theory.posterior_mean_x1(x, TIMES, source, target)
    torch.testing.assert_close(u, mean_x1 - mean_x0, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close((1 - tc) * mean_x0 + tc * mean_x1, x, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", list(SOURCES))
def test_jacobian_and_time_derivative_against_autograd(kind):
    source, target = mixture(3, SOURCES[kind], seed=2), StandardGaussian(3)
    times = TIMES[:-1]
    x = points(len(times), 3, seed=3)
    jacobian = theory.velocity_jacobian(x, times, source, target)
    time_derivative = theory.velocity_time_derivative(x, times, source, target)
    cov = theory.posterior_cov_x0(x, times, source, target)
    eye = torch.eye(3, dtype=F64)
    for i, t in enumerate(times):
        ti = t.reshape(1)
        # Autograd of eq. (9) differentiates terms of size 1/t^4 that cancel: its own roundoff grows like
        # eps / t^3, hence the t-dependent tolerance; the centred closed form is checked tightly below.
        tol = 1e-11 / float(t) ** 3
        auto_jac = torch.autograd.functional.jacobian(lambda z, ti=ti: lemma2_velocity(z[None], ti, source)[0], x[i])
        torch.testing.assert_close(jacobian[i], auto_jac, rtol=1e-9, atol=tol)
        auto_dt = torch.autograd.functional.jacobian(
            lambda s, i=i: lemma2_velocity(x[i : i + 1].clone(), s, source)[0], ti
        )
        torch.testing.assert_close(time_derivative[i], auto_dt[:, 0], rtol=1e-9, atol=tol / float(t))
        # eq. (31): grad_x u = I/t - (1 - t)/t^3 Cov[X_0 | X_t = x]
        torch.testing.assert_close(jacobian[i], eye / t - (1 - t) / t**3 * cov[i], rtol=1e-12, atol=1e-12)
        # Independent centred computation of eq. (31) from the responsibilities (accurate at small t).
        s2 = source.stds**2
        v = (1 - t) ** 2 * s2 + t**2
        logits = source.weights.log() - 1.5 * torch.log(v) - 0.5 * (x[i] - (1 - t) * source.means).pow(2).sum(1) / v
        pi = torch.softmax(logits, 0)
        mu = source.means + ((1 - t) * s2 / v)[:, None] * (x[i] - (1 - t) * source.means)
        centred = mu - mu[pi.argmax()]
        mean_centred = pi @ centred
        cov_ref = torch.einsum("k,ki,kj->ij", pi, centred, centred) - torch.outer(mean_centred, mean_centred)
        cov_ref = cov_ref + (pi * s2 * t**2 / v).sum() * eye
        torch.testing.assert_close(jacobian[i], eye / t - (1 - t) / t**3 * cov_ref, rtol=1e-12, atol=1e-11)
    torch.testing.assert_close(jacobian, jacobian.transpose(1, 2), rtol=0, atol=1e-8)
    # eq. (24) of the paper, evaluated from the posterior moments of X_0, equals d_t u.
    eq24 = theory.velocity_time_derivative_eq24(x, times, source)
    torch.testing.assert_close(eq24, time_derivative, rtol=1e-8, atol=1e-7)


def grid_posterior(x, t, source, lo=-8.0, hi=8.0, n=801):
    """E[X_0|x], Cov[X_0|x] and p_t(x) by a tensor-product grid over x_0 in 2-D (population source only)."""
    axis = torch.linspace(lo, hi, n, dtype=F64)
    grid = torch.cartesian_prod(axis, axis)  # (G, 2)
    log_prior = source.log_prob(grid)
    cell = (axis[1] - axis[0]) ** 2
    out = []
    for xi, ti in zip(x, t):
        log_lik = -0.5 * (xi - (1 - ti) * grid).pow(2).sum(1) / ti**2 - math.log(2 * math.pi * ti**2)
        log_joint = log_prior + log_lik
        w = torch.softmax(log_joint, 0)
        mean = w @ grid
        second = (w[:, None, None] * grid[:, :, None] * grid[:, None, :]).sum(0)
        out.append((mean, second - mean[:, None] * mean[None], torch.logsumexp(log_joint, 0) + cell.log()))
    return out


def test_posterior_moments_against_grid_integration():
    source, target = mixture(2, [0.5, 0.8, 0.6], seed=4, scale=1.0), StandardGaussian(2)
    t = torch.tensor([0.2, 0.5, 0.9], dtype=F64)
    x = points(3, 2, seed=5, scale=1.0)
    mean = theory.posterior_mean_x0(x, t, source, target)
    cov = theory.posterior_cov_x0(x, t, source, target)
    log_p = theory.log_density(x, t, source, target)
    for i, (grid_mean, grid_cov, grid_log_p) in enumerate(grid_posterior(x, t, source)):
        torch.testing.assert_close(mean[i], grid_mean, rtol=0, atol=1e-8)
        torch.testing.assert_close(cov[i], grid_cov, rtol=0, atol=1e-8)
        torch.testing.assert_close(log_p[i], grid_log_p, rtol=0, atol=1e-8)


@pytest.mark.parametrize("kind", list(SOURCES))
def test_covariance_is_psd_and_matches_second_moment(kind):
    source, target = mixture(4, SOURCES[kind], seed=6), StandardGaussian(4)
    x = points(6, 4, seed=7)
    t = torch.tensor([0.05, 0.2, 0.4, 0.6, 0.9, 1.0], dtype=F64)
    cov = theory.posterior_cov_x0(x, t, source, target)
    assert torch.linalg.eigvalsh(cov).min() > -1e-12
    # Independent computation: responsibilities from the reference density, per-component Gaussian moments.
    means, s2, w = source.means, source.stds**2, source.weights
    tc = t[:, None]
    v = (1 - tc) ** 2 * s2 + tc**2
    log_joint = (
        w.log() - 2 * torch.log(2 * math.pi * v) - 0.5 * (x[:, None] - (1 - tc)[..., None] * means).pow(2).sum(-1) / v
    )
    pi = torch.softmax(log_joint, 1)
    mu = means + ((1 - tc) * s2 / v)[..., None] * (x[:, None] - (1 - tc)[..., None] * means)
    c = s2 * tc**2 / v
    second = torch.einsum("nk,nki,nkj->nij", pi, mu, mu) + (pi * c).sum(1)[:, None, None] * torch.eye(4, dtype=F64)
    mean = theory.posterior_mean_x0(x, t, source, target)
    torch.testing.assert_close(cov, second - mean[:, :, None] * mean[:, None, :], rtol=0, atol=1e-11)
    torch.testing.assert_close(mean, torch.einsum("nk,nki->ni", pi, mu), rtol=0, atol=1e-12)


def test_population_source_is_continuous_at_t0():
    source, target = mixture(3, SOURCES["population"], seed=8), StandardGaussian(3)
    x = points(5, 3, seed=9)
    eye = torch.eye(3, dtype=F64).expand(5, 3, 3)
    # eq. (12) / Proposition 1: u(x, 0) = -x; E[X_0|x] = x, E[X_1|x] = E[X_1] = 0, Cov = 0, grad u = -I.
    torch.testing.assert_close(theory.marginal_velocity(x, 0.0, source, target), -x, rtol=0, atol=1e-15)
    torch.testing.assert_close(theory.posterior_mean_x0(x, 0.0, source, target), x, rtol=0, atol=1e-15)
    torch.testing.assert_close(theory.posterior_mean_x1(x, 0.0, source, target), torch.zeros_like(x))
    torch.testing.assert_close(theory.posterior_cov_x0(x, 0.0, source, target), torch.zeros(5, 3, 3, dtype=F64))
    torch.testing.assert_close(theory.velocity_jacobian(x, 0.0, source, target), -eye, rtol=0, atol=1e-14)
    torch.testing.assert_close(theory.log_density(x, 0.0, source, target), source.log_prob(x), rtol=0, atol=1e-13)
    for small in [1e-4, 1e-6]:
        u = theory.marginal_velocity(x, small, source, target)
        assert (u + x).abs().max() < 50 * small
        jac = theory.velocity_jacobian(x, small, source, target)
        assert (jac + eye).abs().max() < 1e3 * small
    # d_t u at t = 0 is the one-sided limit: compare with a forward difference.
    h = 1e-6
    forward = (theory.marginal_velocity(x, h, source, target) - theory.marginal_velocity(x, 0.0, source, target)) / h
    torch.testing.assert_close(theory.velocity_time_derivative(x, 0.0, source, target), forward, rtol=1e-4, atol=1e-4)


def test_empirical_source_facts_near_t0():
    train = points(6, 3, seed=10)
    source, target = GaussianMixture.empirical(train), StandardGaussian(3)
    with pytest.raises(ValueError, match="Theorem 1"):
        theory.marginal_velocity(train, 0.0, source, target)
    with pytest.raises(ValueError, match="t0 > 0"):
        theory.exact_field(source, target)(train, torch.zeros(6, dtype=F64))
    # At a training point u(m_k, t) -> 0 (not -m_k) because E[X_1 | X_t = m_k] -> m_k.
    for t in [1e-2, 1e-3]:
        u = theory.marginal_velocity(train, t, source, target)
        assert u.abs().max() < 10 * t
        torch.testing.assert_close(theory.posterior_mean_x1(train, t, source, target), train, rtol=0, atol=10 * t)
    # Off the training points u ~ (x - m_nearest) / t: no limit at t = 0 (Theorem 1).
    x = points(4, 3, seed=11)
    nearest = train[torch.cdist(x, train).argmin(1)]
    t = 1e-3
    torch.testing.assert_close(t * theory.marginal_velocity(x, t, source, target), x - nearest, rtol=0, atol=1e-2)


def test_mixed_source_at_t0_and_gaussian_target_at_t1():
    source, target = mixture(3, SOURCES["mixed"], seed=12), StandardGaussian(3)
    x = points(4, 3, seed=13)
    torch.testing.assert_close(theory.marginal_velocity(x, 0.0, source, target), -x, rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match="no Lebesgue density"):
        theory.log_density(x, 0.0, source, target)
    # t = 1: X_1 is independent of X_0, so u(x, 1) = x - E[X_0].
    source_mean = source.weights @ source.means
    torch.testing.assert_close(theory.marginal_velocity(x, 1.0, source, target), x - source_mean, rtol=0, atol=1e-13)


def test_shapes_dtypes_and_per_sample_times():
    event = (2, 3)
    gen = torch.Generator().manual_seed(14)
    source = GaussianMixture(torch.randn(5, *event, generator=gen, dtype=F64), stds=0.4)
    target = StandardGaussian(event)
    x = torch.randn(4, *event, generator=gen, dtype=torch.float32)
    t = torch.tensor([0.1, 0.4, 0.7, 1.0])
    u = theory.marginal_velocity(x, t, source, target)
    assert u.shape == x.shape and u.dtype == F64
    flat = theory.marginal_velocity(x.reshape(4, 6).double(), t.double(), source, StandardGaussian(6))
    torch.testing.assert_close(u.reshape(4, 6), flat)
    per_row = torch.stack([theory.marginal_velocity(x[i : i + 1], float(t[i]), source, target)[0] for i in range(4)])
    torch.testing.assert_close(u, per_row)
    assert theory.velocity_jacobian(x, t, source, target).shape == (4, 6, 6)
    assert theory.posterior_cov_x0(x, t, source, target).shape == (4, 6, 6)
    assert theory.log_density(x, t, source, target).shape == (4,)
    assert theory.velocity_time_derivative(x, t, source, target).shape == x.shape


def test_streaming_chunks_do_not_change_results(monkeypatch):
    import theory.fields._limits as fields

    source = GaussianMixture.empirical(points(300, 4, seed=15))
    hetero = mixture(4, [0.1 * (k % 5) for k in range(40)], seed=16)
    target = StandardGaussian(4)
    x, t = points(70, 4, seed=17), torch.linspace(0.05, 1.0, 70, dtype=F64)
    expected = [theory.marginal_velocity(x, t, s, target) for s in (source, hetero)]
    expected_jac = theory.velocity_jacobian(x, t, hetero, target)
    monkeypatch.setattr(fields, "ENTRY_BUDGET", 64)
    monkeypatch.setattr(fields, "GENERAL_ENTRY_BUDGET", 64)
    monkeypatch.setattr(fields, "TENSOR_BUDGET", 256)
    monkeypatch.setattr(fields, "QUERY_CHUNK", 16)
    monkeypatch.setattr(fields, "FIRST_ORDER_BLOCK", 32)
    for s, e in zip((source, hetero), expected):
        torch.testing.assert_close(theory.marginal_velocity(x, t, s, target), e, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(theory.velocity_jacobian(x, t, hetero, target), expected_jac, rtol=1e-10, atol=1e-10)


def test_small_t_uses_exact_distances():
    # At t = 1e-4 the expansion ||x||^2 - 2 (1-t) x.m + ... would lose ~1e-4 in the logits; direct differences do not.
    train = points(50, 8, seed=18, scale=10.0)
    source, target = GaussianMixture.empirical(train), StandardGaussian(8)
    x = train[:5] + 1e-4 * points(5, 8, seed=19)
    t = 1e-4
    ref = reference_log_density(x, torch.full((5,), t, dtype=F64), source)
    torch.testing.assert_close(theory.log_density(x, t, source, target), ref, rtol=1e-13, atol=1e-8)


def test_point_target():
    source, target = mixture(3, SOURCES["population"], seed=20), Point(3)
    x = points(4, 3, seed=21)
    t = torch.tensor([0.0, 0.2, 0.5, 0.9], dtype=F64)
    tc = t[:, None]
    torch.testing.assert_close(theory.marginal_velocity(x, t, source, target), -x / (1 - tc))
    torch.testing.assert_close(theory.posterior_mean_x0(x, t, source, target), x / (1 - tc))
    torch.testing.assert_close(theory.posterior_mean_x1(x, t, source, target), torch.zeros_like(x))
    # X_t = (1 - t) X_0: log p_t(x) = log p_0(x / (1 - t)) - D log(1 - t)
    expected = source.log_prob(x / (1 - tc)) - 3 * torch.log1p(-t)
    torch.testing.assert_close(theory.log_density(x, t, source, target), expected, rtol=0, atol=1e-12)
    xr = x.clone().requires_grad_(True)
    grad = torch.autograd.grad((source.log_prob(xr / (1 - tc))).sum(), xr)[0]
    torch.testing.assert_close(theory.score(x, t, source, target), grad, rtol=1e-12, atol=1e-12)
    auto = torch.autograd.functional.jacobian(lambda z: -z / (1 - t[2]), x[2])
    torch.testing.assert_close(theory.velocity_jacobian(x, t, source, target)[2], auto)
    torch.testing.assert_close(theory.velocity_time_derivative(x, t, source, target), -x / (1 - tc) ** 2)
    assert theory.posterior_cov_x0(x, t, source, target).abs().max() == 0
    empirical = GaussianMixture.empirical(x)
    torch.testing.assert_close(theory.marginal_velocity(x, 0.0, empirical, target), -x)
    with pytest.raises(ValueError, match="no Lebesgue density"):
        theory.log_density(x, 0.5, empirical, target)
    with pytest.raises(ValueError, match="t = 1"):
        theory.marginal_velocity(x, 1.0, source, target)


def test_exact_field_with_solvers_matches_the_gaussian_flow():
    # One Gaussian source N(m, s^2 I) and the Gaussian target: u is affine and the exact flow is
    # x_t = (1 - t) m + sqrt(v(t) / v(t0)) (x_t0 - (1 - t0) m), v(t) = (1 - t)^2 s^2 + t^2; so x_1 = (x_0 - m) / s.
    m, s = torch.tensor([[1.0, -2.0]], dtype=F64), 0.5
    source, target = GaussianMixture(m, stds=s), StandardGaussian(2)
    field = theory.exact_field(source, target)
    x0 = m + s * points(64, 2, seed=22, scale=1.0)
    exact_end = (x0 - m) / s
    adaptive = solve_adaptive(field, x0, rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(adaptive.x_end, exact_end, rtol=0, atol=1e-5)
    # K = 1 from t0 = 0: phi = x_0 + u(x_0, 0) = x_0 - x_0 = 0 (the centripetal field of eq. 12).
    one_step = euler(field, x0, steps=1)
    torch.testing.assert_close(one_step.x_end, torch.zeros_like(x0), rtol=0, atol=1e-15)
    # K = 20: u = alpha(t) (x - (1 - t) m) - m with alpha = (t - (1 - t) s^2) / v(t), so y = x - (1 - t) m follows
    # y_{k+1} = (1 + h alpha(t_k)) y_k exactly under Euler.
    twenty = euler(field, x0, steps=20, record="norms")
    grid = torch.linspace(0, 1, 21, dtype=F64)[:-1]
    alpha = (grid - (1 - grid) * s**2) / ((1 - grid) ** 2 * s**2 + grid**2)
    torch.testing.assert_close(twenty.x_end, torch.prod(1 + alpha / 20) * (x0 - m), rtol=1e-12, atol=1e-12)
    assert twenty.norms.shape == (21, 64)
    assert ((twenty.x_end - exact_end).norm(dim=1) / exact_end.norm(dim=1)).max() < 0.1
    # float32 in, float32 out; the computation itself runs in float64.
    x32 = x0.float()
    u32 = field(x32, torch.full((64,), 0.3))
    assert u32.dtype == torch.float32
    torch.testing.assert_close(u32, theory.marginal_velocity(x0, 0.3, source, target).float(), rtol=1e-6, atol=1e-6)
    # Empirical source: start at t0 > 0 (Theorem 1); trajectories are finite.
    empirical = theory.exact_field(GaussianMixture.empirical(x0[:8]), target)
    assert torch.isfinite(euler(empirical, x0[:8].float(), steps=20, t0=1e-3).x_end).all()
    assert torch.isfinite(solve_adaptive(empirical, x0[:8], t0=1e-2, rtol=1e-4, atol=1e-6).x_end).all()


def test_bad_input_errors():
    source, target = mixture(3, SOURCES["population"]), StandardGaussian(3)
    x = points(4, 3)
    with pytest.raises(ValueError, match=r"t must lie in \[0, 1\]"):
        theory.marginal_velocity(x, 1.5, source, target)
    with pytest.raises(ValueError, match=r"t must lie in \[0, 1\]"):
        theory.marginal_velocity(x, -0.1, source, target)
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        theory.marginal_velocity(x, torch.full((3,), 0.5), source, target)
    with pytest.raises(ValueError, match="x must have shape"):
        theory.marginal_velocity(points(4, 2), 0.5, source, target)
    with pytest.raises(ValueError, match="same dimension"):
        theory.marginal_velocity(x, 0.5, source, StandardGaussian(4))
    with pytest.raises(ValueError, match="same dimension"):
        theory.exact_field(source, UniformSphere(4))
    with pytest.raises(ValueError, match="finite"):
        theory.marginal_velocity(x * float("nan"), 0.5, source, target)
    with pytest.raises(TypeError, match="target must be"):
        theory.marginal_velocity(x, 0.5, source, source)
    with pytest.raises(TypeError, match="source must be"):
        theory.marginal_velocity(x, 0.5, UniformSphere(3), target)
    with pytest.raises(ValueError, match="t must be > 0"):
        theory.velocity_time_derivative_eq24(x, 0.0, source)
    # The mixture validates its own parameters: negative stds, weights not summing to one.
    with pytest.raises(ValueError, match="stds must be non-negative"):
        GaussianMixture(torch.zeros(2, 3, dtype=F64), stds=torch.tensor([0.5, -0.1], dtype=F64))
    with pytest.raises(ValueError, match="sum to one"):
        GaussianMixture(torch.zeros(2, 3, dtype=F64), stds=0.5, weights=torch.tensor([0.5, 0.6], dtype=F64))
