"""The toys' plumbing: model cache, seeds, tables, threads, CLI."""

import json
import os

import numpy as np
import pytest
import torch

from toys import _common as common
from toys.ring import RingConfig


def _tiny_run(data, epochs=5, lr=1e-3):
    model = {
        "event_shape": 2,
        "net": "mlp",
        "net_kwargs": {"hidden": 8, "depth": 1, "time_dim": 4},
        "target": "gaussian",
    }
    train = {"epochs": epochs, "batch_size": len(data), "lr": lr, "weight_decay": 0.0, "amp": False, "seed": 3}
    return common.trained_snapshots("unit", model, train, data, [2, epochs], init_seed=7)


def test_cache_hit_returns_the_identical_model():
    data = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
    first = _tiny_run(data)
    second = _tiny_run(data)
    assert first.trained and not second.trained
    assert first.key == second.key
    assert set(second.models) == {2, 5}
    for epoch in (2, 5):
        a, b = first.models[epoch].state_dict(), second.models[epoch].state_dict()
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a)
    # the snapshot after 2 epochs differs from the one after 5 (it is a snapshot, not a copy of the end)
    assert not torch.equal(
        first.models[2].state_dict()["velocity.head.weight"], first.models[5].state_dict()["velocity.head.weight"]
    )
    assert second.epoch_loss == pytest.approx(first.epoch_loss)
    assert len(second.epoch_loss) == 5
    files = sorted(p.name for p in common.cache_dir().iterdir() if p.name.startswith("unit-"))
    assert files == sorted([f"unit-{first.key[:20]}-e2.pt", f"unit-{first.key[:20]}-e5.pt"])


def test_cache_key_covers_data_and_configuration():
    data = torch.randn(16, 2, generator=torch.Generator().manual_seed(1))
    base = _tiny_run(data)
    assert _tiny_run(data + 1e-3).key != base.key
    assert _tiny_run(data, lr=2e-3).key != base.key


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(common.CACHE_ENV, str(tmp_path / "elsewhere"))
    assert common.cache_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv(common.CACHE_ENV)
    assert common.cache_dir() == common.DEFAULT_CACHE


def test_bad_snapshots_are_named():
    data = torch.randn(8, 2)
    with pytest.raises(ValueError, match="snapshots"):
        common.trained_snapshots("unit", {"event_shape": 2}, {"epochs": 3, "batch_size": 8}, data, [4], init_seed=0)


def test_derive_seed_is_stable_and_separates_labels():
    assert common.derive_seed(0, "ring", 1) == common.derive_seed(0, "ring", 1)
    assert common.derive_seed(0, "ring", 1) != common.derive_seed(0, "ring", 2)
    assert common.derive_seed(0, "ring", 1) != common.derive_seed(1, "ring", 1)
    assert 0 <= common.derive_seed(5, "x") < 2**31


def test_torch_threads_restores_the_previous_setting():
    before = torch.get_num_threads()
    with common.torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_tables_select_concat_and_csv(tmp_path):
    a = common.make_table(3, name="a", value=np.arange(3.0), flag=np.array([True, False, True]))
    b = common.make_table(2, name="b", value=np.array([5.0, 6.0]), flag=np.array([False, False]))
    t = common.concat_tables([a, b])
    assert common.n_rows(t) == 5
    assert common.select(t, name="b")["value"].tolist() == [5.0, 6.0]
    assert common.select(t, name=["a", "b"], flag=True)["value"].tolist() == [0.0, 2.0]
    with pytest.raises(KeyError, match="no column 'missing'"):
        common.select(t, missing=1)
    path = common.write_csv(t, tmp_path / "t.csv")
    lines = path.read_text().splitlines()
    assert lines[0] == "name,value,flag"
    assert lines[1] == "a,0,true" and lines[-1] == "b,6,false"


def test_integrate_rejects_unknown_solver():
    with pytest.raises(ValueError, match="solver"):
        common.integrate(lambda x, t: -x, torch.ones(2, 2), "rk4", 0.0)


def test_integrate_euler_on_a_linear_field_matches_the_closed_form():
    x0 = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    out = common.integrate(lambda x, t: -x, x0, "adaptive", 0.0, rtol=1e-8, atol=1e-10)
    assert out.x_end == pytest.approx(np.exp(-1.0) * x0.numpy(), rel=1e-6)
    out = common.integrate(lambda x, t: -x, x0, "euler4", 0.0)
    assert out.states.shape == (5, 1, 2) and out.nfe == 4
    assert out.x_end == pytest.approx(0.75**4 * x0.numpy())


def test_config_errors_name_the_argument():
    with pytest.raises(ValueError, match="radius"):
        RingConfig(radius=-1.0)
    with pytest.raises(ValueError, match="snapshots"):
        RingConfig(snapshots=(10, 5))


def test_cli_writes_png_pdf_csv_and_json(tmp_path, capsys):
    import matplotlib.pyplot as plt

    calls = {}

    def simulate(quick, seed, progress):
        calls.update(quick=quick, seed=seed, progress=progress)
        table = common.make_table(2, a=np.array([1.0, 2.0]))
        return common.ToyResult("fake", {"seed": seed, "quick": quick}, {"summary": table}, {"fake_fig": ["summary"]})

    def plot(result):
        fig, ax = plt.subplots()
        ax.plot(result.tables["summary"]["a"])
        return {"fake_fig": fig}

    out = tmp_path / "out"
    common.run_cli("fake", simulate, plot, ["--quick", "--seed", "3", "--out", str(out), "--no-progress"])
    assert calls == {"quick": True, "seed": 3, "progress": False}
    names = {p.name for p in out.iterdir()}
    assert names == {"fake_fig.png", "fake_fig.pdf", "fake_summary.csv", "fake_config.json"}
    meta = json.loads((out / "fake_config.json").read_text())
    assert meta["config"] == {"seed": 3, "quick": True} and meta["figures"] == {"fake_fig": ["summary"]}
    assert (out / "fake_summary.csv").read_text() == "a\n1\n2\n"
    assert os.stat(out / "fake_config.json").st_mode & 0o044  # readable beyond the owner, like any output
    assert "fake" in capsys.readouterr().out


def test_result_write_and_cache_reuse(tmp_path, supports_result):
    paths = supports_result.write(tmp_path)
    names = {p.name for p in paths}
    assert {f"supports_{t}.csv" for t in supports_result.tables} | {"supports_config.json"} == names
    meta = json.loads((tmp_path / "supports_config.json").read_text())
    assert meta["config"]["seed"] == 0 and meta["config"]["model"]["target"] == "gaussian"
    key = supports_result.info["cache"]["model"]["key"]
    assert any(p.name.startswith(f"supports-{key[:20]}-e") for p in common.cache_dir().iterdir())
