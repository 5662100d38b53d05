"""High-dimensional radial dynamics (Fig. 4F, Tables XII-XIV, Observations 1-2).

Normal data lie on a k-dimensional manifold embedded in R^D like CNN features: x = s ReLU(A z), z ~ N(0, I_k),
A a fixed random D x k matrix with N(0, 1/k) entries (so about half the features are exactly zero and all are
non-negative). Off-manifold anomalies are s ReLU(A z + eta xi) with xi ~ N(0, I_D), rescaled to the norm of a
normal sample (so the norm alone does not give them away). For D in {64, 256, 1024} (4096 with ``large``) and
for rFM (no WT map), WT-Flow(BN) and WT-Flow(LN), an MLP is trained on a fixed training set of n points by
full-batch flow matching with a Gaussian target, and we record

* the mean ||x_t|| after every Euler step 0..K (K = 50), as in Tables XII-XIV, for held-out normals,
  anomalies and training points (Observation 2: first contracts, then expands);
* the endpoint radius against the Gaussian radius sqrt(D) (Observation 1: ||x_1|| < sqrt(D));
* the exact field of the n (WT-mapped) training points (``theory``; the population of this manifold has no closed
  form), Euler K = 1 and K = K from t0: training points barely move, any other point is thrown away like
  (x - m_nearest) / t (Theorem 1);
* the AUROC of one-step (K = 1) and many-step scores (density proxy of eq. 2 and ||phi||) for the anomalies.

The adaptive solver is used for the learned fields only: for the exact n-point field it needs thousands of
evaluations at small t (measured: 77 s for 32 points at D = 256), where Euler shows the same explosion.

``python -m toys.radial [--quick] [--large] [--seed S] [--out DIR]``
"""

from __future__ import annotations

import argparse
import copy
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
from ._solvers import Solver, as_solvers, learned_velocity, run_solver

__all__ = ["RadialConfig", "manifold_data", "plot", "simulate"]

NAME = "radial"
WT_LABELS = {"none": "rFM", "batchnorm": "WT-Flow (BN)", "layernorm": "WT-Flow (LN)"}
GROUP_STYLES = {"normal": "-", "anomaly": "--", "train": ":"}


