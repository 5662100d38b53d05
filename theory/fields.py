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
  (``wtflow.solvers.euler`` never evaluates at t = 1; ``solve_adaptive`` does, so use it with the
  Gaussian target, or Euler for the other targets.) ``exact_field`` with the Gaussian target also accepts
  t slightly above 1, where adaptive solvers overshoot; the same formulas define u there.
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

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from wtflow.distributions import Distribution, GaussianMixture, Point, StandardGaussian, UniformSphere

from . import vmf

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

# Streaming sizes: an (n_queries, n_components) float64 buffer holds at most _ENTRY_BUDGET entries
# (64 MiB) in the fast path, _GENERAL_ENTRY_BUDGET (16 MiB) where several such buffers are live;
# second-order passes hold (n, k, D) and (n, D, D) buffers of at most _TENSOR_BUDGET entries.
_QUERY_CHUNK = 1024
_FIRST_ORDER_BLOCK = 16384
_ENTRY_BUDGET = 1 << 23
_GENERAL_ENTRY_BUDGET = 1 << 21
_TENSOR_BUDGET = 1 << 22
# Expanding ||x - (1 - t) m||^2 as a matrix product loses about eps * (||x||^2 + ||(1 - t) m||^2);
# where that exceeds this many units of the log-density, distances are computed by direct differences.
_EXPANSION_TOLERANCE = 1e-10
_SPHERE_TIE_TOLERANCE = 1e-9
_LOG_2PI = math.log(2.0 * math.pi)

_T0_MESSAGE = (
    "{name} is undefined at t = 0 for a source with point masses (empirical training set): "
    "this is the initial singularity of rFM (Theorem 1); off the training points u(x, t) ~ (x - m_nearest) / t "
    "has no limit as t -> 0. Start at a small t0 > 0 (e.g. wtflow.solvers.euler(..., t0=1e-3))."
)


# --------------------------------------------------------------------------------------------------
# Input handling
# --------------------------------------------------------------------------------------------------


@dataclass
class _Components:
    means: Tensor  # (K, D)
    sq_norms: Tensor  # (K,)
    variances: Tensor  # (K,) s_k^2
    log_weights: Tensor  # (K,)

    @property
    def count(self) -> int:
        return self.means.shape[0]

    @property
    def homoscedastic(self) -> bool:
        return bool((self.variances == self.variances[0]).all())

    def select(self, mask: Tensor) -> _Components:
        return _Components(self.means[mask], self.sq_norms[mask], self.variances[mask], self.log_weights[mask])


@dataclass
class _Setup:
    x: Tensor  # (N, D) float64
    t: Tensor  # (N,) float64
    comps: _Components
    point_mass: Tensor  # (K,) bool
    target: str  # "gaussian" | "sphere" | "point"
    radius: float
    dim: int
    x_shape: tuple[int, ...]

    def vector(self, v: Tensor) -> Tensor:
        return v.reshape(self.x_shape)


def _as_mixture(source: Distribution) -> GaussianMixture:
    if isinstance(source, GaussianMixture):
        return source
    if isinstance(source, StandardGaussian):
        return GaussianMixture(torch.zeros(1, *source.event_shape, dtype=torch.float64), stds=1.0)
    if isinstance(source, Point):
        return GaussianMixture(torch.zeros(1, *source.event_shape, dtype=torch.float64), stds=0.0)
    raise TypeError(
        "source must be a wtflow.distributions.GaussianMixture (population or GaussianMixture.empirical(x)), "
        f"StandardGaussian or Point, got {type(source).__name__}"
    )


def _target_kind(target: Distribution) -> tuple[str, float]:
    if isinstance(target, StandardGaussian):
        return "gaussian", 0.0
    if isinstance(target, UniformSphere):
        return "sphere", float(target.radius)
    if isinstance(target, Point):
        return "point", 0.0
    raise TypeError(
        f"target must be a wtflow.distributions StandardGaussian, UniformSphere or Point, got {type(target).__name__}"
    )


def _mixture_components(mixture: GaussianMixture, device: torch.device) -> tuple[_Components, Tensor]:
    keep = mixture.weights > 0
    means = mixture.means.reshape(mixture.n_components, -1)
    if not bool(keep.all()):  # indexing copies the means; skip it in the common case
        means = means[keep]
    means = means.to(device=device, dtype=torch.float64)
    variances = mixture.stds[keep].to(device=device, dtype=torch.float64).pow(2)
    comps = _Components(
        means=means,
        sq_norms=means.pow(2).sum(1),
        variances=variances,
        log_weights=mixture.weights[keep].to(device=device, dtype=torch.float64).log(),
    )
    return comps, variances == 0


