"""Velocity networks v_theta(x_t, t) with a sinusoidal time embedding (Algorithm 1, step 5).

Three architectures, built by name with ``make_velocity_net`` (``NETWORKS`` lists the names):

* ``VelocityMLP`` ("mlp"): for 2-D toys and (N, 512) feature vectors. x_t is flattened and
  concatenated with the sinusoidal embedding of t, then ``depth`` Linear + SiLU layers.
* ``MiniUNet`` ("unet"): for (B, C, H, W) feature maps, the paper's "vanilla mini-U-Net with two
  downsampling and two upsampling layers" (Sec. III-D; Table IV varies the base width NC from 128
  to 768 and an optional 2-D sinusoidal positional encoding "pos").
* ``ContractionMLP`` ("tccm-mlp"): TCCM's field f(x, t) (Li et al., NeurIPS 2025) for vectors, a ReLU MLP on
  [x, sinusoidal(t)], trained with ``wtflow.losses.ContractionLoss``.

All accept ``t`` as a float or an (N,) tensor and return a tensor shaped like x_t. The last layer of
"mlp" and "unet" is zero-initialised (weight and bias), so an untrained network returns exactly 0
velocity; its first optimiser step moves only that layer, after which gradients reach every parameter.
"tccm-mlp" keeps PyTorch's default initialisation, as TCCM's description does.

U-Net architecture. The paper specifies: a U-Net, two down- and two up-sampling layers (so
three resolutions: 16x16, 8x8, 4x4 for the (1024, 16, 16) WideResNet-50 layer-3 maps of Suppl.
XI-E), a base width NC in {128, 256, 512, 768}, optional positional encoding, and the parameter
counts of Table IX: 0.34 B at NC = 512 and 0.76 B at NC = 768. It does not specify blocks per
stage, channel multipliers, normalisation, how t is injected, or attention. The ratio
0.76 / 0.34 = 2.24 ~ (768 / 512)^2 says the parameters scale as NC^2 with about 1290 NC^2
parameters, i.e. they sit in NC-wide convolutions (a 3x3 conv at width m NC costs 9 m^2 NC^2).
The unspecified parts follow the common diffusion-style choices, which land there:

* channel multipliers (1, 2, 4) for the three resolutions, 2 residual blocks per stage (the 4x4
  stage is the bottleneck), one skip connection per resolution (concatenated before the decoder
  stage), stride-2 3x3 conv downsampling and nearest-neighbour + 3x3 conv upsampling, no attention;
* time: sinusoidal(NC) -> Linear -> SiLU -> Linear to ``time_dim`` = 4 NC (default), then in every
  residual block a Linear to (scale, shift) applied as GN(h) (1 + scale) + shift after the first
  conv ("injected in every block"). A plain additive bias before the GN is partly (with one
  channel per group, fully) normalised away, leaving the output almost independent of t; the
  (scale, shift) form costs 80 NC^2 extra parameters.

This gives exactly 1366 NC^2 + 193 NC + 18 C NC + C parameters for C input channels (checked
against a meta-device count): 0.368 B at NC = 512 and
0.820 B at NC = 768 for C = 1024, i.e. +8.1 % and +7.9 % over Table IX. The NC^2 term is
dominated by the 4 NC-wide bottleneck and the up-sampling conv at 4x4 (720 of the 1366). With a
DDPM-style additive time bias instead of (scale, shift) it would be 1286 NC^2 (+2 %), but see below.

GroupNorm: used only inside the residual branches (pre-activation, GN -> SiLU -> conv), never on
the residual stream nor in the output head. The residual stream carries the scale of x_t from the
input conv to the output, so the network can still see where x_t sits radially -- the quantity
the WT map and the centripetal dynamics are about (Sec. IV); a GN before the output head would
normalise it away. GN is per sample, so unlike BatchNorm it couples no samples of a batch (the
anomaly score of one sample must not depend on its batch). It is independent of the WT map
(applied to x_0 before matching) and of ``input_norm`` (the "std" ablation of Table XI).

``input_norm=True`` (either network) applies a non-learnable LayerNorm over all non-batch entries
of the *input* x_t (eps 1e-5), making the output invariant to positive rescaling of x_t.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._validation import as_event_shape, check_choice, check_positive_int

__all__ = [
    "NETWORKS",
    "ContractionMLP",
    "MiniUNet",
    "SinusoidalTimeEmbedding",
    "VelocityMLP",
    "count_parameters",
    "make_velocity_net",
]

NETWORKS = ("mlp", "unet", "tccm-mlp")

INPUT_NORM_EPS = 1e-5


def count_parameters(module: nn.Module) -> int:
    """Number of scalar parameters of ``module`` (works on the meta device, nothing is allocated)."""
    return sum(p.numel() for p in module.parameters())


def _time_as_batch(t: float | Tensor, x_t: Tensor) -> Tensor:
    """``t`` as an (N,) tensor with x_t's dtype and device; a float or 0-d tensor is broadcast.

    The range t in [0, 1] is not checked here (that would sync the device on every call); the
    path sampler and the solvers already check it.
    """
    n = x_t.shape[0]
    t = torch.as_tensor(t, dtype=x_t.dtype, device=x_t.device)
    if t.ndim == 0:
        return t.expand(n)
    if t.shape != (n,):
        raise ValueError(f"t must be a float or a tensor of shape ({n},) for a batch of {n}, got {tuple(t.shape)}")
    return t


def _input_layer_norm(x_t: Tensor) -> Tensor:
    """Non-learnable per-sample LayerNorm over all non-batch entries (the "std" of Table XI)."""
    return F.layer_norm(x_t, x_t.shape[1:], eps=INPUT_NORM_EPS)


class SinusoidalTimeEmbedding(nn.Module):
    """Fixed sinusoidal features of t: (N,) -> (N, dim); a float or 0-d t gives (1, dim).

    Features are [sin(s t w_k), cos(s t w_k)] with w_k = max_period^(-k / half), k < half = dim // 2,
    and s = ``scale`` = 1000 so that t in [0, 1] sees the same frequencies as the integer steps
    0..1000 of DDPM (resolution ~1e-3 in t near the singular t = 0). An odd ``dim`` gets a zero
    last column.
    """

    def __init__(self, dim: int, scale: float = 1000.0, max_period: float = 10000.0):
        super().__init__()
        self.dim = check_positive_int("dim", dim, minimum=2)
        self.scale = float(scale)
        self.max_period = float(max_period)

    def forward(self, t: float | Tensor) -> Tensor:
        if not torch.is_tensor(t):
            t = torch.tensor(float(t), dtype=torch.get_default_dtype())
        if not t.is_floating_point():
            t = t.to(torch.get_default_dtype())
        t = t.reshape(1) if t.ndim == 0 else t
        if t.ndim != 1:
            raise ValueError(f"t must be a float or a 1-D tensor of shape (N,), got shape {tuple(t.shape)}")
        # 1000 t in bfloat16/float16 would be off by ~1, so the angles are computed in >= float32.
        compute_dtype = torch.float64 if t.dtype == torch.float64 else torch.float32
        half = self.dim // 2
        k = torch.arange(half, dtype=compute_dtype, device=t.device)
        freqs = torch.exp(-math.log(self.max_period) * k / half)
        angles = (self.scale * t.to(compute_dtype))[:, None] * freqs[None, :]
        emb = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
        if self.dim % 2:
            emb = F.pad(emb, (0, 1))
        return emb.to(t.dtype)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, scale={self.scale}, max_period={self.max_period}"


class VelocityMLP(nn.Module):
    """MLP velocity v_theta(x_t, t) for vectors: (N, *event_shape) -> (N, *event_shape).

    x_t is flattened to (N, D), concatenated with the sinusoidal embedding of t (``time_dim``
    features), then passed through ``depth`` Linear(hidden) + SiLU layers and a zero-initialised
    Linear(hidden, D). ``input_norm`` LayerNorms x_t first (see module docstring).
    """

    def __init__(
        self,
        event_shape: int | Sequence[int],
        hidden: int = 256,
        depth: int = 3,
        time_dim: int = 64,
        input_norm: bool = False,
    ):
        super().__init__()
        self.event_shape = as_event_shape(event_shape)
        check_positive_int("hidden", hidden)
        check_positive_int("depth", depth)
        check_positive_int("time_dim", time_dim, minimum=2)
        self.input_norm = bool(input_norm)
        self.dim = math.prod(self.event_shape)
        self.time_embedding = SinusoidalTimeEmbedding(time_dim)
        layers: list[nn.Module] = []
        width = self.dim + time_dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(hidden, self.dim)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.config = {
            "event_shape": list(self.event_shape),
            "hidden": hidden,
            "depth": depth,
            "time_dim": time_dim,
            "input_norm": self.input_norm,
        }

    def forward(self, x_t: Tensor, t: float | Tensor) -> Tensor:
        """Velocity at (x_t, t); x_t (N, *event_shape), t a float or (N,) -> (N, *event_shape)."""
        if tuple(x_t.shape[1:]) != self.event_shape:
            raise ValueError(
                f"x_t must have shape (N, {', '.join(map(str, self.event_shape))}), got {tuple(x_t.shape)}"
            )
        t = _time_as_batch(t, x_t)
        x = x_t.reshape(x_t.shape[0], self.dim)
        if self.input_norm:
            x = _input_layer_norm(x)
        h = self.body(torch.cat([x, self.time_embedding(t)], dim=1))
        return self.head(h).reshape(x_t.shape)


class ContractionMLP(nn.Module):
    """TCCM's f(x, t): [x, sinusoidal(t)] -> depth x (Linear(hidden) + ReLU) -> Linear(D); (N, *event_shape) -> same.

    Unlike ``VelocityMLP`` the input is the data point x itself (not an interpolant x_t), the
    activations are ReLU and the last layer keeps the default initialisation. The endpoint
    phi = x + f(x, 1) is TCCM's one-step contraction.
    """

    def __init__(self, event_shape: int | Sequence[int], hidden: int = 256, depth: int = 2, time_dim: int = 128):
        super().__init__()
        self.event_shape = as_event_shape(event_shape)
        check_positive_int("hidden", hidden)
        check_positive_int("depth", depth)
        check_positive_int("time_dim", time_dim, minimum=2)
        self.dim = math.prod(self.event_shape)
        self.time_embedding = SinusoidalTimeEmbedding(time_dim)
        layers: list[nn.Module] = []
        width = self.dim + time_dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, self.dim))
        self.mlp = nn.Sequential(*layers)
        self.config = {"event_shape": list(self.event_shape), "hidden": hidden, "depth": depth, "time_dim": time_dim}

    def forward(self, x: Tensor, t: float | Tensor) -> Tensor:
        """f(x, t); x (N, *event_shape), t a float or (N,) -> (N, *event_shape)."""
        if tuple(x.shape[1:]) != self.event_shape:
            raise ValueError(f"x must have shape (N, {', '.join(map(str, self.event_shape))}), got {tuple(x.shape)}")
        t = _time_as_batch(t, x)
        flat = x.reshape(x.shape[0], self.dim)
        return self.mlp(torch.cat([flat, self.time_embedding(t)], dim=1)).reshape(x.shape)


def _group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with the largest group count <= 32 that divides ``channels``."""
    groups = max(g for g in range(1, min(32, channels) + 1) if channels % g == 0)
    return nn.GroupNorm(groups, channels)


