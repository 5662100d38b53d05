"""Exact (closed-form) marginal quantities of rFM for Gaussian-mixture sources.

Setting (paper Sec. III-B): the reversed linear path X_t = (1 - t) X_0 + t X_1 with X_0 ~ source and
X_1 ~ target independent. The source is a ``wtflow.distributions.GaussianMixture``
sum_k w_k N(m_k, s_k^2 I): a population (s_k > 0), an empirical training set (s_k = 0, point masses,
``GaussianMixture.empirical``) or a mix; ``StandardGaussian`` and ``Point`` are accepted as
one-component sources. The target is ``StandardGaussian``, ``UniformSphere`` (radius r) or ``Point``.

Everything here is float64 and closed form (no Monte Carlo):

* ``log_density``          log p_t(x)                      (N,)
* ``score``                grad_x log p_t(x)               like x
* ``posterior_mean_x0``    E[X_0 | X_t = x]                like x
* ``posterior_mean_x1``    E[X_1 | X_t = x]                like x
* ``marginal_velocity``    u(x, t) = E[X_1 - X_0 | X_t = x] (eq. 8)        like x
* ``posterior_cov_x0``     Cov[X_0 | X_t = x]              (N, D, D)
* ``velocity_jacobian``    grad_x u(x, t), [i, j] = d u_i / d x_j          (N, D, D)
* ``velocity_time_derivative``  d_t u(x, t)                like x
* ``velocity_time_derivative_eq24``  d_t u from the paper's eq. (24) (Gaussian target), for checking the paper
* ``exact_field(source, target)``  a velocity v(x_t, t) for ``wtflow.solvers``.

``x`` has shape (N, D) or (N, *event_shape); ``t`` is a float or an (N,) tensor. Vector outputs have
the shape of ``x``; matrices are (N, D, D) with D the flattened dimension.

How it is computed. Given component k, everything is explicit:

* Gaussian target: X_t | k ~ N((1 - t) m_k, v_k I), v_k = (1 - t)^2 s_k^2 + t^2, and
  E[X_0 | x, k] = m_k + (1 - t) s_k^2 / v_k a_k, Cov[X_0 | x, k] = s_k^2 t^2 / v_k I with a_k = x - (1 - t) m_k.
* Sphere target: given k and X_1 = z, X_t ~ N((1 - t) m_k + t z, sigma_k^2 I), sigma_k = (1 - t) s_k;
  integrating z over the sphere leaves a von Mises-Fisher posterior over z / r with mean direction a_k / ||a_k||
  and concentration kappa_k = t r ||a_k|| / sigma_k^2, so E[X_1 | x, k] = r A_D(kappa_k) a_k / ||a_k||
  (``theory.vmf``).
* Point target: X_t = (1 - t) X_0 exactly, u(x, t) = -x / (1 - t).

The posterior responsibilities pi_k(x) come from w_k p(x | k) by a log-sum-exp. The evaluators stream
over the mixture components in chunks with a running (online) log-sum-exp and over the queries in
chunks, so memory does not grow with the number of components (``benchmarks/field_speed.py``).

Modules: ``api`` (the public functions), ``_setup`` (input checks), ``_streaming`` (distances, online
log-sum-exp, centred sums), ``_gaussian`` (Gaussian and point targets), ``_sphere`` (sphere target),
``_evaluate`` (dispatch by target and row group), ``_limits`` (chunk sizes and tolerances).
Second-order quantities (covariance, Jacobian, d_t u) are assembled from the per-component ones by the
laws of total covariance: grad_x u = sum_k pi_k grad_x u_k + sum_k pi_k (u_k - u)(g_k - g)^T with
g_k = grad_x log p(x | k), and likewise for d_t with h_k = d_t log p(x | k). For the Gaussian target this
is the same matrix as the paper's eq. (31), grad_x u = I / t - (1 - t) / t^3 Cov[X_0 | X_t = x], but it
stays accurate as t -> 0.

Accuracy at scale: the squared distances ||x - (1 - t) m_k||^2 come from one matrix product (expanded
square) unless that expansion would cost more than 1e-10 in the log-density (small t, large norms), where
direct differences are used. When all s_k are equal (e.g. an empirical source), components whose logits for
every query of a chunk lie more than -log(eps) + log(K) below the running maximum are skipped: together they are below
float64 resolution. ``benchmarks/field_speed.py`` checks agreement with a plain per-query evaluation.

Facts worth knowing (tested in tests/theory/):

* Lemma 2 (eq. 9), u = -x / (1 - t) - t / (1 - t) grad log p_t(x), holds for the Gaussian target only
  (its proof uses X_t | X_0 ~ N((1 - t) X_0, t^2 I)); for any target u = (E[X_1 | x] - x) / (1 - t).
* t = 0 (Theorem 1, Proposition 1). For a population source (every s_k > 0) every quantity has a
  limit at t = 0 and that limit is returned: u(x, 0) = -x (eq. 12), E[X_0 | x] = x, E[X_1 | x] = E[X_1] = 0,
  Cov = 0, grad_x u = -I. For an empirical source the limit does not exist off the training points
  (u ~ (x - m_nearest) / t): asking for t = 0 raises, start at a small t0 > 0. At a training point
  x = m_k, however, u(m_k, t) -> 0 (not -m_k) as t -> 0, because E[X_1 | X_t = m_k] -> m_k: the only
  way to stand on a training point at small t is to have come from it with X_1 = m_k.
  For a mixed source (some s_k = 0) the point masses carry no density off their atoms, so at t = 0 they
  are dropped and the population limit is returned (valid off the atoms); log p_0 and the score at t = 0
  raise because X_0 then has no density.
  For the point target u(x, 0) = -x for every source.
* t = 1. The Gaussian target is fine (u(x, 1) = x - E[X_0]). For the sphere and point targets X_1 has
  no density and u blows up like (r x/||x|| - x) / (1 - t) resp. -x / (1 - t) off the support: t = 1 raises.
  (fixed-step ``wtflow.solvers.solve(..., method="euler")`` never evaluates at t = 1; adaptive methods do, so
  use them with the Gaussian target, or Euler for the other targets.) ``exact_field`` with the Gaussian target
  also accepts t up to 12, where adaptive solvers overshoot; the same formulas define u there. Underflow of powers of
  t (t below ~1e-150 with point masses) and |x| > 1e150 raise instead of returning NaN.
* Sphere target with point-mass components. In D >= 2, X_t given a point mass lives on the sphere of
  radius t r around (1 - t) m_k and has no Lebesgue density. The quantities returned are the s -> 0
  limits of the population formulas (all point masses sharing the same s -> 0):
  if every component is a point mass, the responsibility goes to the nearest sphere(s)
  (distance | ||a_k|| - t r |; exact ties, up to a relative 1e-9, share it in proportion to
  w_k ||a_k||^-(D-1)/2), E[X_1 | x] = r a_k / ||a_k||, Cov[X_1 | x, k] = 0, u = (E[X_1 | x] - x) / (1 - t);
  on the spheres this is the exact conditional expectation. log p_t and the score have no limit and raise.
  If the source mixes point masses with population components, the point masses get zero
  responsibility off their spheres (a null set), so they are dropped.
"""

from .api import (
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

__all__ = [
    "ExactField",
    "exact_field",
    "log_density",
    "marginal_velocity",
    "posterior_cov_x0",
    "posterior_mean_x0",
    "posterior_mean_x1",
    "score",
    "velocity_jacobian",
    "velocity_time_derivative",
    "velocity_time_derivative_eq24",
]
