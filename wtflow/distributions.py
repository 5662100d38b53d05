"""Source and target distributions of rFM (paper Sec. III-B, Table VIII).

All classes share one small protocol so that the trainer, the toys and the
closed-form fields of ``theory/`` can use them interchangeably:

* ``event_shape``: the shape of one sample, e.g. ``(2,)`` or ``(C, H, W)``;
* ``dim``: D, the number of entries of one sample;
* ``sample(n, generator=None, dtype=None, device=None)`` -> ``(n, *event_shape)``;
* ``log_prob(x)`` -> ``(n,)`` where a density on R^D exists.

Parameters are stored in float64 so that ``theory/`` can work in closed form
without losing precision; samples come out in the requested dtype.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from ._validation import as_event_shape, check_choice, check_finite

__all__ = [
    "TARGETS",
    "Distribution",
    "GaussianMixture",
    "Point",
    "StandardGaussian",
    "UniformSphere",
    "make_target",
]

TARGETS = ("gaussian", "sphere", "point")


class Distribution:
    """Base class: a distribution over tensors of shape ``event_shape``."""

    event_shape: tuple[int, ...]

    @property
    def dim(self) -> int:
        """D, the number of entries of one sample."""
        return math.prod(self.event_shape)

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """Draw ``n`` samples, shape ``(n, *event_shape)``."""
        raise NotImplementedError

    def log_prob(self, x: Tensor) -> Tensor:
        """Log-density on R^D of ``x`` with shape ``(n, *event_shape)``; returns ``(n,)``."""
        raise NotImplementedError(f"{type(self).__name__} has no density on R^D")

    def _check_batch(self, name: str, x: Tensor) -> Tensor:
        if tuple(x.shape[1:]) != self.event_shape:
            raise ValueError(
                f"{name} must have shape (n, {', '.join(map(str, self.event_shape))}) to match the "
                f"{type(self).__name__} event_shape {self.event_shape}, got {tuple(x.shape)}"
            )
        return check_finite(name, x)

    def _noise(self, n: int, generator, dtype, device) -> Tensor:
        dtype = dtype or torch.get_default_dtype()
        if generator is not None and device is not None and torch.device(device) != generator.device:
            # Draw on the generator's device so results do not depend on where they end up.
            return torch.randn((n, *self.event_shape), generator=generator, dtype=dtype, device=generator.device).to(
                device
            )
        if generator is not None:
            device = generator.device
        return torch.randn((n, *self.event_shape), generator=generator, dtype=dtype, device=device)


class StandardGaussian(Distribution):
    """N(0, I_D), the default rFM target (Algorithm 1, step 3)."""

    def __init__(self, event_shape: int | Sequence[int]):
        self.event_shape = as_event_shape(event_shape)

    def __repr__(self) -> str:
        return f"StandardGaussian(event_shape={self.event_shape})"

    def sample(self, n, generator=None, dtype=None, device=None):
        return self._noise(n, generator, dtype, device)

    def log_prob(self, x: Tensor) -> Tensor:
        x = self._check_batch("x", x)
        sq = x.flatten(1).pow(2).sum(1)
        return -0.5 * sq - 0.5 * self.dim * math.log(2 * math.pi)


class UniformSphere(Distribution):
    """Uniform distribution on the sphere of radius ``radius`` (default sqrt(D)); a ring when D = 2.

    The "Uniform-Sphere" target of Table VIII. It has no density on R^D.
    """

    def __init__(self, event_shape: int | Sequence[int], radius: float | None = None):
        self.event_shape = as_event_shape(event_shape)
        if self.dim < 2:
            raise ValueError(f"UniformSphere needs D >= 2, got event_shape {self.event_shape}")
        self.radius = float(math.sqrt(self.dim) if radius is None else radius)
        if not (self.radius > 0 and math.isfinite(self.radius)):
            raise ValueError(f"radius must be a positive finite number, got {radius!r}")

    def __repr__(self) -> str:
        return f"UniformSphere(event_shape={self.event_shape}, radius={self.radius:g})"

    def sample(self, n, generator=None, dtype=None, device=None):
        z = self._noise(n, generator, dtype, device)
        norms = z.flatten(1).norm(dim=1).clamp_min(torch.finfo(z.dtype).tiny)
        return z * (self.radius / norms).view(n, *([1] * len(self.event_shape)))


class Point(Distribution):
    """A point mass at the origin: TCCM's single-point target (Table VIII, "Single-Point")."""

    def __init__(self, event_shape: int | Sequence[int]):
        self.event_shape = as_event_shape(event_shape)

    def __repr__(self) -> str:
        return f"Point(event_shape={self.event_shape})"

    def sample(self, n, generator=None, dtype=None, device=None):
        dtype = dtype or torch.get_default_dtype()
        if device is None and generator is not None:
            device = generator.device
        return torch.zeros((n, *self.event_shape), dtype=dtype, device=device)