def _sinusoidal_positions_2d(channels: int, height: int, width: int, dtype: torch.dtype, device) -> Tensor:
    """Fixed 2-D sinusoidal positional encoding of shape (channels, height, width).

    The first half of the channels encodes the row, the second half the column, each as
    [sin(p w_k), cos(p w_k)] with w_k = 10000^(-k / quarter); leftover channels are zero.
    """
    quarter = channels // 4
    encoding = torch.zeros(channels, height, width, dtype=dtype, device=device)
    if quarter == 0:
        return encoding
    k = torch.arange(quarter, dtype=dtype, device=device)
    freqs = torch.exp(-math.log(10000.0) * k / quarter)
    rows = torch.arange(height, dtype=dtype, device=device)[:, None] * freqs  # (H, quarter)
    cols = torch.arange(width, dtype=dtype, device=device)[:, None] * freqs  # (W, quarter)
    row_features = torch.cat([torch.sin(rows), torch.cos(rows)], dim=1).T  # (2 quarter, H)
    col_features = torch.cat([torch.sin(cols), torch.cos(cols)], dim=1).T  # (2 quarter, W)
    encoding[: 2 * quarter] = row_features[:, :, None].expand(-1, -1, width)
    encoding[2 * quarter : 4 * quarter] = col_features[:, None, :].expand(-1, height, -1)
    return encoding


