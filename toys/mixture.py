"""Fig. 5: the centripetal potential field (CPF) of a 4-component mixture confined to radius d, ring R = 10.

The source is a symmetric mixture of K = 4 Gaussians with means at radius ``mean_fraction * d`` (angles
45 + 90 k degrees) and standard deviation ``std_fraction * d``, so it sits inside the circle of radius d; the
target is the uniform ring of radius R. For every d a fixed training set of n points is drawn once and an MLP
is trained by full-batch flow matching. We measure

* the CPF strength |u(x, 0+)| of the learned field (at t = 0), of the exact population field (at t = 0, where
  eq. 12 gives u = -x, so |u| = ||x||, the V(d) = -d of eq. 13) and of the exact field of the n training points
  (at t0 > 0; at a training point it is finite, off the training points it diverges like 1/t, Theorem 1);
* trajectories of fresh source points through the three fields (Euler K = 1, K = 20 and adaptive from t0).

``python -m toys.mixture [--quick] [--seed S] [--out DIR]``
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from theory import exact_field, marginal_velocity
from wtflow import GaussianMixture, UniformSphere
from wtflow.utils import (
    concat_tables,
    derive_seed,
    figure_style,
    make_table,
    progress_enabled,
    select,
    torch_threads,
    unique,
)

from ._cache import full_batch_train, trained_snapshots
from ._cli import run_cli
from ._planar import FieldSimulatorConfig, planar_runs, trajectory_array
from ._result import FIELD_COLORS, FIELD_LABELS, ToyResult, config_dict
from ._solvers import learned_velocity, solver_caption

__all__ = ["MixtureConfig", "mixture_source", "plot", "simulate"]

NAME = "mixture"
FIELDS = ("learned", "exact_population", "exact_empirical")


@dataclass(frozen=True)
class MixtureConfig(FieldSimulatorConfig):
    """Configuration of the mixture simulator (defaults: full scale).

    Attributes:
        radius: R, radius of the target ring (data units; Fig. 5 uses 10).
        d_values: confinement radii d of the source.
        mean_fraction, std_fraction: component means at radius mean_fraction * d, stds std_fraction * d.
        n_train: n, fixed training-set size (one epoch = one full-batch step).
        n_trajectories: start points per d for the trajectories.
        n_cpf: fresh source points at which the CPF strength is measured.
        epochs: training epochs per d.
        t_max: as in ``toys.ring``.
        Network, optimiser, solver, seed and thread settings: see ``FieldSimulatorConfig``; ``t0`` is also
        where the empirical field's CPF is measured.
    """

    radius: float = 10.0
    d_values: tuple[float, ...] = (1.0, 2.5, 5.0, 7.5)
    mean_fraction: float = 0.7
    std_fraction: float = 0.1
    n_train: int = 256
    n_trajectories: int = 40
    n_cpf: int = 256
    epochs: int = 4000
    t_max: float = 1.0 - 1e-3

    @classmethod
    def quick(cls, **overrides) -> MixtureConfig:
        """Reduced scale: d in {1, 5}, 1 500 epochs, 24 trajectories, adaptive tolerances 1e-2 / 1e-4."""
        base = cls(d_values=(1.0, 5.0), epochs=1500, n_trajectories=24, rtol=1e-2, atol=1e-4)
        return replace(base, **overrides)

    def __post_init__(self):
        super().__post_init__()
        if not self.radius > 0:
            raise ValueError(f"radius must be > 0, got {self.radius!r}")
        if not self.d_values or min(self.d_values) <= 0:
            raise ValueError(f"d_values must be positive radii, got {self.d_values!r}")


def mixture_source(d: float, mean_fraction: float = 0.7, std_fraction: float = 0.1) -> GaussianMixture:
    """The symmetric 4-component mixture inside radius d: means mean_fraction * d (cos, sin)(45 + 90 k deg)."""
    angles = torch.tensor([0.25, 0.75, 1.25, 1.75], dtype=torch.float64) * math.pi
    means = mean_fraction * d * torch.stack([angles.cos(), angles.sin()], dim=1)
    return GaussianMixture(means, stds=std_fraction * d)


def _configs(cfg: MixtureConfig) -> tuple[dict, dict]:
    model = {
        "event_shape": 2,
        "net": "mlp",
        "net_kwargs": {"hidden": cfg.hidden, "depth": cfg.depth, "time_dim": cfg.time_dim},
        "wt": "none",
        "target": "sphere",
        "t_min": 0.0,
    }
    return model, full_batch_train(cfg, epochs=cfg.epochs)


def _cpf_rows(d: float, name: str, t: float, where: str, x: torch.Tensor, u: torch.Tensor):
    norm_x = x.norm(dim=1)
    inward = -(x * u).sum(1) / norm_x.clamp_min(1e-300)
    return make_table(
        x.shape[0],
        d=d,
        field=name,
        t=t,
        where=where,
        point=np.arange(x.shape[0]),
        norm_x=norm_x.numpy(),
        norm_u=u.norm(dim=1).numpy(),
        inward_u=inward.numpy(),
    )


def simulate(
    config: MixtureConfig | None = None,
    *,
    quick: bool = False,
    seed: int | None = None,
    progress: bool | None = None,
    use_cache: bool = True,
) -> ToyResult:
    """Run the mixture experiment (Fig. 5, eq. 12-13).

    Returns:
        ``ToyResult`` with tables ``cpf_points`` (d, field, t, where in {test, train}, point, norm_x = ||x||,
        norm_u = |u(x, t)|, inward_u = -x/||x|| . u), ``cpf`` (their means per d, field, t, where, with
        ratio = mean |u| / mean ||x||), ``trajectories`` / ``endpoints`` (as in ``toys.ring``, with a d column),
        ``summary`` (per d, field, solver) and ``train_points``.
    """
    cfg = config or (MixtureConfig.quick() if quick else MixtureConfig())
    if seed is not None:
        cfg = replace(cfg, seed=seed)
    show = progress_enabled(progress)
    target = UniformSphere(2, radius=cfg.radius)
    scale = cfg.radius / math.sqrt(2.0)
    model_cfg, train_cfg = _configs(cfg)
    trajectories, endpoints, cpf_points, points = [], [], [], []
    info = {"cache": {}, "seconds": {}}
    with torch_threads(cfg.threads):
        for d in cfg.d_values:
            population = mixture_source(d, cfg.mean_fraction, cfg.std_fraction)
            gen = torch.Generator().manual_seed(derive_seed(cfg.seed, NAME, "train-set", d))
            x_train = population.sample(cfg.n_train, generator=gen, dtype=torch.float32)
            gen = torch.Generator().manual_seed(derive_seed(cfg.seed, NAME, "test-points", d))
            x_test = population.sample(cfg.n_cpf, generator=gen, dtype=torch.float64)
            x_start = x_test[: cfg.n_trajectories]
            run = trained_snapshots(
                NAME,
                model_cfg,
                {**train_cfg, "seed": derive_seed(cfg.seed, NAME, "train", d)},
                x_train / scale,
                [cfg.epochs],
                init_seed=derive_seed(cfg.seed, NAME, "init", d),
                progress=show,
                use_cache=use_cache,
            )
            info["cache"][f"d={d:g}"] = run.cache_info
            empirical = GaussianMixture.empirical(x_train.double())
            learned = learned_velocity(run.models[cfg.epochs], scale)
            x_tr = x_train.double()
            with torch.no_grad():
                cpf_points += [
                    _cpf_rows(d, "learned", 0.0, "test", x_test, learned(x_test, torch.zeros(cfg.n_cpf))),
                    _cpf_rows(d, "learned", cfg.t0, "test", x_test, learned(x_test, torch.full((cfg.n_cpf,), cfg.t0))),
                    _cpf_rows(d, "learned", 0.0, "train", x_tr, learned(x_tr, torch.zeros(cfg.n_train))),
                    _cpf_rows(
                        d, "exact_population", 0.0, "test", x_test, marginal_velocity(x_test, 0.0, population, target)
                    ),
                    _cpf_rows(
                        d,
                        "exact_population",
                        cfg.t0,
                        "test",
                        x_test,
                        marginal_velocity(x_test, cfg.t0, population, target),
                    ),
                    _cpf_rows(
                        d,
                        "exact_empirical",
                        cfg.t0,
                        "test",
                        x_test,
                        marginal_velocity(x_test, cfg.t0, empirical, target),
                    ),
                    _cpf_rows(
                        d, "exact_empirical", cfg.t0, "train", x_tr, marginal_velocity(x_tr, cfg.t0, empirical, target)
                    ),
                ]
            fields = {
                ("learned", cfg.epochs): learned,
                ("exact_population", -1): exact_field(population, target),
                ("exact_empirical", -1): exact_field(empirical, target),
            }
            traj, ends, seconds = planar_runs(
                fields,
                x_start,
                cfg.solvers,
                cfg.t0,
                n_record=cfg.n_record,
                rtol=cfg.rtol,
                atol=cfg.atol,
                t_max=cfg.t_max,
                progress=show,
                desc=f"mixture d={d:g}",
                d=d,
            )
            info["seconds"][f"d={d:g}"] = seconds
            trajectories.append(traj)
            endpoints.append(ends)
            points.append(make_table(cfg.n_train, d=d, x=x_tr[:, 0].numpy(), y=x_tr[:, 1].numpy()))
    cpf_t = concat_tables(cpf_points)
    ends_t = concat_tables(endpoints)
    return ToyResult(
        name=NAME,
        config={**config_dict(cfg), "model": model_cfg, "train": train_cfg, "model_scale": scale},
        tables={
            "cpf": summarize_cpf(cpf_t),
            "cpf_points": cpf_t,
            "trajectories": concat_tables(trajectories),
            "endpoints": ends_t,
            "summary": summarize_endpoints(ends_t, cfg.radius),
            "train_points": concat_tables(points),
        },
        figures={
            "mixture_cpf": ["cpf", "cpf_points"],
            "mixture_trajectories": ["trajectories", "train_points"],
            "mixture_radius": ["trajectories"],
        },
        info=info,
    )


def summarize_cpf(points) -> dict:
    """Means per (d, field, t, where): ||x||, |u|, inward component, and ratio = mean |u| / mean ||x||
    (1 for the exact population field at t = 0, eq. 12-13)."""
    keys = list(dict.fromkeys(zip(points["d"], points["field"], points["t"], points["where"])))
    rows = {k: [] for k in ("d", "field", "t", "where", "mean_norm_x", "mean_norm_u", "mean_inward_u", "ratio")}
    for d, name, t, where in keys:
        s = select(points, d=d, field=name, t=t, where=where)
        for k, v in zip(
            rows,
            (
                d,
                name,
                t,
                where,
                s["norm_x"].mean(),
                s["norm_u"].mean(),
                s["inward_u"].mean(),
                s["norm_u"].mean() / s["norm_x"].mean(),
            ),
        ):
            rows[k].append(v)
    return {k: np.asarray(v, dtype=object if isinstance(v[0], str) else None) for k, v in rows.items()}


def summarize_endpoints(ends, radius: float) -> dict:
    """Per (d, field, solver): fraction moving inward first, mean start / minimum / end radius, mean time of the
    minimum, mean |r_end - R|."""
    keys = list(dict.fromkeys(zip(ends["d"], ends["field"], ends["epoch"], ends["solver"])))
    names = [
        "d",
        "field",
        "epoch",
        "solver",
        "frac_first_inward",
        "mean_r0",
        "mean_r_min",
        "mean_t_at_min",
        "mean_r_end",
        "mean_abs_r_end_minus_R",
    ]
    rows = {k: [] for k in names}
    for d, name, epoch, solver in keys:
        s = select(ends, d=d, field=name, epoch=epoch, solver=solver)
        values = (
            d,
            name,
            epoch,
            solver,
            np.mean(s["v0_radial"] < 0),
            s["r0"].mean(),
            s["r_min"].mean(),
            s["t_at_min"].mean(),
            s["r_end"].mean(),
            np.abs(s["r_end"] - radius).mean(),
        )
        for k, v in zip(names, values):
            rows[k].append(v)
    return {k: np.asarray(v, dtype=object if isinstance(v[0], str) else None) for k, v in rows.items()}


def plot(result: ToyResult, solver: str = "adaptive") -> dict:
    """Figures: ``mixture_cpf`` (CPF strength vs d, eq. 13), ``mixture_trajectories`` and ``mixture_radius``."""
    import matplotlib.pyplot as plt

    cfg = result.config
    radius = cfg["radius"]
    figs = {}
    with figure_style():
        # --- CPF strength vs d ------------------------------------------------------------------------
        cpf = result.table("cpf")
        fig, axes = plt.subplots(1, 2, figsize=(8.0, 3.2), layout="constrained")
        ax = axes[0]
        curves = [
            ("learned", 0.0, "test", "o-", "learned, t = 0, fresh points"),
            ("exact_population", 0.0, "test", "s-", "exact population, t = 0 (eq. 12)"),
            ("exact_empirical", cfg["t0"], "train", "^-", f"exact n-point, t = {cfg['t0']:g}, at training points"),
            ("exact_empirical", cfg["t0"], "test", "v:", f"exact n-point, t = {cfg['t0']:g}, fresh points"),
        ]
        for name, t, where, style, label in curves:
            s = select(cpf, field=name, t=t, where=where)
            ax.plot(s["d"], s["mean_norm_u"], style, color=FIELD_COLORS[name], label=label, ms=4)
        ref = select(cpf, field="exact_population", t=0.0, where="test")
        ax.plot(ref["d"], ref["mean_norm_x"], "k--", lw=0.8, label="mean ||x|| (|V(d)| = d, eq. 13)")
        ax.set_xlabel("confinement radius d of the source (data units)")
        ax.set_ylabel("mean |u(x, 0+)| (data units per unit t)")
        ax.set_yscale("log")
        ax.set_title(f"CPF strength vs d (ring R = {radius:g})")
        ax.legend(fontsize=6)
        ax = axes[1]
        pts = result.table("cpf_points")
        for name, t, where, marker in (
            ("learned", 0.0, "test", "o"),
            ("exact_population", 0.0, "test", "s"),
            ("exact_empirical", cfg["t0"], "train", "^"),
        ):
            s = select(pts, field=name, t=t, where=where)
            ax.scatter(
                s["norm_x"],
                s["inward_u"],
                s=4,
                marker=marker,
                color=FIELD_COLORS[name],
                alpha=0.5,
                lw=0,
                label=f"{FIELD_LABELS[name]} (t = {t:g}, {where} points)",
            )
        lim = float(np.nanmax(pts["norm_x"]))
        ax.plot([0, lim], [0, lim], "k--", lw=0.8, label="inward component = ||x|| (eq. 12)")
        ax.axhline(0, color="0.5", lw=0.6)
        ax.set_xlabel("||x|| (data units)")
        ax.set_ylabel("inward component -x/||x|| · u(x, t)")
        ax.set_title("per point: centripetal (> 0) or outward (< 0)")
        ax.legend(fontsize=6)
        figs["mixture_cpf"] = fig

        # --- trajectories ----------------------------------------------------------------------------
        traj = result.table("trajectories", solver=solver)
        ds = unique(traj, "d")
        fig, axes = plt.subplots(
            len(FIELDS), len(ds), figsize=(2.3 * len(ds), 2.3 * len(FIELDS) + 0.4), squeeze=False, layout="constrained"
        )
        theta = np.linspace(0, 2 * np.pi, 256)
        lim = 1.2 * radius
        for j, d in enumerate(ds):
            pts = result.table("train_points", d=d)
            for i, name in enumerate(FIELDS):
                ax = axes[i, j]
                _, states = trajectory_array(select(traj, d=d, field=name))
                states = np.where(np.isfinite(states), states, np.nan)
                ax.plot(radius * np.cos(theta), radius * np.sin(theta), color="black", lw=1.0)
                ax.add_patch(plt.Circle((0, 0), d, fill=False, ls=":", color="0.4", lw=0.8))
                ax.scatter(pts["x"], pts["y"], s=2, color="0.7", lw=0)
                ax.plot(states[:, :, 0], states[:, :, 1], color=FIELD_COLORS[name], lw=0.6, alpha=0.8)
                ax.scatter(states[0, :, 0], states[0, :, 1], s=4, color="black", zorder=3)
                ax.set_xlim(-lim, lim)
                ax.set_ylim(-lim, lim)
                ax.set_aspect("equal")
                if i == 0:
                    ax.set_title(f"d = {d:g}")
                if j == 0:
                    ax.set_ylabel(f"{FIELD_LABELS[name]}\nx₂ (data units)")
                if i == len(FIELDS) - 1:
                    ax.set_xlabel("x₁ (data units)")
        fig.suptitle(
            f"4-component source inside radius d (dotted) to the ring R = {radius:g}\n"
            f"{solver_caption(solver)} from t0 = {cfg['t0']:g}; n = {cfg['n_train']}, "
            f"{cfg['epochs']} epochs"
        )
        figs["mixture_trajectories"] = fig

        # --- radius vs time --------------------------------------------------------------------------
        fig, axes = plt.subplots(1, len(ds), figsize=(2.8 * len(ds), 2.9), squeeze=False, layout="constrained")
        for j, d in enumerate(ds):
            ax = axes[0, j]
            for name in FIELDS:
                times, states = trajectory_array(select(traj, d=d, field=name))
                r = np.hypot(states[:, :, 0], states[:, :, 1])
                ax.plot(times, np.median(r, axis=1), color=FIELD_COLORS[name], label=FIELD_LABELS[name])
                ax.fill_between(times, *np.percentile(r, [25, 75], axis=1), color=FIELD_COLORS[name], alpha=0.15, lw=0)
            ax.axhline(radius, color="black", ls="--", lw=0.8)
            ax.set_xscale("log")
            ax.set_xlabel("flow time t (log scale)")
            ax.set_title(f"d = {d:g}")
        axes[0, 0].set_ylabel("radius ||x_t|| (data units), median and IQR")
        axes[0, 0].legend(fontsize=6)
        figs["mixture_radius"] = fig
    return figs


def main(argv=None) -> ToyResult:
    return run_cli(NAME, simulate, plot, argv, description=__doc__.splitlines()[0])


if __name__ == "__main__":
    main()
