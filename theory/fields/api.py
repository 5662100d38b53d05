"""Public API of the exact fields (see the package docstring)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from wtflow.distributions import Distribution, StandardGaussian

from ._evaluate import _evaluate, _require_finite
from ._gaussian import _eq24_centred, _gaussian_logits
from ._setup import _as_mixture, _chunks, _prepare, _replace, _target_kind
from ._streaming import _pass2_sizes


def log_density(x: Tensor, t, source: Distribution, target: Distribution) -> Tensor:
    """log p_t(x), the Lebesgue log-density of X_t = (1 - t) X_0 + t X_1; returns (N,).

    Raises where X_t has no density: the sphere target with an all-point-mass source, the point target
    with any point mass, t = 0 with any point mass, t = 1 for the sphere and point targets.
    """
    return _evaluate(x, t, source, target, "log_density", "log p_t")


def score(x: Tensor, t, source: Distribution, target: Distribution) -> Tensor:
    """grad_x log p_t(x), shaped like x (N, *event_shape). Same domain as ``log_density``.

    For the Gaussian target, Lemma 2 (eq. 9) links it to the velocity:
    u = -x / (1 - t) - t / (1 - t) * score.
    """
    return _evaluate(x, t, source, target, "score", "the score grad log p_t")


def posterior_mean_x0(x: Tensor, t, source: Distribution, target: Distribution) -> Tensor:
    """E[X_0 | X_t = x], shaped like x.

    At t = 0 it is x for a population source; raises at t = 0 for an empirical source (Theorem 1).
    """
    return _evaluate(x, t, source, target, "mean_x0", "E[X_0 | X_t = x]")


def posterior_mean_x1(x: Tensor, t, source: Distribution, target: Distribution) -> Tensor:
    """E[X_1 | X_t = x], shaped like x. At t = 0 (population source) it is E[X_1] = 0 (eq. 45).

    For an empirical source and x = m_k, E[X_1 | X_t = m_k] -> m_k as t -> 0.
    """
    return _evaluate(x, t, source, target, "mean_x1", "E[X_1 | X_t = x]")


def marginal_velocity(x: Tensor, t, source: Distribution, target: Distribution) -> Tensor:
    """u(x, t) = E[X_1 - X_0 | X_t = x] (eq. 8), shaped like x.

    Args:
        x: (N, D) or (N, *event_shape) points x_t.
        t: float or (N,) tensor in [0, 1].
        source: GaussianMixture (population, empirical or mixed), StandardGaussian or Point.
        target: StandardGaussian, UniformSphere or Point.

    u(x, 0) = -x for a population source (eq. 12, Proposition 1) and for the point target; for an
    empirical source t = 0 raises (Theorem 1). For the Gaussian target u equals Lemma 2's eq. (9).
    """
    return _evaluate(x, t, source, target, "velocity", "the marginal velocity u(x, t)")


def posterior_cov_x0(x: Tensor, t, source: Distribution, target: Distribution) -> Tensor:
    """Cov[X_0 | X_t = x], (N, D, D), positive semi-definite; 0 at t = 0 for a population source.

    For the sphere target X_0 = (x - t X_1) / (1 - t) given X_t = x, so Cov[X_0|x] = t^2 / (1 - t)^2 Cov[X_1|x].
    Not streamed over queries beyond chunks: it holds N * D^2 numbers.
    """
    return _evaluate(x, t, source, target, "cov", "Cov[X_0 | X_t = x]")


def velocity_jacobian(x: Tensor, t, source: Distribution, target: Distribution) -> Tensor:
    """grad_x u(x, t), (N, D, D) with [n, i, j] = d u_i / d x_j.

    For the Gaussian target it equals I / t - (1 - t) / t^3 Cov[X_0 | X_t = x] (eq. 31, Lemma 4), symmetric;
    at t = 0 (population source) it is -I.
    """
    return _evaluate(x, t, source, target, "jac", "grad_x u(x, t)")


def velocity_time_derivative(x: Tensor, t, source: Distribution, target: Distribution) -> Tensor:
    """d_t u(x, t) at fixed x, shaped like x (the quantity bounded in Lemma 3)."""
    return _evaluate(x, t, source, target, "dtu", "d_t u(x, t)")


def velocity_time_derivative_eq24(x: Tensor, t, source: Distribution) -> Tensor:
    """d_t u for the Gaussian target written as the paper's eq. (24), from the posterior moments of X_0:

        d_t u = -(x - E_0) / t^2 + (2 - t) / t^4 Cov[X_0|x] x - (1 - t) / t^4 Cov(X_0, ||X_0||^2 | x),

    with E_0 = E[X_0 | X_t = x]; shaped like x. Needs t > 0. For t <= 1/2 it is evaluated in a centred form
    (``_eq24_centred``: the same expression with ||X_0||^2 centred at (2 - t) x / (2 (1 - t)) and the O(1/t^2)
    terms cancelled analytically), which keeps full relative accuracy as t -> 0; above 1/2 the printed form is
    used as is. Equal to ``velocity_time_derivative`` (tested, also against mpmath at t <= 1e-3).
    """
    target = StandardGaussian(_as_mixture(source).event_shape)
    setup = _prepare(x, t, source, target)
    if bool((setup.t == 0).any()):
        raise ValueError("eq. (24) divides by t^4: t must be > 0")
    log_z = log_density(setup.x, setup.t, source, target)
    out = torch.empty_like(setup.x)
    small = setup.t <= 0.5
    if bool(small.any()):
        out[small] = _eq24_centred(_replace(setup, rows=small), log_z[small])
    if bool((~small).any()):
        rows = ~small
        out[rows] = _eq24_from_moments(_replace(setup, rows=rows), source, target, log_z[rows])
    return setup.vector(_require_finite(out, setup, "eq. (24)"))


def _eq24_from_moments(setup, source: Distribution, target: Distribution, log_z: Tensor) -> Tensor:
    """Eq. (24) as printed, from E_0, Cov[X_0 | x] and Cov(X_0, ||X_0||^2 | x) (accurate for t away from 0)."""
    xs, ts = setup.x, setup.t
    n, dim = xs.shape
    comps = setup.comps
    mean_x0 = posterior_mean_x0(xs, ts, source, target)
    cov = posterior_cov_x0(xs, ts, source, target)
    # With X_0 | x, k ~ N(mu_k, c_k I):
    # Cov(X_0, ||X_0||^2 | x) = sum_k pi_k [2 c_k mu_k + (mu_k - E_0) (||mu_k||^2 + D c_k)].
    third = torch.zeros(n, dim, dtype=torch.float64, device=xs.device)
    target_var = ts.pow(2)
    for qs in _chunks(n, _pass2_sizes(n, dim)[0]):
        xq, tq = xs[qs], ts[qs][:, None]
        for ks in _chunks(comps.count, _pass2_sizes(qs.stop - qs.start, dim)[1]):
            logits, v, _ = _gaussian_logits(setup, target_var, qs, ks, True)
            weights = torch.exp(logits - log_z[qs, None])
            m = comps.means[ks][None]
            s2 = comps.variances[None, ks]
            a = xq[:, None, :] - (1 - tq)[..., None] * m
            mu = m + ((1 - tq) * s2 / v)[..., None] * a
            c = s2 * tq.pow(2) / v
            delta = mu - mean_x0[qs][:, None, :]
            term = 2 * c[..., None] * mu + delta * (mu.pow(2).sum(-1) + dim * c)[..., None]
            third[qs] += torch.einsum("nk,nki->ni", weights, term)
    tc = ts[:, None]
    cov_x = torch.einsum("nij,nj->ni", cov, xs)
    return -(xs - mean_x0) / tc.pow(2) + (2 - tc) / tc.pow(4) * cov_x - (1 - tc) / tc.pow(4) * third


class ExactField:
    """The exact marginal velocity as a ``wtflow.solvers`` velocity: ``field(x_t, t)`` with t of shape (N,).

    Accepts any floating dtype and device, computes in float64, returns the input's dtype and shape.
    For the Gaussian target t > 1 is accepted (the path X_t = (1 - t) X_0 + t X_1 and its formulas extend
    there), because adaptive solvers evaluate slightly past the end point.
    """

    def __init__(self, source: Distribution, target: Distribution):
        _as_mixture(source)
        _target_kind(target)
        if source.dim != target.dim:
            raise ValueError(f"source and target must have the same dimension D, got {source.dim} and {target.dim}")
        self.source = source
        self.target = target

    def __repr__(self) -> str:
        return f"ExactField(source={self.source!r}, target={self.target!r})"

    def __call__(self, x_t: Tensor, t) -> Tensor:
        # Adaptive solvers (torchdiffeq) step slightly past t = 1 and interpolate back; for the Gaussian target
        # the same jointly Gaussian formulas define E[X_1 - X_0 | X_t = x] for t > 1, so they are used there.
        u = _evaluate(x_t, t, self.source, self.target, "velocity", "the marginal velocity u(x, t)", extrapolate=True)
        return u.to(dtype=x_t.dtype, device=x_t.device)


def exact_field(source: Distribution, target: Distribution) -> Callable[[Tensor, Tensor], Tensor]:
    """A velocity v(x_t, t) returning the exact u(x_t, t) (eq. 8), for ``wtflow.solvers.solve``.

    With an empirical source start at t0 > 0 (Theorem 1); with the sphere or point target use Euler
    (adaptive methods evaluate at t = 1, where those fields are undefined).
    """
    return ExactField(source, target)
