"""FeatureMapDetector: a planted local defect, shapes, scores against direct computations, persistence, bad input."""

import numpy as np
import pytest
import torch

import wtflow
from wtflow.checkpoint import CheckpointError
from wtflow.detectors import NotFittedError
from wtflow.scores import anomaly_map, image_score
from wtflow.wt import LayerNormWT

SMALL = {
    "base_channels": 8,
    "channel_mult": (1, 2),
    "num_res_blocks": 1,
    "batch_size": 8,
    "lr": 3e-3,
    "weight_decay": 0.0,
    "lr_step_fraction": 1.0,
    "lr_gamma": 1.0,
    "device": "cpu",
    "progress": False,
}
PATCH = (slice(3, 5), slice(4, 6))


def _normal_maps(n, seed):
    """(n, 4, 8, 8): four fixed smooth patterns, a per-map gain and a little noise."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="ij")
    base = torch.stack([torch.sin(xx / 2), torch.cos(yy / 2), torch.sin((xx + yy) / 3), torch.cos((xx - yy) / 3)])
    gain = 1 + 0.2 * torch.rand(n, 1, 1, 1, generator=g)
    return base * gain + 0.1 * torch.randn(n, 4, 8, 8, generator=g)


def _defective_maps(n, seed):
    """Normal maps with the sign of a 2 x 2 patch flipped: same magnitudes, wrong pattern."""
    x = _normal_maps(n, seed)
    x[:, :, PATCH[0], PATCH[1]] *= -1.0
    return x


@pytest.fixture(scope="module")
def fitted():
    return wtflow.FeatureMapDetector(epochs=12, **SMALL).fit(_normal_maps(32, 0))


def test_a_planted_local_defect_ranks_above_normals_and_is_localised(fitted):
    normal, defect = _normal_maps(8, 1), _defective_maps(8, 2)
    s_normal, s_defect = fitted.decision_function(normal), fitted.decision_function(defect)
    assert s_defect.min() > s_normal.max()
    peaks = fitted.anomaly_maps(defect).flatten(1).argmax(1)
    assert all(3 <= int(p) // 8 <= 4 and 4 <= int(p) % 8 <= 5 for p in peaks)
    # The untrained field (phi = WT(x)) scores the defects lower on average: the training does the work.
    control = lambda x: image_score(anomaly_map(LayerNormWT()(x)))  # noqa: E731
    assert control(defect).mean() < control(normal).mean()
    _, m_normal = fitted.score_mismatch(normal)
    m_maps, m_defect = fitted.score_mismatch(defect)
    assert m_defect.min() > m_normal.max()
    assert all(3 <= int(p) // 8 <= 4 and 4 <= int(p) % 8 <= 5 for p in m_maps.flatten(1).argmax(1))


def test_shapes_dtypes_and_scores_are_the_documented_reductions(fitted):
    x = _defective_maps(5, 3)
    phi = fitted.transport(x)
    maps = fitted.anomaly_maps(x)
    scores = fitted.decision_function(x)
    assert phi.shape == (5, 4, 8, 8) and maps.shape == (5, 8, 8) and scores.shape == (5,)
    assert all(t.dtype == torch.float32 and t.device.type == "cpu" for t in (phi, maps, scores))
    torch.testing.assert_close(maps, anomaly_map(phi), rtol=0, atol=0)
    # 3 % of 64 positions rounds down to one: the image score is the map's maximum.
    torch.testing.assert_close(scores, maps.flatten(1).max(1).values, rtol=0, atol=0)
    assert not torch.allclose(fitted.transport(x, steps=3), phi)
    torch.testing.assert_close(fitted.decision_function(x.numpy()), scores, rtol=0, atol=0)
    alone = torch.cat([fitted.decision_function(x[i : i + 1]) for i in range(5)])
    torch.testing.assert_close(alone, scores, rtol=1e-5, atol=1e-6)


def test_image_size_upsamples_the_maps_before_the_image_score(fitted):
    x = _defective_maps(3, 10)
    small = fitted.anomaly_maps(x)
    fitted.image_size = (16, 12)
    try:
        big, scores = fitted.anomaly_maps(x), fitted.decision_function(x)
        mismatch_maps, _ = fitted.score_mismatch(x)
    finally:
        fitted.image_size = None
    expected = torch.nn.functional.interpolate(small[:, None], size=(16, 12), mode="bilinear", align_corners=False)
    torch.testing.assert_close(big, expected[:, 0])
    # 3 % of 192 positions: the mean of the 5 largest.
    torch.testing.assert_close(scores, big.flatten(1).topk(5).values.mean(1))
    assert mismatch_maps.shape == (3, 16, 12)


def test_score_mismatch_matches_a_direct_loop(fitted):
    x = _defective_maps(2, 4)
    fitted.n_probes, fitted.n_times = 3, 2
    try:
        maps, scores = fitted.score_mismatch(x)
        probes, times = fitted.probes(), fitted.probe_times()
    finally:
        fitted.n_probes, fitted.n_times = 8, 5
    assert probes.shape == (3, 4, 8, 8) and torch.allclose(times, torch.tensor([0.1, 0.5]))
    with torch.no_grad():
        x_0 = LayerNormWT()(x)
        per_probe = []
        for eps in probes:
            per_time = []
            for t in times.tolist():
                x_t = (1 - t) * x_0 + t * eps
                v = fitted.model_.velocity(x_t, torch.full((2,), t))
                per_time.append(t**2 * (v - (eps - x_0)).pow(2).mean(dim=1))
            per_probe.append(torch.stack(per_time).mean(0))
        expected = torch.stack(per_probe).median(dim=0).values
    torch.testing.assert_close(maps, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(scores, image_score(expected), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("wt", ["layernorm", "batchnorm"])
def test_save_load_round_trip_gives_identical_outputs(wt, fitted, tmp_path):
    det = fitted if wt == "layernorm" else wtflow.FeatureMapDetector(wt=wt, epochs=1, **SMALL).fit(_normal_maps(16, 5))
    path = det.save(tmp_path / "maps.pt")
    back = wtflow.FeatureMapDetector.load(path)
    assert back.get_params() == det.get_params()
    if wt == "batchnorm":
        assert back.model_.wt_map.running_var.ne(1).all()  # the training statistics travel with the file
    x = _defective_maps(3, 6)
    torch.testing.assert_close(back.anomaly_maps(x, steps=2), det.anomaly_maps(x, steps=2), rtol=0, atol=0)
    torch.testing.assert_close(back.score_mismatch(x)[0], det.score_mismatch(x)[0], rtol=0, atol=0)
    np.testing.assert_array_equal(back.train_loss_, det.train_loss_)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(CheckpointError, match=r"maps\.pt"):
        wtflow.FeatureMapDetector.load(path)


def test_fit_accepts_arrays_and_iterables_of_batches_with_the_same_result():
    data = _normal_maps(12, 7)
    opts = {**SMALL, "epochs": 1, "base_channels": 4}
    a = wtflow.FeatureMapDetector(**opts).fit(data)
    b = wtflow.FeatureMapDetector(**opts).fit(data.numpy().astype(np.float64))
    c = wtflow.FeatureMapDetector(**opts).fit(iter([data[:5], data[5:]]))
    x = _normal_maps(2, 8)
    for other in (b, c):
        torch.testing.assert_close(other.anomaly_maps(x), a.anomaly_maps(x), rtol=0, atol=0)
    assert a.train_config().epochs == 1 and a.train_config().batch_size == 8


def test_a_dataset_is_handed_to_the_trainer_as_it_is(monkeypatch):
    from wtflow.detectors import maps
    from wtflow.trainer import TrainResult

    seen = {}

    def fake_train(model, data, config, resume=None, callback=None):
        seen.update(model=model, data=data, config=config, resume=resume)
        return TrainResult(step_loss=[1.0])

    monkeypatch.setattr(maps, "train", fake_train)

    class Maps(torch.utils.data.Dataset):
        def __init__(self, x):
            self.x = x

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            return self.x[i]

    data = Maps(_normal_maps(6, 11))
    det = wtflow.FeatureMapDetector(**{**SMALL, "epochs": 3}).fit(data, resume="ckpt/last.pt")
    assert seen["data"] is data and seen["resume"] == "ckpt/last.pt"
    assert seen["model"].event_shape == (4, 8, 8) and det.event_shape_ == (4, 8, 8)
    assert seen["config"].epochs == 3 and seen["config"].lr == 3e-3 and seen["config"].device == "cpu"
    with pytest.raises(ValueError, match=r"Dataset of \(C, H, W\) tensors, got item 0 of tuple"):
        wtflow.FeatureMapDetector(**SMALL).fit(torch.utils.data.TensorDataset(_normal_maps(2, 0)))


def test_bad_input_gets_clear_errors(fitted):
    with pytest.raises(NotFittedError, match="not fitted"):
        wtflow.FeatureMapDetector().decision_function(torch.zeros(1, 4, 8, 8))
    with pytest.raises(ValueError, match=r"x must have shape \(N, C, H, W\), got \(4, 8, 8\)"):
        fitted.anomaly_maps(torch.zeros(4, 8, 8))
    with pytest.raises(ValueError, match="x has 3 channels, but the detector was fitted on 4"):
        fitted.decision_function(np.zeros((2, 3, 8, 8)))
    with pytest.raises(ValueError, match=r"maps of size \(8, 9\)"):
        fitted.transport(torch.zeros(2, 4, 8, 9))
    bad = _normal_maps(2, 9)
    bad[1, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="x must be finite, got 1 NaN"):
        fitted.score_mismatch(bad)
    with pytest.raises(ValueError, match="data must be finite"):
        wtflow.FeatureMapDetector(**SMALL).fit(bad)
    with pytest.raises(ValueError, match="must share one"):
        wtflow.FeatureMapDetector(**SMALL).fit([torch.zeros(2, 4, 8, 8), torch.zeros(2, 4, 4, 4)])
    with pytest.raises(ValueError, match="empty Dataset"):
        wtflow.FeatureMapDetector(**SMALL).fit(torch.utils.data.TensorDataset(torch.zeros(0, 4, 8, 8)))
    with pytest.raises(ValueError, match="unknown wt 'groupnorm'"):
        wtflow.FeatureMapDetector(wt="groupnorm")
    with pytest.raises(ValueError, match="unknown net 'mlp'"):
        wtflow.FeatureMapDetector(net="mlp")
    with pytest.raises(ValueError, match="t_low must lie in"):
        wtflow.FeatureMapDetector(t_min=0.2, t_low=0.1)
    with pytest.raises(ValueError, match="image_size must be a positive int or a pair"):
        wtflow.FeatureMapDetector(image_size=(8,))
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        wtflow.FeatureMapDetector(steps=0)
