"""Fig. 8 and Suppl. XI-C: anomalies with disjoint, intersecting and overlapping supports, across epochs.

Normals N(0, I) in 2-D form a fixed training set of n points; rFM (Gaussian target) is trained on them by
full-batch flow matching and observed at several epochs of one run. Fresh normals and three kinds of anomalies

* ``disjoint``:     N((4, 4), 0.3 I), outside the normals' bulk;
* ``intersecting``: N((-1, -1), 0.3 I), the paper's Fig. 8;
* ``overlapping``:  N((0, 0), 0.3 I), inside the normals' bulk,

are transported to t = 1 by the learned field (every epoch), the exact field of the population N(0, I) (whose
flow maps N(0, I) to itself: x_1 = x_0) and the exact field of the n training points, each with Euler K = 1,
K = 20 and the adaptive solver from the same t0. Each endpoint phi is scored by the density proxy of eq. 2
(``wtflow.score_endpoints``, mean over the 2 coordinates) and by ||phi||; we report the AUROC (normals = 0,
anomalies = 1) per case, field, epoch and solver.

``python -m toys.supports [--quick] [--seed S] [--out DIR]``
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from theory import exact_field
from wtflow import GaussianMixture, StandardGaussian, score_endpoints
from wtflow.utils import (
    OKABE_ITO,
    auroc,
    concat_tables,
    derive_seed,
    figure_style,
    log_ticks,
    make_table,
    progress_bar,
    progress_enabled,
    select,
    torch_threads,
    unique,
)

from ._cache import full_batch_train, trained_snapshots
from ._cli import run_cli
from ._planar import FieldSimulatorConfig, trajectory_array, trajectory_table
from ._result import FIELD_LABELS, ToyResult, config_dict
from ._solvers import learned_velocity, run_solver, solver_caption

__all__ = ["SupportsConfig", "plot", "simulate"]

NAME = "supports"
GROUP_COLORS = {"normal": OKABE_ITO["blue"], "anomaly": OKABE_ITO["orange"]}


@dataclass(frozen=True)
class SupportsConfig(FieldSimulatorConfig):
    """Configuration of the supports simulator (defaults: full scale).

    Attributes:
        cases: name -> (mean_x, mean_y, variance) of the anomalies N(mean, variance I).
        n_train: n, normals in the fixed training set (one epoch = one full-batch step).
        n_test: fresh normals and anomalies of each case that are scored.
        n_plot: trajectories per group drawn in the figure.
        n_exact: points per group integrated through the exact n-point field (evaluations near t = 0 far from
            the training points need exact distances, which is slow); the other fields use all n_test.
        snapshots: epochs of one run at which the learned field is evaluated.
        wt: WT map of the learned model (``"none"`` is rFM; in 2-D BatchNorm of N(0, I) data is nearly the identity).
        n_record: recorded times of the adaptive solver (41 here).
        Network, optimiser, solver, seed and thread settings: see ``FieldSimulatorConfig``.
    """

    cases: tuple[tuple[str, float, float, float], ...] = (
        ("disjoint", 4.0, 4.0, 0.3),
        ("intersecting", -1.0, -1.0, 0.3),
        ("overlapping", 0.0, 0.0, 0.3),
    )
    n_train: int = 256
    n_test: int = 256
    n_plot: int = 20
    n_exact: int = 128
    snapshots: tuple[int, ...] = (50, 200, 1000, 4000)
    wt: str = "none"
    n_record: int = 41

    @classmethod
    def quick(cls, **overrides) -> SupportsConfig:
        """Reduced scale: snapshots at 50, 200 and 1 000 epochs, 128 test points per group (48 for the exact n-point
        field), adaptive tolerances 1e-2 / 1e-4."""
        base = cls(snapshots=(50, 200, 1000), n_test=128, n_exact=48, rtol=1e-2, atol=1e-4)
        return replace(base, **overrides)

    def __post_init__(self):
        super().__post_init__()
        for case in self.cases:
            if len(case) != 4 or not case[3] > 0:
                raise ValueError(f"each case must be (name, mean_x, mean_y, variance > 0), got {case!r}")
        if list(self.snapshots) != sorted(set(self.snapshots)) or self.snapshots[0] < 1:
            raise ValueError(f"snapshots must be increasing positive epochs, got {self.snapshots!r}")
        if self.n_plot > min(self.n_test, self.n_exact):
            raise ValueError(
                f"n_plot must be <= n_test and n_exact, got {self.n_plot} > {min(self.n_test, self.n_exact)}"
            )


def _configs(cfg: SupportsConfig) -> tuple[dict, dict]:
    model = {
        "event_shape": 2,
        "net": "mlp",
        "net_kwargs": {"hidden": cfg.hidden, "depth": cfg.depth, "time_dim": cfg.time_dim},
        "wt": cfg.wt,
        "target": "gaussian",
        "t_min": 0.0,
    }
    return model, full_batch_train(cfg, epochs=cfg.snapshots[-1])


def simulate(
    config: SupportsConfig | None = None,
    *,
    quick: bool = False,
    seed: int | None = None,
    progress: bool | None = None,
    use_cache: bool = True,
) -> ToyResult:
    """Run the supports experiment (Fig. 8, Suppl. XI-C).

    Returns:
        ``ToyResult`` with tables ``scores`` (field, epoch, solver, group in {normal, <case>...}, point, start
        x0/y0, endpoint x_end/y_end, score_density (eq. 2), score_norm), ``auroc`` (case, field, epoch, solver,
        score, auroc), ``trajectories`` (case, group, field, epoch, solver, traj, step, t, x, y; the first
        ``n_plot`` points of each group), ``training`` and ``train_points``. Exact fields have epoch -1.
    """
    cfg = config or (SupportsConfig.quick() if quick else SupportsConfig())
    if seed is not None:
        cfg = replace(cfg, seed=seed)
    show = progress_enabled(progress)
    model_cfg, train_cfg = _configs(cfg)
    normal = GaussianMixture(torch.zeros(1, 2, dtype=torch.float64), stds=1.0)
    gen = torch.Generator().manual_seed(derive_seed(cfg.seed, NAME, "train-set"))
    x_train = normal.sample(cfg.n_train, generator=gen, dtype=torch.float32)
    groups = {"normal": normal.sample(cfg.n_test, generator=gen, dtype=torch.float64)}
    for name, mx, my, var in cfg.cases:
        source = GaussianMixture(torch.tensor([[mx, my]], dtype=torch.float64), stds=math.sqrt(var))
        gen = torch.Generator().manual_seed(derive_seed(cfg.seed, NAME, "anomalies", name))
        groups[name] = source.sample(cfg.n_test, generator=gen, dtype=torch.float64)
    x_all = torch.cat(list(groups.values()))
    group_col = np.repeat(list(groups), cfg.n_test)
    point_col = np.tile(np.arange(cfg.n_test), len(groups))

    info = {"cache": {}, "seconds": {}}
    with torch_threads(cfg.threads):
        run = trained_snapshots(
            NAME,
            model_cfg,
            {**train_cfg, "seed": derive_seed(cfg.seed, NAME, "train")},
            x_train,
            cfg.snapshots,
            init_seed=derive_seed(cfg.seed, NAME, "init"),
            progress=show,
            use_cache=use_cache,
        )
        info["cache"]["model"] = run.cache_info
        target = StandardGaussian(2)
        fields = {("learned", e): learned_velocity(m) for e, m in run.models.items()}
        fields[("exact_population", -1)] = exact_field(normal, target)
        fields[("exact_empirical", -1)] = exact_field(GaussianMixture.empirical(x_train.double()), target)
        scores, trajectories = [], []
        items = [(k, v, s) for k, v in fields.items() for s in cfg.solvers]
        exact_rows = np.flatnonzero(point_col < cfg.n_exact)
        for (name, epoch), field_, solver in progress_bar(items, "supports", show):
            rows = exact_rows if name == "exact_empirical" else np.arange(len(x_all))
            x_start = x_all[rows]
            if name == "learned":  # the learned field acts on WT-mapped points: x_0 = WT(x)
                with torch.no_grad():
                    x_start = run.models[epoch].map_data(x_start.float()).double()
            out = run_solver(field_, x_start, solver, cfg.t0, n_record=cfg.n_record, rtol=cfg.rtol, atol=cfg.atol)
            info["seconds"][f"{name}@{epoch}/{solver.label}"] = out.seconds
            phi = torch.from_numpy(out.x_end)
            finite = torch.isfinite(phi).all(dim=1)
            density = torch.full((len(phi),), math.nan, dtype=torch.float64)
            density[finite] = score_endpoints(phi[finite], "density")
            scores.append(
                make_table(
                    len(phi),
                    field=name,
                    epoch=epoch,
                    solver=solver.label,
                    group=group_col[rows],
                    point=point_col[rows],
                    x0=x_all[rows, 0].numpy(),
                    y0=x_all[rows, 1].numpy(),
                    x_end=out.x_end[:, 0],
                    y_end=out.x_end[:, 1],
                    score_density=density.numpy(),
                    score_norm=phi.norm(dim=1).numpy(),
                )
            )
            for case, *_ in cfg.cases:
                for group in ("normal", case):
                    idx = np.flatnonzero(group_col[rows] == group)[: cfg.n_plot]
                    trajectories.append(
                        trajectory_table(
                            out.times,
                            out.states[:, idx],
                            case=case,
                            group="normal" if group == "normal" else "anomaly",
                            field=name,
                            epoch=epoch,
                            solver=solver.label,
                        )
                    )
    scores_t = concat_tables(scores)
    return ToyResult(
        name=NAME,
        config={**config_dict(cfg), "model": model_cfg, "train": train_cfg},
        tables={
            "auroc": auroc_table(scores_t, [c[0] for c in cfg.cases]),
            "scores": scores_t,
            "trajectories": concat_tables(trajectories),
            "training": make_table(
                len(run.epoch_loss), epoch=np.arange(1, len(run.epoch_loss) + 1), loss=np.asarray(run.epoch_loss)
            ),
            "train_points": make_table(cfg.n_train, x=x_train[:, 0].double().numpy(), y=x_train[:, 1].double().numpy()),
        },
        figures={
            "supports_trajectories": ["trajectories", "train_points"],
            "supports_auroc": ["auroc"],
        },
        info=info,
    )


def auroc_table(scores, cases) -> dict:
    """AUROC (normals 0, anomalies 1; higher score = more anomalous) per case, field, epoch, solver and score.
    Non-finite scores (an exploded endpoint) are ranked as the most anomalous."""
    rows = {k: [] for k in ("case", "field", "epoch", "solver", "score", "auroc", "n_normal", "n_anomaly")}
    keys = list(dict.fromkeys(zip(scores["field"], scores["epoch"], scores["solver"])))
    for name, epoch, solver in keys:
        block = select(scores, field=name, epoch=epoch, solver=solver)
        for case in cases:
            sub = select(block, group=["normal", case])
            labels = (sub["group"] == case).astype(int)
            for score in ("density", "norm"):
                values = np.nan_to_num(sub[f"score_{score}"].astype(float), nan=np.inf)
                values = np.where(np.isfinite(values), values, np.finfo(float).max)
                for k, v in zip(
                    rows,
                    (
                        case,
                        name,
                        epoch,
                        solver,
                        score,
                        auroc(labels, values),
                        int((labels == 0).sum()),
                        int(labels.sum()),
                    ),
                ):
                    rows[k].append(v)
    return {k: np.asarray(v, dtype=object if isinstance(v[0], str) else None) for k, v in rows.items()}


def plot(result: ToyResult, solver: str = "euler20") -> dict:
    """Figures: ``supports_trajectories`` (Fig. 8 and its disjoint / overlapping companions, across epochs) and
    ``supports_auroc`` (AUROC of the density proxy vs epochs, per case and solver)."""
    import matplotlib.pyplot as plt

    cfg = result.config
    epochs = list(cfg["snapshots"])
    panels = [("learned", e) for e in epochs] + [("exact_population", -1), ("exact_empirical", -1)]
    cases = [c[0] for c in cfg["cases"]]
    traj = result.table("trajectories", solver=solver)
    pts = result.table("train_points")
    figs = {}
    with figure_style():
        fig, axes = plt.subplots(
            len(cases),
            len(panels),
            figsize=(2.0 * len(panels), 2.1 * len(cases) + 0.5),
            squeeze=False,
            layout="constrained",
        )
        lim = 6.0
        for i, case in enumerate(cases):
            for j, (name, epoch) in enumerate(panels):
                ax = axes[i, j]
                ax.scatter(pts["x"], pts["y"], s=2, color="0.75", lw=0)
                for group in ("normal", "anomaly"):
                    _, states = trajectory_array(select(traj, case=case, group=group, field=name, epoch=epoch))
                    states = np.where(np.isfinite(states), states, np.nan)
                    ax.plot(states[:, :, 0], states[:, :, 1], color=GROUP_COLORS[group], lw=0.5, alpha=0.8)
                    ax.scatter(
                        states[0, :, 0],
                        states[0, :, 1],
                        s=4,
                        color=GROUP_COLORS[group],
                        zorder=3,
                        edgecolors="black",
                        linewidths=0.3,
                        label=group,
                    )
                ax.set_xlim(-lim, lim)
                ax.set_ylim(-lim, lim)
                ax.set_aspect("equal")
                if i == 0:
                    ax.set_title(f"learned, {epoch} epochs" if name == "learned" else FIELD_LABELS[name], fontsize=7.5)
                if j == 0:
                    ax.set_ylabel(f"{case}\nx₂ (data units)")
                if i == len(cases) - 1:
                    ax.set_xlabel("x₁ (data units)")
        axes[0, 0].legend(fontsize=6, loc="lower right")
        fig.suptitle(
            f"Normals N(0, I) (blue; n = {len(pts['x'])} training points in grey) and anomalies (orange): "
            f"{solver_caption(solver)} from t0 = {cfg['t0']:g}"
        )
        figs["supports_trajectories"] = fig

        auroc = result.table("auroc", score="density")
        solvers = unique(auroc, "solver")
        fig, axes = plt.subplots(
            1, len(solvers), figsize=(3.0 * len(solvers), 3.0), squeeze=False, sharey=True, layout="constrained"
        )
        colors = {c: OKABE_ITO[k] for c, k in zip(cases, ("green", "orange", "purple", "sky", "black"))}
        for j, sv in enumerate(solvers):
            ax = axes[0, j]
            for case in cases:
                s = select(auroc, case=case, field="learned", solver=sv)
                ax.plot(s["epoch"], s["auroc"], "o-", color=colors[case], label=f"{case}: learned", ms=3)
                for name, style in (("exact_population", "--"), ("exact_empirical", ":")):
                    e = select(auroc, case=case, field=name, solver=sv)
                    ax.axhline(
                        float(e["auroc"][0]),
                        color=colors[case],
                        ls=style,
                        lw=0.9,
                        label=f"{case}: {FIELD_LABELS[name]}",
                    )
            ax.axhline(0.5, color="0.5", lw=0.6)
            log_ticks(ax, cfg["snapshots"])
            ax.set_ylim(0, 1.02)
            ax.set_xlabel(f"training epochs (full batch, n = {len(pts['x'])})")
            ax.set_title(solver_caption(sv))
        axes[0, 0].set_ylabel("AUROC of the density proxy (eq. 2)")
        axes[0, -1].legend(fontsize=5.5, loc="lower right", ncol=1)
        fig.suptitle("Anomaly separation vs training: disjoint, intersecting and overlapping supports")
        figs["supports_auroc"] = fig
    return figs


def main(argv=None) -> ToyResult:
    return run_cli(NAME, simulate, plot, argv, description=__doc__.splitlines()[0])


if __name__ == "__main__":
    main()
