"""The toys' plumbing: model cache (with its lock), solvers, results and the command line."""

import json
import os

import numpy as np
import pytest
import torch

from toys import CacheRebuildWarning, Solver
from toys import _cache as cache
from toys import _cli as cli
from toys import _result as result_mod
from toys import _solvers as solvers
from toys.ring import RingConfig
from wtflow.utils import make_table


def _tiny_run(data, epochs=5, lr=1e-3):
    model = {
        "event_shape": 2,
        "net": "mlp",
        "net_kwargs": {"hidden": 8, "depth": 1, "time_dim": 4},
        "target": "gaussian",
    }
    train = {"epochs": epochs, "batch_size": len(data), "lr": lr, "weight_decay": 0.0, "amp": False, "seed": 3}
    return cache.trained_snapshots("unit", model, train, data, [2, epochs], init_seed=7)


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
    files = sorted(p.name for p in cache.cache_dir().glob("unit-*.pt"))
    assert files == sorted([f"unit-{first.key[:20]}-e2.pt", f"unit-{first.key[:20]}-e5.pt"])


def test_cache_key_covers_data_and_configuration():
    data = torch.randn(16, 2, generator=torch.Generator().manual_seed(1))
    base = _tiny_run(data)
    assert _tiny_run(data + 1e-3).key != base.key
    assert _tiny_run(data, lr=2e-3).key != base.key


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "elsewhere"))
    assert cache.cache_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv(cache.CACHE_ENV)
    assert cache.cache_dir() == cache.DEFAULT_CACHE


def test_bad_snapshots_are_named():
    data = torch.randn(8, 2)
    with pytest.raises(ValueError, match="snapshots"):
        cache.trained_snapshots("unit", {"event_shape": 2}, {"epochs": 3, "batch_size": 8}, data, [4], init_seed=0)


def test_solver_specs_are_validated_and_named():
    assert Solver("euler", 20).label == "euler20" and Solver("euler", 20).caption == "Euler K = 20"
    assert Solver("dopri5").label == "adaptive" and Solver("dopri5").caption == "adaptive (dopri5)"
    assert solvers.solver_caption("euler1") == "Euler K = 1"
    assert solvers.as_solvers([("euler", 4), "bosh3"]) == (Solver("euler", 4), Solver("bosh3"))
    with pytest.raises(ValueError, match=r"write Solver\('euler', 20\)"):
        solvers.as_solvers(["euler20"])
    with pytest.raises(ValueError, match="needs steps"):
        Solver("euler")
    with pytest.raises(ValueError, match="takes no steps"):
        Solver("dopri5", 3)
    with pytest.raises(ValueError, match="unknown solver method 'rk45'"):
        Solver("rk45", 1)
    with pytest.raises(ValueError, match="duplicates"):
        RingConfig(solvers=(("euler", 1), ("euler", 1)))


def test_run_solver_on_a_linear_field_matches_the_closed_form():
    x0 = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    out = solvers.run_solver(lambda x, t: -x, x0, Solver("dopri5"), 0.0, rtol=1e-8, atol=1e-10)
    assert out.x_end == pytest.approx(np.exp(-1.0) * x0.numpy(), rel=1e-6)
    out = solvers.run_solver(lambda x, t: -x, x0, Solver("euler", 4), 0.0)
    assert out.states.shape == (5, 1, 2) and out.nfe == 4
    assert out.x_end == pytest.approx(0.75**4 * x0.numpy())


def test_learned_velocity_is_the_scaled_network_in_float64():
    from wtflow import FlowModel

    torch.manual_seed(0)
    model = FlowModel(2, net_kwargs={"hidden": 8, "depth": 1, "time_dim": 4})
    x = torch.randn(5, 2, dtype=torch.float64)
    t = torch.full((5,), 0.3, dtype=torch.float64)
    v = solvers.learned_velocity(model, scale=2.5)(x, t)
    assert v.dtype == torch.float64
    with torch.no_grad():
        expected = 2.5 * model(x.float() / 2.5, t.float())
    assert torch.equal(v, expected.double())


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
        table = make_table(2, a=np.array([1.0, 2.0]))
        return result_mod.ToyResult(
            "fake", {"seed": seed, "quick": quick}, {"summary": table}, {"fake_fig": ["summary"]}
        )

    def plot(result):
        fig, ax = plt.subplots()
        ax.plot(result.tables["summary"]["a"])
        return {"fake_fig": fig}

    out = tmp_path / "out"
    cli.run_cli("fake", simulate, plot, ["--quick", "--seed", "3", "--out", str(out), "--no-progress"])
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
    assert any(p.name.startswith(f"supports-{key[:20]}-e") for p in cache.cache_dir().iterdir())


def test_corrupt_cache_entry_is_rebuilt_with_a_warning():
    data = torch.randn(16, 2, generator=torch.Generator().manual_seed(4))
    first = _tiny_run(data)
    path = cache.cache_dir() / f"unit-{first.key[:20]}-e5.pt"
    path.write_bytes(path.read_bytes()[:100])  # truncated, as by a kill during a copy
    with pytest.warns(CacheRebuildWarning, match="unreadable"):
        again = _tiny_run(data)
    assert again.trained and again.key == first.key
    assert torch.equal(
        again.models[5].state_dict()["velocity.head.weight"], first.models[5].state_dict()["velocity.head.weight"]
    )
    assert not _tiny_run(data).trained  # the rebuilt entry is read again


def test_two_workers_sharing_the_cache_train_a_model_once():
    import threading

    data = torch.randn(16, 2, generator=torch.Generator().manual_seed(5))
    runs = []
    workers = [threading.Thread(target=lambda: runs.append(_tiny_run(data, epochs=30))) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert sorted(r.trained for r in runs) == [False, True]  # the second waited for the lock, then loaded
    assert runs[0].key == runs[1].key


def test_cli_help_shows_the_default_folder(capsys):
    with pytest.raises(SystemExit):
        cli.run_cli("fake", None, None, ["--help"])
    text = capsys.readouterr().out
    assert "runs/toys/fake" in text and "%(prog)" not in text and "python -m toys.fake" in text


def test_cli_refuses_an_unwritable_out_before_computing(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")

    def simulate(**kwargs):
        raise AssertionError("simulate must not run when --out is unusable")

    with pytest.raises(SystemExit) as exc:
        cli.run_cli("fake", simulate, None, ["--out", str(blocker / "sub")])
    assert exc.value.code == 2
    assert str(blocker / "sub") in capsys.readouterr().err
