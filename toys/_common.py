"""Plumbing shared by the toy simulators: the trained-model cache, seeds, threads, tidy tables, solvers,
the figure style and the command line.

* Models are cached by a SHA-256 of their full configuration (model, training, initialisation seed and the
  bytes of the training set) in ``$WTFLOW_CACHE`` (default ``toys/_cache``) with ``FlowModel.save``
  (atomic), so figures, notebooks and tests train each model once.
* A *table* is a dict of equally long 1-D numpy arrays (column name -> values): tidy, one row per
  observation, written as CSV next to every figure.
* Small MLPs on a CPU run faster on one thread than on two (``python -m toys.timing --threads`` measures
  it); the simulators train and integrate inside ``torch_threads(1)``, which restores the previous setting.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import csv
import hashlib
import io
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from wtflow import FlowModel, TrainConfig, euler, solve_adaptive, train
from wtflow.checkpoint import CheckpointError, write_atomic, write_text_atomic

__all__ = [
    "CACHE_ENV",
    "FIELD_COLORS",
    "FIELD_LABELS",
    "OKABE_ITO",
    "SOLVER_LABELS",
    "FieldSimulatorConfig",
    "LearnedField",
    "Table",
    "ToyResult",
    "cache_dir",
    "clamp_time",
    "concat_tables",
    "config_hash",
    "derive_seed",
    "figure_style",
    "integrate",
    "progress_enabled",
    "run_cli",
    "save_figure",
    "select",
    "torch_threads",
    "trained_snapshots",
    "trajectory_table",
    "write_csv",
]

CACHE_ENV = "WTFLOW_CACHE"
CACHE_VERSION = 1
DEFAULT_CACHE = Path(__file__).resolve().parent / "_cache"

Table = dict[str, np.ndarray]

# Okabe & Ito (2008), safe for the common colour-vision deficiencies.
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
}
FIELD_COLORS = {
    "learned": OKABE_ITO["blue"],
    "exact_population": OKABE_ITO["vermillion"],
    "exact_empirical": OKABE_ITO["green"],
}
FIELD_LABELS = {
    "learned": "learned (MLP)",
    "exact_population": "exact, population source",
    "exact_empirical": "exact, n-point training set",
}
SOLVER_LABELS = {"euler1": "Euler K = 1", "euler20": "Euler K = 20", "adaptive": "adaptive (dopri5)"}


# --------------------------------------------------------------------------------------------------
# Seeds, threads, progress
# --------------------------------------------------------------------------------------------------


def derive_seed(seed: int, *labels: Any) -> int:
    """A reproducible 31-bit seed for the part of a run named by ``labels`` (independent streams per part)."""
    text = json.dumps([int(seed), *[str(label) for label in labels]])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little") & 0x7FFFFFFF


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run the block with ``torch.set_num_threads(n)`` (None: leave it), restoring the previous value."""
    previous = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def progress_enabled(progress: bool | None) -> bool:
    """``None`` means: show bars on an interactive terminal, never under pytest."""
    if progress is not None:
        return bool(progress)
    return sys.stderr.isatty() and "PYTEST_CURRENT_TEST" not in os.environ


def progress_bar(iterable: Iterable, desc: str, enabled: bool, total: int | None = None):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False)


# --------------------------------------------------------------------------------------------------
# Model cache
# --------------------------------------------------------------------------------------------------


