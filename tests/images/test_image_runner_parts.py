"""The image runner's own logic: method registry, configuration, run folder, summaries, evaluation schedule."""

import json

import pytest

from benchmarks.images.config import PROFILES, resolve_config
from benchmarks.images.flows import evaluation_epochs
from benchmarks.images.methods import METHODS, resolve_methods
from benchmarks.images.report import summarise
from benchmarks.images.runfolder import RunFolder, RunFolderError


def _options(tmp_path, **kw):
    base = {"dataset": "mvtec", "root": str(tmp_path), "out": str(tmp_path / "out"), "methods": ["wtflow-ln"]}
    return {**base, **kw}


def test_methods_resolve_and_scorers_share_a_field():
    specs = resolve_methods(["wtflow-ln", "flowmismatch", "gaussian"])
    assert [s.name for s in specs] == ["wtflow-ln", "flowmismatch", "gaussian"]
    assert specs[1].trains == "wtflow-ln" and specs[0].trains == "wtflow-ln"
    assert METHODS["rfm"].wt == "none" and METHODS["rfm-std"].input_norm and METHODS["wtflow-bn"].wt == "batchnorm"
    with pytest.raises(ValueError, match="unknown method.*'padim'.*known: wtflow-ln"):
        resolve_methods(["padim"])
    with pytest.raises(ValueError, match="more than once: rfm"):
        resolve_methods(["rfm", "rfm"])


def test_profile_fills_only_what_is_not_given(tmp_path):
    cfg = resolve_config(**_options(tmp_path, profile="cpu", epochs=3))
    assert cfg.epochs == 3 and cfg.resolution == PROFILES["cpu"]["resolution"] and cfg.nc == PROFILES["cpu"]["nc"]
    paper = resolve_config(**_options(tmp_path, profile="paper"))
    assert (paper.backbone, paper.layer, paper.resolution, paper.nc, paper.epochs) == (
        "wide_resnet50_2",
        "layer3",
        512,
        768,
        100,
    )


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"epochs": 0}, "--epochs must be a positive integer"),
        ({"seeds": [0, 0]}, "--seeds must be distinct"),
        ({"seeds": [-1]}, "--seeds must be distinct non-negative"),
        ({"methods": ["wtflow-bn"], "batch_size": 1}, "BatchNorm needs two samples"),
        ({"fpr_limit": 0.0}, "--fpr-limit"),
        ({"profile": "laptop"}, "unknown profile 'laptop'"),
        ({"max_train": 1}, "--max-train must be >= 2"),
    ],
)
def test_bad_configuration_is_refused_with_the_option_named(tmp_path, bad, message):
    with pytest.raises(ValueError, match=message):
        resolve_config(**_options(tmp_path, **bad))


def test_run_folder_refuses_another_configuration_and_keeps_finished_cells(tmp_path):
    folder = RunFolder(tmp_path / "run")
    folder.prepare({"resolution": 64, "methods": ["rfm"], "seeds": [0]})
    folder.write_result("cat", "rfm", 0, {"category": "cat", "method": "rfm", "seed": 0, "aupro": 0.5})
    # other methods / seeds / categories extend the same run; a changed setting does not
    folder.prepare({"resolution": 64, "methods": ["rfm", "gaussian"], "seeds": [0, 1]})
    with pytest.raises(RunFolderError, match="differing: resolution"):
        folder.prepare({"resolution": 128, "methods": ["rfm"], "seeds": [0]})
    assert folder.finished("cat", "rfm", 0)["aupro"] == 0.5
    assert folder.finished("cat", "rfm", 1) is None


def test_run_folder_refuses_an_unwritable_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(RunFolderError, match="cannot write to the output folder"):
        RunFolder(blocker / "run").prepare({})


def test_metrics_log_drops_a_torn_last_line(tmp_path):
    folder = RunFolder(tmp_path)
    folder.append_metrics("c", "m", 0, {"epoch": 1, "aupro": 0.1})
    folder.append_metrics("c", "m", 0, {"epoch": 2, "aupro": 0.2})
    path = folder.cell("c", "m", 0) / "metrics.jsonl"
    path.write_text(path.read_text() + '{"epoch": 3, "aup')
    assert [r["epoch"] for r in folder.read_metrics("c", "m", 0)] == [1, 2]
    assert json.loads(path.read_text().splitlines()[0])["aupro"] == 0.1


def test_evaluation_schedule_covers_every_nth_and_the_last_epochs():
    assert evaluation_epochs(30, 5, 3) == [5, 10, 15, 20, 25, 28, 29, 30]
    assert evaluation_epochs(4, 10, 10) == [1, 2, 3, 4]


def test_summary_averages_over_seeds_with_their_spread():
    rows = [
        {
            "category": "c",
            "method": "m",
            "seed": s,
            "image_auroc": v,
            "pixel_auroc": v,
            "aupro": v,
            "image_auroc_last": v,
            "pixel_auroc_last": v,
            "aupro_last": v,
        }
        for s, v in ((0, 0.6), (1, 0.8))
    ]
    (summary,) = summarise(rows)
    assert summary["image_auroc"] == pytest.approx(0.7)
    assert summary["aupro_seed_std"] == pytest.approx(0.1)
    assert summary["n_seeds"] == 2
