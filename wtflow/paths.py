"""The linear probability path shared by FM and rFM (paper eq. 5-7, Algorithm 1 step 4).

Both directions use x_t = (1 - t) x_0 + t x_1 with dx_t = x_1 - x_0; they differ
only in which endpoint is data:

* rFM / WT-Flow (``rfm_path``): x_0 is (WT-mapped) data, x_1 a target sample;
* forward FM (``fm_path``, used by the Flow-Mismatching scorer): x_0 is noise, x_1 data.

Time truncation t in [T, 1] (Theorem 2) is a property of how t is drawn
(``sample_time(..., t_min=T)``), not of the path.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ._validation import check_finite, check_same_shape, check_time

__all__ = ["PathSample", "as_time", "expand_t_like", "fm_path", "linear_path", "rfm_path", "sample_time"]


@dataclass
class PathSample:
    """One draw from the linear path.

    Attributes:
        x_t: (N, *event_shape) point on the path at time t.
        dx_t: (N, *event_shape) its time derivative x_1 - x_0 (the regression target of eq. 4).
        t: (N,) times.
    """

    x_t: Tensor
    dx_t: Tensor
    t: Tensor


def as_time(t: float | Tensor, n: int, like: Tensor, name: str = "t") -> Tensor:
    """Return ``t`` as an (n,) tensor with the dtype and device of ``like``; checks t in [0, 1]."""
    check_time(name, t)
    t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
    if t.ndim == 0:
        return t.expand(n)
    if t.shape != (n,):
        raise ValueError(f"{name} must be a float or have shape ({n},), got {tuple(t.shape)}")
    return t


def expand_t_like(t: Tensor, x: Tensor) -> Tensor:
    """Reshape (N,) times to (N, 1, ..., 1) so they broadcast against ``x`` of shape (N, *event_shape)."""
    return t.reshape(-1, *([1] * (x.ndim - 1)))


def linear_path(x_0: Tensor, x_1: Tensor, t: float | Tensor) -> PathSample:
    """x_t = (1 - t) x_0 + t x_1 and dx_t = x_1 - x_0.

    Args:
        x_0: (N, *event_shape) start points (t = 0).
        x_1: (N, *event_shape) end points (t = 1), same shape as ``x_0``.
        t: a float or (N,) times in [0, 1].
    """
    check_same_shape("x_0", x_0, "x_1", x_1)
    check_finite("x_0", x_0)
    check_finite("x_1", x_1)
    t = as_time(t, x_0.shape[0], x_0)
    tt = expand_t_like(t, x_0)
    return PathSample(x_t=(1 - tt) * x_0 + tt * x_1, dx_t=x_1 - x_0, t=t)


def rfm_path(x_0: Tensor, x_1: Tensor, t: float | Tensor) -> PathSample:
    """Reversed path of rFM (eq. 6-7): data ``x_0`` at t = 0, target sample ``x_1`` at t = 1."""
    return linear_path(x_0, x_1, t)


def fm_path(noise: Tensor, data: Tensor, t: float | Tensor) -> PathSample:
    """Forward (generative) path (eq. 5): ``noise`` at t = 0, ``data`` at t = 1."""
    return linear_path(noise, data, t)


def sample_time(
    n: int,
    generator: torch.Generator | None = None,
    t_min: float = 0.0,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Draw (n,) times from U(t_min, 1); ``t_min = T > 0`` is the truncation of Theorem 2."""
    if not (0.0 <= t_min < 1.0):
        raise ValueError(f"t_min must lie in [0, 1), got {t_min!r}")
    device = generator.device if generator is not None else device
    u = torch.rand(n, generator=generator, dtype=dtype or torch.get_default_dtype(), device=device)
    return t_min + (1.0 - t_min) * u
