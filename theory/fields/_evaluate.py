"""Dispatch of a requested quantity by target, row group (t = 0 rows, point masses) and query chunk."""

from __future__ import annotations

import torch
from torch import Tensor

from . import _limits
from ._gaussian import _gaussian_pass1, _gaussian_pass2, _gaussian_point_target
from ._setup import _T0_MESSAGE, _chunks, _prepare, _replace, _Setup
from ._sphere import _sphere_min_distance, _sphere_pass1, _sphere_pass2
from ._streaming import _pass2_sizes

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
            "like 1 / (1 - t) off its support; evaluate at t < 1 (fixed-step wtflow.solvers.solve never evaluates "
            "at t = 1)"
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
    return _require_finite(_evaluate_setup(setup, quantity, name), setup, name)


def _require_finite(value: Tensor, setup: _Setup, name: str) -> Tensor:
    """Raise instead of returning NaN/inf: float64 under- or overflow (t^2 or t^4 below the smallest double for tiny
    t with point masses, or ||x|| near the overflow range)."""
    bad = ~torch.isfinite(value.reshape(value.shape[0], -1)).all(dim=1)
    if not bool(bad.any()):
        return value
    ts, norms = setup.t[bad], setup.x[bad].norm(dim=1)
    raise FloatingPointError(
        f"{name} is not representable in float64 at {int(bad.sum())} of {len(bad)} points (t from {float(ts.min()):g} "
        f"to {float(ts.max()):g}, ||x|| up to {float(norms.max()):g}): powers of t underflow for t below ~1e-150 "
        "(first and second moments) or ~1e-100 (d_t u) with point masses. Start at a larger t0 (e.g. 1e-8)."
    )


def _evaluate_setup(setup: _Setup, quantity: str, name: str) -> Tensor:
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
    query_chunk = _pass2_sizes(n, setup.dim)[0] if second else _limits.FIRST_ORDER_BLOCK
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