@dataclass(frozen=True)
class RadialConfig:
    """Configuration of the radial simulator (defaults: full scale).

    Attributes:
        dims: ambient dimensions D.
        latent_dim: k, the manifold dimension.
        feature_scale: s in x = s ReLU(A z); 0.35 puts ||x|| near 0.25 sqrt(D), below the Gaussian radius as
            for the paper's features (Table XII, step 0).
        anomaly_noise: eta, off-manifold noise added before the ReLU.
        match_norm: rescale each anomaly to the norm of a normal test sample.
        wt_maps: ``"none"`` (rFM), ``"batchnorm"``, ``"layernorm"``.
        n_train: n (one epoch = one full-batch step); n_test: held-out normals and anomalies; n_train_eval:
            training points integrated as a third group; n_exact: points per group integrated through the exact
            n-point field (its evaluations far from the training points need exact distances: slow).
        epochs, hidden, depth, time_dim, lr, weight_decay, lr_step_fraction, lr_gamma: MLP and optimiser.
        steps: K of the many-step Euler solver (the paper's tables: 50).
        t0: start time of every solver (the exact n-point field is undefined at 0).
        learned_solvers, exact_solvers: ``Solver``s per field (see the module docstring for the adaptive one).
        rtol, atol: adaptive tolerances.
        seed, threads: base seed and torch threads.
    """

    dims: tuple[int, ...] = (64, 256, 1024)
    latent_dim: int = 8
    feature_scale: float = 0.35
    anomaly_noise: float = 1.0
    match_norm: bool = True
    wt_maps: tuple[str, ...] = ("none", "batchnorm", "layernorm")
    n_train: int = 256
    n_test: int = 128
    n_train_eval: int = 128
    n_exact: int = 32
    epochs: int = 500
    hidden: int = 256
    depth: int = 3
    time_dim: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    lr_step_fraction: float = 0.5
    lr_gamma: float = 0.1
    steps: int = 50
    t0: float = 1e-3
    learned_solvers: tuple[Solver, ...] = (Solver("euler", 1), Solver("euler", 50), Solver("dopri5"))
    exact_solvers: tuple[Solver, ...] = (Solver("euler", 1), Solver("euler", 50))
    rtol: float = 1e-3
    atol: float = 1e-5
    seed: int = 0
    threads: int | None = 1

    @classmethod
    def quick(cls, **overrides) -> RadialConfig:
        """Reduced scale: D in {32, 128}, n = 128, 250 epochs, MLP width 128, 24 points per group (exact field)."""
        base = cls(dims=(32, 128), n_train=128, n_test=96, n_train_eval=64, n_exact=24, epochs=250, hidden=128)
        return replace(base, **overrides)

    def __post_init__(self):
        if not self.dims or min(self.dims) < 2:
            raise ValueError(f"dims must be dimensions >= 2, got {self.dims!r}")
        if self.n_exact > min(self.n_test, self.n_train_eval):
            raise ValueError(f"n_exact must be <= n_test and n_train_eval, got {self.n_exact}")
        if self.n_train_eval > self.n_train:
            raise ValueError(f"n_train_eval must be <= n_train, got {self.n_train_eval} > {self.n_train}")
        object.__setattr__(self, "learned_solvers", as_solvers(self.learned_solvers, "learned_solvers"))
        object.__setattr__(self, "exact_solvers", as_solvers(self.exact_solvers, "exact_solvers"))
        if Solver("euler", self.steps) not in self.learned_solvers:
            raise ValueError(f"learned_solvers must contain Solver('euler', {self.steps}) (steps={self.steps})")


def manifold_data(
    dim: int,
    latent_dim: int,
    n: int,
    generator: torch.Generator,
    scale: float,
    matrix: torch.Tensor,
    noise: float = 0.0,
) -> torch.Tensor:
    """n samples s ReLU(A z + noise xi), A = ``matrix`` (D, k); float32 (n, D)."""
    z = torch.randn(n, latent_dim, generator=generator)
    pre = z @ matrix.T
    if noise > 0:
        pre = pre + noise * torch.randn(n, dim, generator=generator)
    return scale * pre.relu()


def _configs(cfg: RadialConfig, dim: int, wt: str) -> tuple[dict, dict]:
    model = {
        "event_shape": dim,
        "net": "mlp",
        "net_kwargs": {"hidden": cfg.hidden, "depth": cfg.depth, "time_dim": cfg.time_dim},
        "wt": wt,
        "wt_eps": 1e-5,
        "target": "gaussian",
        "t_min": 0.0,
    }
    return model, full_batch_train(cfg, epochs=cfg.epochs)


