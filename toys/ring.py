"""Fig. 1: rFM pushing a 2-D Gaussian onto a ring, learned beside exact.

Source N(mu, sigma^2 I) (several sigma and mu, including mu != 0), target uniform on the ring of radius R
(the 2-D picture of the Gaussian annulus, Lemma 1). For every source a fixed training set of n points is
drawn once; an MLP is trained by full-batch flow matching (eq. 4; one epoch = one step over all n points)
and observed after 400, 4 000 and 8 000 epochs. The same start points x_0 (fresh draws from the source)
are integrated through

* the learned field at each snapshot,
* the exact field of the population source (``theory.exact_field``; u(x, 0+) = -x, eq. 12),
* the exact field of the n-point training set (``GaussianMixture.empirical``; singular at t = 0, Theorem 1),

each with Euler K = 1, Euler K = 20 and the adaptive solver from the same small t0. Per trajectory we keep
the minimum radius, its time and the endpoint radius; per run the fraction of points whose first move is
inward (x_0 . v(x_0, t0) < 0) and how the endpoint radius depends on the distance of x_0 from the source
centre (the paper: "points closer to its distribution center experience a stronger trapping effect").

``python -m toys.ring [--quick] [--seed S] [--out DIR]``
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch
from scipy import stats

from theory import exact_field
from wtflow import GaussianMixture, UniformSphere
from wtflow.utils import (
    OKABE_ITO,
    Table,
    concat_tables,
    derive_seed,
    epoch_colors,
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

__all__ = ["RingConfig", "plot", "simulate"]

NAME = "ring"
SOURCE_COLORS = [OKABE_ITO[k] for k in ("orange", "sky", "purple", "yellow", "black")]


@dataclass(frozen=True)
class RingConfig(FieldSimulatorConfig):
    """Configuration of the ring simulator (defaults: full scale).

    Attributes:
        radius: R, radius of the target ring (data units).
        sources: (sigma, mu_x, mu_y) of each source N(mu, sigma^2 I).
        n_train: n, size of the fixed training set (one epoch = one full-batch step over it).
        n_trajectories: start points per source (fresh draws from the source).
        snapshots: epochs at which the learned field is observed; the run lasts snapshots[-1] epochs.
        t_max: the fields are evaluated at min(t, t_max) (the exact ring field is undefined at t = 1).
        trap_fraction: a trajectory is "trapped" if its endpoint radius is below trap_fraction * R.
        Network, optimiser, solver, seed and thread settings: see ``FieldSimulatorConfig``.
    """

    radius: float = 4.0
    sources: tuple[tuple[float, float, float], ...] = (
        (0.25, 0.0, 0.0),
        (0.5, 0.0, 0.0),
        (1.0, 0.0, 0.0),
        (0.5, 1.5, 1.0),
    )
    n_train: int = 256
    n_trajectories: int = 40
    snapshots: tuple[int, ...] = (400, 4000, 8000)
    t_max: float = 1.0 - 1e-3
    trap_fraction: float = 0.9

    @classmethod
    def quick(cls, **overrides) -> RingConfig:
        """Reduced scale: two sources (mu = 0 and mu != 0), snapshots at the same fractions of a 2 000-epoch run,
        adaptive tolerances 1e-2 / 1e-4."""
        base = cls(sources=((0.5, 0.0, 0.0), (0.5, 1.5, 1.0)), snapshots=(100, 1000, 2000), rtol=1e-2, atol=1e-4)
        return replace(base, **overrides)

    def __post_init__(self):
        super().__post_init__()
        if not self.radius > 0:
            raise ValueError(f"radius must be > 0, got {self.radius!r}")
        for src in self.sources:
            if len(src) != 3 or not src[0] > 0:
                raise ValueError(f"each source must be (sigma > 0, mu_x, mu_y), got {src!r}")
        if list(self.snapshots) != sorted(set(self.snapshots)) or self.snapshots[0] < 1:
            raise ValueError(f"snapshots must be increasing positive epochs, got {self.snapshots!r}")


def _model_and_train_config(cfg: RingConfig) -> tuple[dict, dict]:
    model = {
        "event_shape": 2,
        "net": "mlp",
        "net_kwargs": {"hidden": cfg.hidden, "depth": cfg.depth, "time_dim": cfg.time_dim},
        "wt": "none",
        "target": "sphere",
        "t_min": 0.0,
    }
    return model, full_batch_train(cfg, epochs=cfg.snapshots[-1])


def simulate(
    config: RingConfig | None = None,
    *,
    quick: bool = False,
    seed: int | None = None,
    progress: bool | None = None,
    use_cache: bool = True,
) -> ToyResult:
    """Run the ring experiment (Fig. 1).

    Args:
        config: full configuration; default ``RingConfig()`` (or ``RingConfig.quick()`` with ``quick``).
        seed: overrides ``config.seed``.
        progress: progress bars (None: only on an interactive terminal, never under pytest).
        use_cache: reuse / store trained models in the cache (``toys.cache_dir``).

    Returns:
        ``ToyResult`` with tables ``trajectories`` (setting, sigma, mu_x, mu_y, field, epoch, solver, traj, step,
        t, x, y), ``endpoints`` (per trajectory: r0, r_min, t_at_min, r_end, v0_radial, dist_to_centre,
        first_inward, trapped...), ``summary`` (per setting, field, epoch, solver), ``training`` (loss per
        epoch) and ``train_points`` (the n training points). Exact fields have epoch -1.
    """
    cfg = config or (RingConfig.quick() if quick else RingConfig())
    if seed is not None:
        cfg = replace(cfg, seed=seed)
    show = progress_enabled(progress)
    target = UniformSphere(2, radius=cfg.radius)
    scale = cfg.radius / math.sqrt(2.0)  # model units: the engine's ring of radius sqrt(2)
    model_cfg, train_cfg = _model_and_train_config(cfg)
    trajectories, endpoints, training, points = [], [], [], []
    info = {"cache": {}, "seconds": {}}
    with torch_threads(cfg.threads):
        for setting, (sigma, mu_x, mu_y) in enumerate(cfg.sources):
            population = GaussianMixture(torch.tensor([[mu_x, mu_y]], dtype=torch.float64), stds=sigma)
            gen = torch.Generator().manual_seed(derive_seed(cfg.seed, NAME, "train-set", setting))
            x_train = population.sample(cfg.n_train, generator=gen, dtype=torch.float32)
            gen = torch.Generator().manual_seed(derive_seed(cfg.seed, NAME, "start-points", setting))
            x_start = population.sample(cfg.n_trajectories, generator=gen, dtype=torch.float64)
            run = trained_snapshots(
                NAME,
                model_cfg,
                {**train_cfg, "seed": derive_seed(cfg.seed, NAME, "train", setting)},
                x_train / scale,
                cfg.snapshots,
                init_seed=derive_seed(cfg.seed, NAME, "init", setting),
                progress=show,
                use_cache=use_cache,
            )
            info["cache"][f"setting{setting}"] = run.cache_info
            fields = {("learned", e): learned_velocity(m, scale) for e, m in run.models.items()}
            fields[("exact_population", -1)] = exact_field(population, target)
            fields[("exact_empirical", -1)] = exact_field(GaussianMixture.empirical(x_train.double()), target)
            constants = {"setting": setting, "sigma": sigma, "mu_x": mu_x, "mu_y": mu_y}
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
                desc=f"ring source {setting}",
                **constants,
            )
            info["seconds"][f"setting{setting}"] = seconds
            dist = np.hypot(ends["x0"] - mu_x, ends["y0"] - mu_y)
            ends["dist_to_centre"] = dist
            ends["first_inward"] = ends["v0_radial"] < 0
            ends["trapped"] = ends["r_end"] < cfg.trap_fraction * cfg.radius
            trajectories.append(traj)
            endpoints.append(ends)
            training.append(
                make_table(
                    len(run.epoch_loss),
                    **constants,
                    epoch=np.arange(1, len(run.epoch_loss) + 1),
                    loss=np.asarray(run.epoch_loss) * scale**2,
                )
            )
            points.append(
                make_table(cfg.n_train, **constants, x=x_train[:, 0].double().numpy(), y=x_train[:, 1].double().numpy())
            )
    endpoints_t = concat_tables(endpoints)
    return ToyResult(
        name=NAME,
        config={**config_dict(cfg), "model": model_cfg, "train": train_cfg, "model_scale": scale},
        tables={
            "trajectories": concat_tables(trajectories),
            "endpoints": endpoints_t,
            "summary": summarize(endpoints_t, cfg.radius),
            "training": concat_tables(training),
            "train_points": concat_tables(points),
        },
        figures={
            "ring_trajectories": ["trajectories", "train_points"],
            "ring_radius": ["trajectories"],
            "ring_trapping": ["endpoints", "summary"],
        },
        info=info,
    )


def summarize(endpoints: Table, radius: float) -> Table:
    """Per (setting, field, epoch, solver): fraction moving inward first, mean minimum / end radius,
    fraction trapped, mean end radius of the half of the points nearest / farthest from the source centre,
    and Spearman's rho between distance from the centre and end radius (positive: nearer points end lower)."""
    rows = []
    keys = sorted(
        {
            (int(s), f, int(e), v)
            for s, f, e, v in zip(endpoints["setting"], endpoints["field"], endpoints["epoch"], endpoints["solver"])
        },
        key=lambda k: (k[0], ["learned", "exact_population", "exact_empirical"].index(k[1]), k[2], k[3]),
    )
    for setting, name, epoch, solver in keys:
        t = select(endpoints, setting=setting, field=name, epoch=epoch, solver=solver)
        d, r_end = t["dist_to_centre"], t["r_end"]
        near = d <= np.median(d)
        finite = np.isfinite(r_end)
        rho = stats.spearmanr(d[finite], r_end[finite]).statistic if finite.sum() > 2 else float("nan")
        rows.append(
            {
                "setting": setting,
                "sigma": float(t["sigma"][0]),
                "mu_x": float(t["mu_x"][0]),
                "mu_y": float(t["mu_y"][0]),
                "field": name,
                "epoch": epoch,
                "solver": solver,
                "n_trajectories": len(d),
                "frac_first_inward": float(np.mean(t["first_inward"])),
                "mean_r0": float(np.mean(t["r0"])),
                "mean_r_min": float(np.mean(t["r_min"])),
                "mean_t_at_min": float(np.mean(t["t_at_min"])),
                "mean_r_end": float(np.mean(r_end)),
                "frac_trapped": float(np.mean(t["trapped"])),
                "mean_r_end_near_half": float(np.mean(r_end[near])),
                "mean_r_end_far_half": float(np.mean(r_end[~near])),
                "spearman_dist_r_end": float(rho),
                "radius": radius,
            }
        )
    return {k: np.asarray([r[k] for r in rows], dtype=object if isinstance(rows[0][k], str) else None) for k in rows[0]}


