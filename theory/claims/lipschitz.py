"""Lemma 2 (eq. 9), Lemmas 3-4 (eqs. 10-11), Theorem 2 and the intermediate steps of their proofs (Suppl. X-B).

Gaussian target throughout Lemmas 3-4. With E0 = E[X_0 | X_t = x] and Cov = Cov[X_0 | X_t = x]:

    grad_x u = I / t - (1 - t) / t^3 Cov                                             (eq. 31 with eq. 30)
    d_t u    = -(x - E0) / t^2 + (2 - t) / t^4 Cov x - (1 - t) / t^4 Cov(X_0, ||X_0||^2)     (eq. 24)

Certified suprema over all sources supported in [0, 1]^D (Assumption 1), x in [-R, R]^D, t in [T, 1]:

* Lemma 4. Popoviciu: Var(e . X_0) <= (sum_i |e_i|)^2 / 4 <= D ||e||^2 / 4 for any law on [0, 1]^D,
  attained by two equal atoms at the corners 0 and 1 with x on their bisecting hyperplane
  x . 1 = (1 - t) D / 2 (posterior weights 1/2 for every t). Hence exactly
  sup ||grad_x u||_op = max_{t in [T,1]} max(1/t, (1 - t) D / (4 t^3) - 1/t).
* Lemma 3. d_t E0 = Cov(X_0, g) with g(x_0) = d_t log-likelihood = (-(2 - t) x . x_0 + (1 - t) ||x_0||^2) / t^3.
  Upper bound U: ||d_t u|| <= ||x - E0|| / t^2 + (sqrt(D)/2)(range g / 2) / t (Cauchy-Schwarz + Popoviciu).
  Construction C: atoms 1 and 0, x = xi 1 (|xi| <= R). A finite-atom source's weights are free, so its
  posterior weight p at one (x, t) is free; maximising over (p, xi, t) gives a value C <= sup <= U.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import optimize
from torch import Tensor

import theory
from wtflow.distributions import GaussianMixture, Point, StandardGaussian, UniformSphere

from ._base import HOLDS, HOLDS_WITH_CORRECTION, LOOSE, REFUTED, ClaimResult, check_size, fmt, single_threaded
from ._posterior import AtomSource, gmm_gaussian_target, gmm_point_target, gmm_ring_target

__all__ = [
    "batched_dtu",
    "batched_grad_op_norm",
    "check_eq24",
    "check_eq26",
    "check_eq28",
    "check_eq32",
    "check_lemma2",
    "check_lemma3",
    "check_lemma4",
    "check_r_substitution",
    "check_theorem2",
    "lemma3_construction",
    "lemma3_upper_bound",
    "lemma4_sup",
]

# Lemma 2: eq. 9 "holds" for a target when the relative error is below HOLD_TOL, "fails" above FAIL_TOL.
LEMMA2_HOLD_TOL = 1e-9
LEMMA2_FAIL_TOL = 1e-2
# eq. 24 against autograd.
EQ24_TOL = 1e-8
# A bound is called loose when bound / certified supremum exceeds this somewhere on the grid.
LOOSE_FACTOR = 2.0
# Construction and analytic value must agree to this relative error.
REALISE_TOL = 1e-8
# Lemma 3: the order D^2 / T^4 is attained if the certified C T^4 / D^2 at the largest D is at least this.
ORDER_FLOOR = 0.1
# Theorem 2: slope of ||d_t u(r e, T)|| against r must be 1/T^2 within this relative error.
SLOPE_TOL = 1e-2


def _corners(dim: int) -> Tensor:
    """The two atoms 0 and 1 = (1, ..., 1) of the worst-case constructions, (2, D) float64."""
    return torch.stack([torch.zeros(dim, dtype=torch.float64), torch.ones(dim, dtype=torch.float64)])


def _grid(size: str) -> tuple[list[int], list[float]]:
    if size == "quick":
        return [1, 4, 16], [0.05, 0.3]
    return [1, 2, 4, 8, 16, 32, 64], [0.01, 0.03, 0.1, 0.3]


def _t_grid(t_min: float, n: int = 400) -> np.ndarray:
    return np.unique(np.concatenate([[t_min], np.geomspace(t_min, 1.0, n)]))


# ---------------------------------------------------------------------------------------------------------------
# Lemma 2 (eq. 9)
# ---------------------------------------------------------------------------------------------------------------


def _rel_errs(a: Tensor, b: Tensor) -> Tensor:
    return (a - b).norm(dim=1) / b.norm(dim=1).clamp_min(1e-300)


def _rel_err(a: Tensor, b: Tensor) -> float:
    return float(_rel_errs(a, b).max())


def check_lemma2(size: str = "quick") -> ClaimResult:
    """Lemma 2: u = -x/(1-t) - t/(1-t) grad log p_t, for Gaussian, ring (sphere) and point targets."""
    check_size(size)
    n = 64 if size == "quick" else 512
    gen = torch.Generator().manual_seed(2)
    times = [0.1, 0.5, 0.9]
    means2 = torch.tensor([[1.0, 0.5], [-0.8, 0.3], [0.2, -1.2]], dtype=torch.float64)
    stds2 = torch.tensor([0.3, 0.5, 0.4], dtype=torch.float64)
    w2 = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    means8 = torch.randn(4, 8, generator=gen, dtype=torch.float64)
    stds8 = torch.tensor([0.2, 0.4, 0.6, 0.3], dtype=torch.float64)
    w8 = torch.full((4,), 0.25, dtype=torch.float64)
    atoms = torch.randn(5, 8, generator=gen, dtype=torch.float64)
    errors: dict[str, float] = {}
    medians: dict[str, float] = {}
    fields_err = 0.0
    for t in times:
        x2 = 1.5 * torch.randn(n, 2, generator=gen, dtype=torch.float64)
        x8 = 1.5 * torch.randn(n, 8, generator=gen, dtype=torch.float64)
        cases = {
            "gaussian, population D=2": (x2, gmm_gaussian_target(x2, t, means2, stds2, w2)),
            "gaussian, population D=8": (x8, gmm_gaussian_target(x8, t, means8, stds8, w8)),
            "gaussian, empirical D=8": (
                x8,
                gmm_gaussian_target(
                    x8, t, atoms, torch.zeros(5, dtype=torch.float64), torch.full((5,), 0.2, dtype=torch.float64)
                ),
            ),
            "ring, population D=2": (x2, gmm_ring_target(x2, t, means2, stds2, w2, radius=math.sqrt(2.0))),
            "point, population D=2": (x2, gmm_point_target(x2, t, means2, stds2, w2)),
        }
        for name, (x, (u, score)) in cases.items():
            rel = _rel_errs(-x / (1 - t) - t / (1 - t) * score, u)
            errors[name] = max(errors.get(name, 0.0), float(rel.max()))
            medians[name] = min(medians.get(name, math.inf), float(rel.median()))
        # Cross-check the independent closed forms against theory.fields (u and score).
        src2 = GaussianMixture(means2, stds2, w2)
        for target, (x, (u, score)) in (
            (StandardGaussian(2), cases["gaussian, population D=2"]),
            (UniformSphere(2, radius=math.sqrt(2.0)), cases["ring, population D=2"]),
            (Point(2), cases["point, population D=2"]),
        ):
            fields_err = max(fields_err, _rel_err(theory.marginal_velocity(x, t, src2, target), u))
            fields_err = max(fields_err, _rel_err(theory.score(x, t, src2, target), score))
    gauss_ok = all(v < LEMMA2_HOLD_TOL for k, v in errors.items() if k.startswith("gaussian"))
    others_fail = all(v > LEMMA2_FAIL_TOL for k, v in medians.items() if not k.startswith("gaussian"))
    if gauss_ok and others_fail:
        verdict = HOLDS_WITH_CORRECTION
    elif gauss_ok:
        verdict = HOLDS
    else:
        verdict = REFUTED
    return ClaimResult(
        claim_id="lemma2",
        verdict=verdict,
        measured={f"max rel. error of eq. 9, {k}": fmt(v, 3) for k, v in errors.items() if k.startswith("gaussian")}
        | {
            f"median rel. error of eq. 9, {k} (smallest over t)": fmt(v, 3)
            for k, v in medians.items()
            if not k.startswith("gaussian")
        }
        | {"independent forms vs theory.fields (u, score)": fmt(fields_err, 3)},
        rule=(
            f"u from posterior means (u = E1 - E0, no score) vs eq. 9 with the autograd score, t in {times}. "
            f"Gaussian target: max relative error < {LEMMA2_HOLD_TOL:g} required; if, in addition, the ring and "
            f"point targets give median errors > {LEMMA2_FAIL_TOL:g} at every t, the lemma 'holds with correction' "
            "(scope), if they "
            "also agree it 'holds'; a Gaussian-target failure refutes it."
        ),
        correction=(
            "Eq. (9) is Tweedie's formula and needs X_1 ~ N(0, I) (the proof uses the Gaussian kernel of "
            "X_t | X_0); it fails for the uniform-sphere and single-point targets of Table VIII. For any target "
            "u(x, t) = (x - E[X_0 | X_t = x]) / t = (E[X_1 | X_t = x] - x) / (1 - t)."
            if verdict == HOLDS_WITH_CORRECTION
            else ""
        ),
        notes=["The empirical (point-mass) source also satisfies eq. 9 with the Gaussian target: p_t is then a GMM."],
        data={"max_errors": errors, "median_errors": medians},
    )


# ---------------------------------------------------------------------------------------------------------------
# Batched eq. 24 / eq. 31 with a free posterior (used by the searches)
# ---------------------------------------------------------------------------------------------------------------


def _batched_moments(atoms: Tensor, post: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    e0 = torch.einsum("bk,bkd->bd", post, atoms)
    centred = atoms - e0.unsqueeze(1)
    cov = torch.einsum("bk,bki,bkj->bij", post, centred, centred)
    cov_sq = torch.einsum("bk,bki,bk->bi", post, centred, atoms.pow(2).sum(-1))
    return e0, cov, cov_sq


def _likelihood_posterior(atoms: Tensor, log_w: Tensor, x: Tensor, t: Tensor) -> Tensor:
    sq = (x.unsqueeze(1) - (1 - t).view(-1, 1, 1) * atoms).pow(2).sum(-1)
    return torch.softmax(log_w - sq / (2 * t.view(-1, 1) ** 2), dim=1)


def batched_dtu(atoms: Tensor, post: Tensor, x: Tensor, t: Tensor) -> Tensor:
    """Eq. 24 for a batch of atom sources with given posterior weights.

    Shapes: atoms (B, K, D), post (B, K), x (B, D), t (B,); returns (B, D).
    """
    e0, cov, cov_sq = _batched_moments(atoms, post)
    tc = t.view(-1, 1)
    return -(x - e0) / tc**2 + (2 - tc) / tc**4 * torch.einsum("bij,bj->bi", cov, x) - (1 - tc) / tc**4 * cov_sq


def batched_grad_op_norm(atoms: Tensor, post: Tensor, t: Tensor) -> Tensor:
    """||grad_x u||_op = max(|1/t - c lam_min|, |1/t - c lam_max|), c = (1 - t)/t^3, lam = eig(Cov) (eq. 31), (B,)."""
    _, cov, _ = _batched_moments(atoms, post)
    lam = torch.linalg.eigvalsh(cov)
    c = (1 - t) / t**3
    return torch.maximum((1 / t - c * lam[:, 0]).abs(), (1 / t - c * lam[:, -1]).abs())


def _random_search(objective, dim: int, t_min: float, radius: float, size: str, gen: torch.Generator) -> float:
    """Max of ``objective(atoms, posterior, x, t)`` over random equal-weight atom sources in [0,1]^D, x uniform in
    [-R, R]^D and t uniform in [T, 1] (4000 draws of K = 4 atoms quick, 20000 of K = 8 full, in chunks)."""
    n_rand, k = (4000, 4) if size == "quick" else (20000, 8)
    best = -math.inf
    for _ in range(0, n_rand, 2000):
        atoms = torch.rand(2000, k, dim, generator=gen, dtype=torch.float64)
        x = radius * (2 * torch.rand(2000, dim, generator=gen, dtype=torch.float64) - 1)
        t = t_min + (1 - t_min) * torch.rand(2000, generator=gen, dtype=torch.float64)
        post = _likelihood_posterior(atoms, torch.zeros(2000, k, dtype=torch.float64), x, t)
        best = max(best, float(objective(atoms, post, x, t).max()))
    return best


def _projected_adam(objective, boxes: dict[str, tuple[tuple[int, ...], float, float]], steps: int, seed: int) -> float:
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


# ---------------------------------------------------------------------------------------------------------------
# Lemma 4 (eq. 11) and its intermediate steps (eq. 26, eq. 32)
# ---------------------------------------------------------------------------------------------------------------


def lemma4_sup(dim: int, t_min: float) -> float:
    """Certified sup over sources on [0,1]^D, x (anywhere), t in [T, 1] of ||grad_x u||_op (see module docstring)."""
    t = _t_grid(t_min, 4000)
    return float(np.max(np.maximum(1 / t, (1 - t) * dim / (4 * t**3) - 1 / t)))


def lemma4_printed(dim: int, t_min: float) -> float:
    """The paper's eq. 11 bound max{1/T, (1 - T) D / T^3}."""
    return max(1 / t_min, (1 - t_min) * dim / t_min**3)


