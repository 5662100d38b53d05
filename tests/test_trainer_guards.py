"""Nothing lost: divergence, a repeated command, resume on other data, interruptions, bad configuration values."""

import os
import signal

import numpy as np
import pytest
import torch

from wtflow import FlowModel, TrainConfig, train
from wtflow.checkpoint import CheckpointError, load_checkpoint
from wtflow.training import TRAIN_KIND


def _data(n=20, seed=0, d=4):
    return torch.randn((n, d), generator=torch.Generator().manual_seed(seed)).abs()


def _model(seed=0, wt="batchnorm"):
    torch.manual_seed(seed)
    return FlowModel(4, net="mlp", net_kwargs={"hidden": 16, "depth": 2}, wt=wt)


def _cfg(tmp_path=None, **kw):
    base = {"epochs": 3, "batch_size": 8, "lr": 1e-2, "progress": False, "device": "cpu", "checkpoint_every": 1}
    if tmp_path is not None:
        base["checkpoint_dir"] = str(tmp_path)
    return TrainConfig(**{**base, **kw})


def test_non_finite_loss_skips_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    model = _model()
    original, calls, seen = model.loss, {"n": 0}, {}

    def nan_on_the_5th_step(batch, generator=None):
        calls["n"] += 1
        if calls["n"] == 5:  # epoch 2, step 2 (3 steps per epoch)
            seen["weights"] = {k: v.clone() for k, v in model.state_dict().items()}
            return original(batch, generator) * float("nan")
        return original(batch, generator)

    model.loss = nan_on_the_5th_step
    with pytest.raises(FloatingPointError, match=r"nan at epoch 2 of 3, step 2 of 3.*skipped") as info:
        train(model, _data(), _cfg(tmp_path))
    message = str(info.value)
    assert f"last good checkpoint {tmp_path / 'last.pt'} is kept" in message and "diverged.pt" in message
    good = load_checkpoint(tmp_path / "last.pt", TRAIN_KIND)
    assert (good["epoch"], good["step_in_epoch"]) == (1, 0)
    diverged = load_checkpoint(tmp_path / "diverged.pt", TRAIN_KIND)
    assert (diverged["epoch"], diverged["step_in_epoch"]) == (1, 1)
    for name, value in model.state_dict().items():  # the failing step changed nothing
        assert torch.equal(value, seen["weights"][name]) and torch.isfinite(value.float()).all(), name


def test_a_previous_run_is_never_replaced_silently(tmp_path):
    data = _data()
    train(_model(), data, _cfg(tmp_path, epochs=2))
    before = (tmp_path / "last.pt").read_bytes()
    with pytest.raises(FileExistsError, match=r"last\.pt holds a previous run.*resume=.*overwrite=True"):
        train(_model(), data, _cfg(tmp_path, epochs=1))
    assert (tmp_path / "last.pt").read_bytes() == before
    train(_model(), data, _cfg(tmp_path, epochs=1, overwrite=True))
    assert load_checkpoint(tmp_path / "last.pt", TRAIN_KIND)["epoch"] == 1


def test_checkpoint_folder_is_checked_before_any_compute(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(OSError, match=r"checkpoint_dir .*file/run cannot be created or written to"):
        train(model, _data(), _cfg(tmp_path / "file" / "run"))
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_resume_refuses_other_data_and_names_differing_keys(tmp_path):
    train(_model(), _data(), _cfg(tmp_path, epochs=1))
    last = tmp_path / "last.pt"
    with pytest.raises(CheckpointError, match="training set of 20 samples, this data has 25"):
        train(_model(), _data(25), _cfg(tmp_path, epochs=1), resume=last)
    with pytest.raises(CheckpointError, match="different training data of the same size"):
        train(_model(), _data(seed=1), _cfg(tmp_path, epochs=1), resume=last)
    with pytest.raises(CheckpointError, match=r"training configuration differs in lr: 0\.01 \(checkpoint\) vs 0\.5"):
        train(_model(), _data(), _cfg(tmp_path, epochs=1, lr=0.5), resume=last)
    with pytest.raises(CheckpointError, match=r"model configuration differs in wt: 'batchnorm' .* vs 'layernorm'"):
        train(_model(wt="layernorm"), _data(), _cfg(tmp_path, epochs=1), resume=last)


def test_interruption_without_checkpoints_says_nothing_was_saved():
    model = _model()
    original = model.velocity.forward

    def ctrl_c(x_t, t):
        os.kill(os.getpid(), signal.SIGINT)
        return original(x_t, t)

    model.velocity.forward = ctrl_c
    with pytest.raises(KeyboardInterrupt, match=r"SIGINT; nothing was saved \(TrainConfig.checkpoint_dir is None\)"):
        train(model, _data(), _cfg())


@pytest.mark.parametrize(
    "option, value, rule",
    [
        ("grad_clip", 0.0, "> 0"),
        ("grad_clip", -1.0, "> 0"),
        ("lr_gamma", 0.0, "> 0"),
        ("weight_decay", -0.1, ">= 0"),
        ("lr", float("nan"), "> 0"),
        ("batch_size", 0, "integer >= 1"),
        ("num_workers", -1, "integer >= 0"),
        ("seed", -3, "integer >= 0"),
    ],
)
def test_bad_config_values_are_refused_up_front(option, value, rule):
    with pytest.raises(ValueError, match=rf"{option} must be .*{rule}.*got"):
        TrainConfig(**{option: value})


def test_bad_training_sets_are_explained():
    with pytest.raises(ValueError, match=r"training set is empty"):
        train(_model(), torch.zeros(0, 4), _cfg())
    with pytest.raises(ValueError, match=r"batchnorm WT map needs at least 2 samples .*n = 1 .*n is the cause"):
        train(_model(), _data(1), _cfg())
    with pytest.raises(ValueError, match=r"batchnorm .*batch_size = 1 give batches of 1: batch_size is the cause"):
        train(_model(), _data(), _cfg(batch_size=1))
    with pytest.raises(ValueError, match=r"float64 values up to 1e\+300, beyond float32's range"):
        train(_model(), _data().double() * 1e300 / _data().double().max(), _cfg())
    model = _model(wt="layernorm")
    train(model, np.abs(np.random.default_rng(0).standard_normal((12, 4))), _cfg(epochs=1))  # numpy is converted
    assert all(torch.isfinite(p).all() for p in model.parameters())