class _ResBlock(nn.Module):
    """Pre-activation residual block; the time embedding scales and shifts the second GroupNorm's output.

    An additive time bias placed before a GroupNorm is removed by it whenever a group holds few
    channels (entirely with one channel per group), so t enters after the norm, as (1 + scale, shift).
    """

    def __init__(self, in_channels: int, out_channels: int, time_dim: int):
        super().__init__()
        self.norm1 = _group_norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.time_proj = nn.Linear(time_dim, 2 * out_channels)
        self.norm2 = _group_norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: Tensor, time_features: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.time_proj(time_features)[:, :, None, None].chunk(2, dim=1)
        h = self.conv2(F.silu(self.norm2(h) * (1 + scale) + shift))
        return self.skip(x) + h


class _Stage(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, num_blocks: int, time_dim: int):
        super().__init__()
        self.blocks = nn.ModuleList(
            _ResBlock(in_channels if i == 0 else out_channels, out_channels, time_dim) for i in range(num_blocks)
        )

    def forward(self, x: Tensor, time_features: Tensor) -> Tensor:
        for block in self.blocks:
            x = block(x, time_features)
        return x


class MiniUNet(nn.Module):
    """Mini-U-Net velocity for feature maps: (B, C, H, W) -> (B, C, H, W) (Sec. III-D, Table IV).

    Args:
        in_channels: C of x_t.
        base_channels: NC, the width of the full-resolution stage (Table IV: 128 ... 768).
        time_dim: width of the time embedding injected into every residual block (default 4 NC).
        pos_encoding: add a fixed 2-D sinusoidal positional encoding after the input conv ("pos").
        input_norm: LayerNorm x_t over (C, H, W) before the network (the "std" of Table XI).
        channel_mult: width of each resolution as a multiple of NC; len - 1 = number of
            down/up-samplings (2 in the paper). H and W are zero-padded at the bottom/right to a
            multiple of 2^(len - 1) and the output is cropped back.
        num_res_blocks: residual blocks per stage.

    Architecture choices and parameter counts: see the module docstring.
    """

    def __init__(
        self,
        in_channels: int,
        base_channels: int = 128,
        time_dim: int | None = None,
        pos_encoding: bool = False,
        input_norm: bool = False,
        *,
        channel_mult: Sequence[int] = (1, 2, 4),
        num_res_blocks: int = 2,
    ):
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("base_channels", base_channels, minimum=2)
        time_dim = 4 * base_channels if time_dim is None else check_positive_int("time_dim", time_dim)
        check_positive_int("num_res_blocks", num_res_blocks)
        channel_mult = [check_positive_int("channel_mult entry", int(m)) for m in channel_mult]
        if len(channel_mult) < 1:
            raise ValueError(f"channel_mult must have at least one entry, got {channel_mult!r}")
        self.in_channels = in_channels
        self.pos_encoding = bool(pos_encoding)
        self.input_norm = bool(input_norm)
        self.size_multiple = 2 ** (len(channel_mult) - 1)
        widths = [base_channels * m for m in channel_mult]

        self.time_embedding = SinusoidalTimeEmbedding(base_channels)
        self.time_mlp = nn.Sequential(nn.Linear(base_channels, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim))
        self.conv_in = nn.Conv2d(in_channels, base_channels, 3, padding=1)

        self.encoder = nn.ModuleList()
        self.downsample = nn.ModuleList()
        channels = base_channels
        for width in widths[:-1]:
            self.encoder.append(_Stage(channels, width, num_res_blocks, time_dim))
            self.downsample.append(nn.Conv2d(width, width, 3, stride=2, padding=1))
            channels = width
        self.bottleneck = _Stage(channels, widths[-1], num_res_blocks, time_dim)
        channels = widths[-1]

        self.upsample = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for width in reversed(widths[:-1]):
            self.upsample.append(nn.Conv2d(channels, channels, 3, padding=1))
            self.decoder.append(_Stage(channels + width, width, num_res_blocks, time_dim))
            channels = width
        # No norm in the head: it would remove the scale of x_t carried by the residual stream.
        self.head = nn.Conv2d(channels, in_channels, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

        self.config = {
            "in_channels": in_channels,
            "base_channels": base_channels,
            "time_dim": time_dim,
            "pos_encoding": self.pos_encoding,
            "input_norm": self.input_norm,
            "channel_mult": channel_mult,
            "num_res_blocks": num_res_blocks,
        }

    def forward(self, x_t: Tensor, t: float | Tensor) -> Tensor:
        """Velocity at (x_t, t); x_t (B, C, H, W), t a float or (B,) -> (B, C, H, W)."""
        if x_t.ndim != 4 or x_t.shape[1] != self.in_channels:
            raise ValueError(f"x_t must have shape (B, {self.in_channels}, H, W), got {tuple(x_t.shape)}")
        t = _time_as_batch(t, x_t)
        height, width = x_t.shape[-2:]
        x = _input_layer_norm(x_t) if self.input_norm else x_t
        pad_h = -height % self.size_multiple
        pad_w = -width % self.size_multiple
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))

        time_features = F.silu(self.time_mlp(self.time_embedding(t)))
        h = self.conv_in(x)
        if self.pos_encoding:
            h = h + _sinusoidal_positions_2d(h.shape[1], h.shape[2], h.shape[3], h.dtype, h.device)
        skips = []
        for stage, down in zip(self.encoder, self.downsample, strict=True):
            h = stage(h, time_features)
            skips.append(h)
            h = down(h)
        h = self.bottleneck(h, time_features)
        for up, stage in zip(self.upsample, self.decoder, strict=True):
            h = up(F.interpolate(h, scale_factor=2.0, mode="nearest"))
            h = stage(torch.cat([h, skips.pop()], dim=1), time_features)
        return self.head(h)[:, :, :height, :width]


