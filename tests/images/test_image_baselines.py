"""Map baselines: Mahalanobis against scikit-learn, coreset selection, a planted patch defect, map upsampling."""

import math

import numpy as np
import pytest
import torch

from benchmarks.images.baselines import (
    GaussianBaseline,
    PatchCoreBaseline,
    aggregate_maps,
    greedy_coreset,
    nearest_distances,
    upsample_maps,
)


def _normal_maps(n, c=6, h=5, w=4, seed=0):
    """Normal maps with a position-dependent mean and correlated channels."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(c, c, generator=g) / math.sqrt(c)
    base = torch.linspace(0, 1, h * w).view(1, 1, h, w) * torch.arange(1, c + 1).view(1, c, 1, 1)
    noise = torch.einsum("ij,njhw->nihw", mix, torch.randn(n, c, h, w, generator=g))
    return base + noise


def test_mahalanobis_equals_sklearn_ledoit_wolf():
    sklearn_cov = pytest.importorskip("sklearn.covariance")
    train, test = _normal_maps(40), _normal_maps(3, seed=1)
    model = GaussianBaseline().fit(train)
    maps = model.score_maps(test)
    assert maps.shape == (3, 5, 4)
    for y, x in ((0, 0), (2, 3), (4, 1)):
        lw = sklearn_cov.LedoitWolf().fit(train[:, :, y, x].double().numpy())
        expected = np.sqrt(lw.mahalanobis(test[:, :, y, x].double().numpy()))
        np.testing.assert_allclose(maps[:, y, x].numpy(), expected, rtol=1e-4)


def test_gaussian_channel_subset_is_seeded_and_sized():
    train = _normal_maps(30, c=12)
    a, b = GaussianBaseline(channels=5, seed=3).fit(train), GaussianBaseline(channels=5, seed=3).fit(train)
    assert a.precision.shape == (20, 5, 5) and torch.equal(a.index, b.index) and len(set(a.index.tolist())) == 5
    assert not torch.equal(a.index, GaussianBaseline(channels=5, seed=4).fit(train).index)
    constant = torch.ones(10, 3, 2, 2)  # every training patch equal: falls back to Euclidean distance
    maps = (
        GaussianBaseline().fit(constant).score_maps(torch.ones(1, 3, 2, 2) + torch.tensor([3.0, 0, 4]).view(1, 3, 1, 1))
    )
    torch.testing.assert_close(maps, torch.full((1, 2, 2), 5.0))


@pytest.mark.parametrize(
    "model",
    [GaussianBaseline(), GaussianBaseline(channels=3), PatchCoreBaseline(0.5), PatchCoreBaseline(1.0, patch_size=1)],
)
def test_planted_patch_defect_scores_above_normals(model):
    train, test = _normal_maps(60), _normal_maps(6, seed=2)
    test[5, :, 3, 2] += 6.0  # one anomalous patch in the last test image
    maps, scores = model.fit(train).score(test)
    assert maps.shape == (6, 5, 4) and scores.shape == (6,)
    y, x = divmod(int(maps[5].argmax()), 4)
    # A 3 x 3 neighbourhood average spreads the defect over its neighbours: the peak lies among them.
    reach = getattr(model, "patch_size", 1) // 2
    assert abs(y - 3) <= reach and abs(x - 2) <= reach
    assert scores[5] > scores[:5].max()
    assert maps[5, y, x] > maps[:5].max()


def test_coreset_of_ratio_one_is_the_full_bank():
    train = _normal_maps(8)
    bank = PatchCoreBaseline(coreset_ratio=1.0, patch_size=1).fit(train).bank
    torch.testing.assert_close(bank, train.permute(0, 2, 3, 1).reshape(-1, 6))
    assert torch.equal(greedy_coreset(torch.randn(9, 4), 1.0), torch.arange(9))


def test_greedy_coreset_picks_spread_out_points():
    # Three tight clusters and one far outlier: 4 centres must take one point of each, whatever the start.
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    points = torch.cat([c + 0.1 * torch.randn(10, 2, generator=g) for c in centres] + [torch.tensor([[50.0, 50.0]])])
    for seed in range(5):
        chosen = greedy_coreset(points, ratio=4 / 31, projection_dim=None, seed=seed)
        assert len(chosen) == 4 and 30 in chosen.tolist()
        assert sorted(int(i) // 10 for i in chosen if i < 30) == [0, 1, 2]
    # With a projection (from 64 dimensions) the same clusters are still found.
    lifted = torch.cat([points, torch.zeros(31, 62)], dim=1)
    chosen = greedy_coreset(lifted, ratio=4 / 31, projection_dim=16, seed=0)
    assert 30 in chosen.tolist() and sorted(int(i) // 10 for i in chosen if i < 30) == [0, 1, 2]


def test_chunked_nearest_distances_equal_brute_force():
    g = torch.Generator().manual_seed(1)
    queries, bank = torch.randn(37, 5, generator=g), torch.randn(53, 5, generator=g)
    brute = torch.sqrt(((queries[:, None] - bank[None]) ** 2).sum(-1)).amin(1)
    torch.testing.assert_close(nearest_distances(queries, bank, max_block_elements=64), brute, rtol=1e-4, atol=1e-4)


def test_aggregation_and_bad_inputs():
    maps = torch.arange(100.0).view(1, 10, 10)
    assert float(aggregate_maps(maps, "max")) == 99.0 and float(aggregate_maps(maps, "top")) == 98.0  # top 3 of 100
    with pytest.raises(ValueError, match="unknown aggregation 'mean'"):
        GaussianBaseline(aggregation="mean")
    with pytest.raises(ValueError, match=r"\(N, 6, 5, 4\)"):
        GaussianBaseline().fit(_normal_maps(10)).score(torch.zeros(1, 6, 4, 4))
    with pytest.raises(ValueError, match="NaN"):
        PatchCoreBaseline().fit(torch.full((2, 3, 2, 2), float("nan")))
    with pytest.raises(RuntimeError, match="before fit"):
        PatchCoreBaseline().score(torch.zeros(1, 3, 2, 2))
    with pytest.raises(ValueError, match="odd"):
        PatchCoreBaseline(patch_size=2)


def test_upsample_maps_matches_scipy_gaussian_filter():
    ndimage = pytest.importorskip("scipy.ndimage")
    maps = torch.rand(2, 8, 8, generator=torch.Generator().manual_seed(0))
    up = upsample_maps(maps, 64)
    assert up.shape == (2, 64, 64)
    torch.testing.assert_close(up, torch.nn.functional.interpolate(maps[:, None], size=64, mode="bilinear")[:, 0])
    smooth = upsample_maps(maps, (64, 48), sigma=4)
    assert smooth.shape == (2, 64, 48)
    plain = upsample_maps(maps, (64, 48)).double().numpy()
    expected = np.stack([ndimage.gaussian_filter(m, sigma=4, mode="mirror", truncate=4.0) for m in plain])
    np.testing.assert_allclose(smooth.numpy(), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="sigma"):
        upsample_maps(maps, 8, sigma=4)