def _prepare_x(x: Tensor, event_shapes: tuple[tuple[int, ...], ...], dim: int) -> tuple[Tensor, tuple[int, ...]]:
    if not torch.is_tensor(x):
        x = torch.as_tensor(x)
    if not (x.is_floating_point()):
        raise TypeError(f"x must be a floating-point tensor, got dtype {x.dtype}")
    if x.ndim < 2 or tuple(x.shape[1:]) not in event_shapes + ((dim,),):
        shapes = " or ".join(f"(N, {', '.join(map(str, s))})" for s in dict.fromkeys(event_shapes + ((dim,),)))
        raise ValueError(f"x must have shape {shapes} to match the source and target, got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"x must be finite, got {int((~torch.isfinite(x)).sum())} non-finite entries")
    return x.detach().to(torch.float64).reshape(x.shape[0], dim), tuple(x.shape)


def _prepare_t(t, n: int, device: torch.device, extrapolate: bool = False) -> Tensor:
    if isinstance(t, bool):
        raise TypeError(f"t must be a float or an (N,) tensor, got {t!r}")
    values = torch.as_tensor(t.detach() if torch.is_tensor(t) else t, dtype=torch.float64).to(device)
    if values.ndim == 0:
        values = values.expand(n).clone()
    elif values.shape != (n,):
        raise ValueError(f"t must be a float or have shape ({n},) to match x, got shape {tuple(values.shape)}")
    if not torch.isfinite(values).all():
        raise ValueError("t must be finite")
    bad = (values < 0) | ((values > 1) & (not extrapolate))
    if bad.any():
        raise ValueError(
            f"t must lie in [0, 1] (rFM runs from the data at t = 0 to the target at t = 1), "
            f"got value(s) {values[bad][:3].tolist()}"
        )
    return values


def _prepare(x, t, source, target, extrapolate: bool = False) -> _Setup:
    mixture = _as_mixture(source)
    kind, radius = _target_kind(target)
    if mixture.dim != target.dim:
        raise ValueError(
            f"source and target must have the same dimension D, got source {mixture.event_shape} (D = {mixture.dim}) "
            f"and target {target.event_shape} (D = {target.dim})"
        )
    x_flat, x_shape = _prepare_x(x, (mixture.event_shape, target.event_shape), mixture.dim)
    comps, point_mass = _mixture_components(mixture, x_flat.device)
    return _Setup(
        x=x_flat,
        t=_prepare_t(t, x_flat.shape[0], x_flat.device, extrapolate and kind == "gaussian"),
        comps=comps,
        point_mass=point_mass,
        target=kind,
        radius=radius,
        dim=mixture.dim,
        x_shape=x_shape,
    )


def _chunks(total: int, size: int):
    size = max(1, int(size))
    for start in range(0, total, size):
        yield slice(start, min(start + size, total))


# --------------------------------------------------------------------------------------------------
# Squared distances ||x - (1 - t) m_k||^2
# --------------------------------------------------------------------------------------------------


def _needs_direct_distances(x: Tensor, one_minus_t: Tensor, comps: _Components, min_variance: Tensor) -> bool:
    scale = x.pow(2).sum(1) + one_minus_t.pow(2) * comps.sq_norms.max()
    err = torch.finfo(torch.float64).eps * scale / (2 * min_variance)
    return bool((err > _EXPANSION_TOLERANCE).any())


def _sq_distances(x: Tensor, x_sq: Tensor, one_minus_t: Tensor, m: Tensor, m_sq: Tensor, direct: bool) -> Tensor:
    """(n, k) matrix ||x_n - (1 - t_n) m_k||^2."""
    if not direct:
        cross = x @ m.T
        return (x_sq[:, None] - 2 * one_minus_t[:, None] * cross + one_minus_t.pow(2)[:, None] * m_sq[None]).clamp_min_(
            0
        )
    out = torch.empty(x.shape[0], m.shape[0], dtype=x.dtype, device=x.device)
    step = max(1, _TENSOR_BUDGET // max(1, x.shape[0] * x.shape[1]))
    for ks in _chunks(m.shape[0], step):
        diff = x[:, None, :] - one_minus_t[:, None, None] * m[None, ks]
        out[:, ks] = diff.pow(2).sum(-1)
    return out


# --------------------------------------------------------------------------------------------------
# Component log-likelihoods log w_k + log p(x | k)
# --------------------------------------------------------------------------------------------------


def _gaussian_logits(setup: _Setup, target_var: Tensor, qs: slice, ks: slice, direct: bool):
    """Gaussian family X_t | k ~ N((1-t) m_k, v_k I), v_k = (1-t)^2 s_k^2 + target_var: (logits, v) of shape (n, k)."""
    x, t = setup.x[qs], setup.t[qs]
    comps = setup.comps
    one_minus_t = 1 - t
    v = one_minus_t.pow(2)[:, None] * comps.variances[None, ks] + target_var[qs, None]
    sq = _sq_distances(x, x.pow(2).sum(1), one_minus_t, comps.means[ks], comps.sq_norms[ks], direct)
    logits = comps.log_weights[None, ks] - 0.5 * setup.dim * torch.log(2 * math.pi * v) - 0.5 * sq / v
    return logits, v, sq


@dataclass
class _SphereChunk:
    logits: Tensor  # (n, k)
    norm_a: Tensor  # (n, k) ||a_k||
    sigma2: Tensor  # (n, k) ((1-t) s_k)^2  (unused in the limit)
    kappa: Tensor  # (n, k)
    rho: Tensor  # (n, k): E[X_1 | x, k] = rho a_k
    ratio_over_kappa: Tensor  # (n, k) A / kappa
    ratio: Tensor  # (n, k) A
    derivative: Tensor  # (n, k) dA/dkappa


def _sphere_chunk(setup: _Setup, qs: slice, ks: slice, direct: bool, limit: bool, min_dist: Tensor | None):
    x, t = setup.x[qs], setup.t[qs]
    comps = setup.comps
    r, dim = setup.radius, setup.dim
    one_minus_t = 1 - t
    sq = _sq_distances(x, x.pow(2).sum(1), one_minus_t, comps.means[ks], comps.sq_norms[ks], direct)
    norm_a = sq.sqrt()
    tr = (t * r)[:, None]
    dist = (norm_a - tr).abs()
    if limit:
        safe = norm_a.clamp_min(torch.finfo(torch.float64).tiny)
        keep = dist <= min_dist[:, None]
        logits = comps.log_weights[None, ks] - (0.5 * dim - 0.5) * safe.log()
        logits = torch.where(keep, logits, torch.full_like(logits, -math.inf))
        ones = torch.ones_like(norm_a)
        return _SphereChunk(
            logits=logits,
            norm_a=norm_a,
            sigma2=torch.zeros_like(norm_a),
            kappa=torch.full_like(norm_a, math.inf),
            rho=torch.where(norm_a > 0, r / safe, torch.zeros_like(norm_a)),
            ratio_over_kappa=torch.zeros_like(norm_a),
            ratio=ones,
            derivative=torch.zeros_like(norm_a),
        )
    sigma2 = one_minus_t.pow(2)[:, None] * comps.variances[None, ks]
    kappa = tr * norm_a / sigma2
    kappa_np = kappa.cpu().numpy()
    ratio, over, derivative = (torch.from_numpy(a).to(x.device) for a in vmf.vmf_statistics(dim, kappa_np))
    log_mgf = torch.from_numpy(vmf.log_sphere_mgf_scaled(dim, kappa_np)).to(x.device)
    # -(||a||^2 + t^2 r^2) / (2 sigma^2) + kappa, written without the cancellation:
    logits = comps.log_weights[None, ks] - 0.5 * dim * torch.log(2 * math.pi * sigma2)
    logits = logits - 0.5 * dist.pow(2) / sigma2 + log_mgf
    rho = r * over * tr / sigma2
    return _SphereChunk(logits, norm_a, sigma2, kappa, rho, over, ratio, derivative)


# --------------------------------------------------------------------------------------------------
# Pass 1: streaming first moments
# --------------------------------------------------------------------------------------------------


class _OnlineLogSumExp:
    """Running log-sum-exp over component chunks with weighted accumulators rescaled on the fly."""

    def __init__(self, n: int, dtype, device):
        self.max = torch.full((n,), -math.inf, dtype=dtype, device=device)
        self.total = torch.zeros(n, dtype=dtype, device=device)
        self.sums: dict[str, Tensor] = {}

    def _advance(self, new_max: Tensor) -> Tensor:
        safe = torch.where(torch.isfinite(new_max), new_max, torch.zeros_like(new_max))
        scale = torch.exp(self.max - safe)
        self.max = new_max
        self.total.mul_(scale)
        for value in self.sums.values():
            value.mul_(scale.view(-1, *([1] * (value.ndim - 1))))
        return safe

    def weights(self, logits: Tensor) -> Tensor:
        """Update with a chunk of logits; returns exp(logits - running max) (in place) and rescales the sums."""
        safe = self._advance(torch.maximum(self.max, logits.max(1).values))
        weights = logits.sub_(safe[:, None]).exp_()
        self.total.add_(weights.sum(1))
        return weights

    def column_weights(self, logits: Tensor, cutoff: float, max_columns: int):
        """Like ``weights`` but only for the components (columns) that matter to some query of the chunk.

        A column is skipped when all its logits are more than ``cutoff`` below the running maximum: each
        skipped term is below exp(-cutoff) times the final normaliser, and with cutoff = -log(eps) + log(K)
        all of them together stay below float64 resolution, so the sums do not change.
        Returns (columns, exp(logits[:, columns] - running max)) if at most ``max_columns`` columns remain,
        else None (nothing updated; use ``weights``).
        """
        new_max = torch.maximum(self.max, logits.max(1).values)
        keep = (logits >= (new_max - cutoff)[:, None]).any(0)
        columns = keep.nonzero().squeeze(1)
        if columns.numel() > max_columns:
            return None
        safe = self._advance(new_max)
        weights = logits[:, columns].sub_(safe[:, None]).exp_()
        self.total.add_(weights.sum(1))
        return columns, weights

    def add(self, name: str, value: Tensor) -> None:
        if name in self.sums:
            self.sums[name].add_(value)
        else:
            self.sums[name] = value.clone()

    def log_normaliser(self) -> Tensor:
        safe = torch.where(torch.isfinite(self.max), self.max, torch.zeros_like(self.max))
        return safe + self.total.log()

    def mean(self, name: str) -> Tensor:
        value = self.sums[name]
        return value / self.total.view(-1, *([1] * (value.ndim - 1)))


def _component_chunk_size(n: int, budget: int = _ENTRY_BUDGET) -> int:
    return max(1, budget // max(1, n))


def _gaussian_pass1(setup: _Setup, target_var: Tensor, qs: slice) -> dict[str, Tensor]:
    """Streaming sums for the Gaussian family: log Z, S1 = E_pi[1/v], S2 = E_pi[s^2/v], V = E_pi[m/v]."""
    x, t = setup.x[qs], setup.t[qs]
    comps = setup.comps
    n, dim = x.shape
    one_minus_t = 1 - t
    acc = _OnlineLogSumExp(n, x.dtype, x.device)
    homoscedastic = comps.homoscedastic
    min_var = one_minus_t.pow(2) * comps.variances.min() + target_var[qs]
    direct = _needs_direct_distances(x, one_minus_t, comps, min_var)
    step = _component_chunk_size(n, _GENERAL_ENTRY_BUDGET)
    if homoscedastic:
        return _gaussian_pass1_homoscedastic(setup, target_var, qs, direct)
    for ks in _chunks(comps.count, step):
        logits, v, _ = _gaussian_logits(setup, target_var, qs, ks, direct)
        weights = acc.weights(logits)
        weights_over_v = weights / v
        acc.add("S1", weights_over_v.sum(1))
        acc.add("S2", (weights_over_v * comps.variances[None, ks]).sum(1))
        acc.add("V", weights_over_v @ comps.means[ks])
    return {"log_z": acc.log_normaliser(), "S1": acc.mean("S1"), "S2": acc.mean("S2"), "V": acc.mean("V")}


def _gaussian_pass1_homoscedastic(setup: _Setup, target_var: Tensor, qs: slice, direct: bool) -> dict[str, Tensor]:
    """Fast path of ``_gaussian_pass1`` when all s_k are equal (e.g. an empirical source): v depends on t only.

    The logits are one matrix product of augmented rows,
    logits_nk = [x_n (1-t)/v, -(1-t)^2/(2v), 1] . [m_k, ||m_k||^2, log w_k]  (+ a per-query constant),
    the component chunk is the outer loop (its augmented copy is built once) and the queries are
    processed in sub-chunks of ``_QUERY_CHUNK`` rows, each with its own online log-sum-exp.
    """
    x, t = setup.x[qs], setup.t[qs]
    comps = setup.comps
    n, dim = x.shape
    one_minus_t = 1 - t
    v = one_minus_t.pow(2) * comps.variances[0] + target_var[qs]
    x_sq = x.pow(2).sum(1)
    cutoff = -math.log(torch.finfo(torch.float64).eps) + math.log(comps.count) + 1.0
    row_const = -0.5 * dim * torch.log(2 * math.pi * v)
    if not direct:
        row_const = row_const - 0.5 * x_sq / v
        x_aug = torch.cat(
            [x * (one_minus_t / v)[:, None], (-0.5 * one_minus_t.pow(2) / v)[:, None], x.new_ones(n, 1)], 1
        )
    sub_chunks = list(_chunks(n, _QUERY_CHUNK))
    accs = [_OnlineLogSumExp(sub.stop - sub.start, x.dtype, x.device) for sub in sub_chunks]
    step = _component_chunk_size(min(n, _QUERY_CHUNK))
    max_columns = step // 4
    for ks in _chunks(comps.count, step):
        m = comps.means[ks]
        m_aug = None if direct else torch.cat([m, comps.sq_norms[ks, None], comps.log_weights[ks, None]], 1).T
        for sub, acc in zip(sub_chunks, accs):
            if direct:
                sq = _sq_distances(x[sub], x_sq[sub], one_minus_t[sub], m, comps.sq_norms[ks], True)
                logits = comps.log_weights[None, ks] - 0.5 * sq / v[sub, None]
            else:
                logits = x_aug[sub] @ m_aug
            selected = acc.column_weights(logits, cutoff, max_columns)
            if selected is None:
                weights = acc.weights(logits)
                acc.add("V", weights @ m)
            else:
                columns, weights = selected
                acc.add("V", weights @ m[columns])
            del logits
    log_z = torch.cat([acc.log_normaliser() for acc in accs]) + row_const
    mean_v = torch.cat([acc.mean("V") for acc in accs])
    return {"log_z": log_z, "S1": 1 / v, "S2": comps.variances[0] / v, "V": mean_v / v[:, None]}


def _sphere_min_distance(setup: _Setup, qs: slice, direct: bool) -> Tensor:
    """Distance from x to the nearest sphere {(1-t) m_k + t r z}, plus the tie tolerance."""
    x, t = setup.x[qs], setup.t[qs]
    comps = setup.comps
    one_minus_t = 1 - t
    best = torch.full((x.shape[0],), math.inf, dtype=x.dtype, device=x.device)
    for ks in _chunks(comps.count, _component_chunk_size(x.shape[0], _GENERAL_ENTRY_BUDGET)):
        sq = _sq_distances(x, x.pow(2).sum(1), one_minus_t, comps.means[ks], comps.sq_norms[ks], direct)
        best = torch.minimum(best, (sq.sqrt() - (t * setup.radius)[:, None]).abs().min(1).values)
    scale = x.norm(dim=1) + setup.radius + one_minus_t * comps.sq_norms.max().sqrt()
    return best + _SPHERE_TIE_TOLERANCE * scale


def _sphere_pass1(setup: _Setup, qs: slice, limit: bool, min_dist: Tensor | None) -> dict[str, Tensor]:
    """Streaming sums for the sphere target: log Z, R = E_pi[rho], VR = E_pi[rho m], G = E_pi[gamma], VG."""
    x, t = setup.x[qs], setup.t[qs]
    comps = setup.comps
    n = x.shape[0]
    one_minus_t = 1 - t
    min_var = one_minus_t.pow(2) * comps.variances.min()
    direct = limit or _needs_direct_distances(x, one_minus_t, comps, min_var.clamp_min(1e-300))
    acc = _OnlineLogSumExp(n, x.dtype, x.device)
    for ks in _chunks(comps.count, _component_chunk_size(n, _GENERAL_ENTRY_BUDGET)):
        chunk = _sphere_chunk(setup, qs, ks, direct, limit, min_dist)
        weights = acc.weights(chunk.logits)
        acc.add("R", (weights * chunk.rho).sum(1))
        acc.add("VR", (weights * chunk.rho) @ comps.means[ks])
        if not limit:
            gamma = (1 - t[:, None] * chunk.rho) / chunk.sigma2
            acc.add("G", (weights * gamma).sum(1))
            acc.add("VG", (weights * gamma) @ comps.means[ks])
    out = {"log_z": acc.log_normaliser(), "R": acc.mean("R"), "VR": acc.mean("VR")}
    if not limit:
        out["G"] = acc.mean("G")
        out["VG"] = acc.mean("VG")
    return out


# --------------------------------------------------------------------------------------------------
# Pass 2: second-order quantities (covariance, Jacobian, time derivative)
# --------------------------------------------------------------------------------------------------


class _CenteredSums:
    """sum_k pi_k (f_k - f)(g_k - g)^T with the first-order correction of the corrected two-pass algorithm."""

    def __init__(self):
        self.outer: Tensor | None = None
        self.left: Tensor | None = None
        self.right: Tensor | None = None

    def add(self, weights: Tensor, left: Tensor, right: Tensor, vector_right: bool) -> None:
        # weights (n, k); left (n, k, D) centred; right (n, k, D) or (n, k) centred
        if vector_right:
            outer = torch.einsum("nk,nki,nkj->nij", weights, left, right)
        else:
            outer = torch.einsum("nk,nki,nk->ni", weights, left, right)
        lsum = torch.einsum("nk,nki->ni", weights, left)
        rsum = torch.einsum("nk,nk...->n...", weights, right)
        self.outer = outer if self.outer is None else self.outer + outer
        self.left = lsum if self.left is None else self.left + lsum
        self.right = rsum if self.right is None else self.right + rsum

    def result(self, total: Tensor) -> Tensor:
        left = self.left / total[:, None]
        right = self.right / total.view(-1, *([1] * (self.right.ndim - 1)))
        outer = self.outer / total.view(-1, *([1] * (self.outer.ndim - 1)))
        if outer.ndim == 3:
            return outer - left[:, :, None] * right[:, None, :]
        return outer - left * right[:, None]


def _pass2_sizes(n: int, dim: int) -> tuple[int, int]:
    nq = max(1, min(n, _TENSOR_BUDGET // max(1, dim * dim)))
    kc = max(1, _TENSOR_BUDGET // max(1, nq * dim))
    return nq, kc


def _gaussian_pass2(setup: _Setup, qs: slice, first: dict[str, Tensor], need: set[str]) -> dict[str, Tensor]:
    """Cov[X_0|x], grad_x u and d_t u for the Gaussian target from per-component quantities."""
    x, t = setup.x[qs], setup.t[qs]
    comps = setup.comps
    n, dim = x.shape
    one_minus_t = (1 - t)[:, None, None]
    target_var = setup.t.pow(2)
    min_var = (1 - t).pow(2) * comps.variances.min() + target_var[qs]
    direct = _needs_direct_distances(x, 1 - t, comps, min_var)
    mean_x0, velocity, score_ = first["mean_x0"][qs], first["velocity"][qs], first["score"][qs]
    total = torch.zeros(n, dtype=x.dtype, device=x.device)
    cov_scalar = torch.zeros(n, dtype=x.dtype, device=x.device)
    jac_scalar = torch.zeros(n, dtype=x.dtype, device=x.device)
    dtu_mean = torch.zeros(n, dim, dtype=x.dtype, device=x.device)
    cov, jac, dtu = _CenteredSums(), _CenteredSums(), _CenteredSums()
    _, kc = _pass2_sizes(n, dim)
    for ks in _chunks(comps.count, kc):
        logits, v, sq = _gaussian_logits(setup, target_var, qs, ks, direct)
        weights = torch.exp(logits - first["log_z"][qs, None])
        total += weights.sum(1)
        m = comps.means[ks][None]  # (1, k, D)
        s2 = comps.variances[None, ks]  # (1, k)
        a = x[:, None, :] - one_minus_t * m  # (n, k, D)
        if "cov" in need:
            mean_k = m + ((1 - t)[:, None] * s2 / v)[..., None] * a
            cov_scalar += (weights * s2 * t[:, None].pow(2) / v).sum(1)
            delta = mean_k - mean_x0[:, None, :]
            cov.add(weights, delta, delta, True)
        if "jac" in need or "dtu" in need:
            numer = t[:, None] - (1 - t)[:, None] * s2
            alpha = numer / v
            u_k = alpha[..., None] * a - m
            du = u_k - velocity[:, None, :]
        if "jac" in need:
            jac_scalar += (weights * alpha).sum(1)
            g_k = -a / v[..., None]
            jac.add(weights, du, g_k - score_[:, None, :], True)
        if "dtu" in need:
            dv = -2 * (1 - t)[:, None] * s2 + 2 * t[:, None]
            dalpha = ((1 + s2) * v - numer * dv) / v.pow(2)
            dtu_mean += torch.einsum("nk,nki->ni", weights, dalpha[..., None] * a + alpha[..., None] * m)
            a_dot_m = torch.einsum("nki,nki->nk", a, m.expand_as(a))
            h_k = -0.5 * dim * dv / v + 0.5 * sq * dv / v.pow(2) - a_dot_m / v
            dtu.add(weights, du, h_k, False)
    out = {}
    eye = torch.eye(dim, dtype=x.dtype, device=x.device)
    if "cov" in need:
        out["cov"] = (cov_scalar / total)[:, None, None] * eye + cov.result(total)
    if "jac" in need:
        out["jac"] = (jac_scalar / total)[:, None, None] * eye + jac.result(total)
    if "dtu" in need:
        out["dtu"] = dtu_mean / total[:, None] + dtu.result(total)
    return out


def _sphere_pass2(
    setup: _Setup, qs: slice, first: dict[str, Tensor], need: set[str], limit: bool, min_dist: Tensor | None
) -> dict[str, Tensor]:
    """Cov[X_1|x], grad_x u and d_t u for the sphere target from the per-component vMF posteriors."""
    x, t = setup.x[qs], setup.t[qs]
    comps = setup.comps
    n, dim = x.shape
    r = setup.radius
    one_minus_t = 1 - t
    min_var = one_minus_t.pow(2) * comps.variances.min()
    direct = limit or _needs_direct_distances(x, one_minus_t, comps, min_var.clamp_min(1e-300))
    mean_x1, velocity = first["mean_x1"][qs], first["velocity"][qs]
    score_ = None if limit else first["score"][qs]
    total = torch.zeros(n, dtype=x.dtype, device=x.device)
    iso = torch.zeros(n, dtype=x.dtype, device=x.device)  # sum pi_k (isotropic coefficient)
    along = torch.zeros(n, dim, dim, dtype=x.dtype, device=x.device)  # sum pi_k c_k a^ a^T
    dtu_mean = torch.zeros(n, dim, dtype=x.dtype, device=x.device)
    cov, jac, dtu = _CenteredSums(), _CenteredSums(), _CenteredSums()
    _, kc = _pass2_sizes(n, dim)
    tt = t[:, None]
    for ks in _chunks(comps.count, kc):
        chunk = _sphere_chunk(setup, qs, ks, direct, limit, min_dist)
        weights = torch.exp(chunk.logits - first["log_z"][qs, None])
        total += weights.sum(1)
        m = comps.means[ks][None]
        a = x[:, None, :] - one_minus_t[:, None, None] * m
        safe = chunk.norm_a.clamp_min(torch.finfo(torch.float64).tiny)
        direction = torch.where((chunk.norm_a > 0)[..., None], a / safe[..., None], torch.zeros_like(a))
        mean_k = chunk.rho[..., None] * a
        # vMF: Cov[z | x, k] = r^2 [(A/kappa) I + (1 - D A/kappa - A^2) a^ a^T]; grad_x E[X_1|x,k] = t/sigma^2 Cov.
        if limit:
            cov_iso = torch.zeros_like(chunk.rho)
            cov_along = torch.zeros_like(chunk.rho)
            jac_iso, jac_along = chunk.rho, -chunk.rho
        else:
            cov_iso = r * r * chunk.ratio_over_kappa
            cov_along = r * r * (1 - dim * chunk.ratio_over_kappa - chunk.ratio.pow(2))
            jac_iso = chunk.rho
            jac_along = tt / chunk.sigma2 * cov_along
        if "cov" in need:
            iso += (weights * cov_iso).sum(1)
            along += torch.einsum("nk,nki,nkj->nij", weights * cov_along, direction, direction)
            delta = mean_k - mean_x1[:, None, :]
            cov.add(weights, delta, delta, True)
        if "jac" in need or "dtu" in need:
            u_k = (mean_k - x[:, None, :]) / one_minus_t[:, None, None]
            du = u_k - velocity[:, None, :]
        if "jac" in need:
            iso += (weights * (jac_iso - 1)).sum(1) / one_minus_t
            weighted = weights * jac_along / one_minus_t[:, None]
            along += torch.einsum("nk,nki,nkj->nij", weighted, direction, direction)
            if not limit:
                g_k = -(a - tt[..., None] * mean_k) / chunk.sigma2[..., None]
                jac.add(weights, du, g_k - score_[:, None, :], True)
        if "dtu" in need:
            m_along = torch.einsum("nki,nki->nk", direction, m.expand_as(a))
            d_mean = chunk.rho[..., None] * (m - m_along[..., None] * direction)
            if not limit:
                d_kappa = r / chunk.sigma2 * (chunk.norm_a * (1 + 2 * tt / one_minus_t[:, None]) + tt * m_along)
                d_mean = d_mean + (r * chunk.derivative * d_kappa)[..., None] * direction
            du_k = d_mean / one_minus_t[:, None, None] + (mean_k - x[:, None, :]) / one_minus_t.pow(2)[:, None, None]
            dtu_mean += torch.einsum("nk,nki->ni", weights, du_k)
            if not limit:
                a_dot_m = chunk.norm_a * m_along
                h_k = (
                    dim / one_minus_t[:, None]
                    - (a_dot_m + tt * r * r) / chunk.sigma2
                    - (chunk.norm_a.pow(2) + (tt * r).pow(2)) / (one_minus_t[:, None] * chunk.sigma2)
                    + chunk.ratio * d_kappa
                )
                dtu.add(weights, du, h_k, False)
    out = {}
    eye = torch.eye(dim, dtype=x.dtype, device=x.device)
    if "cov" in need:
        out["cov_x1"] = (iso / total)[:, None, None] * eye + along / total[:, None, None] + cov.result(total)
    if "jac" in need:
        result = (iso / total)[:, None, None] * eye + along / total[:, None, None]
        out["jac"] = result if limit else result + jac.result(total)
    if "dtu" in need:
        result = dtu_mean / total[:, None]
        out["dtu"] = result if limit else result + dtu.result(total)
    return out


# --------------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------------

_DENSITY_QUANTITIES = ("log_density", "score")


def _first_order(setup: _Setup, qs: slice, sphere_mode: str, min_dist: Tensor | None) -> dict[str, Tensor]:
    x, t = setup.x[qs], setup.t[qs]
    tc = t[:, None]
    if setup.target == "gaussian":
        sums = _gaussian_pass1(setup, setup.t.pow(2), qs)
        s1, s2, v = sums["S1"][:, None], sums["S2"][:, None], sums["V"]
        return {
            "log_z": sums["log_z"],
            "score": -x * s1 + (1 - tc) * v,
            "mean_x1": tc * (x * s1 - (1 - tc) * v),
            "mean_x0": tc.pow(2) * v + (1 - tc) * x * s2,
            "velocity": x * (tc * s1 - (1 - tc) * s2) - tc * v,
        }
    limit = sphere_mode == "limit"
    sums = _sphere_pass1(setup, qs, limit, min_dist)
    mean_x1 = x * sums["R"][:, None] - (1 - tc) * sums["VR"]
    out = {
        "log_z": sums["log_z"],
        "mean_x1": mean_x1,
        "mean_x0": (x - tc * mean_x1) / (1 - tc),
        "velocity": (mean_x1 - x) / (1 - tc),
    }
    if not limit:
        out["score"] = -x * sums["G"][:, None] + (1 - tc) * sums["VG"]
    return out


def _check_available(setup: _Setup, quantity: str, name: str) -> None:
    t = setup.t
    any_point_mass = bool(setup.point_mass.any())
    all_point_mass = bool(setup.point_mass.all())
    at_zero = bool((t == 0).any())
    if setup.target in ("sphere", "point") and bool((t == 1).any()):
        raise ValueError(
            f"{name} is undefined at t = 1 for the {setup.target} target: X_1 has no density there and u blows up "
            "like 1 / (1 - t) off its support; evaluate at t < 1 (wtflow.solvers.euler never evaluates at t = 1)"
        )
    if quantity in _DENSITY_QUANTITIES:
        if setup.target == "point" and any_point_mass:
            raise ValueError(
                f"{name} does not exist for the point target with a source that has point masses: "
                "X_t = (1 - t) X_0 then has atoms and no Lebesgue density"
            )
        if setup.target == "sphere" and all_point_mass:
            raise ValueError(
                f"{name} does not exist for the sphere target with an empirical source: X_t lives on the spheres "
                "of radius t r around (1 - t) m_k and has no Lebesgue density (its s -> 0 limit diverges)"
            )
        if at_zero and any_point_mass:
            raise ValueError(
                f"{name} does not exist at t = 0 for a source with point masses: X_0 has atoms and no Lebesgue "
                "density (initial singularity, Theorem 1); use t > 0"
            )
    if setup.target != "point" and at_zero and all_point_mass:
        raise ValueError(_T0_MESSAGE.format(name=name))


def _evaluate(x, t, source, target, quantity: str, name: str, extrapolate: bool = False) -> Tensor:
    setup = _prepare(x, t, source, target, extrapolate)
    _check_available(setup, quantity, name)
    n, dim = setup.x.shape
    xs, ts = setup.x, setup.t
    tc = ts[:, None]
    if setup.target == "point":
        if quantity == "log_density":
            return _gaussian_point_target(setup)["log_z"]
        if quantity == "score":
            return setup.vector(_gaussian_point_target(setup)["score"])
        closed = {
            "mean_x0": lambda: xs / (1 - tc),
            "mean_x1": lambda: torch.zeros_like(xs),
            "velocity": lambda: -xs / (1 - tc),
            "cov": lambda: torch.zeros(n, dim, dim, dtype=xs.dtype, device=xs.device),
            "jac": lambda: -torch.eye(dim, dtype=xs.dtype, device=xs.device) / (1 - tc)[:, :, None],
            "dtu": lambda: -xs / (1 - tc).pow(2),
        }
        value = closed[quantity]()
        return value if value.ndim == 3 else setup.vector(value)

    out = _allocate(setup, quantity)
    for rows, sub, sphere_mode in _row_groups(setup):
        result = _evaluate_rows(sub, quantity, sphere_mode)
        out[rows] = result
    return out if quantity in ("log_density", "cov", "jac") else setup.vector(out)


def _allocate(setup: _Setup, quantity: str) -> Tensor:
    n, dim = setup.x.shape
    if quantity == "log_density":
        shape: tuple[int, ...] = (n,)
    elif quantity in ("cov", "jac"):
        shape = (n, dim, dim)
    else:
        shape = (n, dim)
    return torch.empty(shape, dtype=torch.float64, device=setup.x.device)


def _row_groups(setup: _Setup):
    """Split the queries by which components matter: at t = 0 (or for the sphere target) point masses drop out."""
    any_point_mass = bool(setup.point_mass.any())
    all_point_mass = bool(setup.point_mass.all())
    at_zero = setup.t == 0
    population = ~setup.point_mass
    groups = []
    if setup.target == "sphere":
        if all_point_mass:
            groups.append((torch.ones_like(at_zero), setup, "limit"))
        else:
            comps = setup.comps.select(population) if any_point_mass else setup.comps
            groups.append((torch.ones_like(at_zero), _replace(setup, comps=comps), "population"))
        return groups
    if any_point_mass and bool(at_zero.any()):
        groups.append((at_zero, _replace(setup, comps=setup.comps.select(population), rows=at_zero), "population"))
        if bool((~at_zero).any()):
            groups.append((~at_zero, _replace(setup, rows=~at_zero), "population"))
        return groups
    groups.append((torch.ones_like(at_zero), setup, "population"))
    return groups


def _replace(setup: _Setup, comps: _Components | None = None, rows: Tensor | None = None) -> _Setup:
    return _Setup(
        x=setup.x if rows is None else setup.x[rows],
        t=setup.t if rows is None else setup.t[rows],
        comps=setup.comps if comps is None else comps,
        point_mass=setup.point_mass,
        target=setup.target,
        radius=setup.radius,
        dim=setup.dim,
        x_shape=setup.x_shape,
    )


_FIRST_ORDER_KEYS = {
    "log_density": "log_z",
    "score": "score",
    "mean_x0": "mean_x0",
    "mean_x1": "mean_x1",
    "velocity": "velocity",
}


def _evaluate_rows(setup: _Setup, quantity: str, sphere_mode: str) -> Tensor:
    n = setup.x.shape[0]
    limit = sphere_mode == "limit"
    results = []
    second = quantity in ("cov", "jac", "dtu")
    query_chunk = _pass2_sizes(n, setup.dim)[0] if second else _FIRST_ORDER_BLOCK
    for qs in _chunks(n, query_chunk):
        local = _replace(setup, rows=torch.arange(qs.start, qs.stop, device=setup.x.device))
        whole = slice(0, qs.stop - qs.start)
        min_dist = _sphere_min_distance(local, whole, True) if limit else None
        first = _first_order(local, whole, sphere_mode, min_dist)
        if not second:
            results.append(first[_FIRST_ORDER_KEYS[quantity]])
            continue
        if local.target == "gaussian":
            results.append(_gaussian_pass2(local, whole, first, {quantity})[quantity])
            continue
        if quantity == "cov":
            tc = local.t[:, None, None]
            cov_x1 = _sphere_pass2(local, whole, first, {"cov"}, limit, min_dist)["cov_x1"]
            results.append((tc / (1 - tc)).pow(2) * cov_x1)
        else:
            results.append(_sphere_pass2(local, whole, first, {quantity}, limit, min_dist)[quantity])
    return torch.cat(results)


def _gaussian_point_target(setup: _Setup) -> dict[str, Tensor]:
    """log p_t and score for the point target: X_t | k ~ N((1 - t) m_k, (1 - t)^2 s_k^2 I)."""
    zero = torch.zeros_like(setup.t)
    parts = [_gaussian_pass1(setup, zero, qs) for qs in _chunks(setup.x.shape[0], _QUERY_CHUNK)]
    log_z = torch.cat([p["log_z"] for p in parts])
    s1 = torch.cat([p["S1"] for p in parts])[:, None]
    v = torch.cat([p["V"] for p in parts])
    return {"log_z": log_z, "score": -setup.x * s1 + (1 - setup.t)[:, None] * v}


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------


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

    with E_0 = E[X_0 | X_t = x]. Needs t > 0. Equal to ``velocity_time_derivative`` (tested); kept to check eq. (24).
    """
    target = StandardGaussian(_as_mixture(source).event_shape)
    setup = _prepare(x, t, source, target)
    if bool((setup.t == 0).any()):
        raise ValueError("eq. (24) divides by t^4: t must be > 0")
    xs, ts = setup.x, setup.t
    n, dim = xs.shape
    comps = setup.comps
    mean_x0 = posterior_mean_x0(xs, ts, source, target)
    cov = posterior_cov_x0(xs, ts, source, target)
    # With X_0 | x, k ~ N(mu_k, c_k I):
    # Cov(X_0, ||X_0||^2 | x) = sum_k pi_k [2 c_k mu_k + (mu_k - E_0) (||mu_k||^2 + D c_k)].
    log_z = log_density(xs, ts, source, target)
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
    value = -(xs - mean_x0) / tc.pow(2) + (2 - tc) / tc.pow(4) * cov_x - (1 - tc) / tc.pow(4) * third
    return setup.vector(value)


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
    """A velocity v(x_t, t) returning the exact u(x_t, t) (eq. 8), for ``wtflow.solvers.euler`` / ``solve_adaptive``.

    With an empirical source start at t0 > 0 (Theorem 1); with the sphere or point target use Euler
    (``solve_adaptive`` evaluates at t = 1, where those fields are undefined).
    """
    return ExactField(source, target)