def _lemma4_realised(dim: int, t_min: float) -> tuple[float, float]:
    """||grad_x u||_op at t = T for atoms {0, 1} (equal weights), x on the bisecting hyperplane: eq. 31 and autograd."""
    two = AtomSource(_corners(dim))
    one = AtomSource(torch.zeros(1, dim, dtype=torch.float64))
    # Atoms {0, 1} at a balanced point (posterior 1/2: eigenvalue 1/T - (1-T)D/(4T^3)) and a single atom (Cov = 0: 1/T).
    f64 = torch.float64
    cases = ((two, torch.full((dim,), (1 - t_min) / 2, dtype=f64)), (one, torch.full((dim,), 0.5, dtype=f64)))
    by_formula, by_autograd = 0.0, 0.0
    for src, x in cases:
        x = x.double()
        jac = src.jacobian(x.unsqueeze(0), t_min)[0]
        auto = torch.autograd.functional.jacobian(lambda y, src=src: src.velocity(y.unsqueeze(0), t_min)[0], x)
        by_formula = max(by_formula, float(torch.linalg.matrix_norm(jac, ord=2)))
        by_autograd = max(by_autograd, float(torch.linalg.matrix_norm(auto, ord=2)))
    return by_formula, by_autograd


def _atom_searches(
    objective, dim: int, t_min: float, radius: float, size: str, seed: int
) -> tuple[float, float, float]:
    """Maxima of ``objective(atoms, posterior, x, t)`` (batch,) over two-atom sources in [0,1]^D, x in [-R, R]^D,
    t in [T, 1]: (random sampling with equal weights, projected Adam with free weights (the posterior at the point
    is then free), projected Adam with equal weights)."""
    gen = torch.Generator().manual_seed(seed)
    random_max = _random_search(objective, dim, t_min, radius, size, gen)
    batch, steps = (16, 150) if size == "quick" else (32, 400)

    def free(p):
        return objective(p["atoms"], torch.softmax(p["logits"], dim=1), p["x"], p["t"])

    def equal(p):
        post = _likelihood_posterior(p["atoms"], torch.zeros(batch, 2, dtype=torch.float64), p["x"], p["t"])
        return objective(p["atoms"], post, p["x"], p["t"])

    boxes = {"atoms": ((batch, 2, dim), 0.0, 1.0), "x": ((batch, dim), -radius, radius), "t": ((batch,), t_min, 1.0)}
    free_max = _projected_adam(free, boxes | {"logits": ((batch, 2), -math.inf, math.inf)}, steps, seed)
    equal_max = _projected_adam(equal, boxes, steps, seed + 1)
    return random_max, free_max, equal_max


