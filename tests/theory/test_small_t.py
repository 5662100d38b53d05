"""Small-t numerics of the exact fields against high-precision references (mpmath, 60 digits), and clear errors
where a quantity does not exist or would overflow.

mpmath comes with sympy (a torch dependency); it is also listed in the project's dev extra.
"""

import mpmath
import pytest
import torch

import theory
from wtflow.distributions import GaussianMixture, StandardGaussian

F64 = torch.float64


def _mp_velocity(x, t, means, stds, weights):
    """u(x, t) = sum_k pi_k u_k for a Gaussian mixture source and the N(0, I) target, in mpmath."""
    dim = len(x)
    logits, u_parts = [], []
    for m, s, w in zip(means, stds, weights):
        v = (1 - t) ** 2 * s**2 + t**2
        a = [x[i] - (1 - t) * m[i] for i in range(dim)]
        logits.append(mpmath.log(w) - dim / 2 * mpmath.log(v) - sum(ai**2 for ai in a) / (2 * v))
        alpha = (t - (1 - t) * s**2) / v
        u_parts.append([alpha * a[i] - m[i] for i in range(dim)])
    top = max(logits)
    pis = [mpmath.exp(lg - top) for lg in logits]
    total = sum(pis)
    return [sum(p * u[i] for p, u in zip(pis, u_parts)) / total for i in range(dim)]


def _mp_time_derivative(x, t, means, stds, weights):
    with mpmath.workdps(60):
        h = mpmath.mpf("1e-25")
        args = [[mpmath.mpf(float(v)) for v in row] for row in means], [mpmath.mpf(float(s)) for s in stds]
        xs, ws, tt = [mpmath.mpf(float(v)) for v in x], [mpmath.mpf(float(w)) for w in weights], mpmath.mpf(t)
        plus = _mp_velocity(xs, tt + h, *args, ws)
        minus = _mp_velocity(xs, tt - h, *args, ws)
        return torch.tensor([float((p - q) / (2 * h)) for p, q in zip(plus, minus)], dtype=F64)


@pytest.mark.parametrize("dim", [2, 128])
@pytest.mark.parametrize("t", [1e-4, 1e-3])
def test_time_derivative_at_small_t_matches_mpmath(dim, t):
    gen = torch.Generator().manual_seed(dim)
    means = torch.randn(3, dim, generator=gen, dtype=F64)
    stds = torch.tensor([0.3, 0.5, 0.4], dtype=F64)
    weights = torch.tensor([0.5, 0.3, 0.2], dtype=F64)
    source = GaussianMixture(means, stds, weights)
    x = source.sample(3, generator=gen, dtype=F64)
    reference = torch.stack([_mp_time_derivative(row.tolist(), t, means.tolist(), stds, weights) for row in x])
    scale = reference.norm(dim=1, keepdim=True)
    eq24 = theory.velocity_time_derivative_eq24(x, t, source)
    direct = theory.velocity_time_derivative(x, t, source, StandardGaussian(dim))
    for value in (eq24, direct):
        assert float(((value - reference).norm(dim=1, keepdim=True) / scale).max()) < 1e-8


def test_centred_and_printed_eq24_agree_where_both_are_accurate():
    gen = torch.Generator().manual_seed(4)
    source = GaussianMixture(torch.randn(4, 5, generator=gen, dtype=F64), torch.tensor([0.2, 0.4, 0.6, 0.3], dtype=F64))
    x = source.sample(6, generator=gen, dtype=F64)
    # 0.5 uses the centred form, 0.5 + 1e-12 the printed one: the two must agree across the switch.
    below = theory.velocity_time_derivative_eq24(x, 0.5, source)
    above = theory.velocity_time_derivative_eq24(x, 0.5 + 1e-12, source)
    torch.testing.assert_close(below, above, rtol=1e-9, atol=1e-9)


def test_underflow_and_overflow_raise_instead_of_nan():
    gen = torch.Generator().manual_seed(9)
    source = GaussianMixture.empirical(torch.randn(5, 3, generator=gen, dtype=F64))
    target = StandardGaussian(3)
    x = torch.randn(4, 3, generator=gen, dtype=F64)
    assert torch.isfinite(theory.marginal_velocity(x, 1e-150, source, target)).all()
    for quantity, t in (
        (theory.marginal_velocity, 1e-160),
        (theory.posterior_cov_x0, 1e-160),
        (theory.velocity_jacobian, 1e-152),
        (theory.velocity_time_derivative, 1e-110),
    ):
        with pytest.raises(FloatingPointError, match="not representable in float64"):
            quantity(x, t, source, target)
    with pytest.raises(ValueError, match="at most 1e"):
        theory.marginal_velocity(x * 1e160, 0.5, source, target)
    with pytest.raises(ValueError, match="empty batch"):
        theory.marginal_velocity(x[:0], 0.5, source, target)
    field = theory.exact_field(source, target)
    assert torch.isfinite(field(x, torch.full((4,), 1.05, dtype=F64))).all()  # adaptive-solver overshoot
    with pytest.raises(ValueError, match=r"t must lie in \[0, 12\]"):
        field(x, torch.full((4,), 100.0, dtype=F64))
