"""Shared numerics of the Lemma 2-4 checks: the worst-case atoms, the (D, T) grids, batched eq. 24 / eq. 31 with a
free posterior, and the random and projected-Adam searches over two-atom sources on [0, 1]^D.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from ._base import fmt

__all__ = [
    "LOOSE_FACTOR",
    "REALISE_TOL",
    "atom_searches",
    "batched_dtu",
    "batched_grad_op_norm",
    "batched_moments",
    "corners",
    "grid",
    "likelihood_posterior",
    "per_cell",
    "projected_adam",
    "random_search",
    "rel_err",
    "rel_errs",
    "t_grid",
]

# A bound is called loose when bound / certified supremum exceeds this somewhere on the grid.
LOOSE_FACTOR = 2.0

# Construction and analytic value must agree to this relative error.
REALISE_TOL = 1e-8


def corners(dim: int) -> Tensor:
    """The two atoms 0 and 1 = (1, ..., 1) of the worst-case constructions, (2, D) float64."""
    return torch.stack([torch.zeros(dim, dtype=torch.float64), torch.ones(dim, dtype=torch.float64)])


def grid(size: str) -> tuple[list[int], list[float]]:
    if size == "quick":
        return [1, 4, 16], [0.05, 0.3]
    return [1, 2, 4, 8, 16, 32, 64], [0.01, 0.03, 0.1, 0.3]


def t_grid(t_min: float, n: int = 400) -> np.ndarray:
    return np.unique(np.concatenate([[t_min], np.geomspace(t_min, 1.0, n)]))


def rel_errs(a: Tensor, b: Tensor) -> Tensor:
    return (a - b).norm(dim=1) / b.norm(dim=1).clamp_min(1e-300)


def rel_err(a: Tensor, b: Tensor) -> float:
    return float(rel_errs(a, b).max())


def batched_moments(atoms: Tensor, post: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    e0 = torch.einsum("bk,bkd->bd", post, atoms)
    centred = atoms - e0.unsqueeze(1)
    cov = torch.einsum("bk,bki,bkj->bij", post, centred, centred)
    cov_sq = torch.einsum("bk,bki,bk->bi", post, centred, atoms.pow(2).sum(-1))
    return e0, cov, cov_sq


def likelihood_posterior(atoms: Tensor, log_w: Tensor, x: Tensor, t: Tensor) -> Tensor:
    sq = (x.unsqueeze(1) - (1 - t).view(-1, 1, 1) * atoms).pow(2).sum(-1)
    return torch.softmax(log_w - sq / (2 * t.view(-1, 1) ** 2), dim=1)


def batched_dtu(atoms: Tensor, post: Tensor, x: Tensor, t: Tensor) -> Tensor:
    """Eq. 24 for a batch of atom sources with given posterior weights.

    Shapes: atoms (B, K, D), post (B, K), x (B, D), t (B,); returns (B, D).
    """
    e0, cov, cov_sq = batched_moments(atoms, post)
    tc = t.view(-1, 1)
    return -(x - e0) / tc**2 + (2 - tc) / tc**4 * torch.einsum("bij,bj->bi", cov, x) - (1 - tc) / tc**4 * cov_sq


def batched_grad_op_norm(atoms: Tensor, post: Tensor, t: Tensor) -> Tensor:
    """||grad_x u||_op = max(|1/t - c lam_min|, |1/t - c lam_max|), c = (1 - t)/t^3, lam = eig(Cov) (eq. 31), (B,)."""
    _, cov, _ = batched_moments(atoms, post)
    lam = torch.linalg.eigvalsh(cov)
    c = (1 - t) / t**3
    return torch.maximum((1 / t - c * lam[:, 0]).abs(), (1 / t - c * lam[:, -1]).abs())


def random_search(objective, dim: int, t_min: float, radius: float, size: str, gen: torch.Generator) -> float:
    """Max of ``objective(atoms, posterior, x, t)`` over random equal-weight atom sources in [0,1]^D, x uniform in
    [-R, R]^D and t uniform in [T, 1] (4000 draws of K = 4 atoms quick, 20000 of K = 8 full, in chunks)."""
    n_rand, k = (4000, 4) if size == "quick" else (20000, 8)
    best = -math.inf
    for _ in range(0, n_rand, 2000):
        atoms = torch.rand(2000, k, dim, generator=gen, dtype=torch.float64)
        x = radius * (2 * torch.rand(2000, dim, generator=gen, dtype=torch.float64) - 1)
        t = t_min + (1 - t_min) * torch.rand(2000, generator=gen, dtype=torch.float64)
        post = likelihood_posterior(atoms, torch.zeros(2000, k, dtype=torch.float64), x, t)
        best = max(best, float(objective(atoms, post, x, t).max()))
    return best


def projected_adam(objective, boxes: dict[str, tuple[tuple[int, ...], float, float]], steps: int, seed: int) -> float:
    """Maximise ``objective(params) -> (B,)`` with Adam on log(objective), projecting each parameter onto its box.

    ``boxes`` maps a name to (shape, low, high); an infinite box leaves the parameter free. Starts uniform in
    the boxes (standard normal for free ones); returns the best value seen.
    """
    gen = torch.Generator().manual_seed(seed)
    params, lrs = {}, {}
    for name, (shape, low, high) in boxes.items():
        if math.isfinite(low) and math.isfinite(high):
            init = low + (high - low) * torch.rand(shape, generator=gen, dtype=torch.float64)
            lrs[name] = 0.02 * (high - low)
        else:
            init = torch.randn(shape, generator=gen, dtype=torch.float64)
            lrs[name] = 0.1
        params[name] = init.requires_grad_(True)
    opt = torch.optim.Adam([{"params": [params[k]], "lr": lrs[k]} for k in params])
    best = -math.inf
    for _ in range(steps):
        opt.zero_grad()
        values = objective(params)
        finite = torch.isfinite(values) & (values > 0)
        if finite.any():
            best = max(best, float(values.detach()[finite].max()))
            (-values[finite].log().sum()).backward()
            opt.step()
        with torch.no_grad():
            for name, (_, low, high) in boxes.items():
                params[name].clamp_(low, high)
    with torch.no_grad():
        values = objective(params)
        best = max(best, float(values[torch.isfinite(values)].max()))
    return best


def atom_searches(objective, dim: int, t_min: float, radius: float, size: str, seed: int) -> tuple[float, float, float]:
    """Maxima of ``objective(atoms, posterior, x, t)`` (batch,) over two-atom sources in [0,1]^D, x in [-R, R]^D,
    t in [T, 1]: (random sampling with equal weights, projected Adam with free weights (the posterior at the point
    is then free), projected Adam with equal weights)."""
    gen = torch.Generator().manual_seed(seed)
    random_max = random_search(objective, dim, t_min, radius, size, gen)
    batch, steps = (16, 150) if size == "quick" else (32, 400)

    def free(p):
        return objective(p["atoms"], torch.softmax(p["logits"], dim=1), p["x"], p["t"])

    def equal(p):
        post = likelihood_posterior(p["atoms"], torch.zeros(batch, 2, dtype=torch.float64), p["x"], p["t"])
        return objective(p["atoms"], post, p["x"], p["t"])

    boxes = {"atoms": ((batch, 2, dim), 0.0, 1.0), "x": ((batch, dim), -radius, radius), "t": ((batch,), t_min, 1.0)}
    free_max = projected_adam(free, boxes | {"logits": ((batch, 2), -math.inf, math.inf)}, steps, seed)
    equal_max = projected_adam(equal, boxes, steps, seed + 1)
    return random_max, free_max, equal_max


def per_cell(dims, ts, values: np.ndarray, digits: int = 3) -> str:
    """'D=1: a, b, c; D=2: ...' with one value per T."""
    return "; ".join(f"D={d}: " + ", ".join(fmt(float(v), digits) for v in row) for d, row in zip(dims, values))