def simulate(
    config: RadialConfig | None = None,
    *,
    quick: bool = False,
    large: bool = False,
    seed: int | None = None,
    progress: bool | None = None,
    use_cache: bool = True,
) -> ToyResult:
    """Run the radial-dynamics experiment (Fig. 4F, Tables XII-XIV).

    Args:
        large: add D = 4096 (minutes of training).

    Returns:
        ``ToyResult`` with tables ``norms`` (D, wt, field, solver, group in {normal, anomaly, train}, step, t,
        mean_norm, std_norm, mean_norm_over_sqrt_d), ``endpoints`` (per D, wt, field, solver, group: mean start and
        end radius, their ratio to sqrt(D), minimum of the mean radius curve and its step, non_monotonic),
        ``auroc`` (D, wt, field, solver, score, auroc), ``paper_tables`` (mean ||x_t|| of held-out normals at
        Euler steps 0, 5, ..., K per wt and D: the analogue of Tables XII-XIV) and ``training``.
    """
    cfg = config or (RadialConfig.quick() if quick else RadialConfig())
    if large and 4096 not in cfg.dims:
        cfg = replace(cfg, dims=(*cfg.dims, 4096))
    if seed is not None:
        cfg = replace(cfg, seed=seed)
    show = progress_enabled(progress)
    norms, ends, aurocs, training = [], [], [], []
    info = {"cache": {}, "seconds": {}}
    jobs = [(d, wt) for d in cfg.dims for wt in cfg.wt_maps]
    model_configs = {f"D={d}/{wt}": _configs(cfg, d, wt)[0] for d, wt in jobs}
    with torch_threads(cfg.threads):
        data = {}
        for dim in cfg.dims:
            gen = torch.Generator().manual_seed(derive_seed(cfg.seed, NAME, "manifold", dim))
            matrix = torch.randn(dim, cfg.latent_dim, generator=gen) / math.sqrt(cfg.latent_dim)
            sample = lambda n, noise=0.0, g=gen, d=dim, m=matrix: manifold_data(  # noqa: E731
                d, cfg.latent_dim, n, g, cfg.feature_scale, m, noise
            )
            x_train, x_normal = sample(cfg.n_train), sample(cfg.n_test)
            x_anomaly = sample(cfg.n_test, cfg.anomaly_noise)
            if cfg.match_norm:
                x_anomaly = (
                    x_anomaly * (sample(cfg.n_test).norm(dim=1) / x_anomaly.norm(dim=1).clamp_min(1e-12))[:, None]
                )
            data[dim] = (x_train, {"normal": x_normal, "anomaly": x_anomaly, "train": x_train[: cfg.n_train_eval]})
        for dim, wt in progress_bar(jobs, "radial", show):
            x_train, groups = data[dim]
            model_cfg, train_cfg = _configs(cfg, dim, wt)
            run = trained_snapshots(
                NAME,
                model_cfg,
                {**train_cfg, "seed": derive_seed(cfg.seed, NAME, "train", dim, wt)},
                x_train,
                [cfg.epochs],
                init_seed=derive_seed(cfg.seed, NAME, "init", dim, wt),
                progress=show,
                use_cache=use_cache,
            )
            info["cache"][f"D={dim}/{wt}"] = run.cache_info
            model = run.models[cfg.epochs]
            training.append(
                make_table(
                    len(run.epoch_loss),
                    D=dim,
                    wt=wt,
                    epoch=np.arange(1, len(run.epoch_loss) + 1),
                    loss=np.asarray(run.epoch_loss),
                )
            )
            with torch.no_grad():
                mapped = {g: model.map_data(x).double() for g, x in groups.items()}
                # BN: the training batch's own statistics, as in training (on a copy: train mode updates buffers)
                mapped_train = copy.deepcopy(model.wt_map).train()(x_train).double()
            fields = {
                "learned": (learned_velocity(model), cfg.learned_solvers),
                "exact_empirical": (
                    exact_field(GaussianMixture.empirical(mapped_train), StandardGaussian(dim)),
                    cfg.exact_solvers,
                ),
            }
            mapped["train"] = mapped_train[: cfg.n_train_eval]
            for name, (velocity, solvers) in fields.items():
                for solver in solvers:
                    phis = {}
                    for group, x0 in mapped.items():
                        x0 = x0[: cfg.n_exact] if name == "exact_empirical" else x0
                        out = run_solver(
                            velocity,
                            x0,
                            solver,
                            cfg.t0,
                            record="norms",
                            n_record=cfg.steps + 1,
                            rtol=cfg.rtol,
                            atol=cfg.atol,
                        )
                        info["seconds"][f"D={dim}/{wt}/{name}/{solver.label}/{group}"] = out.seconds
                        phis[group] = torch.from_numpy(out.x_end)
                        keys = {"D": dim, "wt": wt, "field": name, "solver": solver.label, "group": group}
                        norms.append(_norm_rows(keys, out.times, out.norms, dim))
                        ends.append(_endpoint_row(keys, out.norms, dim))
                    aurocs.append(_auroc_rows({"D": dim, "wt": wt, "field": name, "solver": solver.label}, phis))
    norms_t = concat_tables(norms)
    return ToyResult(
        name=NAME,
        config={
            **config_dict(cfg),
            "model_per_d_and_wt": model_configs,
            "train": _configs(cfg, cfg.dims[0], "none")[1],
        },
        tables={
            "paper_tables": paper_tables(norms_t, cfg.steps),
            "norms": norms_t,
            "endpoints": concat_tables(ends),
            "auroc": concat_tables(aurocs),
            "training": concat_tables(training),
        },
        figures={
            "radial_norms": ["norms", "paper_tables"],
            "radial_exact": ["norms"],
            "radial_endpoints": ["endpoints"],
            "radial_auroc": ["auroc"],
        },
        info=info,
    )