def _build_unet(event_shape: int | Sequence[int] | None, **kwargs) -> MiniUNet:
    if event_shape is not None:
        shape = as_event_shape(event_shape)
        if len(shape) != 3:
            raise ValueError(f"event_shape for the 'unet' network must be (C, H, W), got {shape}")
        if "in_channels" in kwargs and kwargs["in_channels"] != shape[0]:
            raise ValueError(
                f"in_channels={kwargs['in_channels']} contradicts event_shape {shape} (C = {shape[0]}) for 'unet'"
            )
        kwargs["in_channels"] = shape[0]
    if "in_channels" not in kwargs:
        raise ValueError("the 'unet' network needs event_shape=(C, H, W) or in_channels, got neither")
    return MiniUNet(**kwargs)


def _vector_builder(cls: type[nn.Module], name: str):
    def build(event_shape: int | Sequence[int] | None, **kwargs) -> nn.Module:
        if event_shape is None:
            raise ValueError(f"event_shape is required for the {name!r} network, got None")
        return cls(event_shape, **kwargs)

    return build


_BUILDERS = {
    "mlp": _vector_builder(VelocityMLP, "mlp"),
    "unet": _build_unet,
    "tccm-mlp": _vector_builder(ContractionMLP, "tccm-mlp"),
}


def make_velocity_net(name: str, event_shape: int | Sequence[int] | None = None, **kwargs) -> nn.Module:
    """Build a velocity network by name (one of ``NETWORKS``) for samples of shape ``event_shape``.

    ``make_velocity_net(name, **net.config)`` rebuilds ``net``'s architecture. For "unet",
    ``event_shape`` must be (C, H, W) (C becomes ``in_channels``); it may be left out when
    ``in_channels`` is given, as in a saved config. "mlp" and "tccm-mlp" need ``event_shape``.
    """
    check_choice("network", name, NETWORKS)
    return _BUILDERS[name](event_shape, **kwargs)
