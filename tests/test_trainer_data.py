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
        rng = torch.get_rng_state()
        train(model, data, _cfg())
        assert torch.equal(torch.get_rng_state(), rng), f"training on {name} consumed the global generator"
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
    unfinished = FeatureStore.create(tmp_path / "unfinished", 4, SHAPE)
    with pytest.raises(ValueError, match=r"unfinished is still being written: call finalize\(\)"):
        train(_model(), unfinished, _cfg())

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


def test_launch_module_trains_on_a_store_in_one_process(tmp_path, capsys):
    from wtflow.launch import main

    store = _store(tmp_path, _data())
    out = tmp_path / "model.pt"
    main(["--store", str(store.path), "--epochs", "1", "--wt", "batchnorm", "--device", "cpu", "--save", str(out)])
    assert "epoch losses:" in capsys.readouterr().out
    assert FlowModel.load(out).config["event_shape"] == list(SHAPE)


def test_single_process_draws_from_one_stream_like_the_original_loop():
    """One process: the generator seeded by `seed` draws each epoch's permutation, then x_1 and t of its
    steps, so models trained with a seed are those of the toolkit's first trainer (cached toys, committed
    results). The reference is that loop written out."""
    from wtflow import FlowModel, TrainConfig, train

    x = torch.randn(21, 5, generator=torch.Generator().manual_seed(3))
    cfg = TrainConfig(epochs=3, batch_size=8, lr=1e-2, weight_decay=0.0, seed=7, device="cpu", progress=False)

    def fresh():
        torch.manual_seed(0)
        return FlowModel(5, net="mlp", net_kwargs={"hidden": 8, "depth": 1}, wt="layernorm")

    reference = fresh()
    opt = torch.optim.AdamW(reference.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.lr_step_epochs, gamma=cfg.lr_gamma)
    gen = torch.Generator().manual_seed(cfg.seed)
    reference.train()
    for _ in range(cfg.epochs):
        perm = torch.randperm(len(x), generator=gen)
        for idx in torch.tensor_split(perm, 3):
            loss = reference.loss(x[idx], generator=gen)
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    model = fresh()
    train(model, x, cfg)
    for name, value in reference.state_dict().items():
        assert torch.equal(model.state_dict()[name], value), name


def test_single_process_resume_mid_epoch_continues_the_stream(tmp_path):
    from wtflow import FlowModel, TrainConfig, train

    x = torch.randn(21, 5, generator=torch.Generator().manual_seed(3))

    def fresh():
        torch.manual_seed(0)
        return FlowModel(5, net="mlp", net_kwargs={"hidden": 8, "depth": 1}, wt="batchnorm")

    base = dict(epochs=3, batch_size=8, lr=1e-2, seed=7, device="cpu", progress=False)
    straight = fresh()
    train(straight, x, TrainConfig(**base))
    cut = TrainConfig(**base, checkpoint_dir=str(tmp_path), checkpoint_every=1)
    steps = {"n": 0}
    import wtflow.training.loop as loop

    original = loop._Run._step

    def stop_mid_epoch(self, batch, signals):
        steps["n"] += 1
        if steps["n"] == 5:  # as if Ctrl-C arrived during epoch 2, step 2 of 3
            signals.received = signal.SIGINT
        original(self, batch, signals)

    loop._Run._step = stop_mid_epoch
    try:
        with pytest.raises(KeyboardInterrupt):
            train(fresh(), x, cut)
    finally:
        loop._Run._step = original
    assert load_checkpoint(tmp_path / "last.pt", TRAIN_KIND)["step_in_epoch"] == 2
    resumed = fresh()
    train(resumed, x, cut, resume=tmp_path / "last.pt")
    for name, value in straight.state_dict().items():
        assert torch.equal(resumed.state_dict()[name], value), name