def _panels(result: ToyResult) -> list[tuple[str, int]]:
    epochs = list(result.config["snapshots"])
    return [("learned", e) for e in epochs] + [("exact_population", -1), ("exact_empirical", -1)]


def _panel_title(name: str, epoch: int) -> str:
    return f"learned, {epoch} epochs" if name == "learned" else FIELD_LABELS[name]


def plot(result: ToyResult, solver: str = "adaptive") -> dict:
    """Figures: ``ring_trajectories`` (Fig. 1 beside the exact fields), ``ring_radius`` (||x_t|| vs t) and
    ``ring_trapping`` (end radius vs distance from the source centre; fraction moving inward first)."""
    import matplotlib.pyplot as plt

    cfg = result.config
    radius = cfg["radius"]
    traj = result.table("trajectories", solver=solver)
    panels = _panels(result)
    settings = unique(traj, "setting")
    figs = {}
    with figure_style():
        # --- trajectories ----------------------------------------------------------------------------
        fig, axes = plt.subplots(
            len(settings),
            len(panels),
            figsize=(2.1 * len(panels), 2.2 * len(settings) + 0.4),
            squeeze=False,
            layout="constrained",
        )
        theta = np.linspace(0, 2 * np.pi, 256)
        lim = 1.25 * radius
        for i, setting in enumerate(settings):
            pts = result.table("train_points", setting=setting)
            for j, (name, epoch) in enumerate(panels):
                ax = axes[i, j]
                t = select(traj, setting=setting, field=name, epoch=epoch)
                ax.plot(radius * np.cos(theta), radius * np.sin(theta), color="black", lw=1.0)
                ax.scatter(pts["x"], pts["y"], s=2, color="0.75", lw=0, label=f"training set (n = {len(pts['x'])})")
                _, states = trajectory_array(t)
                states = np.where(np.isfinite(states), states, np.nan)
                ax.plot(states[:, :, 0], states[:, :, 1], color=FIELD_COLORS[name], lw=0.6, alpha=0.8)
                first = select(t, step=0)
                ax.scatter(first["x"], first["y"], s=5, color="black", zorder=3, label="start x_0")
                ax.set_xlim(-lim, lim)
                ax.set_ylim(-lim, lim)
                ax.set_aspect("equal")
                if i == 0:
                    ax.set_title(_panel_title(name, epoch))
                if j == 0:
                    s = select(pts, setting=setting)
                    ax.set_ylabel(
                        f"σ = {float(s['sigma'][0]):g}, μ = ({float(s['mu_x'][0]):g}, {float(s['mu_y'][0]):g})\n"
                        "x₂ (data units)"
                    )
                if i == len(settings) - 1:
                    ax.set_xlabel("x₁ (data units)")
        axes[0, 0].legend(loc="lower left", fontsize=6, framealpha=0.8)
        fig.suptitle(
            f"rFM to a ring of radius R = {radius:g}: {cfg['n_trajectories']} trajectories "
            f"({solver_caption(solver)}, from t0 = {cfg['t0']:g}); n = {cfg['n_train']} training points"
        )
        figs["ring_trajectories"] = fig

        # --- radius vs time --------------------------------------------------------------------------
        fig, axes = plt.subplots(
            1, len(settings), figsize=(3.2 * len(settings), 3.0), squeeze=False, sharey=True, layout="constrained"
        )
        colors = dict(zip([p for p in panels if p[0] == "learned"], epoch_colors(len(cfg["snapshots"]))))
        for i, setting in enumerate(settings):
            ax = axes[0, i]
            for name, epoch in panels:
                t = select(traj, setting=setting, field=name, epoch=epoch)
                times, states = trajectory_array(t)
                r = np.hypot(states[:, :, 0], states[:, :, 1])
                color = colors.get((name, epoch), FIELD_COLORS[name])
                ax.plot(times, np.median(r, axis=1), color=color, label=_panel_title(name, epoch))
                ax.fill_between(times, *np.percentile(r, [25, 75], axis=1), color=color, alpha=0.15, lw=0)
            ax.axhline(radius, color="black", ls="--", lw=0.8, label=f"ring R = {radius:g}")
            ax.set_xscale("log")
            ax.set_xlabel("flow time t (log scale)")
            s = select(result.table("train_points"), setting=setting)
            ax.set_title(f"σ = {float(s['sigma'][0]):g}, μ = ({float(s['mu_x'][0]):g}, {float(s['mu_y'][0]):g})")
        axes[0, 0].set_ylabel("radius ||x_t|| (data units), median and IQR")
        axes[0, -1].legend(loc="upper left", fontsize=6)
        fig.suptitle(f"Radial trajectories ({solver_caption(solver)}): first inward, then to the ring")
        figs["ring_radius"] = fig

        # --- trapping --------------------------------------------------------------------------------
        ends = result.table("endpoints", solver=solver)
        fig, axes = plt.subplots(1, 2, figsize=(8.0, 3.2), layout="constrained")
        ax = axes[0]
        markers = ["o", "s", "^", "D", "v", "P"]
        last = cfg["snapshots"][-1]
        for name, epoch in [
            ("learned", cfg["snapshots"][0]),
            ("learned", last),
            ("exact_population", -1),
            ("exact_empirical", -1),
        ]:
            for i, setting in enumerate(settings):
                t = select(ends, field=name, epoch=epoch, setting=setting)
                color = colors.get((name, epoch), FIELD_COLORS[name])
                ax.scatter(
                    t["dist_to_centre"],
                    t["r_end"],
                    s=8,
                    marker=markers[i % len(markers)],
                    color=color,
                    alpha=0.7,
                    lw=0,
                    label=_panel_title(name, epoch) if i == 0 else None,
                )
        ax.axhline(radius, color="black", ls="--", lw=0.8)
        ax.set_xlabel("distance of x_0 from the source centre ||x_0 - μ|| (data units)")
        ax.set_ylabel("endpoint radius ||x_1|| (data units)")
        ax.set_title("trapping: end radius vs start (markers: sources)")
        ax.legend(fontsize=6)
        ax = axes[1]
        summary = result.table("summary", solver=solver)
        labels = [_panel_title(n, e) for n, e in panels]
        width = 0.8 / max(1, len(settings))
        for i, setting in enumerate(settings):
            vals = [
                float(select(summary, setting=setting, field=n, epoch=e)["frac_first_inward"][0]) for n, e in panels
            ]
            ax.bar(
                np.arange(len(panels)) + i * width,
                vals,
                width=width,
                color=SOURCE_COLORS[i % len(SOURCE_COLORS)],
                label=f"source {setting}",
            )
        ax.set_xticks(np.arange(len(panels)) + 0.4 - width / 2, labels, rotation=30, ha="right", fontsize=6.5)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("fraction whose first move is inward")
        ax.set_title(f"x_0 · v(x_0, t0) < 0 at t0 = {cfg['t0']:g}")
        ax.legend(fontsize=6)
        figs["ring_trapping"] = fig
    return figs


def main(argv=None) -> ToyResult:
    return run_cli(NAME, simulate, plot, argv, description=__doc__.splitlines()[0])


if __name__ == "__main__":
    main()