def cache_dir() -> Path:
    """Directory of cached trained models: ``$WTFLOW_CACHE`` if set, else ``toys/_cache``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else DEFAULT_CACHE


def _jsonable(obj: Any) -> Any:
    if is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(asdict(obj))
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return repr(obj)
    return obj


def config_hash(config: Any) -> str:
    """SHA-256 (hex) of the canonical JSON of ``config`` (dicts, lists, dataclasses, numbers, strings)."""
    text = json.dumps(_jsonable(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def tensor_digest(x: Tensor) -> str:
    """SHA-256 of a tensor's dtype, shape and bytes (identifies a training set exactly)."""
    t = x.detach().cpu().contiguous()
    h = hashlib.sha256(f"{t.dtype}{tuple(t.shape)}".encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


@dataclass
class Snapshots:
    """Trained models of one run at the requested epochs, with where they came from.

    Attributes:
        models: epoch -> ``FlowModel`` (eval mode, CPU).
        epoch_loss: mean training loss of every epoch of the whole run (len = epochs).
        key: the cache key (SHA-256 of the full configuration).
        trained: True if this call trained the run, False if every snapshot came from the cache.
        seconds: wall time of this call.
    """

    models: dict[int, FlowModel]
    epoch_loss: list[float]
    key: str
    trained: bool
    seconds: float

    @property
    def cache_info(self) -> dict[str, Any]:
        """``{"key", "trained", "seconds"}``: what a simulator records about the run in ``ToyResult.info``."""
        return {"key": self.key, "trained": self.trained, "seconds": self.seconds}


def _snapshot_path(name: str, key: str, epoch: int) -> Path:
    return cache_dir() / f"{name}-{key[:20]}-e{epoch}.pt"


def trained_snapshots(
    name: str,
    model_config: Mapping[str, Any],
    train_config: Mapping[str, Any],
    data: Tensor,
    snapshots: Sequence[int],
    init_seed: int,
    progress: bool = False,
    use_cache: bool = True,
) -> Snapshots:
    """Train ``FlowModel(**model_config)`` on ``data`` with ``TrainConfig(**train_config)`` and return the
    models after the epochs in ``snapshots`` (one run, observed along the way), using the cache when possible.

    An epoch is one pass over ``data``; the toys use full-batch epochs (``batch_size >= len(data)``).
    The cache key covers the model and training configuration, ``init_seed`` (the weights' initialisation)
    and the exact bytes of ``data``; the snapshot epochs only select files of that run.

    Args:
        name: file-name prefix in the cache (e.g. ``"ring"``).
        model_config: keyword arguments of ``FlowModel``.
        train_config: keyword arguments of ``TrainConfig`` (``device``/``progress``/checkpointing are set here).
        data: (n, *event_shape) training set.
        snapshots: epochs in [1, train_config["epochs"]] at which to keep the model.
        init_seed: seed of the weight initialisation.
        progress: show the trainer's progress bar.
        use_cache: read and write the cache (False: always train, write nothing).
    """
    start = time.perf_counter()
    train_config = dict(train_config)
    for key in ("device", "progress", "checkpoint_dir", "checkpoint_every"):
        train_config.pop(key, None)
    epochs = int(train_config.get("epochs", TrainConfig.epochs))
    snaps = sorted({int(e) for e in snapshots})
    if not snaps or snaps[0] < 1 or snaps[-1] > epochs:
        raise ValueError(f"snapshots must be epochs in [1, {epochs}], got {list(snapshots)!r}")
    key = config_hash(
        {
            "cache_version": CACHE_VERSION,
            "model": dict(model_config),
            "train": train_config,
            "init_seed": int(init_seed),
            "data_sha256": tensor_digest(data),
        }
    )
    paths = {e: _snapshot_path(name, key, e) for e in snaps}
    if use_cache and all(p.exists() for p in paths.values()):
        try:
            models, losses = {}, []
            for e, p in paths.items():
                models[e] = FlowModel.load(p).eval()
                losses = _loss_from_extra(p)
            return Snapshots(models, losses, key, trained=False, seconds=time.perf_counter() - start)
        except CheckpointError:
            pass  # an unreadable cache entry is rebuilt below

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(init_seed))
        model = FlowModel(**model_config)
    cfg = TrainConfig(**train_config, device="cpu", progress=progress)
    states: dict[int, dict[str, Tensor]] = {}

    def keep(epoch: int, loss: float) -> None:
        if epoch in paths:
            states[epoch] = copy.deepcopy(model.state_dict())

    result = train(model, data.detach().cpu().float(), cfg, callback=keep)
    models = {}
    for e in snaps:
        snap = FlowModel.from_config(model.config)
        snap.load_state_dict(states[e])
        snap.eval()
        models[e] = snap
        if use_cache:
            extra = {"key": key, "epoch": e, "epoch_loss": result.epoch_loss, "train_config": train_config}
            snap.save(paths[e], extra=extra)
    return Snapshots(models, list(result.epoch_loss), key, trained=True, seconds=time.perf_counter() - start)


def _loss_from_extra(path: Path) -> list[float]:
    from wtflow.checkpoint import load_checkpoint

    payload = load_checkpoint(path, "flow-model", map_location="cpu")
    return list(json.loads(payload["extra"]).get("epoch_loss", []))


# --------------------------------------------------------------------------------------------------
# Fields and solvers
# --------------------------------------------------------------------------------------------------


