"""Velocity networks: shapes, time handling, input_norm, positional encoding, configs, counts, gradients."""

from __future__ import annotations

import json

import pytest
import torch

from wtflow.networks import (
    NETWORKS,
    MiniUNet,
    SinusoidalTimeEmbedding,
    VelocityMLP,
    count_parameters,
    make_velocity_net,
)


def _perturb(net: torch.nn.Module, seed: int = 0, scale: float = 0.1) -> torch.nn.Module:
    """Add noise to every parameter, so the zero-initialised head no longer hides the body."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(scale * torch.randn(p.shape, generator=generator, dtype=p.dtype))
    return net


def _small_unet(in_channels: int, **kwargs) -> MiniUNet:
    return MiniUNet(in_channels, base_channels=kwargs.pop("base_channels", 8), **kwargs)


CASES = [
    ("mlp", (2,), {"hidden": 32, "depth": 2}),
    ("mlp", (512,), {"hidden": 64}),
    ("unet", (64, 8, 8), {"base_channels": 16}),
    ("unet", (8, 7, 5), {"base_channels": 8}),
    ("unet", (3, 1, 9), {"base_channels": 8, "pos_encoding": True}),
]


@pytest.mark.parametrize(("name", "event_shape", "kwargs"), CASES)
def test_output_shape_and_zero_init(name, event_shape, kwargs):
    torch.manual_seed(0)
    net = make_velocity_net(name, event_shape, **kwargs)
    x_t = torch.randn(2, *event_shape)
    v = net(x_t, 0.3)
    assert v.shape == x_t.shape
    assert torch.count_nonzero(v) == 0  # zero-initialised last layer
    v = _perturb(net)(x_t, 0.3)
    assert v.shape == x_t.shape
    assert torch.isfinite(v).all() and v.abs().max() > 0


@pytest.mark.parametrize(("name", "event_shape", "kwargs"), CASES)
def test_float_and_tensor_time_agree_and_time_matters(name, event_shape, kwargs):
    torch.manual_seed(1)
    net = _perturb(make_velocity_net(name, event_shape, **kwargs))
    x_t = torch.randn(3, *event_shape)
    v_float = net(x_t, 0.25)
    v_tensor = net(x_t, torch.full((3,), 0.25))
    torch.testing.assert_close(v_float, v_tensor, rtol=0, atol=0)
    v_late = net(x_t, 0.75)
    assert (v_late - v_float).abs().max() > 1e-3 * v_float.abs().max()
    # per-sample times: row i only depends on t_i
    t = torch.tensor([0.25, 0.75, 0.25])
    v_mixed = net(x_t, t)
    torch.testing.assert_close(v_mixed[0], v_float[0])
    torch.testing.assert_close(v_mixed[1], v_late[1])


def test_time_embedding_values():
    embedding = SinusoidalTimeEmbedding(5)
    t = torch.tensor([0.0, 0.5], dtype=torch.float64)
    e = embedding(t)
    assert e.shape == (2, 5)
    half = 2
    freqs = torch.exp(-torch.log(torch.tensor(10000.0, dtype=torch.float64)) * torch.arange(half) / half)
    angles = 1000.0 * 0.5 * freqs
    torch.testing.assert_close(e[1, :2], torch.sin(angles))
    torch.testing.assert_close(e[1, 2:4], torch.cos(angles))
    assert e[:, 4].abs().max() == 0  # odd dim: zero last column
    torch.testing.assert_close(e[0, :4], torch.tensor([0.0, 0.0, 1.0, 1.0], dtype=torch.float64))
    assert embedding(0.5).shape == (1, 5)
    # half precision t: angles are still computed in float32 (1000 t in bfloat16 would be off by ~1)
    t_half = torch.tensor([0.3, 0.7], dtype=torch.bfloat16)
    e_half = embedding(t_half)
    assert e_half.dtype == torch.bfloat16
    torch.testing.assert_close(e_half.float(), embedding(t_half.float()).to(torch.bfloat16).float())
    with pytest.raises(ValueError, match="t must be"):
        embedding(torch.zeros(2, 1))


@pytest.mark.parametrize(("name", "event_shape", "kwargs"), CASES[1:4])
def test_input_norm_gives_scale_invariance(name, event_shape, kwargs):
    torch.manual_seed(2)
    # std 10 keeps LayerNorm's eps = 1e-5 negligible: LN(c x) - LN(x) ~ eps / (c sigma)^2 relative
    x_t = 10.0 * torch.randn(2, *event_shape, dtype=torch.float64)
    net = _perturb(make_velocity_net(name, event_shape, input_norm=True, **kwargs).double())
    v = net(x_t, 0.4)
    for factor in (0.5, 4.0):
        torch.testing.assert_close(net(factor * x_t, 0.4), v, rtol=1e-5, atol=1e-5 * v.abs().max().item())
    plain = make_velocity_net(name, event_shape, input_norm=False, **kwargs).double()
    plain.load_state_dict(net.state_dict())
    # input_norm == the same weights applied to an independently computed per-sample standardisation
    flat = x_t.reshape(2, -1)
    standardised = (flat - flat.mean(1, keepdim=True)) / torch.sqrt(flat.var(1, unbiased=False, keepdim=True) + 1e-5)
    torch.testing.assert_close(plain(standardised.reshape(x_t.shape), 0.4), v)
    # without input_norm the same weights do see the scale
    assert (plain(4.0 * x_t, 0.4) - plain(x_t, 0.4)).abs().max() > 1e-2 * v.abs().max()


def test_pos_encoding_changes_output():
    torch.manual_seed(3)
    x_t = torch.randn(2, 8, 7, 5)
    with_pos = _perturb(_small_unet(8, pos_encoding=True))
    without_pos = _small_unet(8, pos_encoding=False)
    without_pos.load_state_dict(with_pos.state_dict())  # the encoding is fixed: same parameters
    diff = (with_pos(x_t, 0.5) - without_pos(x_t, 0.5)).abs().max()
    assert diff > 1e-2 * without_pos(x_t, 0.5).abs().max()


def test_odd_sizes_crop_back_to_the_input_grid():
    """The output corner next to the zero padding still depends on the real input."""
    torch.manual_seed(4)
    net = _perturb(_small_unet(4))
    x_t = torch.randn(1, 4, 7, 5, requires_grad=True)
    v = net(x_t, 0.5)
    assert v.shape == (1, 4, 7, 5)
    v[0, :, 6, 4].sum().backward()  # bottom-right corner, next to the padding
    assert x_t.grad.abs().sum() > 0


@pytest.mark.parametrize(("name", "event_shape", "kwargs"), CASES)
def test_config_round_trip(name, event_shape, kwargs):
    torch.manual_seed(5)
    net = _perturb(make_velocity_net(name, event_shape, **kwargs))
    config = json.loads(json.dumps(net.config))
    assert config == net.config
    rebuilt = make_velocity_net(name, **config)
    assert type(rebuilt) is type(net) and rebuilt.config == net.config
    rebuilt.load_state_dict(net.state_dict())
    x_t = torch.randn(2, *event_shape)
    torch.testing.assert_close(rebuilt(x_t, 0.6), net(x_t, 0.6), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("factory", "kwargs"),
    [
        (MiniUNet, {"in_channels": 1024, "base_channels": 16}),
        (MiniUNet, {"in_channels": 3, "base_channels": 12, "pos_encoding": True, "time_dim": 20}),
        (VelocityMLP, {"event_shape": (512,), "hidden": 64}),
    ],
)
def test_meta_count_equals_real_count(factory, kwargs):
    real = factory(**kwargs)
    with torch.device("meta"):
        meta = factory(**kwargs)
    assert next(meta.parameters()).is_meta
    assert count_parameters(meta) == count_parameters(real) == sum(p.numel() for p in real.parameters())


def test_unet_count_matches_closed_form():
    """Default U-Net: 1366 NC^2 + 193 NC + 18 C NC + C, derived by hand from the layer list."""
    for in_channels, nc in [(1024, 16), (5, 24)]:
        expected = 1366 * nc**2 + 193 * nc + 18 * in_channels * nc + in_channels
        with torch.device("meta"):
            assert count_parameters(MiniUNet(in_channels, nc)) == expected


@pytest.mark.parametrize(("name", "event_shape", "kwargs"), [*CASES, ("unet", (4, 7, 5), {"pos_encoding": True})])
def test_gradients_reach_every_parameter(name, event_shape, kwargs):
    torch.manual_seed(6)
    kwargs = {"base_channels": 8, **kwargs} if name == "unet" else kwargs
    net = make_velocity_net(name, event_shape, **kwargs)
    with torch.no_grad():
        for p in net.head.parameters():
            p.normal_(0.0, 0.1)
    x_t = torch.randn(3, *event_shape)
    net(x_t, torch.rand(3)).square().sum().backward()
    for param_name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().max() > 0, param_name


def test_errors_are_clear():
    with pytest.raises(ValueError, match="unknown network 'resnet'"):
        make_velocity_net("resnet", (2,))
    with pytest.raises(ValueError, match=r"must be \(C, H, W\), got \(512,\)"):
        make_velocity_net("unet", (512,))
    with pytest.raises(ValueError, match="contradicts"):
        make_velocity_net("unet", (3, 4, 4), in_channels=5)
    with pytest.raises(ValueError, match="event_shape is required"):
        make_velocity_net("mlp")
    mlp = VelocityMLP(2, hidden=8, depth=1)
    with pytest.raises(ValueError, match=r"x_t must have shape \(N, 2\), got \(4, 3\)"):
        mlp(torch.zeros(4, 3), 0.5)
    with pytest.raises(ValueError, match=r"t must be a float or a tensor of shape \(4,\)"):
        mlp(torch.zeros(4, 2), torch.zeros(3))
    unet = _small_unet(3)
    with pytest.raises(ValueError, match=r"x_t must have shape \(B, 3, H, W\), got \(2, 4, 8, 8\)"):
        unet(torch.zeros(2, 4, 8, 8), 0.5)
    with pytest.raises(ValueError, match="depth must be an integer >= 1"):
        VelocityMLP(2, depth=0)
    assert NETWORKS == ("mlp", "unet", "tccm-mlp")