def _lemma4_searches(dim: int, t_min: float, size: str, seed: int) -> tuple[float, float, float]:
    """``_atom_searches`` of ||grad_x u||_op with R = sqrt(D)."""
    return _atom_searches(lambda a, p, x, t: batched_grad_op_norm(a, p, t), dim, t_min, math.sqrt(dim), size, seed)


@single_threaded
def _lemma4_table(size: str) -> dict:
    dims, ts = _grid(size)
    sup = np.array([[lemma4_sup(d, t) for t in ts] for d in dims])
    printed = np.array([[lemma4_printed(d, t) for t in ts] for d in dims])
    realised = np.zeros_like(sup)
    realised_auto = np.zeros_like(sup)
    at_t_min = np.array([[max(1 / t, (1 - t) * d / (4 * t**3) - 1 / t) for t in ts] for d in dims])
    rand = np.zeros_like(sup)
    grad = np.zeros_like(sup)
    grad_equal = np.zeros_like(sup)
    for i, d in enumerate(dims):
        for j, t in enumerate(ts):
            realised[i, j], realised_auto[i, j] = _lemma4_realised(d, t)
            rand[i, j], grad[i, j], grad_equal[i, j] = _lemma4_searches(d, t, size, seed=100 * i + j)
    return {
        "dims": np.array(dims),
        "T": np.array(ts),
        "certified_sup": sup,
        "printed_bound": printed,
        "value_at_T": at_t_min,
        "construction_eq31": realised,
        "construction_autograd": realised_auto,
        "random_search_max": rand,
        "gradient_search_max": grad,
        "gradient_search_equal_weights_max": grad_equal,
        "ratio_sup_to_printed": sup / printed,
    }


