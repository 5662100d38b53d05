"""Loss objects: values against inline formulas (bit for bit), draw order, config round trips for every detector."""

import json

import pytest
import torch

from wtflow.checkpoint import dumps_config, save_checkpoint
from wtflow.distributions import StandardGaussian, UniformSphere
from wtflow.losses import LOSSES, ContractionLoss, ForwardFMLoss, RFMLoss
from wtflow.model import FlowModel


def _batch(shape, n=16, seed=0):
    return torch.randn((n, *shape), generator=torch.Generator().manual_seed(seed)).abs() + 0.5


def _perturbed(model, seed=1):
    """Non-zero weights everywhere, so the loss depends on the network (the heads start at zero)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen))
    return model


@pytest.mark.parametrize(
    ("shape", "net", "kwargs", "wt", "target", "t_min"),
    [
        ((6,), "mlp", {"hidden": 16, "depth": 2}, "layernorm", "gaussian", 0.0),
        ((6,), "mlp", {"hidden": 16, "depth": 2}, "batchnorm", "sphere", 0.2),
        ((3, 4, 4), "unet", {"base_channels": 8}, "layernorm", "gaussian", 0.1),
    ],
)
def test_rfm_loss_equals_the_old_inline_formula_bit_for_bit(shape, net, kwargs, wt, target, t_min):
    torch.manual_seed(0)
    model = _perturbed(FlowModel(shape, net=net, net_kwargs=kwargs, wt=wt, target=target, t_min=t_min))
    x = _batch(shape)
    got = model.loss(x, torch.Generator().manual_seed(7))

    # The formula of FlowModel.loss before the loss objects: x_1 first, then t, both float32 on the CPU.
    gen = torch.Generator().manual_seed(7)
    x_0 = model.wt_map(x)
    x_1 = model.target.sample(x.shape[0], generator=gen, dtype=torch.float32)
    t = t_min + (1.0 - t_min) * torch.rand(x.shape[0], generator=gen, dtype=torch.float32)
    tt = t.reshape(-1, *([1] * len(shape)))
    expected = (model.velocity((1 - tt) * x_0 + tt * x_1, t) - (x_1 - x_0)).pow(2).mean()
    assert torch.equal(got, expected)
    assert got > 0


def test_forward_fm_loss_puts_noise_at_zero_and_data_at_one():
    torch.manual_seed(0)
    model = _perturbed(FlowModel(5, net_kwargs={"hidden": 16, "depth": 1}, loss="forward-fm"))
    x = _batch((5,))
    got = model.loss(x, torch.Generator().manual_seed(3))
    gen = torch.Generator().manual_seed(3)
    eps = torch.randn(x.shape[0], 5, generator=gen)
    t = torch.rand(x.shape[0], generator=gen)
    expected = (model.velocity((1 - t[:, None]) * eps + t[:, None] * x, t) - (x - eps)).pow(2).mean()
    assert torch.equal(got, expected)


def test_contraction_loss_is_the_distance_of_f_plus_x_to_zero():
    torch.manual_seed(0)
    model = FlowModel(
        4, net="tccm-mlp", net_kwargs={"hidden": 8, "depth": 2, "time_dim": 4}, target="point", loss="contraction"
    )
    x = _batch((4,))
    got = model.loss(x, torch.Generator().manual_seed(2))
    t = torch.rand(x.shape[0], generator=torch.Generator().manual_seed(2))
    assert torch.equal(got, (model.velocity(x, t) + x).pow(2).mean())
    # The minimiser f = -x gives exactly zero.
    assert float(ContractionLoss()(lambda z, s: -z, x)) == 0.0


def test_inference_times_and_transport_direction():
    sphere = UniformSphere(2)
    assert RFMLoss(sphere, 0.2).inference_times == (0.2, 1.0)
    assert ForwardFMLoss(sphere, 0.1).inference_times == (1.0, 0.1)
    assert ContractionLoss().inference_times is None
    # A constant field v = c moves data by +c forward and by -c backward over a unit interval.
    model = FlowModel(2, net_kwargs={"hidden": 4, "depth": 1}, loss="forward-fm")
    with torch.no_grad():
        model.velocity.head.bias.fill_(1.0)
    x = torch.zeros(3, 2)
    assert torch.allclose(model.transport(x, steps=4).x_end, torch.full((3, 2), -1.0))
    model.objective = RFMLoss(model.target)
    assert torch.allclose(model.transport(x, steps=4).x_end, torch.full((3, 2), 1.0))
    tccm = FlowModel(2, net="tccm-mlp", net_kwargs={"hidden": 4, "depth": 1, "time_dim": 4}, loss="contraction")
    with pytest.raises(ValueError, match="'contraction' objective has no ODE"):
        tccm.transport(x)


@pytest.mark.parametrize(
    "config",
    [
        {
            "net": "tccm-mlp",
            "net_kwargs": {"hidden": 8, "depth": 2, "time_dim": 4},
            "target": "point",
            "loss": "contraction",
        },
        {"net": "mlp", "net_kwargs": {"hidden": 8, "depth": 2, "time_dim": 4}, "loss": "forward-fm"},
        {"net": "mlp", "net_kwargs": {"hidden": 8}, "wt": "batchnorm", "target": "sphere", "t_min": 0.1},
    ],
)
def test_every_detector_model_round_trips_through_config_and_file(config, tmp_path):
    torch.manual_seed(0)
    model = _perturbed(FlowModel(5, **config))
    rebuilt = FlowModel.from_config(json.loads(dumps_config(model.config)))
    assert rebuilt.config == model.config and type(rebuilt.objective) is type(model.objective)
    back = FlowModel.load(model.save(tmp_path / "m.pt"))
    assert back.config == model.config
    x = _batch((5,), n=4)
    t = torch.full((4,), 0.5)
    with torch.no_grad():
        assert torch.equal(back.velocity(x, t), model.velocity(x, t))
    assert torch.equal(back.loss(x, torch.Generator().manual_seed(1)), model.loss(x, torch.Generator().manual_seed(1)))


def test_a_model_file_written_before_the_loss_option_still_loads(tmp_path):
    torch.manual_seed(0)
    model = _perturbed(FlowModel(3, net_kwargs={"hidden": 8, "depth": 1}))
    old_config = {k: v for k, v in model.config.items() if k != "loss"}
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    payload = {"config": dumps_config(old_config), "state_dict": state, "extra": dumps_config({})}
    save_checkpoint(tmp_path / "old.pt", "flow-model", payload)
    back = FlowModel.load(tmp_path / "old.pt")
    assert back.config["loss"] == "rfm"
    x = _batch((3,), n=4)
    assert torch.equal(back.transport(x).x_end, model.transport(x).x_end)


def test_bad_loss_options_are_named():
    assert LOSSES == ("rfm", "forward-fm", "contraction")
    with pytest.raises(ValueError, match="unknown loss 'ddpm'"):
        FlowModel(2, loss="ddpm")
    with pytest.raises(ValueError, match="takes no t_min"):
        FlowModel(2, net="tccm-mlp", loss="contraction", t_min=0.1)
    with pytest.raises(ValueError, match="t_min must lie in"):
        RFMLoss(StandardGaussian(2), t_min=1.0)


@pytest.mark.parametrize("kind", ["TCCM", "FlowMismatch"])
def test_detector_files_carry_the_model_config_and_older_files_still_load(kind, tmp_path):
    import numpy as np

    import wtflow
    from wtflow.checkpoint import load_checkpoint
    from wtflow.detectors import load_detector

    rng = np.random.default_rng(0)
    X, X_test = np.abs(rng.normal(size=(40, 5))), np.abs(rng.normal(size=(6, 5)))
    small = {"hidden": 8, "depth": 1, "time_dim": 4}
    det = (wtflow.TCCM(epochs=2, **small) if kind == "TCCM" else wtflow.FlowMismatch(train_steps=3, **small)).fit(X)
    path = det.save(tmp_path / "det.pt")
    payload = load_checkpoint(path, "detector")
    config = json.loads(payload["model"]["config"])
    expected = ("tccm-mlp", "contraction") if kind == "TCCM" else ("mlp", "forward-fm")
    assert (config["net"], config["loss"]) == expected
    np.testing.assert_array_equal(load_detector(path).decision_function(X_test), det.decision_function(X_test))
    # A file written before the config was stored: the model is rebuilt from the detector's parameters.
    del payload["model"]["config"]
    save_checkpoint(tmp_path / "old.pt", "detector", payload)
    np.testing.assert_array_equal(
        load_detector(tmp_path / "old.pt").decision_function(X_test), det.decision_function(X_test)
    )
