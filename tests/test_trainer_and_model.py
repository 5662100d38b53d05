import pytest
import torch

from wtflow.checkpoint import CheckpointError
from wtflow.model import FlowModel
from wtflow.trainer import TrainConfig, train


def _data(shape, n, seed=0):
    return torch.randn((n, *shape), generator=torch.Generator().manual_seed(seed)).abs()


@pytest.mark.parametrize(
    "shape, net, wt",
    [
        ((2,), "mlp", "none"),
        ((512,), "mlp", "layernorm"),
        ((512,), "mlp", "batchnorm"),
        ((64, 8, 8), "unet", "layernorm"),
        ((64, 8, 8), "unet", "batchnorm"),
    ],
)
def test_same_trainer_on_toys_vectors_and_feature_maps(shape, net, wt):
    kwargs = {"hidden": 64, "depth": 2} if net == "mlp" else {"base_channels": 16}
    torch.manual_seed(0)
    model = FlowModel(shape, net=net, net_kwargs=kwargs, wt=wt)
    n = 2 if len(shape) == 3 else 16
    result = train(model, _data(shape, n), TrainConfig(epochs=3, batch_size=8, lr=1e-3, progress=False))
    assert len(result.epoch_loss) == 3 and all(torch.isfinite(torch.tensor(result.epoch_loss)))
    phi = model.transport(_data(shape, 3, seed=1), steps=2).x_end
    assert phi.shape == (3, *shape) and torch.isfinite(phi).all()


def test_training_reduces_the_loss_on_a_toy():
    torch.manual_seed(0)
    model = FlowModel(2, net="mlp", net_kwargs={"hidden": 64, "depth": 2})
    result = train(model, _data((2,), 256), TrainConfig(epochs=150, batch_size=256, lr=3e-3, progress=False))
    assert sum(result.epoch_loss[-10:]) / 10 < 0.8 * result.epoch_loss[0]


def _fresh(seed=0):
    torch.manual_seed(seed)
    return FlowModel(4, net="mlp", net_kwargs={"hidden": 32, "depth": 2}, wt="batchnorm")


def test_interrupted_and_resumed_training_is_bit_identical(tmp_path):
    data = _data((4,), 40)
    cfg = dict(epochs=6, batch_size=16, lr=1e-3, seed=3, progress=False, checkpoint_every=2, device="cpu")
    full = _fresh()
    train(full, data, TrainConfig(**cfg, checkpoint_dir=str(tmp_path / "full")))

    def stop_after_epoch_3(epoch, loss):
        if epoch == 3:
            raise KeyboardInterrupt

    interrupted = _fresh()
    with pytest.raises(KeyboardInterrupt):
        train(interrupted, data, TrainConfig(**cfg, checkpoint_dir=str(tmp_path / "cut")), callback=stop_after_epoch_3)
    resumed = _fresh(seed=123)  # different init: everything must come from the checkpoint
    result = train(
        resumed, data, TrainConfig(**cfg, checkpoint_dir=str(tmp_path / "cut")), resume=tmp_path / "cut/last.pt"
    )
    assert len(result.epoch_loss) == 6
    for (name, a), (_, b) in zip(full.state_dict().items(), resumed.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_resume_refuses_a_different_configuration(tmp_path):
    data = _data((4,), 20)
    train(_fresh(), data, TrainConfig(epochs=1, batch_size=8, progress=False, checkpoint_dir=str(tmp_path)))
    with pytest.raises(CheckpointError, match="different model or training configuration"):
        train(_fresh(), data, TrainConfig(epochs=2, batch_size=8, lr=1.0, progress=False), resume=tmp_path / "last.pt")


def test_model_save_load_round_trip(tmp_path):
    model = _fresh()
    train(model, _data((4,), 20), TrainConfig(epochs=2, batch_size=8, progress=False))
    path = model.save(tmp_path / "model.pt")
    back = FlowModel.load(path)
    x = _data((4,), 5, seed=9)
    torch.testing.assert_close(back.transport(x, steps=3).x_end, model.transport(x, steps=3).x_end, rtol=0, atol=0)
    assert back.config == model.config


def test_truncated_model_file_names_the_file(tmp_path):
    path = _fresh().save(tmp_path / "m.pt")
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match=r"m\.pt"):
        FlowModel.load(path)


def test_truncation_time_is_used_for_training_and_inference():
    model = FlowModel(2, net_kwargs={"hidden": 16, "depth": 1}, t_min=0.3)
    seen = []
    original = model.velocity.forward

    def spy(x_t, t):
        seen.append(torch.as_tensor(t).min().item())
        return original(x_t, t)

    model.velocity.forward = spy
    train(model, _data((2,), 64), TrainConfig(epochs=2, batch_size=64, progress=False))
    assert min(seen) >= 0.3
    seen.clear()
    model.transport(_data((2,), 4), steps=1)
    assert seen == [pytest.approx(0.3)]


def test_bad_input():
    with pytest.raises(ValueError, match="unknown wt"):
        FlowModel(2, wt="groupnorm")
    with pytest.raises(ValueError, match="unknown net"):
        FlowModel(2, net="transformer")
    with pytest.raises(ValueError, match="unknown target"):
        FlowModel(2, target="cauchy")
    with pytest.raises(ValueError, match="t_min"):
        FlowModel(2, t_min=1.0)
    model = FlowModel(2, net_kwargs={"hidden": 8, "depth": 1})
    with pytest.raises(ValueError, match=r"data must have shape \(N, 2\)"):
        train(model, torch.zeros(4, 3), TrainConfig(epochs=1, progress=False))
    with pytest.raises(ValueError, match="data must be finite"):
        train(model, torch.full((4, 2), float("nan")), TrainConfig(epochs=1, progress=False))
    with pytest.raises(ValueError, match="epochs must be an integer"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="unknown solver"):
        model.transport(torch.zeros(2, 2), solver="rk45")


def test_ctrl_c_mid_epoch_is_deferred_to_a_consistent_checkpoint(tmp_path):
    import os
    import signal

    data = _data((4,), 40)
    cfg = dict(epochs=3, batch_size=8, lr=1e-3, seed=5, progress=False, checkpoint_every=5, device="cpu")
    full = _fresh()
    train(full, data, TrainConfig(**cfg))

    cut = _fresh()
    calls = {"n": 0}
    original = cut.velocity.forward

    def press_ctrl_c_on_the_7th_step(x_t, t):
        calls["n"] += 1
        if calls["n"] == 7:  # inside epoch 2 (5 steps per epoch), in the middle of a step
            os.kill(os.getpid(), signal.SIGINT)
        return original(x_t, t)

    cut.velocity.forward = press_ctrl_c_on_the_7th_step
    with pytest.raises(KeyboardInterrupt, match="resume from"):
        train(cut, data, TrainConfig(**cfg, checkpoint_dir=str(tmp_path)))
    resumed = _fresh(seed=7)
    train(resumed, data, TrainConfig(**cfg, checkpoint_dir=str(tmp_path)), resume=tmp_path / "last.pt")
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_batches_are_balanced_so_batchnorm_never_sees_a_lone_sample():
    sizes = []
    model = _fresh()
    original = model.velocity.forward

    def spy(x_t, t):
        sizes.append(x_t.shape[0])
        return original(x_t, t)

    model.velocity.forward = spy
    # n = 65 with batch 64 used to leave a last batch of one sample.
    train(model, _data((4,), 65), TrainConfig(epochs=1, batch_size=64, progress=False, device="cpu"))
    assert sorted(sizes) == [32, 33]