_LEMMA4_CACHE: dict[str, dict] = {}


def _lemma4_data(size: str) -> dict:
    if size not in _LEMMA4_CACHE:
        _LEMMA4_CACHE[size] = _lemma4_table(size)
    return _LEMMA4_CACHE[size]


def _per_cell(dims, ts, values: np.ndarray, digits: int = 3) -> str:
    """'D=1: a, b, c; D=2: ...' with one value per T."""
    return "; ".join(f"D={d}: " + ", ".join(fmt(float(v), digits) for v in row) for d, row in zip(dims, values))


def check_lemma4(size: str = "quick") -> ClaimResult:
    """Lemma 4: certified sup ||grad_x u||_op against max{1/T, (1 - T) D / T^3}, per (D, T)."""
    check_size(size)
    d = _lemma4_data(size)
    realise_err = float(np.max(np.abs(d["construction_eq31"] / d["value_at_T"] - 1)))
    auto_err = float(np.max(np.abs(d["construction_autograd"] / d["construction_eq31"] - 1)))
    searched = np.maximum(
        d["gradient_search_max"], np.maximum(d["random_search_max"], d["gradient_search_equal_weights_max"])
    )
    search_excess = float(np.max(searched / d["certified_sup"]))
    if realise_err > REALISE_TOL or auto_err > REALISE_TOL or search_excess > 1 + 1e-9:
        raise RuntimeError(
            f"Lemma 4 certification failed: realise {realise_err:g}, autograd {auto_err:g}, search {search_excess:g}"
        )
    ratio = d["ratio_sup_to_printed"]
    valid = bool(np.all(ratio <= 1 + 1e-12))
    factor = float(1 / ratio.min())
    if not valid:
        verdict = REFUTED
    elif factor > LOOSE_FACTOR:
        verdict = LOOSE
    else:
        verdict = HOLDS
    return ClaimResult(
        claim_id="lemma4",
        verdict=verdict,
        measured={
            "max sup/printed over (D,T)": fmt(float(ratio.max()), 4),
            "min sup/printed over (D,T)": fmt(float(ratio.min()), 4),
            "looseness factor printed/sup (max)": fmt(factor, 4),
            "construction vs analytic (rel.)": fmt(realise_err, 2),
            "eq. 31 vs autograd Jacobian (rel.)": fmt(auto_err, 2),
            "free-weight search / sup, min over (D,T)": fmt(
                float(np.min(d["gradient_search_max"] / d["certified_sup"])), 4
            ),
            "equal-weight search / sup at D_max, T_min": fmt(
                float(d["gradient_search_equal_weights_max"][-1, 0] / d["certified_sup"][-1, 0]), 3
            ),
            "random sample / sup at D_max, T_min": fmt(
                float(d["random_search_max"][-1, 0] / d["certified_sup"][-1, 0]), 3
            ),
        },
        rule=(
            "Certified sup = max_t max(1/t, (1-t)D/(4t^3) - 1/t) (Popoviciu upper bound, attained by atoms {0, 1} "
            f"with x on the bisecting hyperplane, or by one atom; construction must match to {REALISE_TOL:g} and no "
            "search may exceed "
            f"it). Printed bound >= sup everywhere and printed/sup <= {LOOSE_FACTOR} -> 'holds'; valid but printed/sup "
            f"> {LOOSE_FACTOR} somewhere -> 'loose by a factor'; sup > printed somewhere -> 'refuted'."
        ),
        correction=(
            "Valid but loose: the exact supremum over sources on [0,1]^D is max_t max{1/t, (1-t)D/(4t^3) - 1/t} "
            "(Var(e.X_0) <= D/4 for unit e, Popoviciu), about 1/4 of the printed (1-T)D/T^3 when D/T^2 is large. "
            "The bound holds for every x in R^D, not only in [-R, R]^D."
            if verdict == LOOSE
            else ""
        ),
        notes=[
            f"sup/printed per (D, T), T = {', '.join(fmt(float(t)) for t in d['T'])}: "
            f"{_per_cell(d['dims'], d['T'], ratio)}.",
            "Random search, and gradient search over equal-weight sources, reach only a small fraction of the supremum "
            "at large D/T^2 (the posterior has collapsed almost everywhere and its gradients vanish); with free "
            "weights "
            "the posterior at one point is free and the search finds the supremum.",
        ],
        data=d,
    )


def check_eq26(size: str = "quick") -> ClaimResult:
    """Suppl. eq. 26: ||Cov[X_0 | X_t = x]||_op <= 2D for sources on [0, 1]^D."""
    check_size(size)
    d = _lemma4_data(size)
    dims = d["dims"]
    # Largest posterior variance found by the gradient search, converted back from the op-norm of eq. 31 at t = T
    # is awkward; the exact maximum is D/4 (Popoviciu, attained): compare with 2D and with the construction.
    lam_max = []
    for dim in dims:
        atoms = _corners(dim)
        src = AtomSource(atoms)
        x = torch.full((1, dim), 0.45, dtype=torch.float64)
        lam_max.append(float(torch.linalg.eigvalsh(src.moments(x, 0.1)[1][0]).max()))
    lam_max = np.array(lam_max)
    ratio = lam_max / (2 * dims)
    valid = bool(np.all(ratio <= 1))
    factor = float(1 / ratio.max())
    verdict = REFUTED if not valid else (LOOSE if factor > LOOSE_FACTOR else HOLDS)
    return ClaimResult(
        claim_id="eq26",
        verdict=verdict,
        measured={
            "max eigenvalue / D (atoms {0,1}, balanced x)": fmt(float((lam_max / dims).max()), 6),
            "2D / attained maximum": fmt(factor, 4),
        },
        rule=(
            "The maximum of ||Cov||_op over laws on [0,1]^D is D/4 (Popoviciu; attained by atoms {0, 1} with posterior "
            f"weights 1/2, measured). 2D >= max everywhere and 2D/max <= {LOOSE_FACTOR} -> 'holds'; valid but larger "
            "-> 'loose by a factor'; otherwise 'refuted'."
        ),
        correction=(
            "||Cov[X_0 | X_t = x]||_op <= D/4 (tight); the proof's 2D is 8 times larger and eq. 32 uses D."
            if verdict == LOOSE
            else ""
        ),
        data={"dims": dims, "lambda_max": lam_max},
    )