def _norm_rows(keys: dict, times: np.ndarray, norms: np.ndarray, dim: int) -> dict:
    finite = np.where(np.isfinite(norms), norms, np.nan)
    mean = np.nanmean(finite, axis=1)
    return make_table(
        len(times),
        **keys,
        step=np.arange(len(times)),
        t=times,
        mean_norm=mean,
        std_norm=np.nanstd(finite, axis=1),
        mean_norm_over_sqrt_d=mean / math.sqrt(dim),
    )


def _endpoint_row(keys: dict, norms: np.ndarray, dim: int) -> dict:
    mean = np.nanmean(np.where(np.isfinite(norms), norms, np.nan), axis=1)
    i_min = int(np.nanargmin(mean))
    return make_table(
        1,
        **keys,
        sqrt_d=math.sqrt(dim),
        mean_r0=mean[0],
        mean_r_end=mean[-1],
        r0_over_sqrt_d=mean[0] / math.sqrt(dim),
        r_end_over_sqrt_d=mean[-1] / math.sqrt(dim),
        min_mean_radius=mean[i_min],
        step_of_min=i_min,
        non_monotonic=bool(0 < i_min < len(mean) - 1),
    )


def _auroc_rows(keys: dict, phis: dict) -> dict:
    phi = torch.cat([phis["normal"], phis["anomaly"]])
    labels = np.r_[np.zeros(len(phis["normal"])), np.ones(len(phis["anomaly"]))]
    finite = torch.isfinite(phi).all(dim=1)
    scores = {}
    for score in ("density", "norm"):
        values = np.full(len(phi), np.finfo(float).max)  # an exploded endpoint counts as most anomalous
        if finite.any():
            values[finite.numpy()] = score_endpoints(phi[finite], score).numpy()
        scores[score] = auroc(labels, values)
    return make_table(
        2,
        **keys,
        score=np.array(["density", "norm"], dtype=object),
        auroc=np.array([scores["density"], scores["norm"]]),
    )


