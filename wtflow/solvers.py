"""ODE integration of a velocity from t0 to 1 (Algorithm 1, "Sampling").

A *velocity* is any callable ``v(x_t, t)`` returning a tensor shaped like ``x_t``,
with ``t`` an (N,) tensor; trained networks (``wtflow.networks``) and the
closed-form fields of ``theory.exact_field`` are interchangeable here.

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

__all__ = ["ODESolution", "Velocity", "euler", "solve_adaptive"]

Velocity = Callable[[Tensor, Tensor], Tensor]

RECORD = ("none", "trajectory", "norms")


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


def euler(
    velocity: Velocity,
    x_0: Tensor,
    steps: int = 1,
    t0: float = 0.0,
    record: str = "none",
    enable_grad: bool = False,
) -> ODESolution:
    """Explicit Euler from ``t0`` to 1 with ``steps`` equal steps.

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
    _check_record(record)
    check_finite("x_0", x_0)
    times = torch.linspace(t0, 1.0, steps + 1, dtype=torch.float64)
    h = (1.0 - t0) / steps
    states, norms = [], []
    with torch.set_grad_enabled(enable_grad):
        x = x_0
        for k in range(steps + 1):
            if record == "trajectory":
                states.append(x)
            elif record == "norms":
                norms.append(x.flatten(1).norm(dim=1))
            if k < steps:
                x = x + h * _call(velocity, x, float(times[k]))
    return ODESolution(
        x_end=x,
        times=times,
        trajectory=torch.stack(states) if states else None,
        norms=torch.stack(norms) if norms else None,
    )


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
    """Adaptive integration with ``torchdiffeq.odeint`` from ``t0`` to 1.

    Args:
        velocity: callable ``v(x_t, t)``.
        x_0: (N, *event_shape) start points.
        t0: start time in [0, 1); use a small positive t0 for fields singular at 0.
        record: ``"none"``, ``"trajectory"`` or ``"norms"``, evaluated on ``n_record`` equally spaced times.
        method, rtol, atol: passed to ``torchdiffeq.odeint``.
    """
    from torchdiffeq import odeint

    t0 = check_unit_interval_open_right("t0", t0)
    _check_record(record)
    check_finite("x_0", x_0)
    n_times = 2 if record == "none" else check_positive_int("n_record", n_record, minimum=2)
    times = torch.linspace(t0, 1.0, n_times, dtype=torch.float64)

    def rhs(t: Tensor, x: Tensor) -> Tensor:
        return _call(velocity, x, float(t))

    with torch.no_grad():
        states = odeint(rhs, x_0, times.to(x_0.dtype).to(x_0.device), method=method, rtol=rtol, atol=atol)
    return ODESolution(
        x_end=states[-1],
        times=times,
        trajectory=states if record == "trajectory" else None,
        norms=states.flatten(2).norm(dim=2) if record == "norms" else None,
    )