def check_eq32(size: str = "quick") -> ClaimResult:
    """Suppl. eq. 32: (1/T - (1 - T)^D / T^3) I <= grad_x u <= I / T."""
    check_size(size)
    dims, ts = _grid(size)
    dims = sorted(set(dims) | {2, 3, 8})
    printed_lower = np.array([[1 / t - (1 - t) ** d / t**3 for t in ts] for d in dims])
    attained_min = np.zeros_like(printed_lower)
    upper_ok = True
    for i, d in enumerate(dims):
        for j, t in enumerate(ts):
            atoms = _corners(d)
            x = torch.full((1, d), (1 - t) / 2, dtype=torch.float64)
            eig = torch.linalg.eigvalsh(AtomSource(atoms).jacobian(x, t)[0])
            attained_min[i, j] = float(eig.min())
            upper_ok &= bool(eig.max() <= 1 / t + 1e-12 * float(eig.abs().max()))
    violated = attained_min < printed_lower * (1 - 1e-12) - 1e-12
    verdict = REFUTED if violated.any() else HOLDS
    worst = np.unravel_index(int(np.argmax(printed_lower - attained_min)), printed_lower.shape)
    return ClaimResult(
        claim_id="eq32",
        verdict=verdict,
        measured={
            "(D, T) pairs where the printed lower bound fails": f"{int(violated.sum())} of {violated.size}",
            "smallest D where it fails": str(min((dims[i] for i, j in zip(*np.nonzero(violated))), default="none")),
            "worst case: printed lower bound": fmt(float(printed_lower[worst]), 4),
            "worst case: attained min eigenvalue": fmt(float(attained_min[worst]), 4),
            "upper bound I/T respected": str(upper_ok),
        },
        rule=(
            "Smallest eigenvalue of grad_x u at t = T for atoms {0, 1}, x on the bisecting hyperplane "
            "(= 1/T - (1-T)D/(4T^3)) against the printed lower bound 1/T - (1-T)^D/T^3; any violation -> 'refuted'."
        ),
        correction=(
            "(1/T - (1-T) D / (4 T^3)) I <= grad_x u <= I/T (the factor is (1-T) D, not (1-T)^D; with the proof's "
            "Cov <= D I it reads (1-T) D / T^3). Also 'Cov[X_1 | X_t = x]' in the line before should be Cov[X_0 | ...]."
            if verdict == REFUTED
            else ""
        ),
        data={"dims": np.array(dims), "T": np.array(ts), "printed_lower": printed_lower, "attained_min": attained_min},
    )


# ---------------------------------------------------------------------------------------------------------------
# Lemma 3 (eq. 10), eq. 27-28 and Theorem 2
# ---------------------------------------------------------------------------------------------------------------


def _construction_value(p, xi, t, dim: int) -> np.ndarray:
    """||d_t u|| for atoms {1, 0} with posterior weight p on 1, x = xi 1 (eq. 24 reduced to one coordinate)."""
    p, xi, t = np.asarray(p), np.asarray(xi), np.asarray(t)
    coord = -(xi - p) / t**2 - p * (1 - p) * dim * (-(2 - t) * xi + (1 - t)) / t**4
    return math.sqrt(dim) * np.abs(coord)


def lemma3_construction(dim: int, t_min: float, radius: float) -> tuple[float, dict]:
    """Certified lower value C of sup ||d_t u|| over sources on [0,1]^D, x in [-R,R]^D, t in [T,1] (two atoms)."""
    ps = np.linspace(0.0, 1.0, 401)
    ts = _t_grid(t_min, 200)
    best, arg = -1.0, None
    for xi in (-radius, radius):
        vals = _construction_value(ps[:, None], xi, ts[None, :], dim)
        i, j = np.unravel_index(int(np.argmax(vals)), vals.shape)
        if vals[i, j] > best:
            best, arg = float(vals[i, j]), (float(ps[i]), xi, float(ts[j]))
    p0, xi, t0 = arg
    res = optimize.minimize(
        lambda z: -_construction_value(z[0], xi, z[1], dim),
        x0=[p0, t0],
        bounds=[(0.0, 1.0), (t_min, 1.0)],
        method="L-BFGS-B",
        options={"ftol": 1e-15, "gtol": 1e-12},
    )
    if -res.fun > best:
        best, arg = float(-res.fun), (float(res.x[0]), xi, float(res.x[1]))
    return best, {"p": arg[0], "xi": arg[1], "t": arg[2]}


def _realise_construction(dim: int, p: float, xi: float, t: float) -> float:
    """||d_t u|| of an actual source (atoms 1 and 0 with log-weights chosen so the posterior at (x, t) is p)."""
    atoms = _corners(dim).flip(0)
    x = torch.full((1, dim), xi, dtype=torch.float64)
    loglik = -(x - (1 - t) * atoms).pow(2).sum(-1) / (2 * t**2)  # (2,)
    p = min(max(p, 1e-300), 1 - 1e-16)
    log_w = torch.tensor([math.log(p) - math.log1p(-p), 0.0], dtype=torch.float64) - loglik
    return float(AtomSource(atoms, log_w).time_derivative(x, t).norm())


