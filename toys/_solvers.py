"""How the toys integrate a field: a ``Solver`` (method and steps of ``wtflow.solvers.solve``), a trained model's
velocity in data units, and one call of ``solve`` that also counts field evaluations."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from wtflow import FlowModel, solve
from wtflow.solvers import ADAPTIVE_METHODS, FIXED_STEP_METHODS

__all__ = ["Integration", "Solver", "as_solvers", "learned_velocity", "run_solver", "solver_caption"]


@dataclass(frozen=True)
class Solver:
    """A solver of ``wtflow.solvers.solve``: a fixed-step ``method`` with ``steps`` K (``Solver("euler", 20)``) or
    an adaptive one without steps (``Solver("dopri5")``).

    ``label`` names it in tables (``"euler20"``, ``"adaptive"`` for dopri5), ``caption`` in figures
    (``"Euler K = 20"``, ``"adaptive (dopri5)"``).
    """

    method: str = "euler"
    steps: int | None = None

    def __post_init__(self):
        if self.method in FIXED_STEP_METHODS:
            if not (isinstance(self.steps, int) and not isinstance(self.steps, bool) and self.steps >= 1):
                raise ValueError(f"solver {self.method!r} needs steps = an integer >= 1, got {self.steps!r}")
        elif self.method in ADAPTIVE_METHODS:
            if self.steps is not None:
                raise ValueError(f"adaptive solver {self.method!r} takes no steps, got steps={self.steps!r}")
        else:
            known = ", ".join(map(repr, FIXED_STEP_METHODS + ADAPTIVE_METHODS))
            raise ValueError(f"unknown solver method {self.method!r}; expected one of {known}")

    @property
    def label(self) -> str:
        if self.steps is not None:
            return f"{self.method}{self.steps}"
        return "adaptive" if self.method in ("adaptive", "dopri5") else self.method

    @property
    def caption(self) -> str:
        if self.steps is not None:
            return f"{self.method.capitalize()} K = {self.steps}"
        return "adaptive (dopri5)" if self.method in ("adaptive", "dopri5") else f"adaptive ({self.method})"


def as_solvers(value, name: str = "solvers") -> tuple[Solver, ...]:
    """``Solver``s from ``Solver`` objects, ``(method, steps)`` pairs or ``(method,)`` / method names of adaptive
    solvers; a label such as ``"euler20"`` is refused with the spelling to use instead."""
    out = []
    for item in value:
        if isinstance(item, Solver):
            out.append(item)
        elif isinstance(item, str) and item in ADAPTIVE_METHODS:
            out.append(Solver(item))
        elif isinstance(item, str):
            match = re.fullmatch(r"([a-z]+?)(\d+)", item)
            hint = f"Solver({match[1]!r}, {match[2]})" if match else "Solver(method, steps)"
            raise ValueError(f"{name}: {item!r} is not a solver; write {hint}")
        elif isinstance(item, list | tuple) and 1 <= len(item) <= 2:
            out.append(Solver(*item))
        else:
            raise ValueError(f"{name}: expected Solver(method, steps) entries, got {item!r}")
    if len({s.label for s in out}) != len(out):
        raise ValueError(f"{name} has duplicates: {[s.label for s in out]}")
    return tuple(out)


def solver_caption(label: str) -> str:
    """Figure caption of a table's solver label: ``"euler20"`` -> ``"Euler K = 20"``, ``"adaptive"`` ->
    ``"adaptive (dopri5)"``; other labels are returned unchanged."""
    match = re.fullmatch(r"([a-z]+?)(\d+)", label)
    if match and match[1] in FIXED_STEP_METHODS:
        return Solver(match[1], int(match[2])).caption
    if label in ADAPTIVE_METHODS:
        return Solver(label).caption
    return label


def learned_velocity(model: FlowModel, scale: float = 1.0) -> Callable[[Tensor, Tensor], Tensor]:
    """A trained model's velocity in data units, v(x, t) = scale * v_theta(x / scale, t), for ``solve``.

    The toys train in units where the target has the engine's default size (e.g. the ring of radius sqrt(2)); the
    linear path commutes with scaling, so this is the same flow. The network runs in float32; the result comes
    back in the input's dtype, so the solver's state stays float64.
    """
    model.eval()
    scale = float(scale)

    @torch.no_grad()
    def velocity(x_t: Tensor, t: Tensor | float) -> Tensor:
        v = model(x_t.to(torch.float32) / scale, torch.as_tensor(t, dtype=torch.float32))
        return (scale * v).to(x_t.dtype)

    return velocity


@dataclass
class Integration:
    """One integrated batch: ``times`` (S,), ``x_end`` (N, D), ``states`` (S, N, D) or None, ``norms`` (S, N) or
    None (both None with ``record="none"``), the number of field evaluations and the wall time."""

    times: np.ndarray
    x_end: np.ndarray
    states: np.ndarray | None
    norms: np.ndarray | None
    nfe: int
    seconds: float


def run_solver(
    velocity: Callable,
    x_start: Tensor,
    solver: Solver,
    t0: float,
    record: str = "trajectory",
    n_record: int = 51,
    rtol: float = 1e-3,
    atol: float = 1e-5,
    t_max: float | None = None,
) -> Integration:
    """``wtflow.solvers.solve(velocity, x_start, solver.method, solver.steps, t0, 1)`` in float64, counting
    field evaluations; states flattened to (S, N, D) numpy arrays.

    ``t_max`` evaluates the field at min(t, t_max): for targets without density (ring, point) the exact field is
    undefined at t = 1, where the adaptive solver takes its last stage.
    """
    count = [0]

    def counted(x: Tensor, t: Tensor) -> Tensor:
        count[0] += 1
        return velocity(x, t if t_max is None else t.clamp(max=t_max))

    start = time.perf_counter()
    steps = solver.steps or 1
    sol = solve(counted, x_start.to(torch.float64), solver.method, steps, t0, 1.0, record, n_record, rtol, atol)
    states = None if sol.trajectory is None else sol.trajectory.flatten(2).numpy()
    norms = sol.norms.numpy() if sol.norms is not None else None
    if norms is None and states is not None:
        norms = np.linalg.norm(states, axis=2)
    x_end = sol.x_end.flatten(1).numpy()
    return Integration(sol.times.numpy(), x_end, states, norms, count[0], time.perf_counter() - start)