class LearnedField:
    """A trained ``FlowModel``'s velocity in data units: v(x, t) = scale * v_theta(x / scale, t).

    The toys train in units where the target has the engine's default size (e.g. the ring of radius sqrt(2))
    and rescale by ``scale``; the linear path commutes with scaling, so this is the same flow. Inputs of any
    float dtype are evaluated in float32 and returned in the input dtype.
    """

    def __init__(self, model: FlowModel, scale: float = 1.0):
        self.model = model.eval()
        self.scale = float(scale)

    @torch.no_grad()
    def __call__(self, x_t: Tensor, t: Tensor | float) -> Tensor:
        t = torch.as_tensor(t, dtype=torch.float32)
        v = self.model(x_t.to(torch.float32) / self.scale, t)
        return (self.scale * v).to(x_t.dtype)


def clamp_time(field: Callable, t_max: float) -> Callable:
    """Evaluate ``field`` at min(t, t_max): for targets without density (ring, point) the exact field is
    undefined at t = 1, where the adaptive solver takes its last stage."""

    def clamped(x_t: Tensor, t: Tensor) -> Tensor:
        return field(x_t, t.clamp(max=t_max))

    return clamped


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


def integrate(
    field_: Callable,
    x_0: Tensor,
    solver: str,
    t0: float,
    record: str = "trajectory",
    n_record: int = 51,
    rtol: float = 1e-3,
    atol: float = 1e-5,
    t_max: float | None = None,
) -> Integration:
    """Integrate ``field_`` from (x_0, t0) to t = 1 in float64 with ``solver``: ``"euler<K>"`` (e.g.
    ``"euler1"``, ``"euler20"``) or ``"adaptive"`` (dopri5, ``n_record`` equally spaced output times).

    ``record``: ``"trajectory"`` keeps all states, ``"norms"`` only ||x_t||, ``"none"`` only the endpoint.
    ``t_max`` clamps the time the field sees (``clamp_time``). States are flattened to (S, N, D).
    """
    count = [0]

    def counted(x: Tensor, t: Tensor) -> Tensor:
        count[0] += 1
        return field_(x, t if t_max is None else t.clamp(max=t_max))

    start = time.perf_counter()
    x_0 = x_0.to(torch.float64)
    if solver.startswith("euler"):
        try:
            steps = int(solver[len("euler") :])
        except ValueError as err:
            raise ValueError(f"solver must be 'euler<K>' or 'adaptive', got {solver!r}") from err
        sol = euler(counted, x_0, steps=steps, t0=t0, record=record)
    elif solver == "adaptive":
        sol = solve_adaptive(counted, x_0, t0=t0, record=record, n_record=n_record, rtol=rtol, atol=atol)
    else:
        raise ValueError(f"solver must be 'euler<K>' or 'adaptive', got {solver!r}")
    states = None if sol.trajectory is None else sol.trajectory.flatten(2).numpy()
    norms = sol.norms.numpy() if sol.norms is not None else None
    if norms is None and states is not None:
        norms = np.linalg.norm(states, axis=2)
    x_end = sol.x_end.flatten(1).numpy()
    return Integration(sol.times.numpy(), x_end, states, norms, count[0], time.perf_counter() - start)


