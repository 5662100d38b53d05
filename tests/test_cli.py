"""wtflow-detect: fit and score from files, with clear errors for bad input."""

import csv

import numpy as np
import pytest

from wtflow.cli import main, read_vectors
from wtflow.detectors import load_detector

TINY = ["--param", "hidden=16", "--param", "depth=1", "--param", "time_dim=4", "--param", "train_steps=5"]


def _vectors(n, seed):
    return np.random.default_rng(seed).normal(size=(n, 4))


def test_fit_then_score_matches_the_python_api(tmp_path, capsys):
    np.save(tmp_path / "train.npy", _vectors(60, 0))
    np.savetxt(tmp_path / "test.csv", _vectors(7, 1) * 3, delimiter=",")
    model = tmp_path / "det.pt"
    args = ["fit", str(tmp_path / "train.npy"), "--detector", "RFM", "--out", str(model), *TINY]
    assert main([*args, "--param", "preprocessing=whiten", "--param", "calibration_folds=3"]) == 0
    assert "saved" in capsys.readouterr().out
    assert main(["score", str(model), str(tmp_path / "test.csv"), "--out", str(tmp_path / "s.csv")]) == 0
    with (tmp_path / "s.csv").open() as f:
        rows = list(csv.DictReader(f))
    det = load_detector(model)
    assert det.preprocessing == "whiten" and det.calibration_folds == 3
    X = read_vectors(tmp_path / "test.csv")
    np.testing.assert_allclose([float(r["score"]) for r in rows], det.decision_function(X), rtol=1e-8)
    assert [int(r["label"]) for r in rows] == det.predict(X).tolist()


def test_npz_key_and_bad_inputs_get_clear_errors(tmp_path, capsys):
    np.savez(tmp_path / "data.npz", X=_vectors(20, 0), y=np.zeros(20))
    assert read_vectors(tmp_path / "data.npz").shape == (20, 4)
    with pytest.raises(ValueError, match=r"holds no array 'Z' \(it has X, y\); use --key"):
        read_vectors(tmp_path / "data.npz", key="Z")
    (tmp_path / "x.txt").write_text("1,2\n")
    with pytest.raises(ValueError, match="unsupported file type '.txt'"):
        read_vectors(tmp_path / "x.txt")
    assert main(["fit", str(tmp_path / "missing.npy"), "--out", str(tmp_path / "d.pt")]) == 2
    assert "missing.npy: no such file" in capsys.readouterr().err
    assert main(["fit", str(tmp_path / "data.npz"), "--out", str(tmp_path / "d.pt"), "--param", "steps"]) == 2
    assert "expected name=value" in capsys.readouterr().err
    assert main(["score", str(tmp_path / "x.txt"), str(tmp_path / "data.npz")]) == 2
