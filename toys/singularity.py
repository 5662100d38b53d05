"""The initial singularity (Theorem 1) and time truncation (Theorem 2): learned field error near t = 0.

Source: a population mixture of 4 Gaussians in R^D (means of norm ``mean_norm`` in random directions, std
``component_std``), target N(0, I). For every D and truncation T an MLP is trained by full-batch flow matching on
a fixed set of n points with t ~ U(T, 1). On the linear path x_t = (1 - t) x_0 + t x_1 (fresh x_1, x_0 either
held-out source points or training points) and on a log grid of t we compare, per coordinate,

* learned vs exact population field: what the network should generalise to (finite at t = 0: u(x, 0) = -x);
* learned vs exact field of the n training points: the minimiser of the training loss, singular at t = 0
  (u ~ (x - m_nearest) / t off the training points, Theorem 1);
* exact population vs exact n-point: how far apart the two "truths" are.

Errors are mean ||v - u||^2 / D over the evaluation points. The learned field below T is an extrapolation.

``python -m toys.singularity [--quick] [--seed S] [--out DIR]``
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from theory import marginal_velocity
from wtflow import GaussianMixture, StandardGaussian
from wtflow.utils import (
    concat_tables,
    derive_seed,
    epoch_colors,
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
from ._result import FIELD_COLORS, ToyResult, config_dict
from ._solvers import learned_velocity

__all__ = ["SingularityConfig", "plot", "simulate", "singularity_source"]

NAME = "singularity"
COMPARISONS = {
    "learned_vs_population": ("learned", "exact_population"),
    "learned_vs_empirical": ("learned", "exact_empirical"),
    "population_vs_empirical": ("exact_population", "exact_empirical"),
}
COMPARISON_LABELS = {
    "learned_vs_population": "learned vs exact population",
    "learned_vs_empirical": "learned vs exact n-point",
    "population_vs_empirical": "exact population vs exact n-point",
}
COMPARISON_COLORS = {
    "learned_vs_population": FIELD_COLORS["exact_population"],
    "learned_vs_empirical": FIELD_COLORS["exact_empirical"],
    "population_vs_empirical": "#000000",
}


@dataclass(frozen=True)
class SingularityConfig:
    """Configuration of the singularity simulator (defaults: full scale).

    Attributes:
        dims: dimensions D.
        truncations: training-time truncations T (t ~ U(T, 1)).
        n_components, mean_norm, component_std: the population mixture.
        n_train: n (one epoch = one full-batch step); n_eval: evaluation points per kind of start point.
        epochs, hidden, depth, time_dim, lr, weight_decay, lr_step_fraction, lr_gamma: MLP and optimiser.
        t_grid_min, n_t: log grid of n_t times from t_grid_min to 1.
        seed, threads: base seed and torch threads.
    """

    dims: tuple[int, ...] = (2, 16, 64)
    truncations: tuple[float, ...] = (0.0, 0.01, 0.1)
    n_components: int = 4
    mean_norm: float = 2.0
    component_std: float = 0.5
    n_train: int = 256
    n_eval: int = 256
    epochs: int = 1500
    hidden: int = 128
    depth: int = 3
    time_dim: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.0
    lr_step_fraction: float = 0.5
    lr_gamma: float = 0.1
    t_grid_min: float = 1e-4
    n_t: int = 25
    seed: int = 0
    threads: int | None = 1

    @classmethod
    def quick(cls, **overrides) -> SingularityConfig:
        """Reduced scale: D in {2, 16}, T in {0, 0.1}, 600 epochs, 128 evaluation points, 17 times."""
        base = cls(dims=(2, 16), truncations=(0.0, 0.1), epochs=600, n_eval=128, n_t=17, hidden=64)
        return replace(base, **overrides)

    def __post_init__(self):
        if any(not (0.0 <= t < 1.0) for t in self.truncations):
            raise ValueError(f"truncations must lie in [0, 1), got {self.truncations!r}")
        if not (0.0 < self.t_grid_min < 1.0):
            raise ValueError(f"t_grid_min must lie in (0, 1), got {self.t_grid_min!r}")


def singularity_source(dim: int, cfg: SingularityConfig, generator: torch.Generator) -> GaussianMixture:
    """The population mixture: ``n_components`` means of norm ``mean_norm`` in random directions, std
    ``component_std``, equal weights."""
    directions = torch.randn(cfg.n_components, dim, generator=generator, dtype=torch.float64)
    means = cfg.mean_norm * directions / directions.norm(dim=1, keepdim=True)
    return GaussianMixture(means, stds=cfg.component_std)


def _configs(cfg: SingularityConfig, dim: int, t_min: float) -> tuple[dict, dict]:
    model = {
        "event_shape": dim,
        "net": "mlp",
        "net_kwargs": {"hidden": cfg.hidden, "depth": cfg.depth, "time_dim": cfg.time_dim},
        "wt": "none",
        "target": "gaussian",
        "t_min": float(t_min),
    }
    return model, full_batch_train(cfg, epochs=cfg.epochs)


def simulate(
    config: SingularityConfig | None = None,
    *,
    quick: bool = False,
    seed: int | None = None,
    progress: bool | None = None,
    use_cache: bool = True,
) -> ToyResult:
    """Run the initial-singularity experiment (Theorems 1-2).

    Returns:
        ``ToyResult`` with tables ``errors`` (D, T, comparison, start in {held_out, train}, t, mse_per_dim =
        mean ||v - u||^2 / D, reference = mean ||u_population||^2 / D, extrapolated = t < T), ``summary`` (per D,
        T, comparison, start: the error at the smallest grid time, at t = T (or the smallest grid time for T = 0)
        and its mean over the grid times >= T) and ``training``.
    """
    cfg = config or (SingularityConfig.quick() if quick else SingularityConfig())
    if seed is not None:
        cfg = replace(cfg, seed=seed)
    show = progress_enabled(progress)
    times = np.logspace(math.log10(cfg.t_grid_min), 0.0, cfg.n_t)
    errors, training = [], []
    info = {"cache": {}, "seconds": {}}
    model_configs = {}
    jobs = [(d, tt) for d in cfg.dims for tt in cfg.truncations]
    with torch_threads(cfg.threads):
        setups = {}
        for dim in cfg.dims:
            gen = torch.Generator().manual_seed(derive_seed(cfg.seed, NAME, "data", dim))
            population = singularity_source(dim, cfg, gen)
            x_train = population.sample(cfg.n_train, generator=gen, dtype=torch.float32)
            starts = {
                "held_out": population.sample(cfg.n_eval, generator=gen, dtype=torch.float64),
                "train": x_train[: cfg.n_eval].double(),
            }
            x_1 = torch.randn(cfg.n_eval, dim, generator=gen, dtype=torch.float64)
            setups[dim] = (population, x_train, starts, x_1)
        for dim, t_min in progress_bar(jobs, "singularity", show):
            population, x_train, starts, x_1 = setups[dim]
            model_cfg, train_cfg = _configs(cfg, dim, t_min)
            model_configs[f"D={dim}/T={t_min:g}"] = model_cfg
            run = trained_snapshots(
                NAME,
                model_cfg,
                {**train_cfg, "seed": derive_seed(cfg.seed, NAME, "train", dim, t_min)},
                x_train,
                [cfg.epochs],
                init_seed=derive_seed(cfg.seed, NAME, "init", dim, t_min),
                progress=show,
                use_cache=use_cache,
            )
            info["cache"][f"D={dim}/T={t_min:g}"] = run.cache_info
            training.append(
                make_table(
                    len(run.epoch_loss),
                    D=dim,
                    T=t_min,
                    epoch=np.arange(1, len(run.epoch_loss) + 1),
                    loss=np.asarray(run.epoch_loss),
                )
            )
            learned = learned_velocity(run.models[cfg.epochs])
            empirical = GaussianMixture.empirical(x_train.double())
            target = StandardGaussian(dim)
            for start, x_0 in starts.items():
                for t in times:
                    x_t = (1 - t) * x_0 + t * x_1
                    tt = torch.full((len(x_t),), float(t), dtype=torch.float64)
                    values = {
                        "learned": learned(x_t, tt),
                        "exact_population": marginal_velocity(x_t, float(t), population, target),
                        "exact_empirical": marginal_velocity(x_t, float(t), empirical, target),
                    }
                    reference = float(values["exact_population"].pow(2).sum(1).mean()) / dim
                    for comparison, (a, b) in COMPARISONS.items():
                        mse = float((values[a] - values[b]).pow(2).sum(1).mean()) / dim
                        errors.append(
                            make_table(
                                1,
                                D=dim,
                                T=t_min,
                                comparison=comparison,
                                start=start,
                                t=float(t),
                                mse_per_dim=mse,
                                reference=reference,
                                extrapolated=bool(t < t_min),
                            )
                        )
    errors_t = concat_tables(errors)
    return ToyResult(
        name=NAME,
        config={**config_dict(cfg), "models": model_configs, "train": _configs(cfg, cfg.dims[0], 0.0)[1]},
        tables={"summary": summarize(errors_t), "errors": errors_t, "training": concat_tables(training)},
        figures={"singularity_error": ["errors"], "singularity_summary": ["summary"]},
        info=info,
    )


def summarize(errors) -> dict:
    """Per (D, T, comparison, start): error at the smallest grid time, at the first grid time >= T, and the mean
    over grid times >= T."""
    names = [
        "D",
        "T",
        "comparison",
        "start",
        "t_smallest",
        "mse_at_t_smallest",
        "t_start",
        "mse_at_t_start",
        "mean_mse_t_ge_T",
    ]
    rows = {k: [] for k in names}
    keys = list(dict.fromkeys(zip(errors["D"], errors["T"], errors["comparison"], errors["start"])))
    for dim, t_min, comparison, start in keys:
        s = select(errors, D=dim, T=t_min, comparison=comparison, start=start)
        order = np.argsort(s["t"])
        t, mse = s["t"][order], s["mse_per_dim"][order]
        inside = t >= t_min
        i_start = int(np.argmax(inside))
        values = (dim, t_min, comparison, start, t[0], mse[0], t[i_start], mse[i_start], mse[inside].mean())
        for k, v in zip(names, values):
            rows[k].append(v)
    return {k: np.asarray(v, dtype=object if isinstance(v[0], str) else None) for k, v in rows.items()}


def plot(result: ToyResult) -> dict:
    """Figures: ``singularity_error`` (error vs t per D and T) and ``singularity_summary`` (error at the start
    time vs D per T)."""
    import matplotlib.pyplot as plt

    errors = result.table("errors")
    dims = unique(errors, "D")
    truncations = unique(errors, "T")
    figs = {}
    with figure_style():
        fig, axes = plt.subplots(
            len(dims),
            len(truncations),
            figsize=(3.0 * len(truncations), 2.4 * len(dims) + 0.5),
            squeeze=False,
            sharex=True,
            layout="constrained",
        )
        for i, dim in enumerate(dims):
            for j, t_min in enumerate(truncations):
                ax = axes[i, j]
                for comparison in COMPARISONS:
                    for start, style in (("held_out", "-"), ("train", "--")):
                        s = select(errors, D=dim, T=t_min, comparison=comparison, start=start)
                        label = (
                            f"{COMPARISON_LABELS[comparison]} ({'held-out' if start == 'held_out' else 'training'} x_0)"
                        )
                        ax.plot(s["t"], s["mse_per_dim"], style, color=COMPARISON_COLORS[comparison], label=label)
                s = select(errors, D=dim, T=t_min, comparison="learned_vs_population", start="held_out")
                ax.plot(s["t"], s["reference"], ":", color="0.5", label="mean ||u_population||² / D (scale)")
                if t_min > 0:
                    ax.axvspan(float(s["t"].min()), t_min, color="0.85", alpha=0.6, lw=0)
                    ax.axvline(t_min, color="0.3", lw=0.8)
                ax.set_xscale("log")
                ax.set_yscale("log")
                if i == 0:
                    ax.set_title(f"T = {t_min:g}" + (" (shaded: t < T, extrapolated)" if t_min > 0 else ""))
                if j == 0:
                    ax.set_ylabel(f"D = {dim}\nmean ||v - u||² / D")
                if i == len(dims) - 1:
                    ax.set_xlabel("flow time t on the path (log scale)")
        # below the panels: inside, the legend covers curves that differ by orders of magnitude across panels
        fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside lower center", ncol=2, fontsize=6.5)
        cfg = result.config
        fig.suptitle(
            f"Field errors near t = 0 (n = {cfg['n_train']} training points, {cfg['epochs']} epochs, "
            f"{cfg['n_components']}-component source)"
        )
        figs["singularity_error"] = fig

        summary = result.table("summary", start="held_out")
        fig, axes = plt.subplots(1, 2, figsize=(8.0, 3.0), layout="constrained")
        colors = dict(zip(truncations, epoch_colors(len(truncations))))
        for ax, comparison in zip(axes, ("learned_vs_population", "learned_vs_empirical")):
            for t_min in truncations:
                s = select(summary, comparison=comparison, T=t_min)
                ax.plot(s["D"], s["mse_at_t_start"], "o-", color=colors[t_min], ms=4, label=f"T = {t_min:g}, at t0")
                ax.plot(
                    s["D"],
                    s["mse_at_t_smallest"],
                    "s:",
                    color=colors[t_min],
                    ms=3,
                    label=f"T = {t_min:g}, at t = {float(s['t_smallest'][0]):g}",
                )
            log_ticks(ax, dims)
            ax.set_yscale("log")
            ax.set_xlabel("dimension D")
            ax.set_title(COMPARISON_LABELS[comparison] + " (held-out x_0)")
        axes[0].set_ylabel("mean ||v - u||² / D")
        axes[1].legend(fontsize=6)
        figs["singularity_summary"] = fig
    return figs


def main(argv=None) -> ToyResult:
    return run_cli(NAME, simulate, plot, argv, description=__doc__.splitlines()[0])


if __name__ == "__main__":
    main()
