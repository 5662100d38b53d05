import math

import pytest
import torch

from wtflow.scores import anomaly_map, density_proxy, image_score, score_endpoints
from wtflow.wt import BatchNormWT, LayerNormWT, make_wt_map


@pytest.mark.parametrize("shape", [(50, 2), (50, 512), (4, 64, 8, 8)])
def test_layernorm_radius_is_sqrt_d(shape):
    x = torch.rand(shape, dtype=torch.float64) * 5 + torch.randn(
        shape[0], *([1] * (len(shape) - 1)), dtype=torch.float64
    )
    d = math.prod(shape[1:])
    norms = LayerNormWT(eps=0.0)(x).flatten(1).norm(dim=1)
    torch.testing.assert_close(norms, torch.full_like(norms, math.sqrt(d)), rtol=1e-10, atol=0)


def test_layernorm_radius_with_eps():
    x = torch.randn(20, 128, dtype=torch.float64) * torch.linspace(0.01, 3, 20, dtype=torch.float64).view(-1, 1)
    eps = 1e-2
    var = x.var(dim=1, unbiased=False)
    expected = torch.sqrt(128 * var / (var + eps))
    torch.testing.assert_close(LayerNormWT(eps=eps)(x).norm(dim=1), expected, rtol=1e-10, atol=0)
    assert bool((expected < math.sqrt(128)).all())


def test_layernorm_rejects_constant_samples():
    x = torch.randn(4, 10)
    x[2] = 3.0
    with pytest.raises(ValueError, match=r"constant sample.*sqrt\(D\)"):
        LayerNormWT()(x)


def test_batchnorm_batch_average_of_squared_norm_is_d():
    x = torch.relu(torch.randn(64, 8, 4, 4, dtype=torch.float64) - 0.5)  # sparse, non-negative
    bn = BatchNormWT(8, eps=0.0).double().train()
    sq = bn(x).flatten(1).pow(2).sum(1)
    assert float(sq.mean()) == pytest.approx(8 * 4 * 4, rel=1e-10)


def test_batchnorm_uses_running_statistics_in_eval():
    torch.manual_seed(0)
    bn = BatchNormWT(3, eps=0.0).double()
    batches = [torch.randn(10, 3, dtype=torch.float64) * 2 + 1 for _ in range(4)]
    for b in batches:
        bn.train()(b)
    allx = torch.cat(batches)
    # Cumulative momentum: running mean = mean of batch means = mean of all data (equal batch sizes).
    torch.testing.assert_close(bn.running_mean, allx.mean(0))
    torch.testing.assert_close(bn.running_var, torch.stack([b.var(0) for b in batches]).mean(0))
    probe = torch.randn(5, 3, dtype=torch.float64)
    expected = (probe - bn.running_mean) / bn.running_var.sqrt()
    torch.testing.assert_close(bn.eval()(probe), expected)


def test_wt_bad_names():
    with pytest.raises(ValueError, match="unknown wt 'groupnorm'"):
        make_wt_map("groupnorm", 4)


