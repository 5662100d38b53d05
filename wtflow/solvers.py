"""ODE integration of a velocity (Algorithm 1, "Sampling"): ``solve`` is the one entry point.

A *velocity* is any callable ``v(x_t, t)`` returning a tensor shaped like ``x_t``,
with ``t`` an (N,) tensor; trained networks (``wtflow.networks``) and the
closed-form fields of ``theory.exact_field`` are interchangeable here.

* ``solve(velocity, x_start, method, steps, t_start, t_end)``: the entry used by
  ``FlowModel.transport``, the toys and the exact fields. ``method`` is a
  fixed-step scheme (``"euler"``, ``"midpoint"``, ``"rk4"``, with ``steps``) or
  an adaptive torchdiffeq scheme (``"dopri5"``, ``"bosh3"``, ...; ``"adaptive"``
  is dopri5). ``t_end < t_start`` integrates backwards in time.
* ``euler``: K fixed steps; K = 1 is the paper's one-step inference (Sec. V-G),
  K = 20 its detection setting (Sec. V-A). Can record the whole trajectory or
  only the per-sample norms ||x_t|| after every step (Tables XII-XIV).
* ``solve_adaptive``: torchdiffeq's adaptive Runge-Kutta, for smooth or exact fields.

Exact fields that are undefined at t = 0 (Theorem 1) start at a small ``t0``;
a model trained with truncation T (Theorem 2) starts at ``t0 = T``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ._validation import check_finite, check_positive_int, check_unit_interval_open_right

__all__ = ["ADAPTIVE_METHODS", "FIXED_STEP_METHODS", "ODESolution", "Velocity", "euler", "solve", "solve_adaptive"]

Velocity = Callable[[Tensor, Tensor], Tensor]

RECORD = ("none", "trajectory", "norms")
FIXED_STEP_METHODS = ("euler", "midpoint", "rk4")
ADAPTIVE_METHODS = ("adaptive", "dopri5", "dopri8", "bosh3", "fehlberg2", "adaptive_heun")


@dataclass
class ODESolution:
    """Result of an integration.

    Attributes:
        x_end: (N, *event_shape) the endpoint phi = x at t = 1.
        times: (S,) the recorded times (S = K + 1 for Euler).
        trajectory: (S, N, *event_shape) states at ``times`` if requested, else None.
        norms: (S, N) per-sample norms ||x_t|| at ``times`` if requested, else None.
    """

    x_end: Tensor
    times: Tensor
    trajectory: Tensor | None = None
    norms: Tensor | None = None


def _check_record(record: str) -> str:
    if record not in RECORD:
        raise ValueError(f"unknown record {record!r}; expected one of {', '.join(map(repr, RECORD))}")
    return record


def _call(velocity: Velocity, x: Tensor, t: float) -> Tensor:
    v = velocity(x, torch.full((x.shape[0],), t, dtype=x.dtype, device=x.device))
    if v.shape != x.shape:
        raise ValueError(f"velocity returned shape {tuple(v.shape)} for x_t of shape {tuple(x.shape)}")
    return v


def _fixed_step(velocity: Velocity, x: Tensor, t: float, h: float, method: str) -> Tensor:
    if method == "euler":
        return x + h * _call(velocity, x, t)
    if method == "midpoint":
        k1 = _call(velocity, x, t)
        return x + h * _call(velocity, x + 0.5 * h * k1, t + 0.5 * h)
    k1 = _call(velocity, x, t)
    k2 = _call(velocity, x + 0.5 * h * k1, t + 0.5 * h)
    k3 = _call(velocity, x + 0.5 * h * k2, t + 0.5 * h)
    k4 = _call(velocity, x + h * k3, t + h)
    return x + (h / 6.0) * (k1 + 2 * k2 + 2 * k3 + k4)


def solve(
    velocity: Velocity,
    x_start: Tensor,
    method: str = "euler",
    steps: int = 1,
    t_start: float = 0.0,
    t_end: float = 1.0,
    record: str = "none",
    n_record: int = 51,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    enable_grad: bool = False,
) -> ODESolution:
    """Integrate dx/dt = v(x, t) from ``t_start`` to ``t_end``: the one inference entry of the toolkit.

    Args:
        velocity: callable ``v(x_t, t)`` with ``t`` of shape (N,); a network or an exact field.
        x_start: (N, *event_shape) states at ``t_start``.
        method: fixed-step ``"euler"``, ``"midpoint"``, ``"rk4"`` (``steps`` equal steps; Euler with
            K = 1 is the paper's one-step inference, Sec. V-G) or adaptive ``"dopri5"``/``"adaptive"``,
            ``"bosh3"``, ... (torchdiffeq, tolerances ``rtol``/``atol``).
        steps: K >= 1 for fixed-step methods (ignored by adaptive ones).
        t_start, t_end: integration interval inside [0, 1]; ``t_end < t_start`` runs backwards.
        record: ``"none"``, ``"trajectory"`` ((S, N, *event_shape) states) or ``"norms"`` ((S, N) ||x_t||);
            fixed-step methods record after every step (S = K + 1), adaptive ones at ``n_record`` equally
            spaced times.
        enable_grad: keep the autograd graph (fixed-step methods only; off by default to save memory).

    Returns:
        ``ODESolution`` with ``x_end`` at ``t_end``.
    """
    if method not in FIXED_STEP_METHODS + ADAPTIVE_METHODS:
        known = ", ".join(map(repr, FIXED_STEP_METHODS + ADAPTIVE_METHODS))
        raise ValueError(f"unknown solver method {method!r}; expected one of {known}")
    _check_record(record)
    for name, value in (("t_start", t_start), ("t_end", t_end)):
        if not (isinstance(value, int | float) and 0.0 <= float(value) <= 1.0):
            raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    if float(t_start) == float(t_end):
        raise ValueError(f"t_start and t_end must differ, both are {t_start!r}")
    check_finite("x_start", x_start)
    if method in FIXED_STEP_METHODS:
        return _solve_fixed(velocity, x_start, method, steps, float(t_start), float(t_end), record, enable_grad)
    return _solve_adaptive(velocity, x_start, method, float(t_start), float(t_end), record, n_record, rtol, atol)


def _solve_fixed(velocity, x_start, method, steps, t_start, t_end, record, enable_grad) -> ODESolution:
    check_positive_int("steps", steps)
    times = torch.linspace(t_start, t_end, steps + 1, dtype=torch.float64)
    h = (t_end - t_start) / steps
    states, norms = [], []
    with torch.set_grad_enabled(enable_grad):
        x = x_start
        for k in range(steps + 1):
            if record == "trajectory":
                states.append(x)
            elif record == "norms":
                norms.append(x.flatten(1).norm(dim=1))
            if k < steps:
                x = _fixed_step(velocity, x, float(times[k]), h, method)
    return ODESolution(
        x_end=x,
        times=times,
        trajectory=torch.stack(states) if states else None,
        norms=torch.stack(norms) if norms else None,
    )


def _solve_adaptive(velocity, x_start, method, t_start, t_end, record, n_record, rtol, atol) -> ODESolution:
    from torchdiffeq import odeint

    n_times = 2 if record == "none" else check_positive_int("n_record", n_record, minimum=2)
    times = torch.linspace(t_start, t_end, n_times, dtype=torch.float64)

    def rhs(t: Tensor, x: Tensor) -> Tensor:
        return _call(velocity, x, float(t))

    torchdiffeq_method = "dopri5" if method == "adaptive" else method
    with torch.no_grad():
        states = odeint(
            rhs, x_start, times.to(x_start.dtype).to(x_start.device), method=torchdiffeq_method, rtol=rtol, atol=atol
        )
    return ODESolution(
        x_end=states[-1],
        times=times,
        trajectory=states if record == "trajectory" else None,
        norms=states.flatten(2).norm(dim=2) if record == "norms" else None,
    )


def euler(
    velocity: Velocity,
    x_0: Tensor,
    steps: int = 1,
    t0: float = 0.0,
    record: str = "none",
    enable_grad: bool = False,
) -> ODESolution:
    """Explicit Euler from ``t0`` to 1 with ``steps`` equal steps: ``solve(..., method="euler")``.

    Args:
        velocity: callable ``v(x_t, t)``, ``t`` of shape (N,).
        x_0: (N, *event_shape) start points.
        steps: K >= 1; K = 1 gives phi = x_0 + (1 - t0) v(x_0, t0).
        t0: start time in [0, 1).
        record: ``"none"``, ``"trajectory"`` (all K + 1 states) or ``"norms"`` (only ||x_t||, (K + 1, N)).
        enable_grad: keep the autograd graph (off by default to save memory).
    """
    check_positive_int("steps", steps)
    t0 = check_unit_interval_open_right("t0", t0)
    return solve(velocity, x_0, "euler", steps=steps, t_start=t0, record=record, enable_grad=enable_grad)


def solve_adaptive(
    velocity: Velocity,
    x_0: Tensor,
    t0: float = 0.0,
    record: str = "none",
    n_record: int = 51,
    method: str = "dopri5",
    rtol: float = 1e-6,
    atol: float = 1e-8,
) -> ODESolution:
    """Adaptive integration from ``t0`` to 1: ``solve(..., method="dopri5")``.

    Args:
        velocity: callable ``v(x_t, t)``.
        x_0: (N, *event_shape) start points.
        t0: start time in [0, 1); use a small positive t0 for fields singular at 0.
        record: ``"none"``, ``"trajectory"`` or ``"norms"``, evaluated on ``n_record`` equally spaced times.
        method, rtol, atol: passed to ``torchdiffeq.odeint``.
    """
    t0 = check_unit_interval_open_right("t0", t0)
    return solve(velocity, x_0, method, t_start=t0, record=record, n_record=n_record, rtol=rtol, atol=atol)