def planar_runs(
    fields_: Mapping[tuple[str, int], Callable],
    x_0: Tensor,
    solvers: Sequence[str],
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
        solvers: names accepted by ``integrate``.
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
    items = list(fields_.items())
    for (name, epoch), velocity in progress_bar(items, desc, progress):
        start = time.perf_counter()
        with torch.no_grad():
            v0 = velocity(x64, torch.full((n,), t0, dtype=torch.float64)).to(torch.float64)
        v0_radial = ((x64 * v0).sum(1) / x64.norm(dim=1).clamp_min(1e-300)).numpy()
        for solver in solvers:
            run = integrate(velocity, x64, solver, t0, n_record=n_record, rtol=rtol, atol=atol, t_max=t_max)
            radius = run.norms
            i_min = radius.argmin(axis=0)
            traj_tables.append(
                trajectory_table(run.times, run.states, **constants, field=name, epoch=epoch, solver=solver)
            )
            end_tables.append(
                make_table(
                    n,
                    **constants,
                    field=name,
                    epoch=epoch,
                    solver=solver,
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


# --------------------------------------------------------------------------------------------------
# Tidy tables
# --------------------------------------------------------------------------------------------------


def _column(values: Any, n: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim == 0:
        return np.full(n, arr.item(), dtype=object if arr.dtype.kind in "UO" else arr.dtype)
    if arr.shape != (n,):
        raise ValueError(f"table column has shape {arr.shape}, expected ({n},)")
    return arr


def make_table(n: int, **columns: Any) -> Table:
    """A table of ``n`` rows; scalar columns are repeated."""
    return {name: _column(values, n) for name, values in columns.items()}


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


def concat_tables(tables: Sequence[Table]) -> Table:
    """Stack tables with the same columns (in the order of the first)."""
    tables = [t for t in tables if t]
    if not tables:
        return {}
    names = list(tables[0])
    for t in tables[1:]:
        if list(t) != names:
            raise ValueError(f"cannot concatenate tables with columns {names} and {list(t)}")
    return {
        name: np.concatenate([np.asarray(t[name], dtype=object if _is_text(t[name]) else None) for t in tables])
        for name in names
    }


def _is_text(arr: np.ndarray) -> bool:
    return np.asarray(arr).dtype.kind in "UO"


def n_rows(table: Table) -> int:
    return len(next(iter(table.values()))) if table else 0


def select(table: Table, **where: Any) -> Table:
    """Rows whose columns equal the given values (a list/tuple value means "any of these")."""
    mask = np.ones(n_rows(table), dtype=bool)
    for name, value in where.items():
        if name not in table:
            raise KeyError(f"table has no column {name!r}; columns: {', '.join(table)}")
        col = table[name]
        if isinstance(value, list | tuple | set):
            mask &= np.isin(col, list(value))
        else:
            mask &= col == value
    return {name: col[mask] for name, col in table.items()}


def unique(table: Table, column: str) -> list:
    """Distinct values of ``column`` in order of first appearance."""
    return list(dict.fromkeys(table[column].tolist()))


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


def _format(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float | np.floating):
        return f"{float(value):.7g}"
    return str(value)


def table_to_csv(table: Table) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(list(table))
    for row in zip(*table.values()):
        writer.writerow([_format(v) for v in row])
    return buf.getvalue()


@dataclass(frozen=True)
class FieldSimulatorConfig:
    """Network, optimiser and solver settings shared by the 2-D field simulators (ring, mixture, supports).

    Attributes:
        hidden, depth, time_dim: MLP width, number of hidden layers, time-embedding size.
        lr, weight_decay, lr_step_fraction, lr_gamma: AdamW and StepLR relative to the run (``TrainConfig``).
        t0: common start time of every solver (the empirical field is undefined at 0).
        solvers: Euler K = 1, Euler K = 20 and adaptive dopri5.
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
    solvers: tuple[str, ...] = ("euler1", "euler20", "adaptive")
    rtol: float = 1e-3
    atol: float = 1e-5
    n_record: int = 51
    seed: int = 0
    threads: int | None = 1


def full_batch_train(cfg, epochs: int) -> dict:
    """``TrainConfig`` fields of a toy run: one full-batch step per epoch over ``cfg.n_train`` points.

    ``cfg`` is a toy config with ``n_train``, ``lr``, ``weight_decay``, ``lr_step_fraction`` and ``lr_gamma``;
    the dict is part of each cached model's key, so every toy must build it here.
    """
    return {
        "epochs": epochs,
        "batch_size": cfg.n_train,
        "lr": cfg.lr,
        "weight_decay": cfg.weight_decay,
        "lr_step_fraction": cfg.lr_step_fraction,
        "lr_gamma": cfg.lr_gamma,
        "seed": 0,
        "amp": False,
    }


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (temp file + os.replace)."""
    return write_text_atomic(path, text)


def write_csv(table: Table, path: str | os.PathLike) -> Path:
    """Write ``table`` as CSV atomically."""
    return write_text(path, table_to_csv(table))


# --------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------


@dataclass
class ToyResult:
    """What a simulator returns.

    Attributes:
        name: simulator name (``"ring"``, ``"mixture"``...).
        config: the full configuration (JSON-able), including the seed and every solver setting.
        tables: tidy tables, name -> {column: (rows,) array}.
        figures: figure name -> the table names behind it (written as CSV next to the figure).
        info: run facts that are not configuration: wall times, cache hits, cache keys.
    """

    name: str
    config: dict[str, Any]
    tables: dict[str, Table]
    figures: dict[str, list[str]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def table(self, name: str, **where: Any) -> Table:
        """Table ``name``, optionally filtered by column values (``select``)."""
        if name not in self.tables:
            raise KeyError(f"{self.name} has no table {name!r}; tables: {', '.join(self.tables)}")
        return select(self.tables[name], **where) if where else self.tables[name]

    def write(self, out_dir: str | os.PathLike) -> list[Path]:
        """Write every table as ``<name>_<table>.csv`` and ``<name>_config.json`` (config + info) to ``out_dir``."""
        out = Path(out_dir)
        paths = [write_csv(t, out / f"{self.name}_{tname}.csv") for tname, t in self.tables.items()]
        meta = {"simulator": self.name, "config": self.config, "figures": self.figures, "info": self.info}
        paths.append(write_text(out / f"{self.name}_config.json", json.dumps(_jsonable(meta), indent=2) + "\n"))
        return paths


def config_dict(cfg: Any) -> dict[str, Any]:
    """A simulator config dataclass as a JSON-able dict."""
    return _jsonable({f.name: getattr(cfg, f.name) for f in fields(cfg)})


# --------------------------------------------------------------------------------------------------
# Figure style
# --------------------------------------------------------------------------------------------------

STYLE = {
    "figure.dpi": 110,
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 7.5,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.2,
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
}


@contextlib.contextmanager
def figure_style():
    """The toys' matplotlib style (Okabe-Ito colours, small fonts, light grid); Agg-safe."""
    import matplotlib
    import matplotlib.pyplot as plt

    cycle = matplotlib.cycler(color=[OKABE_ITO[k] for k in ("blue", "vermillion", "green", "orange", "purple", "sky")])
    with plt.rc_context({**STYLE, "axes.prop_cycle": cycle}):
        yield


def epoch_colors(n: int) -> list:
    """``n`` colours from the colour-blind-safe sequential map cividis (early -> late)."""
    import matplotlib

    cmap = matplotlib.colormaps["cividis"]
    return [cmap(0.1 + 0.8 * i / max(1, n - 1)) for i in range(n)]


def log_ticks(ax, values: Sequence[float], axis: str = "x") -> None:
    """Log-scale ``axis`` with ticks at ``values`` labelled in plain numbers (no 3 x 10^0 labels)."""
    import matplotlib.ticker as mticker

    values = sorted({float(v) for v in values})
    set_scale = ax.set_xscale if axis == "x" else ax.set_yscale
    target = ax.xaxis if axis == "x" else ax.yaxis
    set_scale("log")
    target.set_major_locator(mticker.FixedLocator(values))
    target.set_major_formatter(mticker.FixedFormatter([f"{v:g}" for v in values]))
    target.set_minor_locator(mticker.NullLocator())


def save_figure(fig, out_dir: str | os.PathLike, name: str) -> list[Path]:
    """Write ``fig`` as ``name.png`` and ``name.pdf`` atomically."""
    out = Path(out_dir)
    paths = []
    for ext in ("png", "pdf"):
        paths.append(write_atomic(out / f"{name}.{ext}", lambda tmp, ext=ext: fig.savefig(tmp, format=ext)))
    return paths


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------


def run_cli(
    name: str,
    simulate: Callable[..., ToyResult],
    plot: Callable[[ToyResult], dict[str, Any]],
    argv: Sequence[str] | None = None,
    description: str = "",
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> ToyResult:
    """``python -m toys.<name> [--quick] [--seed S] [--out DIR]``: simulate, plot, write PNG + PDF + CSV + JSON."""
    parser = argparse.ArgumentParser(prog=f"python -m toys.{name}", description=description)
    parser.add_argument("--quick", action="store_true", help="reduced size (seconds instead of minutes)")
    parser.add_argument("--seed", type=int, default=0, help="base seed of every random choice (default 0)")
    parser.add_argument("--out", default=f"runs/toys/{name}", help="output directory (default runs/toys/%(prog)s)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    extra = {k: v for k, v in vars(args).items() if k not in ("quick", "seed", "out", "no_progress")}
    start = time.perf_counter()
    result = simulate(quick=args.quick, seed=args.seed, progress=False if args.no_progress else None, **extra)
    figs = plot(result)
    written = result.write(args.out)
    for fig_name, fig in figs.items():
        written += save_figure(fig, args.out, fig_name)
        plt.close(fig)
    print(f"toys.{name}: {len(written)} files in {args.out} ({time.perf_counter() - start:.1f} s)")
    for line in summary_lines(result):
        print("  " + line)
    return result


def summary_lines(result: ToyResult) -> list[str]:
    """The ``summary`` table (if any) as aligned text lines."""
    table = result.tables.get("summary")
    if not table:
        return []
    header = list(table)
    rows = [[_short(v) for v in row] for row in zip(*table.values())]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return lines


def _short(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return f"{float(value):.4g}"
    return _format(value)
