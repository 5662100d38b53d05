"""Gaussian (and point) target: component likelihoods X_t | k ~ N((1 - t) m_k, v_k I), first-order sums and the
second-order pass (Cov[X_0 | x], grad_x u, d_t u)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

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


def _gaussian_logits(setup: _Setup, target_var: Tensor, qs: slice, ks: slice, direct: bool):
    """Gaussian family X_t | k ~ N((1-t) m_k, v_k I), v_k = (1-t)^2 s_k^2 + target_var: (logits, v) of shape (n, k)."""
    x, t = setup.x[qs], setup.t[qs]
    comps = setup.comps
    one_minus_t = 1 - t
    v = one_minus_t.pow(2)[:, None] * comps.variances[None, ks] + target_var[qs, None]
    sq = _sq_distances(x, x.pow(2).sum(1), one_minus_t, comps.means[ks], comps.sq_norms[ks], direct)
    logits = comps.log_weights[None, ks] - 0.5 * setup.dim * torch.log(2 * math.pi * v) - 0.5 * sq / v
    return logits, v, sq


def _gaussian_pass1(setup: _Setup, target_var: Tensor, qs: slice) -> dict[str, Tensor]:
    """Streaming sums for the Gaussian family: log Z, S1 = E_pi[1/v], S2 = E_pi[s^2/v], V = E_pi[m/v]."""
    x, t = setup.x[qs], setup.t[qs]
    comps = setup.comps
    n, dim = x.shape
    one_minus_t = 1 - t
    acc = _OnlineLogSumExp(n, x.dtype, x.device)
    homoscedastic = comps.homoscedastic
    min_var = one_minus_t.pow(2) * comps.variances.min() + target_var[qs]
    direct = _needs_direct_distances(x, one_minus_t, comps, min_var)
    step = _component_chunk_size(n, _limits.GENERAL_ENTRY_BUDGET)
    if homoscedastic:
        return _gaussian_pass1_homoscedastic(setup, target_var, qs, direct)
    for ks in _chunks(comps.count, step):
        logits, v, _ = _gaussian_logits(setup, target_var, qs, ks, direct)
        weights = acc.weights(logits)
        weights_over_v = weights / v
        acc.add("S1", weights_over_v.sum(1))
        acc.add("S2", (weights_over_v * comps.variances[None, ks]).sum(1))
        acc.add("V", weights_over_v @ comps.means[ks])
    return {"log_z": acc.log_normaliser(), "S1": acc.mean("S1"), "S2": acc.mean("S2"), "V": acc.mean("V")}


def _gaussian_pass1_homoscedastic(setup: _Setup, target_var: Tensor, qs: slice, direct: bool) -> dict[str, Tensor]:
    """Fast path of ``_gaussian_pass1`` when all s_k are equal (e.g. an empirical source): v depends on t only.

    The logits are one matrix product of augmented rows,
    logits_nk = [x_n (1-t)/v, -(1-t)^2/(2v), 1] . [m_k, ||m_k||^2, log w_k]  (+ a per-query constant),
    the component chunk is the outer loop (its augmented copy is built once) and the queries are
    processed in sub-chunks of ``_limits.QUERY_CHUNK`` rows, each with its own online log-sum-exp.
    """
    x, t = setup.x[qs], setup.t[qs]
    comps = setup.comps
    n, dim = x.shape
    one_minus_t = 1 - t
    v = one_minus_t.pow(2) * comps.variances[0] + target_var[qs]
    x_sq = x.pow(2).sum(1)
    cutoff = -math.log(torch.finfo(torch.float64).eps) + math.log(comps.count) + 1.0
    row_const = -0.5 * dim * torch.log(2 * math.pi * v)
    if not direct:
        row_const = row_const - 0.5 * x_sq / v
        x_aug = torch.cat(
            [x * (one_minus_t / v)[:, None], (-0.5 * one_minus_t.pow(2) / v)[:, None], x.new_ones(n, 1)], 1
        )
    sub_chunks = list(_chunks(n, _limits.QUERY_CHUNK))
    accs = [_OnlineLogSumExp(sub.stop - sub.start, x.dtype, x.device) for sub in sub_chunks]
    step = _component_chunk_size(min(n, _limits.QUERY_CHUNK))
    max_columns = step // 4
    for ks in _chunks(comps.count, step):
        m = comps.means[ks]
        m_aug = None if direct else torch.cat([m, comps.sq_norms[ks, None], comps.log_weights[ks, None]], 1).T
        for sub, acc in zip(sub_chunks, accs):
            if direct:
                sq = _sq_distances(x[sub], x_sq[sub], one_minus_t[sub], m, comps.sq_norms[ks], True)
                logits = comps.log_weights[None, ks] - 0.5 * sq / v[sub, None]
            else:
                logits = x_aug[sub] @ m_aug
            selected = acc.column_weights(logits, cutoff, max_columns)
            if selected is None:
                weights = acc.weights(logits)
                acc.add("V", weights @ m)
            else:
                columns, weights = selected
                acc.add("V", weights @ m[columns])
            del logits
    log_z = torch.cat([acc.log_normaliser() for acc in accs]) + row_const
    mean_v = torch.cat([acc.mean("V") for acc in accs])
    return {"log_z": log_z, "S1": 1 / v, "S2": comps.variances[0] / v, "V": mean_v / v[:, None]}


def _gaussian_pass2(setup: _Setup, qs: slice, first: dict[str, Tensor], need: set[str]) -> dict[str, Tensor]:
    """Cov[X_0|x], grad_x u and d_t u for the Gaussian target from per-component quantities."""
    x, t = setup.x[qs], setup.t[qs]
    comps = setup.comps
    n, dim = x.shape
    one_minus_t = (1 - t)[:, None, None]
    target_var = setup.t.pow(2)
    min_var = (1 - t).pow(2) * comps.variances.min() + target_var[qs]
    direct = _needs_direct_distances(x, 1 - t, comps, min_var)
    mean_x0, velocity, score_ = first["mean_x0"][qs], first["velocity"][qs], first["score"][qs]
    total = torch.zeros(n, dtype=x.dtype, device=x.device)
    cov_scalar = torch.zeros(n, dtype=x.dtype, device=x.device)
    jac_scalar = torch.zeros(n, dtype=x.dtype, device=x.device)
    dtu_mean = torch.zeros(n, dim, dtype=x.dtype, device=x.device)
    cov, jac, dtu = _CenteredSums(), _CenteredSums(), _CenteredSums()
    _, kc = _pass2_sizes(n, dim)
    for ks in _chunks(comps.count, kc):
        logits, v, sq = _gaussian_logits(setup, target_var, qs, ks, direct)
        weights = torch.exp(logits - first["log_z"][qs, None])
        total += weights.sum(1)
        m = comps.means[ks][None]  # (1, k, D)
        s2 = comps.variances[None, ks]  # (1, k)
        a = x[:, None, :] - one_minus_t * m  # (n, k, D)
        if "cov" in need:
            mean_k = m + ((1 - t)[:, None] * s2 / v)[..., None] * a
            cov_scalar += (weights * s2 * t[:, None].pow(2) / v).sum(1)
            delta = mean_k - mean_x0[:, None, :]
            cov.add(weights, delta, delta, True)
        if "jac" in need or "dtu" in need:
            numer = t[:, None] - (1 - t)[:, None] * s2
            alpha = numer / v
            u_k = alpha[..., None] * a - m
            du = u_k - velocity[:, None, :]
        if "jac" in need:
            jac_scalar += (weights * alpha).sum(1)
            g_k = -a / v[..., None]
            jac.add(weights, du, g_k - score_[:, None, :], True)
        if "dtu" in need:
            dv = -2 * (1 - t)[:, None] * s2 + 2 * t[:, None]
            dalpha = ((1 + s2) * v - numer * dv) / v.pow(2)
            dtu_mean += torch.einsum("nk,nki->ni", weights, dalpha[..., None] * a + alpha[..., None] * m)
            a_dot_m = torch.einsum("nki,nki->nk", a, m.expand_as(a))
            h_k = -0.5 * dim * dv / v + 0.5 * sq * dv / v.pow(2) - a_dot_m / v
            dtu.add(weights, du, h_k, False)
    out = {}
    eye = torch.eye(dim, dtype=x.dtype, device=x.device)
    if "cov" in need:
        out["cov"] = (cov_scalar / total)[:, None, None] * eye + cov.result(total)
    if "jac" in need:
        out["jac"] = (jac_scalar / total)[:, None, None] * eye + jac.result(total)
    if "dtu" in need:
        out["dtu"] = dtu_mean / total[:, None] + dtu.result(total)
    return out


def _gaussian_point_target(setup: _Setup) -> dict[str, Tensor]:
    """log p_t and score for the point target: X_t | k ~ N((1 - t) m_k, (1 - t)^2 s_k^2 I)."""
    zero = torch.zeros_like(setup.t)
    parts = [_gaussian_pass1(setup, zero, qs) for qs in _chunks(setup.x.shape[0], _limits.QUERY_CHUNK)]
    log_z = torch.cat([p["log_z"] for p in parts])
    s1 = torch.cat([p["S1"] for p in parts])[:, None]
    v = torch.cat([p["V"] for p in parts])
    return {"log_z": log_z, "score": -setup.x * s1 + (1 - setup.t)[:, None] * v}


def _eq24_component_terms(setup: _Setup, qs: slice, ks: slice, log_z: Tensor):
    """Per-component pieces of the centred eq. (24) for queries ``qs`` and components ``ks`` (Gaussian target):
    (weights pi_k, u_k, q_k, g_k), shapes (n, k), (n, k, D), (n, k, D), (n, k); see ``_eq24_centred``."""
    x, t = setup.x[qs], setup.t[qs][:, None]
    logits, v, _ = _gaussian_logits(setup, setup.t.pow(2), qs, ks, True)
    weights = torch.exp(logits - log_z[qs, None])
    m = setup.comps.means[ks][None]
    s2 = setup.comps.variances[None, ks]
    a = x[:, None, :] - (1 - t)[..., None] * m
    u_k = ((t - (1 - t) * s2) / v)[..., None] * a - m
    x_coef = (-((1 - t) * s2).pow(2) + (1 + 2 * t - 2 * t.pow(2)) * s2 - t.pow(2)) / v.pow(2)
    m_coef = ((1 - t.pow(2)) * s2 - t.pow(2)) / v.pow(2)
    q_k = x_coef[..., None] * x[:, None, :] - m_coef[..., None] * m
    w_k = u_k + (x / (2 * (1 - t)))[:, None, :]
    g_k = w_k.pow(2).sum(-1) + setup.dim * s2 / v
    return weights, u_k, q_k, g_k


def _eq24_centred(setup: _Setup, log_z: Tensor) -> Tensor:
    """Eq. (24) rewritten without cancellation for 0 < t < 1, (N, D).

    With a = (2 - t) x / (2 (1 - t)), ||X_0||^2 = ||X_0 - a||^2 + 2 a.X_0 - ||a||^2 turns eq. (24) into
    d_t u = -(x - E_0)/t^2 - (1 - t)/t^4 Cov(X_0, ||X_0 - a||^2 | x). Given component k (X_0 | x, k ~ N(mu_k, c_k I),
    mu_k = x - t u_k, mu_k - a = -t w_k with w_k = u_k + x / (2 (1 - t))) this is
    d_t u = sum_k pi_k q_k + (1 - t)/t sum_k pi_k (u_k - u)(g_k - G), g_k = ||w_k||^2 + D s_k^2/v_k, G = E_pi g_k,
    where q_k = -u_k/t + 2 (1 - t) s_k^2 w_k/(t v_k) is expanded so that its O(1/t) parts cancel exactly:
    q_k = [(-(1-t)^2 s^4 + (1 + 2t - 2t^2) s^2 - t^2) x - ((1 - t^2) s^2 - t^2) m_k] / v_k^2.
    The remaining differences (u_k - u, g_k - G) are O(t) and lose no relative accuracy as t -> 0.
    """
    n, dim = setup.x.shape
    out = torch.zeros(n, dim, dtype=torch.float64, device=setup.x.device)
    for qs in _chunks(n, _pass2_sizes(n, dim)[0]):
        k_chunk = _pass2_sizes(qs.stop - qs.start, dim)[1]
        mean_u = torch.zeros(qs.stop - qs.start, dim, dtype=torch.float64, device=setup.x.device)
        mean_g = torch.zeros(qs.stop - qs.start, dtype=torch.float64, device=setup.x.device)
        for ks in _chunks(setup.comps.count, k_chunk):
            weights, u_k, _, g_k = _eq24_component_terms(setup, qs, ks, log_z)
            mean_u += torch.einsum("nk,nki->ni", weights, u_k)
            mean_g += (weights * g_k).sum(1)
        t = setup.t[qs][:, None]
        for ks in _chunks(setup.comps.count, k_chunk):
            weights, u_k, q_k, g_k = _eq24_component_terms(setup, qs, ks, log_z)
            spread = torch.einsum("nk,nki->ni", weights * (g_k - mean_g[:, None]), u_k - mean_u[:, None, :])
            out[qs] += torch.einsum("nk,nki->ni", weights, q_k) + (1 - t) / t * spread
    return out
