"""The 2-D field simulators' shared parts (ring, mixture, supports): their common settings, trajectory tables and
the integration of many start points through several fields and solvers."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from wtflow.utils import Table, concat_tables, make_table, progress_bar

from ._solvers import Solver, as_solvers, run_solver

__all__ = ["FieldSimulatorConfig", "planar_runs", "trajectory_array", "trajectory_table"]

DEFAULT_SOLVERS = (Solver("euler", 1), Solver("euler", 20), Solver("dopri5"))


@dataclass(frozen=True)
class FieldSimulatorConfig:
    """Network, optimiser and solver settings shared by the 2-D field simulators (ring, mixture, supports).

    Attributes:
        hidden, depth, time_dim: MLP width, number of hidden layers, time-embedding size.
        lr, weight_decay, lr_step_fraction, lr_gamma: AdamW and StepLR relative to the run (``TrainConfig``).
        t0: common start time of every solver (the empirical field is undefined at 0).
        solvers: ``Solver``s of ``wtflow.solvers.solve``: Euler K = 1, Euler K = 20 and adaptive dopri5
            (``(method, steps)`` pairs are accepted).
        rtol, atol, n_record: adaptive-solver tolerances and number of recorded times.
        seed: base seed (training sets, start points, initialisation, training noise).
        threads: torch threads while training and integrating (1 is fastest for these sizes).
    """

    hidden: int = 64
    depth: int = 3
    time_dim: int = 32
    lr: float = 3e-3
    weight_decay: float = 0.0
    lr_step_fraction: float = 0.5
    lr_gamma: float = 0.1
    t0: float = 1e-3
    solvers: tuple[Solver, ...] = DEFAULT_SOLVERS
    rtol: float = 1e-3
    atol: float = 1e-5
    n_record: int = 51
    seed: int = 0
    threads: int | None = 1

    def __post_init__(self):
        object.__setattr__(self, "solvers", as_solvers(self.solvers))


def trajectory_table(times: np.ndarray, states: np.ndarray, **constants: Any) -> Table:
    """One row per recorded time and 2-D trajectory: ``constants``, then traj, step, t, x, y.

    Args:
        times: (S,) recorded times; states: (S, N, 2) positions at those times.
        constants: leading columns repeated on every row (e.g. ``field=..., epoch=..., solver=...``).
    """
    s, n = states.shape[:2]
    return make_table(
        s * n,
        **constants,
        traj=np.tile(np.arange(n), s),
        step=np.repeat(np.arange(s), n),
        t=np.repeat(times, n),
        x=states[:, :, 0].reshape(-1),
        y=states[:, :, 1].reshape(-1),
    )


def trajectory_array(table: Table, columns: Sequence[str] = ("x", "y")) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ONE (field, epoch, solver, ...) block of a trajectory table as arrays:
    times (S,) and states (S, N, len(columns)), indexed by the ``step`` and ``traj`` columns."""
    steps, traj = table["step"].astype(int), table["traj"].astype(int)
    if len(steps) == 0:
        raise ValueError("trajectory_array got an empty table; check the filter")
    states = np.full((steps.max() + 1, traj.max() + 1, len(columns)), np.nan)
    for i, c in enumerate(columns):
        states[steps, traj, i] = table[c]
    times = np.full(steps.max() + 1, np.nan)
    times[steps] = table["t"]
    return times, states


def planar_runs(
    fields_: Mapping[tuple[str, int], Callable],
    x_0: torch.Tensor,
    solvers: Sequence[Solver],
    t0: float,
    n_record: int = 51,
    rtol: float = 1e-3,
    atol: float = 1e-5,
    t_max: float | None = None,
    progress: bool = False,
    desc: str = "integrate",
    **constants: Any,
) -> tuple[Table, Table, dict[str, float]]:
    """Integrate 2-D start points ``x_0`` (N, 2) through several fields with several solvers.

    Args:
        fields_: (field name, epoch) -> velocity; epoch is -1 for exact fields.
        x_0: (N, 2) start points at t = t0.
        solvers: ``Solver``s; the tables name them by ``Solver.label``.
        constants: extra columns repeated on every row (e.g. ``setting=0``).

    Returns:
        ``trajectories`` (one row per field, epoch, solver, trajectory and recorded time: x, y),
        ``endpoints`` (one row per field, epoch, solver and trajectory: start x0/y0, radius r0, minimum radius
        r_min and its time t_at_min, endpoint x_end/y_end/r_end, and the field at the start, v0_radial =
        x0/|x0| . v(x0, t0) and v0_norm = |v(x0, t0)|), and the seconds spent per field.
    """
    traj_tables, end_tables, seconds = [], [], {}
    x64 = x_0.to(torch.float64)
    n = x64.shape[0]
    r0 = x64.norm(dim=1).numpy()
    for (name, epoch), velocity in progress_bar(list(fields_.items()), desc, progress):
        start = time.perf_counter()
        with torch.no_grad():
            v0 = velocity(x64, torch.full((n,), t0, dtype=torch.float64)).to(torch.float64)
        v0_radial = ((x64 * v0).sum(1) / x64.norm(dim=1).clamp_min(1e-300)).numpy()
        for solver in solvers:
            run = run_solver(velocity, x64, solver, t0, n_record=n_record, rtol=rtol, atol=atol, t_max=t_max)
            radius = run.norms
            i_min = radius.argmin(axis=0)
            keys = {**constants, "field": name, "epoch": epoch, "solver": solver.label}
            traj_tables.append(trajectory_table(run.times, run.states, **keys))
            end_tables.append(
                make_table(
                    n,
                    **keys,
                    traj=np.arange(n),
                    x0=x64[:, 0].numpy(),
                    y0=x64[:, 1].numpy(),
                    r0=r0,
                    r_min=radius.min(axis=0),
                    t_at_min=run.times[i_min],
                    x_end=run.states[-1, :, 0],
                    y_end=run.states[-1, :, 1],
                    r_end=radius[-1],
                    v0_radial=v0_radial,
                    v0_norm=v0.norm(dim=1).numpy(),
                    nfe=run.nfe,
                )
            )
        seconds[f"{name}@{epoch}"] = time.perf_counter() - start
    return concat_tables(traj_tables), concat_tables(end_tables), seconds
