"""Flow matching in 2-D from scratch: the pieces behind notebook 00 (forward vs reversed path, marginal field).

A source of three Gaussian blobs in the plane and the standard Gaussian N(0, I) as the other end. Flow matching
joins a data point x_0 and a noise point x_1 by the straight line x_t = (1 - t) x_0 + t x_1 (paper eq. 4) and
regresses a network v(x_t, t) on the line's velocity x_1 - x_0. Many lines cross every point, so the best
possible v is their average, the marginal field u(x, t) = E[X_1 - X_0 | X_t = x] (eq. 8), which
``theory.fields`` evaluates in closed form. rFM runs data -> noise (the *reversed* path); generative flow
matching runs noise -> data (the *forward* path) and its field is the same one, read backwards in time:
u_forward(x, s) = -u(x, 1 - s). At t = 0 the reversed field of a population source is u(x, 0) = -x (eq. 12).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from theory.fields import exact_field, marginal_velocity
from wtflow import FlowModel, TrainConfig, train
from wtflow.distributions import GaussianMixture, StandardGaussian
from wtflow.solvers import solve

__all__ = [
    "PrimerConfig",
    "exact_velocity",
    "field_errors",
    "plot_fields",
    "plot_paths",
    "plot_transport",
    "sample_pairs",
    "source_distribution",
    "straight_paths",
    "train_learned_field",
    "transport",
]

BLOB_MEANS = ((-2.0, -0.5), (2.0, -0.5), (0.0, 2.5))
BLOB_STD = 0.3


@dataclass
class PrimerConfig:
    """Training of the learned field: ``n_train`` source samples, ``epochs`` passes (``quick()``: a smoke run)."""

    n_train: int = 2000
    epochs: int = 300
    batch_size: int = 256
    hidden: int = 128
    depth: int = 3
    lr: float = 3e-3
    seed: int = 0

    @classmethod
    def quick(cls) -> PrimerConfig:
        return cls(n_train=1000, epochs=60)


def source_distribution() -> GaussianMixture:
    """Three isotropic blobs N(m_k, 0.3^2 I) with equal weights: a population source (eq. 12 applies at t = 0)."""
    return GaussianMixture(torch.tensor(BLOB_MEANS, dtype=torch.float64), stds=BLOB_STD)


def sample_pairs(n: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """(x_0 data, x_1 noise), each (n, 2) float64, drawn independently (the coupling of plain flow matching)."""
    generator = torch.Generator().manual_seed(seed)
    x_0 = source_distribution().sample(n, generator=generator, dtype=torch.float64)
    x_1 = StandardGaussian(2).sample(n, generator=generator, dtype=torch.float64)
    return x_0, x_1


def straight_paths(x_start: Tensor, x_end: Tensor, times: np.ndarray) -> np.ndarray:
    """Points (1 - t) x_start + t x_end of each pair at each time: (len(times), n, 2)."""
    t = torch.as_tensor(times, dtype=torch.float64)[:, None, None]
    return ((1 - t) * x_start[None] + t * x_end[None]).numpy()


def exact_velocity(x: Tensor, t: float, direction: str = "reversed") -> Tensor:
    """The marginal field at time t, (n, 2) -> (n, 2).

    ``"reversed"``: u(x, t) of the path data (t = 0) -> noise (t = 1), eq. 8. ``"forward"``: the field of the
    path noise (s = 0) -> data (s = 1), which is -u(x, 1 - s).
    """
    source, target = source_distribution(), StandardGaussian(2)
    if direction == "reversed":
        return marginal_velocity(x.double(), t, source, target)
    if direction == "forward":
        return -marginal_velocity(x.double(), 1.0 - t, source, target)
    raise ValueError(f"direction must be 'reversed' or 'forward', got {direction!r}")


def train_learned_field(cfg: PrimerConfig | None = None, progress: bool = False) -> FlowModel:
    """An rFM network v(x_t, t) trained on ``cfg.n_train`` source samples with the loss of eq. 4 (CPU)."""
    cfg = cfg or PrimerConfig()
    x_train = source_distribution().sample(cfg.n_train, generator=torch.Generator().manual_seed(cfg.seed + 1))
    torch.manual_seed(cfg.seed)
    model = FlowModel(2, net="mlp", net_kwargs={"hidden": cfg.hidden, "depth": cfg.depth}, target="gaussian")
    config = TrainConfig(
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        weight_decay=0.0,
        lr_step_fraction=1.0,
        lr_gamma=1.0,
        seed=cfg.seed,
        device="cpu",
        amp=False,
        progress=progress,
    )
    train(model, x_train.float(), config)
    return model.eval()


@torch.no_grad()
def field_errors(model: FlowModel, times: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 0.95), n: int = 2000):
    """Relative RMS error ||v - u|| / ||u|| of the learned field at points x_t of the path, per time.

    The points are drawn from the path's own marginal p_t (a data point and a noise point mixed at t), so the
    error is measured where training put its samples. Returns a list of (t, relative error) pairs.
    """
    x_0, x_1 = sample_pairs(n, seed=123)
    out = []
    for t in times:
        x_t = (1 - t) * x_0 + t * x_1
        u = exact_velocity(x_t, t)
        v = model(x_t.float(), torch.full((n,), t)).double()
        out.append((t, float(torch.linalg.vector_norm(v - u) / torch.linalg.vector_norm(u))))
    return out


@torch.no_grad()
def transport(model: FlowModel | None, x: Tensor, steps: int = 50) -> Tensor:
    """Euler endpoints at t = 1 of data ``x`` (n, 2) under the learned field (``model``) or the exact one (None)."""
    if model is None:
        field = exact_field(source_distribution(), StandardGaussian(2))
        return solve(field, x.double(), "euler", steps=steps).x_end
    return model.transport(x.float(), steps=steps).x_end.double()


def plot_paths(n: int = 40, seed: int = 0):
    """Two panels: the same straight lines walked data -> noise (rFM) and noise -> data (generative FM)."""
    import matplotlib.pyplot as plt

    x_0, x_1 = sample_pairs(n, seed)
    times = np.linspace(0, 1, 11)
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2), sharex=True, sharey=True)
    for ax, (start, end, title) in zip(
        axes, ((x_0, x_1, "reversed (rFM): data -> noise"), (x_1, x_0, "forward (generative): noise -> data"))
    ):
        lines = straight_paths(start, end, times)
        ax.plot(lines[:, :, 0], lines[:, :, 1], color="0.7", lw=0.8)
        ax.scatter(*start.T, s=12, color="tab:blue", label="start, t = 0", zorder=3)
        ax.scatter(*end.T, s=12, color="tab:red", label="end, t = 1", zorder=3)
        ax.set_title(title)
        ax.set_aspect("equal")
    axes[0].legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    return fig


def _grid(limit: float = 3.5, n: int = 17) -> Tensor:
    g = torch.linspace(-limit, limit, n, dtype=torch.float64)
    xx, yy = torch.meshgrid(g, g, indexing="xy")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)


@torch.no_grad()
def plot_fields(model: FlowModel | None = None, times: tuple[float, ...] = (0.0, 0.5, 0.9)):
    """Exact marginal field (top row) and, with ``model``, the learned one (bottom row) at a few times."""
    import matplotlib.pyplot as plt

    grid = _grid()
    rows = 1 if model is None else 2
    fig, axes = plt.subplots(rows, len(times), figsize=(3.4 * len(times), 3.4 * rows), squeeze=False)
    means = np.array(BLOB_MEANS)
    for j, t in enumerate(times):
        fields = [("exact u", exact_velocity(grid, t))]
        if model is not None:
            fields.append(("learned v", model(grid.float(), torch.full((len(grid),), t)).double()))
        for i, (name, vel) in enumerate(fields):
            ax = axes[i, j]
            ax.quiver(grid[:, 0], grid[:, 1], vel[:, 0], vel[:, 1], angles="xy", color="tab:purple")
            ax.scatter(*(means * (1 - t)).T, marker="x", color="k", s=30)
            ax.set_title(f"{name}(x, t = {t:g})", fontsize=10)
            ax.set_aspect("equal")
    fig.tight_layout()
    return fig


def plot_transport(model: FlowModel, n: int = 500, steps: int = 50, seed: int = 0):
    """Data, their exact-field endpoints and learned-field endpoints at t = 1, beside fresh N(0, I) samples."""
    import matplotlib.pyplot as plt

    x_0, x_1 = sample_pairs(n, seed)
    panels = (
        ("data x_0", x_0),
        ("exact field, t = 1", transport(None, x_0, steps)),
        ("learned field, t = 1", transport(model, x_0, steps)),
        ("N(0, I) samples", x_1),
    )
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.4), sharex=True, sharey=True)
    for ax, (title, points) in zip(axes, panels):
        ax.scatter(*points.numpy().T, s=4, alpha=0.6)
        ax.set_title(title, fontsize=10)
        ax.set_aspect("equal")
    fig.tight_layout()
    return fig