def lemma3_upper_bound(dim: int, t_min: float, radius: float) -> float:
    """Upper bound U on sup ||d_t u|| (Cauchy-Schwarz + Popoviciu, module docstring), maximised over t."""
    best = 0.0
    for t in _t_grid(t_min, 200):
        ranges = []
        for xi in (-radius, radius):
            a, b = (2 - t) * xi, 1 - t  # g_i(y) = (-a y + b y^2) / t^3 on y in [0, 1]
            cands = [0.0, -a + b]
            y_star = a / (2 * b) if b > 0 else -1.0
            if 0 <= y_star <= 1:
                cands.append(-a * y_star + b * y_star**2)
            ranges.append((max(cands) - min(cands)) / t**3)
        value = math.sqrt(dim) * (radius + 1) / t**2 + math.sqrt(dim) * dim * max(ranges) / (4 * t)
        best = max(best, value)
    return best


def eq27_bound(dim: int, t_min: float, radius: float) -> float:
    """The paper's eq. 27."""
    return (
        radius * math.sqrt(dim) / t_min**2
        + math.sqrt(dim) / t_min**2
        + 2 * (2 - t_min) / t_min**4 * dim**1.5 * radius
        + 2 * (1 - t_min) / t_min**4 * dim**1.5
    )


def eq28_value(dim: int, t_min: float) -> float:
    """The paper's eq. 28 (eq. 27 with R = sqrt(D), printed with '=')."""
    return (
        dim / t_min**2
        + math.sqrt(dim) / t_min**2
        + 2 * (2 - t_min) / t_min**4 * dim**2
        + 2 * (1 - t_min) / t_min**4 * dim**1.5
    )


def _lemma3_searches(dim: int, t_min: float, radius: float, size: str, seed: int) -> tuple[float, float, float]:
    """``_atom_searches`` of ||d_t u||."""
    return _atom_searches(lambda a, p, x, t: batched_dtu(a, p, x, t).norm(dim=1), dim, t_min, radius, size, seed)


@single_threaded
def _lemma3_table(size: str) -> dict:
    dims, ts = _grid(size)
    shape = (len(dims), len(ts))
    out = {k: np.zeros(shape) for k in ("C", "U", "realised", "eq27", "eq28", "random", "free", "equal", "C_ball")}
    args = {}
    for i, d in enumerate(dims):
        radius = math.sqrt(d)
        for j, t in enumerate(ts):
            out["C"][i, j], arg = lemma3_construction(d, t, radius)
            args[(d, t)] = arg
            out["realised"][i, j] = _realise_construction(d, arg["p"], arg["xi"], arg["t"])
            out["U"][i, j] = lemma3_upper_bound(d, t, radius)
            out["eq27"][i, j] = eq27_bound(d, t, radius)
            out["eq28"][i, j] = eq28_value(d, t)
            out["random"][i, j], out["free"][i, j], out["equal"][i, j] = _lemma3_searches(d, t, radius, size, 7 * i + j)
            # Domain ||x|| <= sqrt(D) (the Gaussian / LN radius): x = +-1 (norm sqrt(D)) in the same construction.
            out["C_ball"][i, j], _ = lemma3_construction(d, t, 1.0)
    out |= {"dims": np.array(dims), "T": np.array(ts), "arg": args}
    out["D2_over_T4"] = np.array([[d**2 / t**4 for t in ts] for d in dims])
    return out


_LEMMA3_CACHE: dict[str, dict] = {}


def _lemma3_data(size: str) -> dict:
    if size not in _LEMMA3_CACHE:
        _LEMMA3_CACHE[size] = _lemma3_table(size)
    return _LEMMA3_CACHE[size]


def _lemma3_sanity(d: dict) -> tuple[float, float]:
    realise_err = float(np.max(np.abs(d["realised"] / d["C"] - 1)))
    over = float(np.max(np.maximum(d["free"], np.maximum(d["random"], d["equal"])) / d["U"]))
    if realise_err > 1e-6 or over > 1 + 1e-9 or np.any(d["C"] > d["U"] * (1 + 1e-12)):
        raise RuntimeError(f"Lemma 3 certification failed: realise {realise_err:g}, search/U {over:g}")
    return realise_err, over


def check_lemma3(size: str = "quick") -> ClaimResult:
    """Lemma 3: sup ||d_t u|| = O(D^2 / T^4) over x in [-R, R]^D (R = sqrt(D)), certified from both sides."""
    check_size(size)
    d = _lemma3_data(size)
    realise_err, _ = _lemma3_sanity(d)
    scaled_c = d["C"] / d["D2_over_T4"]
    scaled_u = d["U"] / d["D2_over_T4"]
    order_upper = float(scaled_u.max())
    order_lower_at_dmax = float(scaled_c[-1].min())
    verdict = HOLDS if math.isfinite(order_upper) and order_lower_at_dmax >= ORDER_FLOOR else LOOSE
    return ClaimResult(
        claim_id="lemma3",
        verdict=verdict,
        measured={
            "max U T^4/D^2 (upper bound, all D,T)": fmt(order_upper, 4),
            "min C T^4/D^2 at D_max": fmt(order_lower_at_dmax, 4),
            "(2 - T)/4 at T_max": fmt((2 - d["T"][-1]) / 4, 4),
            "min C/U (certification gap)": fmt(float((d["C"] / d["U"]).min()), 4),
            "C/U at D_max": fmt(float((d["C"] / d["U"])[-1].min()), 4),
            "gradient search (free weights) / C, max": fmt(float((d["free"] / d["C"]).max()), 4),
            "gradient search (equal weights) / C at D_max, T_min": fmt(float(d["equal"][-1, 0] / d["C"][-1, 0]), 3),
            "random search / C at D_max, T_min": fmt(float(d["random"][-1, 0] / d["C"][-1, 0]), 3),
            "construction realised by a source (rel. err.)": fmt(realise_err, 2),
        },
        rule=(
            "C (two-atom construction, realised by an explicit source) <= sup <= U (Cauchy-Schwarz + Popoviciu); "
            "searches must stay below U. 'holds' if U T^4/D^2 is bounded on the grid and C T^4/D^2 >= "
            f"{ORDER_FLOOR} at the largest D (the order D^2/T^4 is attained); otherwise 'loose by a factor'."
        ),
        notes=[
            "The supremum needs sources with extremely unequal weights (posterior 1/2 at a point where the "
            "likelihoods differ by exp(~D^1.5/T^2)); for equal-weight two-atom sources the searched maximum is much "
            "smaller (see 'equal weights').",
            "Over the ball ||x|| <= sqrt(D) (the Gaussian/LN radius, not the box) the same construction gives "
            "C T^4/D^1.5 = "
            f"{fmt(float((d['C_ball'] / (d['dims'][:, None] ** 1.5 / d['T'][None, :] ** 4))[-1].min()), 3)} "
            "at D_max: the order there is D^1.5/T^4.",
        ],
        data=d,
    )


