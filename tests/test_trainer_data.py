"""The trainer reads tensors, numpy arrays, Datasets and feature stores alike, and resumes exactly from a position."""

import os
import signal

import pytest
import torch
from torch.utils.data import Dataset, IterableDataset

from wtflow import FlowModel, TrainConfig, train
from wtflow.checkpoint import load_checkpoint
from wtflow.store import FeatureStore
from wtflow.training import TRAIN_KIND
from wtflow.training.sampler import EpochBatches

SHAPE = (3, 2, 2)


def _data(n=21, seed=0):
    return torch.randn((n, *SHAPE), generator=torch.Generator().manual_seed(seed)).abs()


def _model(seed=0, wt="batchnorm"):
    torch.manual_seed(seed)
    return FlowModel(SHAPE, net="mlp", net_kwargs={"hidden": 16, "depth": 2}, wt=wt)


def _cfg(**kw):
    return TrainConfig(
        **{"epochs": 3, "batch_size": 8, "lr": 1e-2, "seed": 2, "progress": False, "device": "cpu", **kw}
    )


class ListDataset(Dataset):
    def __init__(self, x):
        self.x = x

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i].clone()


def _store(tmp_path, x):
    store = FeatureStore.create(tmp_path / "store", len(x), SHAPE, dtype="float32", meta={"source": "test"})
    store.write(0, x)
    return store.finalize()


def _weights(model):
    return torch.cat([v.flatten().float() for v in model.state_dict().values()])


def test_tensor_numpy_dataset_and_store_train_identically(tmp_path):
    x = _data()
    sources = {"tensor": x, "numpy": x.numpy(), "dataset": ListDataset(x), "store": _store(tmp_path, x)}
    weights = {}
    for name, data in sources.items():
        model = _model()
        train(model, data, _cfg())
        weights[name] = _weights(model)
    for name in ("numpy", "dataset", "store"):
        assert torch.equal(weights[name], weights["tensor"]), name


def test_store_with_loader_workers_resumes_bit_identically_after_sigterm(tmp_path):
    store = _store(tmp_path, _data())
    full = _model()
    train(full, store, _cfg())
    cut = _model()
    calls = {"n": 0}
    original = cut.velocity.forward

    def sigterm_on_the_5th_step(x_t, t):
        calls["n"] += 1
        if calls["n"] == 5:  # epoch 2 of 3 batches, mid-step
            os.kill(os.getpid(), signal.SIGTERM)
        return original(x_t, t)

    cut.velocity.forward = sigterm_on_the_5th_step
    with pytest.raises(KeyboardInterrupt, match="interrupted by SIGTERM; resume from"):
        train(cut, store, _cfg(checkpoint_dir=str(tmp_path / "ck"), num_workers=1))
    state = load_checkpoint(tmp_path / "ck" / "last.pt", TRAIN_KIND)
    assert (state["epoch"], state["step_in_epoch"]) == (1, 2) and "perm" not in state
    assert state["sampler"] == {"seed": 2, "epoch": 1, "step": 2}
    assert state["data"] == {"count": 21, "digest": "store:" + store.digest}
    resumed = _model(seed=9)
    train(resumed, store, _cfg(checkpoint_dir=str(tmp_path / "ck"), num_workers=1), resume=tmp_path / "ck/last.pt")
    assert torch.equal(_weights(resumed), _weights(full))


def test_sampler_order_depends_on_seed_and_epoch_and_ranks_partition_each_batch():
    one = EpochBatches(23, 8, seed=5)
    assert one.global_sizes == [8, 8, 7] and one.steps_per_epoch == 3
    assert torch.equal(one.permutation(4), EpochBatches(23, 8, seed=5).permutation(4))
    assert not torch.equal(one.permutation(4), one.permutation(5))
    assert not torch.equal(one.permutation(4), EpochBatches(23, 8, seed=6).permutation(4))
    ranks = [EpochBatches(23, 8, seed=5, rank=r, world_size=3) for r in range(3)]
    per_rank = [list(r.local_batches(1)) for r in ranks]
    for step, batch in enumerate(torch.tensor_split(one.permutation(1), 3)):
        assert torch.equal(torch.cat([parts[step] for parts in per_rank]), batch)
        assert [len(parts[step]) for parts in per_rank] == [r.local_size(step) for r in ranks]
    assert [len(b) for b in one.local_batches(0, start_step=1)] == [8, 7]


def test_store_and_dataset_problems_are_named(tmp_path):
    store = _store(tmp_path, _data())
    model = FlowModel((3, 2, 3), net="mlp", net_kwargs={"hidden": 8, "depth": 1})
    with pytest.raises(ValueError, match=r"feature store .*store holds samples of shape \(3, 2, 2\), .*\(3, 2, 3\)"):
        train(model, store, _cfg())

    class Pairs(ListDataset):
        def __getitem__(self, i):
            return self.x[i], 0

    with pytest.raises(TypeError, match="item 0 of Pairs is a tuple"):
        train(_model(), Pairs(_data()), _cfg())

    class Stream(IterableDataset):
        def __iter__(self):
            return iter(_data())

    with pytest.raises(TypeError, match="map-style"):
        train(_model(), Stream(), _cfg())
    bad = _data()
    bad[13, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"training data must be finite: sample\(s\) \[13\]"):
        train(_model(), ListDataset(bad), _cfg(epochs=1))
