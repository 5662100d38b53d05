"""The image pipeline end to end on a tiny synthetic MVTec tree: features from a randomly initialised timm
backbone, a few training epochs, maps, every metric, the run folder, and resume after an interruption."""

import csv
import json

import pytest
import torch

from benchmarks.images.__main__ import main
from benchmarks.images.data import make_tiny_tree

ARGS = [
    "--dataset", "mvtec", "--categories", "alpha", "--backbone", "resnet18", "--layer", "layer2", "--random-init",
    "--resolution", "64", "--nc", "8", "--epochs", "3", "--eval-every", "2", "--eval-last", "2", "--no-progress",
]  # fmt: skip


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return make_tiny_tree("mvtec", tmp_path_factory.mktemp("tree"), categories=("alpha",), n=8, size=64)


def _run(tree, out, methods, extra=()):
    return main(["run", "--root", str(tree), "--out", str(out), "--methods", *methods, *ARGS, *extra])


def _summary(out):
    with open(out / "summary.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_pipeline_writes_every_metric_and_the_run_folder(tree, tmp_path):
    methods = ["wtflow-ln", "rfm", "gaussian", "patchcore", "flowmismatch"]
    assert _run(tree, tmp_path, methods) == 0
    rows = _summary(tmp_path)
    assert [(r["category"], r["method"]) for r in rows] == [("alpha", m) for m in methods]
    for row in rows:
        for key in ("image_auroc", "pixel_auroc", "aupro", "image_f1_max", "pixel_f1_max"):
            assert 0.0 <= float(row[key]) <= 1.0, (row["method"], key)
    # the planted squares are bright and large: the Gaussian baseline on any features finds them
    gaussian = next(r for r in rows if r["method"] == "gaussian")
    assert float(gaussian["pixel_auroc"]) > 0.8
    cell = tmp_path / "alpha" / "wtflow-ln" / "seed0"
    epochs = [json.loads(line)["epoch"] for line in (cell / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [2, 3]  # every 2nd epoch and the last 2
    result = json.loads((cell / "result.json").read_text())
    assert result["n_evaluations"] == 2 and result["aupro_last"] is not None
    for name in ("config.json", "provenance.json", "summary.md", "alpha/results.csv", "alpha/figures/bars.png"):
        assert (tmp_path / name).is_file(), name
    assert (tmp_path / "alpha" / "figures" / "examples_wtflow-ln.png").is_file()
    assert (cell / "checkpoints" / "last.pt").is_file() and (cell / "model.pt").is_file()
    # the flow-mismatch scorer reuses the wtflow-ln field: no training of its own
    assert not (tmp_path / "alpha" / "flowmismatch" / "seed0" / "checkpoints").exists()


def test_interrupted_run_resumes_and_finished_cells_are_kept(tree, tmp_path, monkeypatch):
    import benchmarks.images.flows as flows

    real = flows.evaluate_maps
    calls = {"n": 0}

    def interrupt_second_evaluation(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("simulated Ctrl-C during training")
        return real(*args, **kwargs)

    monkeypatch.setattr(flows, "evaluate_maps", interrupt_second_evaluation)
    with pytest.raises(KeyboardInterrupt):
        _run(tree, tmp_path, ["gaussian", "rfm"])
    gaussian_result = (tmp_path / "alpha" / "gaussian" / "seed0" / "result.json").read_text()
    cell = tmp_path / "alpha" / "rfm" / "seed0"
    assert (cell / "checkpoints" / "last.pt").is_file() and not (cell / "result.json").exists()
    assert [json.loads(x)["epoch"] for x in (cell / "metrics.jsonl").read_text().splitlines()] == [2]

    monkeypatch.setattr(flows, "evaluate_maps", real)
    assert _run(tree, tmp_path, ["gaussian", "rfm"]) == 0
    assert (tmp_path / "alpha" / "gaussian" / "seed0" / "result.json").read_text() == gaussian_result
    assert [json.loads(x)["epoch"] for x in (cell / "metrics.jsonl").read_text().splitlines()] == [2, 3]

    # the resumed field equals an uninterrupted run's, bit for bit (CPU)
    fresh = tmp_path / "fresh"
    assert _run(tree, fresh, ["rfm"]) == 0
    from wtflow import FeatureMapDetector

    resumed = FeatureMapDetector.load(cell / "model.pt").model_.state_dict()
    straight = FeatureMapDetector.load(fresh / "alpha" / "rfm" / "seed0" / "model.pt").model_.state_dict()
    assert resumed.keys() == straight.keys()
    for key, value in straight.items():
        assert torch.equal(value, resumed[key]), key
    assert _summary(fresh)[0]["aupro"] == next(r for r in _summary(tmp_path) if r["method"] == "rfm")["aupro"]


def test_a_second_configuration_in_the_same_folder_is_refused(tree, tmp_path):
    assert _run(tree, tmp_path, ["gaussian"]) == 0
    with pytest.raises(Exception, match="another configuration.*resolution"):
        main(["run", "--root", str(tree), "--out", str(tmp_path), "--methods", "gaussian",
              *[a if a != "64" else "32" for a in ARGS]])  # fmt: skip


def test_dry_run_prints_the_resolved_configuration(tree, tmp_path, capsys):
    assert main(["run", "--root", str(tree), "--out", str(tmp_path / "o"), "--methods", "rfm", "--dataset", "mvtec",
                 "--profile", "paper", "--dry-run"]) == 0  # fmt: skip
    cfg = json.loads(capsys.readouterr().out)
    assert (cfg["backbone"], cfg["layer"], cfg["resolution"], cfg["nc"]) == ("wide_resnet50_2", "layer3", 512, 768)
    assert not (tmp_path / "o").exists()


def test_anomalib_models_join_the_same_harness_and_metrics(tree, tmp_path):
    assert _run(tree, tmp_path, ["anomalib-padim", "gaussian"]) == 0
    rows = {r["method"]: r for r in _summary(tmp_path)}
    assert set(rows) == {"anomalib-padim", "gaussian"}
    # the planted squares are found by PaDiM on any features, scored by the harness's own metric code
    assert float(rows["anomalib-padim"]["pixel_auroc"]) > 0.8
    assert (tmp_path / "alpha" / "figures" / "examples_anomalib-padim.png").is_file()
