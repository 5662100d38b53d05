"""Independent closed forms of the rFM posterior for the claim checks (float64 torch).

These are written separately from ``theory.fields`` on purpose: the claim checks compare the two.
Path: X_t = (1 - t) X_0 + t X_1 with X_0 ~ source, X_1 ~ target independent (eq. 8 / Lemma 2).
For any target, x = (1 - t) E[X_0 | x] + t E[X_1 | x], hence u(x, t) = E[X_1 - X_0 | x] = (x - E0) / t.

Sources covered:
* finite atoms m_k with free log-weights (empirical sets, worst-case constructions of Lemmas 3-4);
* a Gaussian N(c, Sigma), Sigma possibly singular (a source on an affine subspace, Prop. 1);
* the uniform law on a sphere of radius r inside a k-dim linear subspace (LN-like data, Props. 1-2),
with the standard Gaussian target; plus isotropic Gaussian mixtures with Gaussian, point and ring
targets for Lemma 2.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.special import ive
from torch import Tensor

from ..gaussian_source import gaussian_source_velocity

__all__ = [
    "AtomSource",
    "gaussian_source_velocity",
    "gmm_gaussian_target",
    "gmm_point_target",
    "gmm_ring_target",
    "one_minus_mean_resultant_length",
    "subsphere_source_velocity",
]


def _col(t: Tensor | float, n: int) -> Tensor:
    t = torch.as_tensor(t, dtype=torch.float64)
    return (t.expand(n) if t.ndim == 0 else t).reshape(n, 1)


class AtomSource:
    """Source sum_k w_k delta(m_k) with the N(0, I) target; ``log_weights`` need not be normalised.

    Args:
        atoms: (K, D) atom positions m_k.
        log_weights: (K,) log w_k (free: extreme weights reach the suprema of Lemma 3), default uniform.
    """

    def __init__(self, atoms: Tensor, log_weights: Tensor | None = None):
        self.atoms = torch.as_tensor(atoms, dtype=torch.float64)
        k = self.atoms.shape[0]
        self.log_weights = (
            torch.zeros(k, dtype=torch.float64) if log_weights is None else torch.as_tensor(log_weights).double()
        )

    def posterior(self, x: Tensor, t: Tensor | float) -> Tensor:
        """(N, K) posterior weights P(X_0 = m_k | X_t = x), logits log w_k - ||x - (1-t) m_k||^2 / (2 t^2)."""
        tc = _col(t, x.shape[0])
        sq = (x.unsqueeze(1) - (1 - tc).unsqueeze(1) * self.atoms.unsqueeze(0)).pow(2).sum(-1)
        return torch.softmax(self.log_weights - sq / (2 * tc**2), dim=1)

    def moments(self, x: Tensor, t: Tensor | float) -> tuple[Tensor, Tensor, Tensor]:
        """E0 (N, D), Cov[X_0 | x] (N, D, D) and Cov(X_0, ||X_0||^2 | x) (N, D)."""
        pi = self.posterior(x, t)
        e0 = pi @ self.atoms
        centred = self.atoms.unsqueeze(0) - e0.unsqueeze(1)  # (N, K, D)
        cov = torch.einsum("nk,nki,nkj->nij", pi, centred, centred)
        sq = self.atoms.pow(2).sum(-1)  # (K,)
        cov_sq = torch.einsum("nk,nki,k->ni", pi, centred, sq)
        return e0, cov, cov_sq

    def velocity(self, x: Tensor, t: Tensor | float) -> Tensor:
        """u(x, t) = (x - E0) / t, (N, D)."""
        e0 = self.posterior(x, t) @ self.atoms
        return (x - e0) / _col(t, x.shape[0])

    def jacobian(self, x: Tensor, t: Tensor | float) -> Tensor:
        """grad_x u = I / t - (1 - t) / t^3 Cov[X_0 | x] (Suppl. eq. 31 with eq. 30), (N, D, D)."""
        _, cov, _ = self.moments(x, t)
        tc = _col(t, x.shape[0]).unsqueeze(-1)
        eye = torch.eye(x.shape[1], dtype=torch.float64)
        return eye / tc - (1 - tc) / tc**3 * cov

    def time_derivative(self, x: Tensor, t: Tensor | float) -> Tensor:
        """d_t u = -(x - E0)/t^2 + (2 - t)/t^4 Cov x - (1 - t)/t^4 Cov(X_0, ||X_0||^2) (Suppl. eq. 24), (N, D)."""
        e0, cov, cov_sq = self.moments(x, t)
        tc = _col(t, x.shape[0])
        cov_x = torch.einsum("nij,nj->ni", cov, x)
        return -(x - e0) / tc**2 + (2 - tc) / tc**4 * cov_x - (1 - tc) / tc**4 * cov_sq


def _hankel_sum(nu: float, kappa: np.ndarray, terms: int = 10) -> list[np.ndarray]:
    """Terms (-1)^j a_j(nu) / kappa^j of I_nu(kappa) sqrt(2 pi kappa) e^-kappa (DLMF 10.40.1), j = 0..terms-1."""
    mu = 4.0 * nu * nu
    out, coef = [], np.ones_like(kappa)
    for j in range(terms):
        if j > 0:
            coef = coef * (-(mu - (2 * j - 1) ** 2) / (j * 8.0 * kappa))
        out.append(coef)
    return out


def one_minus_mean_resultant_length(kappa: np.ndarray, k: int) -> np.ndarray:
    """1 - A_k(kappa), A_k = I_{k/2}/I_{k/2-1}: E[z] = A mu for z ~ vMF(mu, kappa) on S^{k-1}.

    Bessel ratio (scipy ``ive``) for moderate kappa; for kappa >> (k/2)^2, where ``ive`` fails, the Hankel
    expansion with the difference of the two series taken term by term (no cancellation in 1 - A).
    """
    kappa = np.asarray(kappa, dtype=np.float64)
    nu = 0.5 * k - 1.0
    large = kappa > 200.0 * (nu + 2.0) ** 2
    safe = np.where(kappa < 1e-8, 1.0, kappa)
    with np.errstate(invalid="ignore"):
        ratio = 1.0 - ive(nu + 1.0, safe) / ive(nu, safe)
    ratio = np.where(kappa < 1e-8, 1.0 - kappa / k, ratio)
    big = np.where(large, kappa, 1e6 * (nu + 2.0) ** 2)
    low, high = _hankel_sum(nu, big), _hankel_sum(nu + 1.0, big)
    asym = sum(a - b for a, b in zip(low, high)) / sum(low)
    return np.where(large, asym, ratio)


def subsphere_source_velocity(x: Tensor, t: float, basis: Tensor, radius: float) -> Tensor:
    """u(x, t) for X_0 uniform on {B z : ||z|| = r} (B: (D, k) orthonormal columns) and X_1 ~ N(0, I).

    The posterior over the direction z / r is von Mises-Fisher on S^{k-1} with mean direction B^T x
    and concentration kappa = (1 - t) r ||B^T x|| / t^2, so E0 = r A_k(kappa) B (B^T x) / ||B^T x||.
    Written as u = [x - B B^T x + (||B^T x|| - r + r (1 - A)) B (B^T x)/||B^T x||] / t to avoid cancellation.
    """
    basis = torch.as_tensor(basis, dtype=torch.float64)
    k = basis.shape[1]
    coords = x @ basis  # (N, k)
    norm = coords.norm(dim=1, keepdim=True)
    kappa = ((1 - t) * radius * norm / t**2).squeeze(1).numpy()
    gap = torch.from_numpy(one_minus_mean_resultant_length(kappa, k)).unsqueeze(1)
    radial = (norm - radius + radius * gap) * (coords / norm) @ basis.T
    return (x - coords @ basis.T + radial) / t


def gmm_gaussian_target(x: Tensor, t: float, means: Tensor, stds: Tensor, weights: Tensor) -> tuple[Tensor, Tensor]:
    """Isotropic GMM source, N(0, I) target: (u, score) at x, both (N, D).

    p_t = sum_k w_k N((1 - t) m_k, v_k I), v_k = (1 - t)^2 s_k^2 + t^2; the score comes from autograd of
    log p_t, u from the per-component posterior means (independent of eq. 9).
    """
    x = x.detach().clone().requires_grad_(True)
    var = (1 - t) ** 2 * stds**2 + t**2  # (K,)
    centres = (1 - t) * means
    sq = (x.unsqueeze(1) - centres.unsqueeze(0)).pow(2).sum(-1)
    logits = torch.log(weights) - 0.5 * sq / var - 0.5 * x.shape[1] * torch.log(2 * math.pi * var)
    log_p = torch.logsumexp(logits, dim=1)
    (score,) = torch.autograd.grad(log_p.sum(), x)
    resp = torch.softmax(logits, dim=1).detach()
    gain = ((1 - t) * stds**2 / var).view(1, -1, 1)
    e0_k = means.unsqueeze(0) + gain * (x.detach().unsqueeze(1) - centres.unsqueeze(0))
    e0 = (resp.unsqueeze(-1) * e0_k).sum(1)
    return (x.detach() - e0) / t, score


def gmm_point_target(x: Tensor, t: float, means: Tensor, stds: Tensor, weights: Tensor) -> tuple[Tensor, Tensor]:
    """Isotropic GMM source (all s_k > 0), point target X_1 = 0: (u, score), both (N, D).

    X_t = (1 - t) X_0, so u = E[X_1 - X_0 | x] = -x / (1 - t) exactly; p_t is the GMM scaled by 1 - t.
    """
    x = x.detach().clone().requires_grad_(True)
    var = (1 - t) ** 2 * stds**2
    sq = (x.unsqueeze(1) - (1 - t) * means.unsqueeze(0)).pow(2).sum(-1)
    logits = torch.log(weights) - 0.5 * sq / var - 0.5 * x.shape[1] * torch.log(2 * math.pi * var)
    (score,) = torch.autograd.grad(torch.logsumexp(logits, dim=1).sum(), x)
    return -x.detach() / (1 - t), score


def gmm_ring_target(
    x: Tensor, t: float, means: Tensor, stds: Tensor, weights: Tensor, radius: float, nodes: int = 2048
) -> tuple[Tensor, Tensor]:
    """Isotropic GMM source in 2-D (all s_k > 0), uniform ring target of radius R: (u, score), (N, 2).

    Periodic trapezoid rule over the ring angle (spectrally accurate):
    p_t(x) = sum_k w_k mean_theta N(x; (1 - t) m_k + t R e_theta, (1 - t)^2 s_k^2 I);
    u = E[X_1 | x] - E[X_0 | x] with E0 = (x - t E1) / (1 - t).
    """
    if x.shape[1] != 2:
        raise ValueError(f"gmm_ring_target is 2-D only, got x of shape {tuple(x.shape)}")
    theta = torch.arange(nodes, dtype=torch.float64) * (2 * math.pi / nodes)
    ring = radius * torch.stack([torch.cos(theta), torch.sin(theta)], dim=1)  # (Q, 2)
    x = x.detach().clone().requires_grad_(True)
    var = (1 - t) ** 2 * stds**2  # (K,)
    centres = (1 - t) * means.unsqueeze(1) + t * ring.unsqueeze(0)  # (K, Q, 2)
    sq = (x.view(-1, 1, 1, 2) - centres.unsqueeze(0)).pow(2).sum(-1)  # (N, K, Q)
    logits = (
        torch.log(weights).view(1, -1, 1) - 0.5 * sq / var.view(1, -1, 1) - torch.log(2 * math.pi * var).view(1, -1, 1)
    ) - math.log(nodes)
    flat = logits.flatten(1)
    (score,) = torch.autograd.grad(torch.logsumexp(flat, dim=1).sum(), x)
    post = torch.softmax(flat.detach(), dim=1).view_as(logits)
    e1 = torch.einsum("nkq,qd->nd", post, ring)
    e0 = (x.detach() - t * e1) / (1 - t)
    return e1 - e0, score