def check_eq28(size: str = "quick") -> ClaimResult:
    """Suppl. eq. 28: the bound of eq. 27 with R = sqrt(D), printed as an equality for the supremum."""
    check_size(size)
    d = _lemma3_data(size)
    _lemma3_sanity(d)
    ratio = d["C"] / d["eq28"]
    upper_ratio = d["U"] / d["eq28"]
    valid = bool(np.all(upper_ratio <= 1 + 1e-12))
    factor = float(1 / ratio.min())
    equality_refuted = float(ratio.max()) < 0.5
    if not valid:
        verdict = REFUTED
    elif equality_refuted and factor > LOOSE_FACTOR:
        verdict = LOOSE
    else:
        verdict = HOLDS
    return ClaimResult(
        claim_id="eq28",
        verdict=verdict,
        measured={
            "certified sup / eq. 28, max": fmt(float(ratio.max()), 4),
            "certified sup / eq. 28 at D_max (min over T)": fmt(float(ratio[-1].min()), 4),
            "upper bound U / eq. 28, max": fmt(float(upper_ratio.max()), 4),
            "eq. 28 / certified sup, max": fmt(factor, 4),
        },
        rule=(
            "C <= sup <= U as in Lemma 3. Eq. 28 claims sup = its right side: if U <= eq. 28 everywhere (valid as an "
            "upper bound) and C/eq. 28 < 0.5 everywhere (the '=' is false) with eq. 28/C > "
            f"{LOOSE_FACTOR} -> 'loose by a factor'; U > eq. 28 somewhere -> 'refuted'; else 'holds'."
        ),
        notes=[
            f"certified sup / eq. 28 per (D, T), T = {', '.join(fmt(float(t)) for t in d['T'])}: "
            f"{_per_cell(d['dims'], d['T'], ratio)}.",
            f"certified sup T^4/D^2 per (D, T): {_per_cell(d['dims'], d['T'], d['C'] / d['D2_over_T4'])}.",
        ],
        correction=(
            "'=' must be '<=': eq. 28 is an upper bound. The supremum over sources on [0,1]^D and x in "
            "[-sqrt(D), sqrt(D)]^D is (2-T) D^2/(4T^4) to leading order, about 1/8 of eq. 28's leading term "
            "2(2-T) D^2/T^4 (||Cov|| <= D/4 instead of 2D)."
            if verdict == LOOSE
            else ""
        ),
        data={"ratio_sup_to_eq28": ratio, "ratio_upper_to_eq28": upper_ratio, "dims": d["dims"], "T": d["T"]},
    )


def check_r_substitution(size: str = "quick") -> ClaimResult:
    """Suppl. eq. 27 -> 28: R <= sqrt(D) replaced by sqrt(D) ("considering Lemma 5")."""
    check_size(size)
    d = _lemma3_data(size)
    dims, ts = list(d["dims"]), list(d["T"])
    # eq. 27 must be non-decreasing in R, so R = sqrt(D) gives an upper bound for every R <= sqrt(D).
    monotone = all(
        eq27_bound(dd, t, r1) <= eq27_bound(dd, t, r2)
        for dd in dims
        for t in ts
        for r1, r2 in ((0.5, 1.0), (1.0, math.sqrt(dd)))
    )
    same = bool(
        np.allclose([eq27_bound(dd, t, math.sqrt(dd)) for dd in dims for t in ts], d["eq28"].ravel(), rtol=1e-12)
    )
    ball_order = d["C_ball"] / (d["dims"][:, None] ** 1.5 / d["T"][None, :] ** 4)
    box_over_ball = d["C"] / d["C_ball"]
    verdict = HOLDS if monotone and same else REFUTED
    return ClaimResult(
        claim_id="r_substitution",
        verdict=verdict,
        measured={
            "eq. 27 non-decreasing in R": str(monotone),
            "eq. 27 at R = sqrt(D) equals eq. 28": str(same),
            "box sup / ball construction at D_max (min over T)": fmt(float(box_over_ball[-1].min()), 4),
            "ball construction T^4/D^1.5 at D_max": fmt(float(ball_order[-1].min()), 4),
        },
        rule=(
            "'holds' if eq. 27 is non-decreasing in R and equals eq. 28 at R = sqrt(D) (a valid upper bound); "
            "else 'refuted'."
        ),
        notes=[
            "The substitution is valid, but R is a box half-width: x in [-sqrt(D), sqrt(D)]^D has ||x|| up to D, "
            "far outside the Gaussian annulus / LN sphere (||x|| = sqrt(D)) that 'Lemma 5' refers to. On the ball "
            "||x|| <= sqrt(D) the supremum is of order D^1.5/T^4, not D^2/T^4."
        ],
        data={"ball_construction": d["C_ball"], "box_construction": d["C"]},
    )


