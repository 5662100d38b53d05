"""Uniform-sphere target: von Mises-Fisher posterior over X_1 / r per component, first- and second-order passes,
and the point-mass (s -> 0) limit."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .. import vmf
from . import _limits
from ._setup import _chunks, _Setup
from ._streaming import (
    _CenteredSums,
    _component_chunk_size,
    _needs_direct_distances,
    _OnlineLogSumExp,
    _pass2_sizes,
    _sq_distances,
)


@dataclass
class _SphereChunk:
    logits: Tensor  # (n, k)
    norm_a: Tensor  # (n, k) ||a_k||
    sigma2: Tensor  # (n, k) ((1-t) s_k)^2  (unused in the limit)
    kappa: Tensor  # (n, k)
    rho: Tensor  # (n, k): E[X_1 | x, k] = rho a_k
    ratio_over_kappa: Tensor  # (n, k) A / kappa
    ratio: Tensor  # (n, k) A
    derivative: Tensor  # (n, k) dA/dkappa


def _sphere_chunk(setup: _Setup, qs: slice, ks: slice, direct: bool, limit: bool, min_dist: Tensor | None):
    x, t = setup.x[qs], setup.t[qs]
    comps = setup.comps
    r, dim = setup.radius, setup.dim
    one_minus_t = 1 - t
    sq = _sq_distances(x, x.pow(2).sum(1), one_minus_t, comps.means[ks], comps.sq_norms[ks], direct)
    norm_a = sq.sqrt()
    tr = (t * r)[:, None]
    dist = (norm_a - tr).abs()
    if limit:
        safe = norm_a.clamp_min(torch.finfo(torch.float64).tiny)
        keep = dist <= min_dist[:, None]
        logits = comps.log_weights[None, ks] - (0.5 * dim - 0.5) * safe.log()
        logits = torch.where(keep, logits, torch.full_like(logits, -math.inf))
        ones = torch.ones_like(norm_a)
        return _SphereChunk(
            logits=logits,
            norm_a=norm_a,
            sigma2=torch.zeros_like(norm_a),
            kappa=torch.full_like(norm_a, math.inf),
            rho=torch.where(norm_a > 0, r / safe, torch.zeros_like(norm_a)),
            ratio_over_kappa=torch.zeros_like(norm_a),
            ratio=ones,
            derivative=torch.zeros_like(norm_a),
        )
    sigma2 = one_minus_t.pow(2)[:, None] * comps.variances[None, ks]
    kappa = tr * norm_a / sigma2
    kappa_np = kappa.cpu().numpy()
    ratio, over, derivative = (torch.from_numpy(a).to(x.device) for a in vmf.vmf_statistics(dim, kappa_np))
    log_mgf = torch.from_numpy(vmf.log_sphere_mgf_scaled(dim, kappa_np)).to(x.device)
    # -(||a||^2 + t^2 r^2) / (2 sigma^2) + kappa, written without the cancellation:
    logits = comps.log_weights[None, ks] - 0.5 * dim * torch.log(2 * math.pi * sigma2)
    logits = logits - 0.5 * dist.pow(2) / sigma2 + log_mgf
    rho = r * over * tr / sigma2
    return _SphereChunk(logits, norm_a, sigma2, kappa, rho, over, ratio, derivative)


def _sphere_min_distance(setup: _Setup, qs: slice, direct: bool) -> Tensor:
    """Distance from x to the nearest sphere {(1-t) m_k + t r z}, plus the tie tolerance."""
    x, t = setup.x[qs], setup.t[qs]
    comps = setup.comps
    one_minus_t = 1 - t
    best = torch.full((x.shape[0],), math.inf, dtype=x.dtype, device=x.device)
    for ks in _chunks(comps.count, _component_chunk_size(x.shape[0], _limits.GENERAL_ENTRY_BUDGET)):
        sq = _sq_distances(x, x.pow(2).sum(1), one_minus_t, comps.means[ks], comps.sq_norms[ks], direct)
        best = torch.minimum(best, (sq.sqrt() - (t * setup.radius)[:, None]).abs().min(1).values)
    scale = x.norm(dim=1) + setup.radius + one_minus_t * comps.sq_norms.max().sqrt()
    return best + _limits.SPHERE_TIE_TOLERANCE * scale


def _sphere_pass1(setup: _Setup, qs: slice, limit: bool, min_dist: Tensor | None) -> dict[str, Tensor]:
    """Streaming sums for the sphere target: log Z, R = E_pi[rho], VR = E_pi[rho m], G = E_pi[gamma], VG."""
    x, t = setup.x[qs], setup.t[qs]
    comps = setup.comps
    n = x.shape[0]
    one_minus_t = 1 - t
    min_var = one_minus_t.pow(2) * comps.variances.min()
    direct = limit or _needs_direct_distances(x, one_minus_t, comps, min_var.clamp_min(1e-300))
    acc = _OnlineLogSumExp(n, x.dtype, x.device)
    for ks in _chunks(comps.count, _component_chunk_size(n, _limits.GENERAL_ENTRY_BUDGET)):
        chunk = _sphere_chunk(setup, qs, ks, direct, limit, min_dist)
        weights = acc.weights(chunk.logits)
        acc.add("R", (weights * chunk.rho).sum(1))
        acc.add("VR", (weights * chunk.rho) @ comps.means[ks])
        if not limit:
            gamma = (1 - t[:, None] * chunk.rho) / chunk.sigma2
            acc.add("G", (weights * gamma).sum(1))
            acc.add("VG", (weights * gamma) @ comps.means[ks])
    out = {"log_z": acc.log_normaliser(), "R": acc.mean("R"), "VR": acc.mean("VR")}
    if not limit:
        out["G"] = acc.mean("G")
        out["VG"] = acc.mean("VG")
    return out


def _sphere_pass2(
    setup: _Setup, qs: slice, first: dict[str, Tensor], need: set[str], limit: bool, min_dist: Tensor | None
) -> dict[str, Tensor]:
    """Cov[X_1|x], grad_x u and d_t u for the sphere target from the per-component vMF posteriors."""
    x, t = setup.x[qs], setup.t[qs]
    comps = setup.comps
    n, dim = x.shape
    r = setup.radius
    one_minus_t = 1 - t
    min_var = one_minus_t.pow(2) * comps.variances.min()
    direct = limit or _needs_direct_distances(x, one_minus_t, comps, min_var.clamp_min(1e-300))
    mean_x1, velocity = first["mean_x1"][qs], first["velocity"][qs]
    score_ = None if limit else first["score"][qs]
    total = torch.zeros(n, dtype=x.dtype, device=x.device)
    iso = torch.zeros(n, dtype=x.dtype, device=x.device)  # sum pi_k (isotropic coefficient)
    along = torch.zeros(n, dim, dim, dtype=x.dtype, device=x.device)  # sum pi_k c_k a^ a^T
    dtu_mean = torch.zeros(n, dim, dtype=x.dtype, device=x.device)
    cov, jac, dtu = _CenteredSums(), _CenteredSums(), _CenteredSums()
    _, kc = _pass2_sizes(n, dim)
    tt = t[:, None]
    for ks in _chunks(comps.count, kc):
        chunk = _sphere_chunk(setup, qs, ks, direct, limit, min_dist)
        weights = torch.exp(chunk.logits - first["log_z"][qs, None])
        total += weights.sum(1)
        m = comps.means[ks][None]
        a = x[:, None, :] - one_minus_t[:, None, None] * m
        safe = chunk.norm_a.clamp_min(torch.finfo(torch.float64).tiny)
        direction = torch.where((chunk.norm_a > 0)[..., None], a / safe[..., None], torch.zeros_like(a))
        mean_k = chunk.rho[..., None] * a
        # vMF: Cov[z | x, k] = r^2 [(A/kappa) I + (1 - D A/kappa - A^2) a^ a^T]; grad_x E[X_1|x,k] = t/sigma^2 Cov.
        if limit:
            cov_iso = torch.zeros_like(chunk.rho)
            cov_along = torch.zeros_like(chunk.rho)
            jac_iso, jac_along = chunk.rho, -chunk.rho
        else:
            cov_iso = r * r * chunk.ratio_over_kappa
            cov_along = r * r * (1 - dim * chunk.ratio_over_kappa - chunk.ratio.pow(2))
            jac_iso = chunk.rho
            jac_along = tt / chunk.sigma2 * cov_along
        if "cov" in need:
            iso += (weights * cov_iso).sum(1)
            along += torch.einsum("nk,nki,nkj->nij", weights * cov_along, direction, direction)
            delta = mean_k - mean_x1[:, None, :]
            cov.add(weights, delta, delta, True)
        if "jac" in need or "dtu" in need:
            u_k = (mean_k - x[:, None, :]) / one_minus_t[:, None, None]
            du = u_k - velocity[:, None, :]
        if "jac" in need:
            iso += (weights * (jac_iso - 1)).sum(1) / one_minus_t
            weighted = weights * jac_along / one_minus_t[:, None]
            along += torch.einsum("nk,nki,nkj->nij", weighted, direction, direction)
            if not limit:
                g_k = -(a - tt[..., None] * mean_k) / chunk.sigma2[..., None]
                jac.add(weights, du, g_k - score_[:, None, :], True)
        if "dtu" in need:
            m_along = torch.einsum("nki,nki->nk", direction, m.expand_as(a))
            d_mean = chunk.rho[..., None] * (m - m_along[..., None] * direction)
            if not limit:
                d_kappa = r / chunk.sigma2 * (chunk.norm_a * (1 + 2 * tt / one_minus_t[:, None]) + tt * m_along)
                d_mean = d_mean + (r * chunk.derivative * d_kappa)[..., None] * direction
            du_k = d_mean / one_minus_t[:, None, None] + (mean_k - x[:, None, :]) / one_minus_t.pow(2)[:, None, None]
            dtu_mean += torch.einsum("nk,nki->ni", weights, du_k)
            if not limit:
                a_dot_m = chunk.norm_a * m_along
                h_k = (
                    dim / one_minus_t[:, None]
                    - (a_dot_m + tt * r * r) / chunk.sigma2
                    - (chunk.norm_a.pow(2) + (tt * r).pow(2)) / (one_minus_t[:, None] * chunk.sigma2)
                    + chunk.ratio * d_kappa
                )
                dtu.add(weights, du, h_k, False)
    out = {}
    eye = torch.eye(dim, dtype=x.dtype, device=x.device)
    if "cov" in need:
        out["cov_x1"] = (iso / total)[:, None, None] * eye + along / total[:, None, None] + cov.result(total)
    if "jac" in need:
        result = (iso / total)[:, None, None] * eye + along / total[:, None, None]
        out["jac"] = result if limit else result + jac.result(total)
    if "dtu" in need:
        result = dtu_mean / total[:, None]
        out["dtu"] = result if limit else result + dtu.result(total)
    return out