def paper_tables(norms, steps: int) -> dict:
    """Mean ||x_t|| of held-out normals under the learned field with Euler K = ``steps`` at steps 0, 5, ..., K
    (one row per WT map and D): the layout of Tables XII-XIV."""
    every = max(1, steps // 10)
    cols = list(range(0, steps + 1, every))
    rows = {"wt": [], "D": [], "sqrt_d": []} | {f"step_{c}": [] for c in cols}
    sub = select(norms, field="learned", solver=f"euler{steps}", group="normal")
    for wt in unique(sub, "wt"):
        for dim in unique(sub, "D"):
            s = select(sub, wt=wt, D=dim)
            rows["wt"].append(wt)
            rows["D"].append(dim)
            rows["sqrt_d"].append(math.sqrt(dim))
            for c in cols:
                rows[f"step_{c}"].append(float(s["mean_norm"][s["step"] == c][0]))
    return {k: np.asarray(v, dtype=object if k == "wt" else None) for k, v in rows.items()}


def plot(result: ToyResult) -> dict:
    """Figures: ``radial_norms`` (Fig. 4F analogue: mean ||x_t|| / sqrt(D) per Euler step), ``radial_endpoints``
    (endpoint radius vs sqrt(D)) and ``radial_auroc`` (one-step vs many-step separation of anomalies)."""
    import matplotlib.pyplot as plt

    cfg = result.config
    steps = cfg["steps"]
    many = f"euler{steps}"
    norms = result.table("norms")
    dims = unique(norms, "D")
    wts = unique(norms, "wt")
    figs = {}
    with figure_style():
        fig, axes = plt.subplots(
            len(dims), len(wts), figsize=(3.0 * len(wts), 2.3 * len(dims) + 0.5), squeeze=False, layout="constrained"
        )
        for i, dim in enumerate(dims):
            for j, wt in enumerate(wts):
                ax = axes[i, j]
                curves = [("learned", g) for g in ("normal", "anomaly", "train")] + [("exact_empirical", "train")]
                for name, group in curves:
                    s = select(norms, D=dim, wt=wt, field=name, solver=many, group=group)
                    label = f"{'learned' if name == 'learned' else 'exact n-point'}: {group}"
                    ax.plot(
                        s["step"],
                        s["mean_norm_over_sqrt_d"],
                        GROUP_STYLES[group],
                        color=FIELD_COLORS[name],
                        label=label,
                    )
                ax.axhline(1.0, color="black", lw=0.8, ls="-.", label="Gaussian radius sqrt(D)")
                ax.set_ylim(bottom=0)
                if i == 0:
                    ax.set_title(WT_LABELS.get(wt, wt))
                if j == 0:
                    ax.set_ylabel(f"D = {dim}\nmean ||x_t|| / sqrt(D)")
                if i == len(dims) - 1:
                    ax.set_xlabel(f"Euler step (K = {steps}, from t0 = {cfg['t0']:g})")
        fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside lower center", ncol=5, fontsize=6.5)
        fig.suptitle(
            f"Radial dynamics of a ReLU manifold of dimension {cfg['latent_dim']} in R^D (n = {cfg['n_train']}, "
            f"{cfg['epochs']} epochs; Tables XII-XIV, Fig. 4F)"
        )
        figs["radial_norms"] = fig

        fig, axes = plt.subplots(
            1, len(wts), figsize=(3.0 * len(wts), 2.9), squeeze=False, sharey=True, layout="constrained"
        )
        dim_colors = dict(zip(dims, epoch_colors(len(dims))))
        for j, wt in enumerate(wts):
            ax = axes[0, j]
            for dim in dims:
                for group in ("normal", "anomaly", "train"):
                    s = select(norms, D=dim, wt=wt, field="exact_empirical", solver=many, group=group)
                    ax.plot(
                        s["step"],
                        s["mean_norm_over_sqrt_d"],
                        GROUP_STYLES[group],
                        color=dim_colors[dim],
                        label=f"D = {dim}: {group}",
                    )
            ax.axhline(1.0, color="black", lw=0.8, ls="-.")
            ax.set_yscale("log")
            ax.set_title(WT_LABELS.get(wt, wt))
            ax.set_xlabel(f"Euler step (K = {steps}, from t0 = {cfg['t0']:g})")
        axes[0, 0].set_ylabel("mean ||x_t|| / sqrt(D) (log scale)")
        axes[0, -1].legend(fontsize=5.5, loc="center right")
        fig.suptitle(
            "Exact field of the n training points: training points stay, held-out points are thrown out "
            "like (x - m)/t (Theorem 1)"
        )
        figs["radial_exact"] = fig

        ends = result.table("endpoints", field="learned", group="normal")
        fig, axes = plt.subplots(1, 2, figsize=(8.0, 3.2), layout="constrained")
        wt_colors = {w: OKABE_ITO[k] for w, k in zip(wts, ("blue", "vermillion", "green"))}
        ax = axes[0]
        for wt in wts:
            for solver, marker in ((many, "o-"), ("euler1", "s:")):
                s = select(ends, wt=wt, solver=solver)
                ax.plot(
                    s["sqrt_d"],
                    s["mean_r_end"],
                    marker,
                    color=wt_colors[wt],
                    ms=4,
                    label=f"{WT_LABELS.get(wt, wt)}, {'K = 1' if solver == 'euler1' else f'K = {steps}'}",
                )
            s = select(ends, wt=wt, solver=many)
            ax.plot(s["sqrt_d"], s["mean_r0"], "x", color=wt_colors[wt], ms=5)
        sq = np.array(sorted(set(ends["sqrt_d"].tolist())))
        ax.plot(sq, sq, "k-.", lw=0.8, label="||x_1|| = sqrt(D) (Lemma 1)")
        log_ticks(ax, [round(v, 1) for v in sq])
        ax.set_yscale("log")
        ax.set_xlabel("Gaussian radius sqrt(D)")
        ax.set_ylabel("mean endpoint radius ||x_1|| (x: start ||x_0||)")
        ax.set_title("Observation 1: endpoints fall short of sqrt(D)")
        ax.legend(fontsize=5.5)
        ax = axes[1]
        for wt in wts:
            s = select(ends, wt=wt, solver=many)
            ax.plot(
                s["sqrt_d"] ** 2,
                s["min_mean_radius"] / s["mean_r0"],
                "o-",
                color=wt_colors[wt],
                ms=4,
                label=WT_LABELS.get(wt, wt),
            )
        ax.axhline(1.0, color="0.5", lw=0.6)
        log_ticks(ax, dims)
        ax.set_xlabel("dimension D")
        ax.set_ylabel("min over steps of mean ||x_t|| / mean ||x_0||")
        ax.set_title("Observation 2: initial contraction (< 1)")
        ax.legend(fontsize=6)
        figs["radial_endpoints"] = fig

        auroc = result.table("auroc")
        fig, axes = plt.subplots(1, 2, figsize=(8.0, 3.0), sharey=True, layout="constrained")
        for ax, score in zip(axes, ("density", "norm")):
            for wt in wts:
                for solver, style in (("euler1", "s--"), (many, "o-")):
                    s = select(auroc, wt=wt, field="learned", solver=solver, score=score)
                    ax.plot(
                        s["D"],
                        s["auroc"],
                        style,
                        color=wt_colors[wt],
                        ms=4,
                        label=f"{WT_LABELS.get(wt, wt)}, {'one-step' if solver == 'euler1' else f'K = {steps}'}",
                    )
                s = select(auroc, wt=wt, field="exact_empirical", solver=many, score=score)
                ax.plot(
                    s["D"],
                    s["auroc"],
                    "^:",
                    color=wt_colors[wt],
                    ms=4,
                    alpha=0.6,
                    label=f"{WT_LABELS.get(wt, wt)}, exact n-point, K = {steps}",
                )
            ax.axhline(0.5, color="0.5", lw=0.6)
            log_ticks(ax, dims)
            ax.set_ylim(0, 1.02)
            ax.set_xlabel("dimension D")
            ax.set_title(f"score: {'density proxy (eq. 2)' if score == 'density' else '||phi||'}")
        axes[0].set_ylabel("AUROC (off-manifold anomalies)")
        axes[1].legend(fontsize=5.5, loc="lower right")
        figs["radial_auroc"] = fig
    return figs


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--large", action="store_true", help="add D = 4096 (minutes of training)")


def main(argv=None) -> ToyResult:
    return run_cli(NAME, simulate, plot, argv, description=__doc__.splitlines()[0], add_arguments=_add_arguments)


if __name__ == "__main__":
    main()