class GaussianMixture(Distribution):
    """Mixture of isotropic Gaussians sum_k w_k N(m_k, s_k^2 I).

    Args:
        means: (K, *event_shape) or (K, D) component means m_k.
        stds: (K,) per-component standard deviations s_k >= 0, or a scalar for all.
            s_k = 0 makes component k a point mass; all zeros is an empirical
            training set (what a trained network actually sees).
        weights: (K,) non-negative weights summing to one; uniform if omitted.
        event_shape: shape of one sample; defaults to ``means.shape[1:]``.
    """

    def __init__(
        self,
        means: Tensor,
        stds: Tensor | float = 0.0,
        weights: Tensor | None = None,
        event_shape: int | Sequence[int] | None = None,
    ):
        means = torch.as_tensor(means, dtype=torch.float64).detach().cpu()
        if means.ndim < 2 or means.shape[0] < 1:
            raise ValueError(f"means must have shape (K, D) or (K, *event_shape) with K >= 1, got {tuple(means.shape)}")
        check_finite("means", means)
        self.event_shape = as_event_shape(means.shape[1:] if event_shape is None else event_shape)
        k = means.shape[0]
        if math.prod(means.shape[1:]) != self.dim:
            raise ValueError(f"means of shape {tuple(means.shape)} do not match event_shape {self.event_shape}")
        self.means = means.reshape(k, *self.event_shape)

        stds = torch.as_tensor(stds, dtype=torch.float64).detach().cpu()
        stds = stds.expand(k).clone() if stds.ndim == 0 else stds
        if stds.shape != (k,):
            raise ValueError(f"stds must be a scalar or have shape ({k},), got {tuple(stds.shape)}")
        check_finite("stds", stds)
        if (stds < 0).any():
            raise ValueError(f"stds must be non-negative, got minimum {float(stds.min()):g}")
        self.stds = stds

        if weights is None:
            weights = torch.full((k,), 1.0 / k, dtype=torch.float64)
        weights = torch.as_tensor(weights, dtype=torch.float64).detach().cpu()
        if weights.shape != (k,):
            raise ValueError(f"weights must have shape ({k},), got {tuple(weights.shape)}")
        check_finite("weights", weights)
        if (weights < 0).any():
            raise ValueError(f"weights must be non-negative, got minimum {float(weights.min()):g}")
        if abs(float(weights.sum()) - 1.0) > 1e-8:
            raise ValueError(f"weights must sum to one, got sum {float(weights.sum()):.10g}")
        self.weights = weights

    @classmethod
    def empirical(cls, x: Tensor) -> GaussianMixture:
        """The empirical distribution of a training set ``x`` of shape (n, *event_shape): n equal point masses."""
        x = torch.as_tensor(x)
        return cls(x, stds=0.0)

    @property
    def n_components(self) -> int:
        """K, the number of components."""
        return self.means.shape[0]

    @property
    def is_empirical(self) -> bool:
        """True when every component is a point mass (std 0)."""
        return bool((self.stds == 0).all())

    def __repr__(self) -> str:
        kind = "empirical" if self.is_empirical else "population"
        return f"GaussianMixture(K={self.n_components}, event_shape={self.event_shape}, {kind})"

    def sample(self, n, generator=None, dtype=None, device=None):
        dtype = dtype or torch.get_default_dtype()
        gen_device = generator.device if generator is not None else torch.device("cpu")
        idx = torch.multinomial(self.weights.to(gen_device), n, replacement=True, generator=generator)
        z = torch.randn((n, *self.event_shape), generator=generator, dtype=torch.float64, device=gen_device)
        scale = self.stds.to(gen_device)[idx].view(n, *([1] * len(self.event_shape)))
        x = self.means.to(gen_device)[idx] + scale * z
        return x.to(dtype=dtype, device=device if device is not None else gen_device)

    def log_prob(self, x: Tensor) -> Tensor:
        if (self.stds == 0).any():
            raise NotImplementedError(
                "GaussianMixture with point-mass components (std 0) has no density on R^D; "
                "use theory/ for its exact rFM quantities"
            )
        x = self._check_batch("x", x).to(torch.float64)
        xf = x.flatten(1)
        m = self.means.flatten(1).to(x.device)
        var = self.stds.to(x.device).pow(2)
        sq = torch.cdist(xf, m).pow(2)  # (n, K)
        logits = -0.5 * sq / var - 0.5 * self.dim * torch.log(2 * math.pi * var) + self.weights.to(x.device).log()
        return torch.logsumexp(logits, dim=1)


def make_target(name: str, event_shape: int | Sequence[int]) -> Distribution:
    """Build an rFM target by name: ``"gaussian"`` (N(0, I)), ``"sphere"`` (radius sqrt(D)) or ``"point"``."""
    check_choice("target", name, TARGETS)
    if name == "gaussian":
        return StandardGaussian(event_shape)
    if name == "sphere":
        return UniformSphere(event_shape)
    return Point(event_shape)
