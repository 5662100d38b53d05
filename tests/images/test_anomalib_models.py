"""anomalib's PatchCore, PaDiM, CFlow and FastFlow on the harness's splits (tiny tree, 64 px, CPU, 1 epoch)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from benchmarks.backbones import BackboneError
from benchmarks.images.anomalib_models import build_anomalib_model, run_anomalib_model
from benchmarks.images.data import load_split
from benchmarks.images.data.tiny import make_tiny_tree

SIZE = 64


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    root = make_tiny_tree("mvtec", tmp_path_factory.mktemp("anomalib_models"), categories=("alpha",), size=SIZE, n=8)
    return load_split("mvtec", root, "alpha", "train"), load_split("mvtec", root, "alpha", "test")


@pytest.mark.parametrize(
    "name, options, min_auroc",
    [
        ("patchcore", {}, 0.9),  # offline Lite0 features: the bright planted squares are easy for both
        ("padim", {}, 0.9),
        ("cflow", {}, None),  # one epoch at 64 px trains too little to rank; shapes and finiteness only
        ("fastflow", {"backbone": "resnet18", "pretrained": False}, None),  # random features (no offline ResNet)
    ],
)
def test_model_returns_maps_and_scores_at_harness_resolution(splits, tmp_path, name, options, min_auroc):
    train, test = splits
    maps, scores = run_anomalib_model(name, train, test, SIZE, epochs=1, device="cpu", work_dir=tmp_path, **options)
    assert maps.shape == (len(test), SIZE, SIZE) and maps.dtype == np.float32
    assert scores.shape == (len(test),) and scores.dtype == np.float32
    assert np.isfinite(maps).all() and np.isfinite(scores).all()
    assert maps.std() > 0, f"{name}: constant maps"
    if min_auroc is not None:
        labels = np.array([s.label for s in test])
        auroc = roc_auc_score(labels, scores)
        assert auroc >= min_auroc, f"{name}: image AUROC {auroc:.3f} on planted defects"


def test_models_that_cannot_use_the_backbone_say_why():
    with pytest.raises(ValueError, match="FastFlow supports only the backbones resnet18, wide_resnet50_2"):
        build_anomalib_model("fastflow", SIZE)  # the offline default efficientnet_lite0
    with pytest.raises(ValueError, match="unknown anomalib model 'efficientad'"):
        build_anomalib_model("efficientad", SIZE)
    with pytest.raises(BackboneError, match="weights file .*missing.pth does not exist"):
        build_anomalib_model("padim", SIZE, backbone="resnet18", weights="missing.pth")
