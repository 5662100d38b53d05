"""Proposition 2: the angle between the initial field u(x, 0+) and the OT displacement T(x) - x, for BN-like and
LN-like sources, Gaussian and sphere targets; the exact small-t field and the paper's centripetal field -x.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ._base import HOLDS, HOLDS_WITH_CORRECTION, REFUTED, ClaimResult, check_size, fmt, printed_form, single_threaded
from ._cpf_common import ANGLE_BAND, ANGLE_FRACTION, SMALL_RATIO, angles_deg, expected_chi
from ._posterior import gaussian_source_velocity, subsphere_source_velocity

__all__ = ["check_proposition2", "prop2_configurations"]


def _rng_normal(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    return rng.standard_normal((n, dim))


def prop2_configurations(dim: int, rng: np.random.Generator) -> list[dict]:
    """Source/target pairs of Prop. 2 in dimension D with: a sampler, the exact initial field and the OT map.

    Each entry: name, regime ('BN' or 'LN'), target ('gaussian' / 'sphere'), sample_source(n), sample_target(n),
    u0(x) -> (direction field at t -> 0+, ||u(x, 0+)|| / ||x||), ot_map(x) or None (closed-form barycentric map).
    """
    sigma = 0.5
    configs = []
    root = math.sqrt(dim)

    def sphere(n):
        z = _rng_normal(rng, n, dim)
        return root * z / np.linalg.norm(z, axis=1, keepdims=True)

    def u_density(x):  # population source with a density: u(x, 0+) = -x
        return -x, np.ones(len(x))

    # BN-like isotropic: N(0, sigma^2 I), ||x_0|| ~ sigma sqrt(D) < sqrt(D).
    for target in ("gaussian", "sphere"):
        configs.append(
            {
                "name": f"isotropic N(0, {sigma}^2 I)",
                "regime": "BN",
                "target": target,
                "sample_source": lambda n: sigma * _rng_normal(rng, n, dim),
                "sample_target": (lambda n: _rng_normal(rng, n, dim)) if target == "gaussian" else sphere,
                "u0": u_density,
                "ot_map": (lambda x: x / sigma)
                if target == "gaussian"
                else (lambda x: root * x / np.linalg.norm(x, axis=1, keepdims=True)),
            }
        )

    # LN-like isotropic: uniform on the sphere of radius sqrt(D). Exact u(x, 0+) = 0 on the support.
    def u_same_sphere(x):
        # Source and target on the same sphere: ||X_t|| = sqrt(D) forces X_0 = X_1 = x (strict convexity of the
        # ball), so u(x, t) = 0 on the support for every t; no direction at all.
        return np.zeros_like(x), np.zeros(len(x))

    def u_sphere(x, basis=None, radius=root):
        basis = np.eye(dim) if basis is None else basis
        t = 1e-3
        u = subsphere_source_velocity(torch.from_numpy(x), t, torch.from_numpy(basis), radius).numpy()
        u0 = subsphere_source_velocity(torch.from_numpy(x), 1e-7, torch.from_numpy(basis), radius).numpy()
        return u, np.linalg.norm(u0, axis=1) / np.linalg.norm(x, axis=1)

    for target in ("gaussian", "sphere"):
        configs.append(
            {
                "name": "uniform on the sqrt(D)-sphere",
                "regime": "LN",
                "target": target,
                "sample_source": sphere,
                "sample_target": (lambda n: _rng_normal(rng, n, dim)) if target == "gaussian" else sphere,
                "u0": u_sphere if target == "gaussian" else u_same_sphere,
                # Radial plan; its barycentric projection is E[chi_D] x/||x|| (Gaussian) or the identity (sphere).
                "ot_map": (lambda x: expected_chi(dim) * x / np.linalg.norm(x, axis=1, keepdims=True))
                if target == "gaussian"
                else (lambda x: x),
            }
        )

    # Manifold sources: k-dim Gaussian through a random linear map (BN-like), and the same normalised (LN-like).
    k = 1 if dim == 2 else 4
    a = rng.standard_normal((dim, k))
    a *= sigma * root / math.sqrt(np.sum(a**2))  # E||A z||^2 = sigma^2 D
    u_svd, s_svd, _ = np.linalg.svd(a, full_matrices=False)
    bary = u_svd @ np.diag(1 / s_svd) @ u_svd.T  # OT N(0, A A^T) -> N(0, I): in V, w -> S^-1 w; normal part: mean 0
    cov = torch.from_numpy(a @ a.T)
    zero = torch.zeros(dim, dtype=torch.float64)

    def u_linear(x):
        u = gaussian_source_velocity(torch.from_numpy(x), 1e-7, zero, cov).numpy()
        return u, np.linalg.norm(u, axis=1) / np.linalg.norm(x, axis=1)

    for target in ("gaussian", "sphere"):
        configs.append(
            {
                "name": f"{k}-dim Gaussian through a random linear map",
                "regime": "BN",
                "target": target,
                "sample_source": lambda n: _rng_normal(rng, n, k) @ a.T,
                "sample_target": (lambda n: _rng_normal(rng, n, dim)) if target == "gaussian" else sphere,
                "u0": u_linear,
                "ot_map": (lambda x: x @ bary.T) if target == "gaussian" else None,
            }
        )
    if dim > 2:
        basis, _ = np.linalg.qr(rng.standard_normal((dim, k)))

        def sub_sphere(n):
            z = _rng_normal(rng, n, k)
            return root * (z / np.linalg.norm(z, axis=1, keepdims=True)) @ basis.T

        for target in ("gaussian", "sphere"):
            configs.append(
                {
                    "name": f"{k}-dim subspace, normalised to radius sqrt(D)",
                    "regime": "LN",
                    "target": target,
                    "sample_source": sub_sphere,
                    "sample_target": (lambda n: _rng_normal(rng, n, dim)) if target == "gaussian" else sphere,
                    "u0": (lambda x, basis=basis: u_sphere(x, basis, root)) if target == "gaussian" else u_same_sphere,
                    # In V: radial plan from radius sqrt(D) to chi_k; barycentric E[chi_k] x/||x||.
                    "ot_map": (lambda x: expected_chi(k) * x / np.linalg.norm(x, axis=1, keepdims=True))
                    if target == "gaussian"
                    else None,
                }
            )
    return configs


def _classify(angles: np.ndarray) -> str:
    angles = angles[np.isfinite(angles)]
    if angles.size == 0:
        return "undefined"
    if np.mean(np.abs(angles - 180) < ANGLE_BAND) >= ANGLE_FRACTION:
        return "opposite"
    if np.mean(np.abs(angles - 90) < ANGLE_BAND) >= ANGLE_FRACTION:
        return "orthogonal"
    if np.mean(angles < ANGLE_BAND) >= ANGLE_FRACTION:
        return "aligned"
    return "mixed"


PROPOSITION2_PRINTED = {"directions": ("orthogonal", "opposite")}


def prop2_verdict(rows: list[dict], directions) -> str:
    """Verdict of Prop. 2 from the per-case rows (see ``check_proposition2``).

    In the paper's own terms (u(x, 0) = -x against the closed-form OT displacement) a class outside ``directions``
    -> 'refuted'. Otherwise, if the exact field differs from the paper's (LN-like sources: u(x, 0+) = 0, or an
    exact class outside ``directions``) -> 'holds with correction'; else 'holds'."""
    allowed = set(directions) | {"OT is the identity", "undefined"}
    if any(r.get("paper_field_class", "undefined") not in allowed for r in rows):
        return REFUTED
    ln_zero = any(r["u0_over_x_median"] < SMALL_RATIO for r in rows if r["regime"] == "LN")
    if ln_zero or any(r.get("closed_form_class", "undefined") not in allowed for r in rows):
        return HOLDS_WITH_CORRECTION
    return HOLDS


def _angle_text(angles: np.ndarray, cls: str) -> str:
    return (
        f"{cls}, median {fmt(float(np.median(angles)), 4)} deg "
        f"(5-95%: {fmt(float(np.percentile(angles, 5)), 3)}-{fmt(float(np.percentile(angles, 95)), 3)})"
    )


def _prop2_rows(size: str) -> list[dict]:
    """Per configuration (D = 2 and 64): |u(x, 0+)|/||x||, closed-form angles of the OT displacement with the exact
    u(x, 0+) and with -x, and the angles of finite-sample POT plans (``ot.emd``) with the exact u."""
    import ot

    n_values = [64, 256] if size == "quick" else [64, 128, 256, 512, 1024, 2048]
    n_eval = 256 if size == "quick" else 2048
    rows = []
    for dim in (2, 64):
        rng = np.random.default_rng(2 + dim)
        for cfg in prop2_configurations(dim, rng):
            x = cfg["sample_source"](n_eval)
            u_dir, u0_ratio = cfg["u0"](x)
            row = {
                "D": dim,
                "name": cfg["name"],
                "regime": cfg["regime"],
                "target": cfg["target"],
                "u0_over_x_median": float(np.median(u0_ratio)),
            }
            if cfg["ot_map"] is not None:
                disp = cfg["ot_map"](x) - x
                disp_ratio = np.linalg.norm(disp, axis=1) / np.linalg.norm(x, axis=1)
                identity = float(np.median(disp_ratio)) < 1e-12
                angles = np.full(len(x), np.nan) if identity else angles_deg(u_dir, disp)
                paper = np.full(len(x), np.nan) if identity else angles_deg(-x, disp)
                row |= {
                    "closed_form_angles": angles,
                    "closed_form_class": "OT is the identity" if identity else _classify(angles),
                    "paper_field_angles": paper,
                    "paper_field_class": "OT is the identity" if identity else _classify(paper),
                    "ot_disp_over_x_median": float(np.median(disp_ratio)),
                }
            finite, paper_finite = {}, {}
            for n in n_values:
                xs, ys = cfg["sample_source"](n), cfg["sample_target"](n)
                plan = ot.emd(np.full(n, 1 / n), np.full(n, 1 / n), ot.dist(xs, ys), numItermax=10**7)
                disp = n * plan @ ys - xs
                finite[n] = angles_deg(cfg["u0"](xs)[0], disp)
                paper_finite[n] = angles_deg(-xs, disp)
            row["finite_angles"] = finite
            row["paper_field_finite_angles"] = paper_finite
            row["finite_median_by_n"] = {
                n: float(np.median(a[np.isfinite(a)])) if np.isfinite(a).any() else math.nan for n, a in finite.items()
            }
            rows.append(row)
    return rows


@single_threaded
def check_proposition2(size: str = "quick", printed: dict | None = None) -> ClaimResult:
    """Prop. 2: angle between the initial field and the OT displacement T(x) - x (closed form and POT's ot.emd),
    for the exact small-t field and for the paper's centripetal field -x (eq. 12).

    ``printed``: {"directions": the allowed classes, printed ("orthogonal", "opposite")}."""
    check_size(size)
    directions = tuple(printed_form("prop2", PROPOSITION2_PRINTED, printed)["directions"])
    rows = _prop2_rows(size)

    def key(r):
        return f"D={r['D']} {r['regime']} {r['name']} -> {r['target']}"

    verdict = prop2_verdict(rows, directions)
    measured = {}
    for r in rows:
        parts = [f"|u(x,0+)|/|x| = {fmt(r['u0_over_x_median'], 2)}"]
        if r.get("closed_form_class") == "OT is the identity":
            parts.append("closed form: OT is the identity")
        elif "closed_form_class" in r:
            parts.append("OT vs exact u(x, 0+): " + _angle_text(r["closed_form_angles"], r["closed_form_class"]))
            parts.append("OT vs paper's -x: " + _angle_text(r["paper_field_angles"], r["paper_field_class"]))
        med = r["finite_median_by_n"]
        if all(math.isnan(v) for v in med.values()):
            parts.append("u = 0 on the support for all t: no angle")
        else:
            parts.append("ot.emd vs exact u, median angle " + ", ".join(f"n={n}: {fmt(v, 3)}" for n, v in med.items()))
        measured[key(r)] = "; ".join(parts)
    return ClaimResult(
        claim_id="prop2",
        verdict=verdict,
        measured=measured,
        rule=(
            "Two initial fields against the closed-form OT displacement T(x) - x: the paper's centripetal field -x "
            "(eq. 12, 'paper's -x') and the exact population field u(x, 0+) (closed forms; where it vanishes, the "
            "direction of u at t = 1e-3; 'exact u'). A case is 'opposite' ('orthogonal') if >= "
            f"{ANGLE_FRACTION:.0%} of angles are within {ANGLE_BAND:g} deg of 180 (90); 'aligned' if within "
            f"{ANGLE_BAND:g} deg of 0; else 'mixed'. Any case where the paper's -x is neither orthogonal nor opposite "
            "to OT -> 'refuted' (in the paper's own terms); otherwise, if the exact field vanishes on an LN-like "
            f"support (||u(x, 0+)||/||x|| < {SMALL_RATIO:g}) or its class is neither -> 'holds with correction'; else "
            "'holds'. ot.emd angles (finite samples) are reported, not used."
        ),
        correction=(
            "In the paper's own terms (u(x, 0) = -x, eq. 12) Prop. 2 fails for WT-Flow: LN outputs lie on the sphere "
            "of radius sqrt(D), the OT map to N(0, I) is radial and inward (radius sqrt(D) -> E chi_k for a k-dim "
            "manifold), so -x is aligned with the OT displacement (angle 0), not orthogonal or opposite. The exact "
            "field has no initial direction there at all: u(x, 0+) = -P_T x = 0 on the support (Prop. 1's "
            "correction); for small t > 0 it points outward (Gaussian target, opposite to OT) or stays 0 (sphere "
            "target of radius sqrt(D), where the OT map is the identity). 'Opposite to OT' holds for centred "
            "isotropic sources with a density inside the target radius (BN-like: u(x, 0+) = -x, OT radial outward); "
            "for a source on a k-dim subspace whose spread per direction exceeds the target's (||x_0|| ~ d with "
            "d^2/k > 1), the OT displacement points inward as well and u(x, 0+) = -x is aligned with it, not opposite."
            if verdict == REFUTED
            else ""
        ),
        notes=[
            "In D = 64 the finite-sample OT plan (ot.emd) is dominated by sampling noise: in the isotropic BN-like "
            "Gaussian case the exact angle is 180 deg everywhere, yet the sampled angles sit near 80 deg and creep up "
            "slowly with n; finite-sample angles near 90 deg in high dimension say nothing about orthogonality.",
            "With the empirical source (training set) u(m_k, t) -> 0 as well (Prop. 1), so the same conclusion holds "
            "at the training points for BN and LN alike.",
        ],
        data={"rows": rows},
    )
