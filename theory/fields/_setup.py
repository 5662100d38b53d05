"""Input checks and the prepared problem (queries, times, mixture components, target kind) of the exact fields."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from wtflow.distributions import Distribution, GaussianMixture, Point, StandardGaussian, UniformSphere

from . import _limits

_T0_MESSAGE = (
    "{name} is undefined at t = 0 for a source with point masses (empirical training set): "
    "this is the initial singularity of rFM (Theorem 1); off the training points u(x, t) ~ (x - m_nearest) / t "
    "has no limit as t -> 0. Start at a small t0 > 0 "
    "(e.g. wtflow.solvers.solve(field, x, 'euler', steps, t_start=1e-3))."
)


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
    if x.shape[0] == 0:
        raise ValueError(f"x must hold at least one point, got an empty batch of shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"x must be finite, got {int((~torch.isfinite(x)).sum())} non-finite entries")
    largest = float(x.detach().abs().max())
    if largest > _limits.MAX_ABS_X:
        raise ValueError(
            f"|x| entries must be at most {_limits.MAX_ABS_X:g} (squared distances overflow float64 beyond), "
            f"got {largest:g}"
        )
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
    upper = _limits.MAX_EXTRAPOLATED_T if extrapolate else 1.0
    bad = (values < 0) | (values > upper)
    if bad.any():
        where = (
            f"[0, {upper:g}] (t slightly above 1 is allowed for adaptive solvers with the Gaussian target)"
            if extrapolate
            else "[0, 1] (rFM runs from the data at t = 0 to the target at t = 1)"
        )
        raise ValueError(f"t must lie in {where}, got value(s) {values[bad][:3].tolist()}")
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
