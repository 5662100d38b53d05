"""Training objectives as objects: ``loss(net, x_0, generator) -> scalar`` for a batch of (mapped) data.

Each loss draws its own randomness (path endpoints and times) from ``generator`` and knows
which way its field is integrated at inference (``inference_times``):

* ``RFMLoss`` -- time-reversed flow matching (eq. 4, Algorithm 1 steps 3-5): the data x_0 = WT(x)
  sits at t = 0, a target sample x_1 at t = 1, t ~ U(T, 1) with the truncation T of Theorem 2;
  inference integrates data from t = T to 1.
* ``ForwardFMLoss`` -- the generative direction of Flow Mismatching (eq. 5): noise at t = 0, data
  at t = 1, t ~ U(T, 1); inference integrates data backwards from t = 1 to T.
* ``ContractionLoss`` -- TCCM (Li et al., NeurIPS 2025): E_t ||f(x, t) + x||^2 with t ~ U(0, 1),
  the field sees the data point itself; its endpoint is phi = x + f(x, 1), not an ODE solution.

All three regress on a linear interpolation or on -x with the mean squared error over every entry
of the batch, so ``loss`` values are comparable across event shapes.

Randomness is drawn on the generator's device (the CPU by default) in float32 and then moved to
the data's device and dtype, so a run's draws do not depend on the hardware; the order of the
draws is part of each loss's definition (first the endpoint sample, then the times).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ._validation import check_choice
from .distributions import Distribution
from .paths import expand_t_like, rfm_path, sample_time

__all__ = [
    "LOSSES",
    "ContractionLoss",
    "FlowLoss",
    "ForwardFMLoss",
    "RFMLoss",
    "flow_matching_loss",
    "make_loss",
]

Velocity = Callable[[Tensor, Tensor], Tensor]


def flow_matching_loss(velocity: Velocity, x_0: Tensor, x_1: Tensor, t: Tensor, check: bool = True) -> Tensor:
    """Conditional flow-matching loss of eq. 4 / Algorithm 1 step 5: mean squared error to dx_t = x_1 - x_0.

    Args:
        velocity: callable v(x_t, t).
        x_0, x_1: (N, *event_shape) path endpoints (data and target sample in rFM; noise and data in forward FM).
        t: (N,) times.
        check: validate shapes, finiteness and t in [0, 1]. The loss objects turn this off: the trainer
            checks the training set once, and a scan of every batch would cost time on each step.
    """
    if check:
        path = rfm_path(x_0, x_1, t)
        return (velocity(path.x_t, path.t) - path.dx_t).pow(2).mean()
    tt = expand_t_like(t, x_0)
    return (velocity((1 - tt) * x_0 + tt * x_1, t) - (x_1 - x_0)).pow(2).mean()


def _draw(distribution: Distribution, n: int, generator: torch.Generator | None, like: Tensor) -> Tensor:
    return distribution.sample(n, generator=generator, dtype=torch.float32).to(like.device, like.dtype)


def _times(n: int, generator: torch.Generator | None, t_min: float, like: Tensor) -> Tensor:
    return sample_time(n, generator=generator, t_min=t_min, dtype=torch.float32).to(like.device, like.dtype)


class FlowLoss:
    """Base class: ``name`` (as in ``LOSSES``), ``loss(net, x_0, generator)`` and ``inference_times``."""

    name = ""

    def loss(self, net: Velocity, x_0: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Scalar loss of the field ``net`` on the (N, *event_shape) batch ``x_0`` (already WT-mapped)."""
        raise NotImplementedError

    def __call__(self, net: Velocity, x_0: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return self.loss(net, x_0, generator)

    @property
    def inference_times(self) -> tuple[float, float] | None:
        """(t_start, t_end) of the ODE that carries data to the other end of the path; None if there is none."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class _PathLoss(FlowLoss):
    """Flow matching on the linear path between the data and samples of ``other_end`` (eq. 4-5).

    ``data_time`` is where the data sits: 0 for rFM, 1 for the forward (generative) direction.
    """

    data_time = 0.0

    def __init__(self, other_end: Distribution, t_min: float = 0.0):
        if not (0.0 <= t_min < 1.0):
            raise ValueError(f"t_min must lie in [0, 1), got {t_min!r}")
        self.other_end = other_end
        self.t_min = float(t_min)

    def loss(self, net: Velocity, x_0: Tensor, generator: torch.Generator | None = None) -> Tensor:
        n = x_0.shape[0]
        other = _draw(self.other_end, n, generator, x_0)
        t = _times(n, generator, self.t_min, x_0)
        start, end = (x_0, other) if self.data_time == 0.0 else (other, x_0)
        return flow_matching_loss(net, start, end, t, check=False)

    @property
    def inference_times(self) -> tuple[float, float]:
        return (self.t_min, 1.0) if self.data_time == 0.0 else (1.0, self.t_min)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.other_end).__name__}, t_min={self.t_min})"


class RFMLoss(_PathLoss):
    """Time-reversed flow matching (eq. 4, Algorithm 1): x_0 data at t = 0, x_1 ~ ``target`` at t = 1.

    loss = mean ||v(x_t, t) - (x_1 - x_0)||^2 with x_t = (1 - t) x_0 + t x_1, t ~ U(T, 1); inference
    integrates data from t = T to 1.

    Args:
        target: the target distribution of x_1 (Gaussian, uniform sphere or point; Table VIII).
        t_min: truncation T of Theorem 2.
    """

    name = "rfm"
    data_time = 0.0

    @property
    def target(self) -> Distribution:
        return self.other_end


class ForwardFMLoss(_PathLoss):
    """Forward (generative) flow matching (eq. 5), the training of Flow Mismatching: noise at t = 0, data at t = 1.

    loss = mean ||v(x_t, t) - (x - eps)||^2 with x_t = (1 - t) eps + t x, eps ~ ``noise``, t ~ U(T, 1);
    inference integrates data backwards from t = 1 to T.

    Args:
        noise: the source distribution of eps (normally the standard Gaussian).
        t_min: smallest training time.
    """

    name = "forward-fm"
    data_time = 1.0

    @property
    def noise(self) -> Distribution:
        return self.other_end


class ContractionLoss(FlowLoss):
    """TCCM's contraction objective: mean ||f(x, t) + x||^2 with t ~ U(0, 1) (f sees x itself).

    The minimiser is f(x, t) = -x on the training data; the endpoint phi = x + f(x, 1) is near 0
    there and its norm is TCCM's anomaly score. There is no ODE to integrate (``inference_times`` is None).
    """

    name = "contraction"

    def loss(self, net: Velocity, x_0: Tensor, generator: torch.Generator | None = None) -> Tensor:
        t = _times(x_0.shape[0], generator, 0.0, x_0)
        return (net(x_0, t) + x_0).pow(2).mean()


LOSSES = ("rfm", "forward-fm", "contraction")


def make_loss(name: str, target: Distribution, t_min: float = 0.0) -> FlowLoss:
    """Build a loss by name (one of ``LOSSES``); ``target`` is x_1 for "rfm" and the noise for "forward-fm"."""
    check_choice("loss", name, LOSSES)
    if name == "rfm":
        return RFMLoss(target, t_min)
    if name == "forward-fm":
        return ForwardFMLoss(target, t_min)
    if t_min != 0.0:
        raise ValueError(f"the 'contraction' loss draws t ~ U(0, 1) and takes no t_min, got t_min={t_min!r}")
    return ContractionLoss()
