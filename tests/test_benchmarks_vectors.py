"""benchmarks.data (ADBench .npz folders, digits, one-class split), the ADBench adapter and the benchmark CLI."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import data as bdata
from benchmarks.adbench_adapter import ADBenchAdapter
from benchmarks.data import DataError, Dataset, digits_datasets, load_folder, load_npz, one_class_split, resolve_data
from benchmarks.vectors import Journal, MethodSpec, build_methods, claims, run_benchmark, summarize, write_heatmap

REPO = Path(__file__).resolve().parent.parent


def _write(path, **arrays):
    np.savez(path, **arrays)
    return path


def _category(seed, n_normal=40, n_anomal=10, d=8):
    rng = np.random.default_rng(seed)
    pattern = np.abs(rng.normal(size=d)) + 0.2
    normal = rng.uniform(0.5, 1.5, size=(n_normal, 1)) * pattern + 0.05 * rng.normal(size=(n_normal, d))
    anomal = np.abs(rng.normal(size=(n_anomal, d))) * 2.0
    X = np.vstack([normal, anomal]).astype(np.float32)
    y = np.r_[np.zeros(n_normal), np.ones(n_anomal)].astype(np.int64)
    return X, y


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "tiny_adbench"
    root.mkdir()
    for i, name in enumerate(["alpha", "beta"]):
        X, y = _category(i)
        _write(root / f"Toy_{name}.npz", X=X, y=y)
    return root


def test_load_folder_reads_validates_and_shortens_names(folder):
    sets = load_folder(folder)
    assert [s.name for s in sets] == ["alpha", "beta"]
    assert sets[0].X.dtype == np.float64 and sets[0].X.shape == (50, 8) and sets[0].y.sum() == 10
    assert [s.name for s in load_folder(folder, ["beta"])] == ["beta"]
    with pytest.raises(DataError, match=r"unknown categories \['gamma'\]; available: alpha, beta"):
        load_folder(folder, ["gamma"])


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"y": np.zeros(5)}, r"missing array\(s\) \['X'\]"),
        ({"X": np.zeros((5, 2))}, r"missing array\(s\) \['y'\]"),
        ({"X": np.zeros(5), "y": np.zeros(5)}, r"X must have shape \(n, d\)"),
        ({"X": np.zeros((5, 2)), "y": np.zeros(4)}, r"y must have shape \(5,\) to match X"),
        ({"X": np.zeros((5, 2)), "y": np.zeros((5, 1))}, r"y must have shape \(5,\)"),
        ({"X": np.array([[np.nan, 1.0]] * 5), "y": np.r_[0, 0, 0, 0, 1]}, "X must be finite, got 5 NaN and 0 inf"),
        ({"X": np.array([[np.inf, 1.0]] * 5), "y": np.r_[0, 0, 0, 0, 1]}, "X must be finite, got 0 NaN and 5 inf"),
        ({"X": np.zeros((5, 2)), "y": np.r_[0, 0, 2, 1, -1]}, r"and 1 \(anomaly\), got other values \[-1, 2\]"),
        ({"X": np.zeros((5, 2)), "y": np.ones(5)}, r"no normal samples \(y == 0\)"),
        ({"X": np.zeros((4, 2)), "y": np.r_[0, 0, 1, 1]}, "too few normal samples to split: 2 normal"),
        ({"X": np.zeros((5, 2)), "y": np.zeros(5)}, r"no anomalies \(y == 1\)"),
        ({"X": np.array([["a", "b"]] * 5), "y": np.r_[0, 0, 0, 0, 1]}, "X must be a numeric array"),
    ],
)
def test_bad_files_get_errors_naming_file_and_problem(tmp_path, arrays, message):
    path = _write(tmp_path / "Bad_category.npz", **arrays)
    with pytest.raises(DataError, match=message) as err:
        load_npz(path)
    assert str(path) in str(err.value)


def test_unreadable_and_missing_inputs(tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip archive")
    with pytest.raises(DataError, match=f"{garbage}: cannot read it as a .npz"):
        load_npz(garbage)
    with pytest.raises(DataError, match="no such file"):
        load_npz(tmp_path / "absent.npz")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="holds no .npz files.*CV_by_ResNet18"):
        load_folder(empty)


def test_resolve_data_order_and_the_adbench_hint(tmp_path, monkeypatch, folder):
    assert resolve_data("digits") == "digits"
    assert resolve_data(str(folder)) == folder
    monkeypatch.setenv(bdata.ENV_VAR, str(folder))
    assert resolve_data(None) == folder
    monkeypatch.setenv(bdata.ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="WTFLOW_DATA=.*not a directory"):
        resolve_data(None)
    monkeypatch.delenv(bdata.ENV_VAR)
    monkeypatch.setattr(bdata, "_default_candidates", lambda: [tmp_path / "missing"])
    with pytest.raises(DataError, match=r"adbench/datasets/CV_by_ResNet18/.*--data DIR"):
        resolve_data(None)


def test_one_class_split_trains_on_70_percent_of_the_normals(folder):
    ds = load_folder(folder)[0]
    split = one_class_split(ds, seed=0)
    assert len(split.X_train) == 28 and len(split.X_test) == 12 + 10 and split.y_test.sum() == 10
    normals = {tuple(r) for r in ds.X[ds.y == 0]}
    assert all(tuple(r) in normals for r in split.X_train)
    train_rows = {tuple(r) for r in split.X_train}
    assert not any(tuple(r) in train_rows for r in split.X_test), "train and test must be disjoint"
    again, other = one_class_split(ds, seed=0), one_class_split(ds, seed=1)
    np.testing.assert_array_equal(again.X_train, split.X_train)
    assert not np.array_equal(other.X_train, split.X_train)


def test_digits_one_class_protocol():
    sets = digits_datasets(["digit_3", "digit_7"])
    assert [s.name for s in sets] == ["digit_3", "digit_7"]
    assert sets[0].X.shape == (1797, 64) and (sets[0].y == 0).sum() == 183
    with pytest.raises(DataError, match="unknown categories"):
        digits_datasets(["digit_11"])


def test_summarize_means_over_categories_then_seeds_and_picks_the_better_baseline():
    rows = []
    for seed, (a, b) in enumerate([(0.6, 0.8), (0.7, 1.0)]):
        for cat, auc in (("c1", a), ("c2", b)):
            for method, prep, shift in (("KNN (raw)", "raw", 0.0), ("KNN (std)", "standardize", -0.1)):
                rows.append(
                    {"category": cat, "seed": seed, "method": method, "base": "KNN", "family": "pyod",
                     "preprocessing": prep, "auroc": auc + shift, "auprc": 0.5, "fit_s": 1.0,
                     "fit_shared_with": "", "score_s": 0.1}
                )  # fmt: skip
    summary, per_category = summarize(rows)
    raw = next(e for e in summary if e["method"] == "KNN (raw)")
    assert raw["auroc_mean"] == pytest.approx(0.775)  # seed means 0.7 and 0.85
    assert raw["auroc_std"] == pytest.approx(np.std([0.7, 0.85], ddof=1))
    assert per_category["KNN (raw)|auroc"] == pytest.approx({"c1": 0.65, "c2": 0.9})
    assert raw["baseline"] and not next(e for e in summary if e["method"] == "KNN (std)")["baseline"]


def test_build_methods_expands_pyod_baselines_and_shares_flow_fits():
    specs = {s.name: s for s in build_methods(["WTFlow-LN-K20", "KNN"])}
    assert set(specs) == {"WTFlow-LN-K20", "KNN (raw)", "KNN (std)"}
    assert specs["WTFlow-LN-K20"].shares_fit == "WTFlow-LN" and specs["WTFlow-LN-K20"].rescore == {"ode_steps": 20}
    assert specs["KNN (std)"].standardize and not specs["KNN (raw)"].standardize
    with pytest.raises(ValueError, match=r"unknown method\(s\) \['kNN'\]"):
        build_methods(["kNN"])


def test_mahalanobis_reference_matches_scikit_learns_ledoit_wolf():
    from sklearn.covariance import LedoitWolf

    from benchmarks.vectors import Mahalanobis as _Mahalanobis

    rng = np.random.default_rng(3)
    X = np.abs(rng.normal(size=(60, 30))) * rng.uniform(0.01, 2.0, size=30)
    X_test = np.abs(rng.normal(size=(9, 30)))
    scores = _Mahalanobis().fit(X).decision_function(X_test)
    np.testing.assert_allclose(scores, LedoitWolf().fit(X).mahalanobis(X_test), rtol=1e-8)
    spec = build_methods(["Mahalanobis", "RFM-W-K20"])
    assert [s.name for s in spec] == ["RFM-W-K20", "Mahalanobis"] and spec[1].family == "reference"
    assert spec[0].shares_fit == "RFM-W"


def test_adbench_adapter_follows_the_keyword_contract(folder):
    ds = load_folder(folder)[0]
    model = ADBenchAdapter(seed=1, model_name="TCCM", epochs=3, hidden=16, time_dim=8)
    assert model.fit(X_train=ds.X, y_train=ds.y) is model
    scores = model.predict_score(ds.X)
    assert scores.shape == (len(ds.X),) and np.isfinite(scores).all()
    one_class = ADBenchAdapter(seed=1, model_name="TCCM", normals_only=True, epochs=3, hidden=16, time_dim=8)
    one_class.fit(X_train=ds.X, y_train=ds.y)
    assert one_class.detector.decision_scores_.shape == ((ds.y == 0).sum(),)
    with pytest.raises(ValueError, match="unknown model_name 'CFM'"):
        ADBenchAdapter(seed=0, model_name="CFM")


def test_quick_benchmark_runs_end_to_end_on_a_tiny_adbench_folder(folder, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "benchmarks.vectors", "--data", str(folder), "--quick", "--out", str(out)]
    proc = subprocess.run(cmd + ["--no-progress"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("results.csv", "summary.csv", "per_category.csv", "summary.md", "run.json", "heatmap.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    with (out / "results.csv").open() as f:
        rows = list(csv.DictReader(f))
    methods = {r["method"] for r in rows}
    assert len(rows) == 2 * len(methods) and len(methods) == 10 + 1 + 2 * 7
    assert {r["category"] for r in rows} == {"alpha", "beta"} and {r["seed"] for r in rows} == {"0"}
    for r in rows:
        assert 0.0 <= float(r["auroc"]) <= 1.0 and 0.0 <= float(r["auprc"]) <= 1.0
        if r["family"] == "flow" and r["method"] != "FlowMismatch":
            assert float(r["radius_train"]) > 0 and float(r["sqrt_d"]) == pytest.approx(8**0.5, rel=1e-5)
    meta = json.loads((out / "run.json").read_text())
    assert meta["seeds"] == [0] and meta["quick"] and "pyod" in meta["versions"]
    report = (out / "summary.md").read_text()
    assert "--quick" in report and "| WTFlow-LN |" in report and "one-step scoring of 10000 vectors" in report
    assert "rFM < WT-Flow (Table I)" in report
    assert "what the flow adds to its whitening: RFM-W" in report and "whiten (Ledoit-Wolf)" in report
    # A user's own data: the paper's claims, but none of this project's MVTec targets.
    assert "target" not in report and "target" not in proc.stdout
    assert not (out / "cells.jsonl").exists(), "the journal of finished cells goes once the results are written"


def test_missing_data_fails_with_the_adbench_hint(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.vectors", "--data", str(tmp_path / "nowhere"), "--no-progress"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "adbench/datasets/CV_by_ResNet18/" in proc.stderr


def test_unwritable_output_folder_fails_before_any_compute(folder, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder\n")
    cmd = [sys.executable, "-m", "benchmarks.vectors", "--data", str(folder), "--quick", "--no-progress"]
    proc = subprocess.run(cmd + ["--out", str(blocker / "out")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert f"the output folder {blocker / 'out'} is not writable" in proc.stderr
    assert "categories x" not in proc.stdout, "nothing may start before the folder is known to be writable"


class _Counting:
    """A stand-in detector that counts fits and can interrupt the run at a chosen fit."""

    fits: list[tuple[int, str]] = []
    interrupt_at: int | None = None

    def __init__(self, seed, name):
        self.seed, self.name = seed, name

    def fit(self, X):
        if len(_Counting.fits) == _Counting.interrupt_at:
            raise KeyboardInterrupt
        _Counting.fits.append((self.seed, self.name))
        self.center_ = X.mean(axis=0)
        return self

    def decision_function(self, X):
        return np.linalg.norm(X - self.center_, axis=1)


def test_an_interrupted_run_keeps_finished_cells_and_the_rerun_skips_them(tmp_path):
    datasets = [Dataset(name, *_category(i), source="test") for i, name in enumerate(["alpha", "beta"])]
    specs = [MethodSpec(m, "reference", lambda seed, d, m=m: _Counting(seed, m), base=m) for m in ("A", "B")]
    journal_path, config = tmp_path / "cells.jsonl", {"data": "toy", "quick": True}
    _Counting.fits, _Counting.interrupt_at = [], 5  # 2 categories x 2 seeds x 2 methods = 8 cells
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(datasets, specs, [0, 1], progress=False, journal=Journal(journal_path, config))
    assert len(journal_path.read_text().splitlines()) == 5
    _Counting.interrupt_at = None
    with journal_path.open("a") as f:
        f.write('{"config": {"data": "to')  # a write cut short by a kill
    logged = []
    rows, _ = run_benchmark(
        datasets, specs, [0, 1], progress=False, journal=Journal(journal_path, config, logged.append)
    )
    assert len(_Counting.fits) == 8, "the rerun fits only the 3 unfinished cells"
    assert any("partial last line" in line for line in logged) and any("5 finished" in line for line in logged)
    assert [(r["category"], r["seed"], r["method"]) for r in rows] == [
        (c, s, m) for c in ("alpha", "beta") for s in (0, 1) for m in ("A", "B")
    ]
    _Counting.fits = []
    uninterrupted, _ = run_benchmark(datasets, specs, [0, 1], progress=False)
    assert [r["auroc"] for r in rows] == [r["auroc"] for r in uninterrupted]
    with pytest.raises(ValueError, match="other settings \\(quick differ\\); use another --out"):
        Journal(journal_path, {"data": "toy", "quick": False})


def test_project_targets_are_stated_only_when_asked():
    entry = {"family": "flow", "auroc_mean": 0.9, "fit_s_total": 2.0}
    summary = [{**entry, "method": "WTFlow-LN"}, {**entry, "method": "TCCM", "auroc_mean": 0.8}]
    extras = {"one_step_scoring": [{"n_vectors": 10, "dim": 4, "threads": 1, "median_s": 0.1}]}
    assert not any("target" in line for line in claims(summary, extras))
    mvtec = claims(summary, extras, targets=True)
    assert "target >= 0.82: met" in mvtec[0] and any("target <= 2" in line for line in mvtec)


def test_a_one_category_heatmap_keeps_its_labels_inside(tmp_path):
    import matplotlib.image

    summary = [{"method": "a long method name (std)"}, {"method": "WTFlow-LN-K20"}]
    per_category = {"a long method name (std)|auroc": {"bottle": 0.9}, "WTFlow-LN-K20|auroc": {"bottle": 0.7}}
    assert write_heatmap(tmp_path / "h.png", summary, per_category, ["bottle"])
    height, width = matplotlib.image.imread(tmp_path / "h.png").shape[:2]
    assert width >= 5.0 * 120 and height >= 120