def check_eq24(size: str = "quick") -> ClaimResult:
    """Suppl. eq. 24 (d_t u) and eq. 31 (grad_x u) against autograd, for random atom sources and theory.fields."""
    check_size(size)
    gen = torch.Generator().manual_seed(24)
    n_src = 4 if size == "quick" else 16
    err_dt = err_jac = err_fields = 0.0
    for i in range(n_src):
        dim = [1, 3, 8, 16][i % 4]
        atoms = torch.rand(5, dim, generator=gen, dtype=torch.float64)
        log_w = torch.randn(5, generator=gen, dtype=torch.float64)
        src = AtomSource(atoms, log_w)
        x = torch.rand(6, dim, generator=gen, dtype=torch.float64) * 2 - 0.5
        t = 0.05 + 0.9 * torch.rand(6, generator=gen, dtype=torch.float64)
        dt_formula = src.time_derivative(x, t)
        jac_formula = src.jacobian(x, t)
        for n in range(x.shape[0]):
            xn, tn = x[n : n + 1], t[n]
            dt_auto = torch.autograd.functional.jacobian(lambda s, xn=xn, src=src: src.velocity(xn, s)[0], tn)
            jac_auto = torch.autograd.functional.jacobian(
                lambda y, tn=tn, src=src: src.velocity(y.unsqueeze(0), tn)[0], xn[0]
            )
            err_dt = max(err_dt, float((dt_auto - dt_formula[n]).norm() / dt_auto.norm().clamp_min(1e-300)))
            err_jac = max(err_jac, float((jac_auto - jac_formula[n]).norm() / jac_auto.norm().clamp_min(1e-300)))
        weights = torch.softmax(log_w, 0)
        mixture = GaussianMixture(atoms, 0.0, weights)
        target = StandardGaussian(dim)
        ref_dt = theory.velocity_time_derivative(x, t, mixture, target)
        ref_eq24 = theory.velocity_time_derivative_eq24(x, t, mixture)
        ref_jac = theory.velocity_jacobian(x, t, mixture, target)
        for a, b in ((ref_dt, dt_formula), (ref_eq24, dt_formula)):
            err_fields = max(err_fields, _rel_err(a, b))
        err_fields = max(
            err_fields,
            float(((ref_jac - jac_formula).flatten(1).norm(dim=1) / jac_formula.flatten(1).norm(dim=1)).max()),
        )
    verdict = HOLDS if max(err_dt, err_jac) < EQ24_TOL else REFUTED
    return ClaimResult(
        claim_id="eq24",
        verdict=verdict,
        measured={
            "eq. 24 vs autograd d_t u (max rel.)": fmt(err_dt, 3),
            "eq. 31 vs autograd grad_x u (max rel.)": fmt(err_jac, 3),
            "independent forms vs theory.fields (max rel.)": fmt(err_fields, 3),
        },
        rule=(
            f"Both formulas must match autograd of u = (x - E0)/t to {EQ24_TOL:g} (relative) -> 'holds', "
            "else 'refuted'."
        ),
        data={},
    )


def check_theorem2(size: str = "quick") -> ClaimResult:
    """Theorem 2: joint Lipschitz on R^D x [T, 1]; d_t u grows linearly in ||x|| (unbounded on R^D)."""
    check_size(size)
    d4, d3 = _lemma4_data(size), _lemma3_data(size)
    radii = np.geomspace(10.0, 1e4, 7)
    slopes_err, growth = [], []
    gen = torch.Generator().manual_seed(5)
    for dim in (1, 4, 16):
        atoms = _corners(dim)
        src = AtomSource(atoms)
        e = torch.randn(dim, generator=gen, dtype=torch.float64)
        e = e / e.norm()
        for t_min in d4["T"]:
            x = torch.from_numpy(radii)[:, None] * e[None, :]
            norms = src.time_derivative(x, float(t_min)).norm(dim=1).numpy()
            slope = np.polyfit(radii, norms, 1)[0]
            slopes_err.append(abs(slope * t_min**2 - 1))
            growth.append(norms[-1] / norms[0])
    slope_err = float(max(slopes_err))
    unbounded = slope_err < SLOPE_TOL and min(growth) > 100
    joint = np.sqrt(d4["certified_sup"] ** 2 + d3["U"] ** 2)  # same (D, T) grid: Lipschitz constant on the box
    bounded_ok = bool(np.all(np.isfinite(joint)))
    if unbounded and bounded_ok:
        verdict = HOLDS_WITH_CORRECTION
    elif bounded_ok:
        verdict = HOLDS
    else:
        verdict = REFUTED
    return ClaimResult(
        claim_id="theorem2",
        verdict=verdict,
        measured={
            "|slope of ||d_t u(r e, T)|| in r| * T^2 - 1 (max)": fmt(slope_err, 3),
            "||d_t u|| growth from r = 10 to 1e4 (min)": fmt(float(min(growth)), 4),
            "joint constant on the box, sqrt(Lx^2 + Lt^2), at D_max T_min": fmt(float(joint[-1, 0]), 4),
        },
        rule=(
            "||d_t u(r e, T)|| for atoms {0, 1}, a random unit e and r = 10..1e4: slope in r must equal 1/T^2 within "
            f"{SLOPE_TOL:g} and the value must grow > 100x (then u is not Lipschitz in t on R^D); with finite "
            "certified "
            "constants on [-R, R]^D x [T, 1] -> 'holds with correction'."
        ),
        correction=(
            "Joint Lipschitz continuity holds on [-R, R]^D x [T, 1] (any bounded x-domain), not on R^D x [T, 1]: "
            "d_t u contains -(x - E0)/t^2, which grows like ||x||/t^2. In x alone the Lemma 4 bound holds on all "
            "of R^D. The joint constant is at most sqrt(L_x^2 + L_t^2) (<= sqrt(2) max{...}), not max{...}."
            if verdict == HOLDS_WITH_CORRECTION
            else ""
        ),
        data={"radii": radii, "slope_errors": np.array(slopes_err), "joint_constant_box": joint},
    )