def test_density_proxy_values():
    phi = torch.tensor([0.0, 1.0, -2.0], dtype=torch.float64)
    expected = torch.tensor(
        [
            1 - 1 / math.sqrt(2 * math.pi),
            1 - math.exp(-0.5) / math.sqrt(2 * math.pi),
            1 - math.exp(-2.0) / math.sqrt(2 * math.pi),
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(density_proxy(phi), expected)


def test_feature_map_scoring_by_hand():
    # One 2-channel 10x10 endpoint: channel 0 is zero except one hot pixel, channel 1 all zero.
    phi = torch.zeros(1, 2, 10, 10, dtype=torch.float64)
    phi[0, 0, 3, 4] = 2.0
    a0 = 1 - 1 / math.sqrt(2 * math.pi)  # A(0)
    a2 = 1 - math.exp(-2.0) / math.sqrt(2 * math.pi)  # A(2)
    amap = anomaly_map(phi)
    assert amap.shape == (1, 10, 10)
    assert float(amap[0, 3, 4]) == pytest.approx((a2 + a0) / 2, rel=1e-12)  # channel mean
    assert float(amap[0, 0, 0]) == pytest.approx(a0, rel=1e-12)
    # top 3 % of 100 pixels = 3 pixels: the hot one and two at the background level.
    assert float(image_score(amap)) == pytest.approx(((a2 + a0) / 2 + 2 * a0) / 3, rel=1e-12)
    # Upsampling a constant map keeps it constant; upsampling by 2 spreads the hot pixel over a 2x2 block.
    up = anomaly_map(phi, image_size=20)
    assert up.shape == (1, 20, 20)
    assert float(up.max()) < (a2 + a0) / 2 and float(up.max()) > a0
    torch.testing.assert_close(up[0, :4, :4], torch.full((4, 4), a0, dtype=torch.float64))
    # The same pipeline through score_endpoints.
    torch.testing.assert_close(score_endpoints(phi), image_score(anomaly_map(phi)))


def test_norm_scores():
    phi = torch.tensor([[3.0, 4.0], [0.0, 1.0]])
    torch.testing.assert_close(score_endpoints(phi, "norm"), torch.tensor([5.0, 1.0]))
    torch.testing.assert_close(score_endpoints(phi, "density"), density_proxy(phi).mean(1))
    fmap = torch.zeros(1, 2, 1, 1)
    fmap[0, :, 0, 0] = torch.tensor([3.0, 4.0])
    torch.testing.assert_close(anomaly_map(fmap, "norm"), torch.tensor([[[5.0]]]))


def test_score_bad_input():
    with pytest.raises(ValueError, match="unknown score 'likelihood'"):
        score_endpoints(torch.zeros(2, 2), "likelihood")
    with pytest.raises(ValueError, match="phi must be finite"):
        score_endpoints(torch.tensor([[float("inf"), 0.0]]))
    with pytest.raises(ValueError, match="top_fraction"):
        image_score(torch.zeros(1, 2, 2), 0.0)


def test_velocity_mismatch_shapes_weights_and_errors():
    from wtflow.scores import aggregate_mismatch, mismatch_times, velocity_mismatch

    x, probes, times = torch.ones(2, 3, 4, 5), torch.zeros(4, 3, 4, 5), torch.tensor([0.25, 0.5])

    # The zero field: the mismatch is the squared geometric velocity |eps - x|^2 = 1 per entry, times the weight.
    def zero(x_t, t):
        return torch.zeros_like(x_t)

    rfm = velocity_mismatch(zero, x, probes, times, data_time=0.0, rows_per_call=3)
    assert rfm.shape == (2, 4, 2, 4, 5)
    assert torch.equal(rfm[:, :, 0], torch.full((2, 4, 4, 5), 0.0625)) and torch.equal(
        rfm[:, :, 1], torch.full((2, 4, 4, 5), 0.25)
    )
    forward = velocity_mismatch(zero, x, probes, times, data_time=1.0, weighting="none")
    assert torch.equal(forward, torch.ones(2, 4, 2, 4, 5))
    assert aggregate_mismatch(rfm).shape == (2, 4, 5)
    assert torch.allclose(mismatch_times(0.1, 0.5, 3), torch.tensor([0.1, 0.3, 0.5]))
    assert torch.allclose(mismatch_times(0.1, 0.5, 1), torch.tensor([0.3]))
    with pytest.raises(ValueError, match="data_time must be 0.0 or 1.0"):
        velocity_mismatch(zero, x, probes, times, data_time=0.5)
    with pytest.raises(ValueError, match=r"probes must have shape \(M, 3, 4, 5\)"):
        velocity_mismatch(zero, x, torch.zeros(4, 3), times, data_time=0.0)
    with pytest.raises(ValueError, match="unknown weighting"):
        velocity_mismatch(zero, x, probes, times, data_time=0.0, weighting="square")
