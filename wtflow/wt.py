"""Worst-Transport (WT) maps applied to the data x_0 before matching (Algorithm 1, step 2).

* ``"none"``: plain rFM.
* ``"layernorm"``: non-learnable LayerNorm over all non-batch entries of each sample;
  Lemma 5: ||LN(x)|| = sqrt(D) (sqrt(D sigma^2 / (sigma^2 + eps)) with eps > 0).
* ``"batchnorm"``: non-learnable BatchNorm over the batch (and spatial) axes per
  feature/channel; batch statistics while training, running statistics at test
  time; Lemma 6: the batch average of ||BN(x)||^2 is D as eps -> 0. Under data
  parallelism the batch statistics pool every process's part of the batch
  (SyncBatchNorm semantics), so the map does not depend on the number of processes.

These normalise x_0 (the WT map). Normalising the *network input* x_t is a
different thing, the "std" ablation of Table XI: ``input_norm=True`` on the
velocity network (``wtflow.networks``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ._validation import as_event_shape, check_choice

__all__ = ["WT_MAPS", "BatchNormWT", "IdentityWT", "LayerNormWT", "make_wt_map"]

WT_MAPS = ("none", "batchnorm", "layernorm")


class IdentityWT(nn.Module):
    """The "none" WT map: x_0 is the data itself (plain rFM)."""

    name = "none"

    def forward(self, x: Tensor) -> Tensor:
        return x


class LayerNormWT(nn.Module):
    """Non-learnable LayerNorm over all non-batch entries (Lemma 5, eq. 35/37).

    Args:
        eps: added to the (biased) per-sample variance; eps = 0 gives ||LN(x)|| = sqrt(D) exactly.
    """

    name = "layernorm"

    def __init__(self, eps: float = 1e-5):
        super().__init__()
        if not eps >= 0:
            raise ValueError(f"eps must be >= 0, got {eps!r}")
        self.eps = float(eps)

    def forward(self, x: Tensor) -> Tensor:
        """(N, *event_shape) -> (N, *event_shape), each sample with mean 0 and variance sigma^2/(sigma^2+eps)."""
        flat = x.flatten(1)
        if flat.shape[1] < 2:
            raise ValueError(f"the layernorm WT map needs D >= 2 entries per sample, got shape {tuple(x.shape)}")
        var = flat.var(dim=1, unbiased=False)
        constant = var <= torch.finfo(var.dtype).tiny
        if constant.any():
            idx = torch.nonzero(constant).flatten()[:5].tolist()
            raise ValueError(
                f"the layernorm WT map got {int(constant.sum())} constant sample(s) (indices {idx}...): a sample "
                "with zero variance cannot be mapped onto the sphere of radius sqrt(D) (Lemma 5 needs non-trivial data)"
            )
        mean = flat.mean(dim=1, keepdim=True)
        out = (flat - mean) / torch.sqrt(var.unsqueeze(1) + self.eps)
        return out.view_as(x)

    def extra_repr(self) -> str:
        return f"eps={self.eps:g}"


class BatchNormWT(nn.Module):
    """Non-learnable BatchNorm per feature (vectors) or per channel (feature maps) (Lemma 6, eq. 40-41).

    Axis 1 of the batch is the feature/channel axis; statistics pool the batch
    and all remaining axes. Training mode uses batch statistics and updates the
    running ones; eval mode uses the running statistics. When ``process_group`` is
    set (the trainer does so under DDP), training statistics are all-reduced over
    that group: the mean and then the centred sum of squares (two passes, as
    precise as the single-process formula), so every process normalises with the
    statistics of the global batch and keeps identical running statistics.

    Args:
        num_features: size of axis 1 (C for (B, C, H, W), D for (N, D)).
        eps: added to the variance.
        momentum: running-statistics momentum; None (default) keeps a cumulative
            average over all training batches, i.e. the training-set statistics.
    """

    name = "batchnorm"

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = None):
        super().__init__()
        if not eps >= 0:
            raise ValueError(f"eps must be >= 0, got {eps!r}")
        self.num_features = int(num_features)
        self.eps = float(eps)
        self.momentum = momentum
        self.register_buffer("running_mean", torch.zeros(self.num_features))
        self.register_buffer("running_var", torch.ones(self.num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        self.process_group: dist.ProcessGroup | None = None

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, ...) -> (N, C, ...): (x - mu_c) / sqrt(sigma_c^2 + eps) per feature/channel c (eq. 40-41)."""
        if x.ndim < 2 or x.shape[1] != self.num_features:
            raise ValueError(f"batchnorm WT map expects shape (N, {self.num_features}, ...), got {tuple(x.shape)}")
        axes = [0, *range(2, x.ndim)]
        if self.training:
            mean, var, count = self._batch_statistics(x, axes)
            if count < 2:
                raise ValueError(
                    f"batchnorm WT map needs more than one value per feature in training, got {tuple(x.shape)}"
                )
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                # Running variance is unbiased, as in torch's BatchNorm.
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), m)
                self.running_var.lerp_((var.detach() * count / (count - 1)).to(self.running_var.dtype), m)
        else:
            mean, var = self.running_mean.to(x.dtype), self.running_var.to(x.dtype)
        shape = (1, self.num_features, *([1] * (x.ndim - 2)))
        return (x - mean.view(shape)) / torch.sqrt(var.view(shape) + self.eps)

    def _batch_statistics(self, x: Tensor, axes: list[int]) -> tuple[Tensor, Tensor, int]:
        """Per-feature mean and biased variance over ``axes`` (and over the process group, if set), and the count."""
        count = x.numel() // self.num_features
        group = self.process_group
        if group is None or dist.get_world_size(group) == 1:
            return x.mean(dim=axes), x.var(dim=axes, unbiased=False), count
        all_reduce = _AllReduceSum.apply
        total = torch.tensor(float(count), device=x.device, dtype=torch.float64)
        dist.all_reduce(total, group=group)
        mean = all_reduce(x.sum(dim=axes), group) / total
        shape = (1, self.num_features, *([1] * (x.ndim - 2)))
        var = all_reduce((x - mean.view(shape)).pow(2).sum(dim=axes), group) / total
        return mean, var, int(total.item())

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps:g}, momentum={self.momentum}"


class _AllReduceSum(torch.autograd.Function):
    """Sum over the process group; the gradient of each process's input is the summed upstream gradient."""

    @staticmethod
    def forward(ctx, tensor: Tensor, group) -> Tensor:
        ctx.group = group
        out = tensor.clone()
        dist.all_reduce(out, group=group)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        grad = grad.clone()
        dist.all_reduce(grad, group=ctx.group)
        return grad, None


def make_wt_map(name: str, event_shape: int | Sequence[int], eps: float = 1e-5, **kwargs) -> nn.Module:
    """Build a WT map by name (``"none"``, ``"batchnorm"``, ``"layernorm"``) for samples of ``event_shape``."""
    check_choice("wt", name, WT_MAPS)
    shape = as_event_shape(event_shape)
    if name == "none":
        return IdentityWT()
    if name == "layernorm":
        return LayerNormWT(eps=eps)
    return BatchNormWT(shape[0], eps=eps, **kwargs)
