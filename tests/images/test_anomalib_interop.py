"""WT-Flow inside anomalib: ``Engine`` fit / test / predict on tiny synthetic trees, and clear errors on bad input."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from anomalib.data import Folder, MVTecAD
from anomalib.engine import Engine
from sklearn.metrics import roc_auc_score

from benchmarks.images.data.tiny import make_tiny_tree
from wtflow.integrations.anomalib import MissingMasksError, WTFlow
from wtflow.integrations.backbone import BackboneError, efficientnet_lite0_file

SIZE = 64  # images and model input; EfficientNet-Lite0 blocks.4 (stride 16) gives 4 x 4 feature maps
SMALL = dict(image_size=SIZE, base_channels=16, channel_mult=(1, 2), num_res_blocks=1, lr=1e-3)


def _engine(tmp_path) -> Engine:
    return Engine(
        accelerator="cpu", devices=1, default_root_dir=tmp_path, enable_progress_bar=False, enable_model_summary=False
    )


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """WTFlow (offline Lite0 weights) fitted for 2 epochs (4 steps) on a tiny MVTec AD tree, and its datamodule."""
    tmp = tmp_path_factory.mktemp("anomalib_wtflow")
    root = make_tiny_tree("mvtec", tmp / "data", categories=("alpha",), size=SIZE, n=8)
    datamodule = MVTecAD(root=root, category="alpha", train_batch_size=4, eval_batch_size=8, num_workers=0)
    model = WTFlow(epochs=2, **SMALL)
    initial = {k: v.clone() for k, v in model.model.state_dict().items()}
    engine = _engine(tmp / "run")
    engine.fit(model=model, datamodule=datamodule)
    return engine, model, datamodule, initial, tmp / "run"


def test_fit_trains_the_flow_and_not_the_backbone(fitted):
    _, model, _, initial, _ = fitted
    changed = {k for k, v in model.model.state_dict().items() if not torch.equal(v, initial[k])}
    assert changed, "training_step left every parameter unchanged"
    assert all(k.startswith("flow.") for k in changed), sorted(changed)[:5]  # the backbone stays frozen
    rebuilt = WTFlow(epochs=2, **SMALL)  # same seed: the same initial flow, so runs are reproducible
    assert all(torch.equal(v, initial[k]) for k, v in rebuilt.model.state_dict().items())


def test_test_and_predict_give_anomalib_outputs_that_rank_defects_first(fitted):
    engine, model, datamodule, _, run_dir = fitted
    results = engine.test(model=model, datamodule=datamodule)[0]
    assert {"image_AUROC", "image_F1Score", "pixel_AUROC", "pixel_F1Score"} <= set(results)
    pictures = sorted(run_dir.rglob("images/*/*.png"))  # anomalib's visualiser: one picture per test image
    assert len(pictures) == 12 and {p.parent.name for p in pictures} == {"good", "crack", "spot"}
    batches = engine.predict(model=model, datamodule=datamodule)
    scores = torch.cat([b.pred_score for b in batches]).numpy()
    labels = torch.cat([b.gt_label for b in batches]).numpy()
    for b in batches:
        n = len(b.image)
        assert b.anomaly_map.shape[0] == n and tuple(b.anomaly_map.shape[-2:]) == (SIZE, SIZE)
        assert b.pred_mask.shape[-2:] == (SIZE, SIZE) and b.pred_mask.dtype == torch.bool
        assert b.pred_label.shape == (n,) and b.pred_score.shape == (n,)
        assert torch.isfinite(b.anomaly_map).all()
    assert labels.sum() == 8 and (1 - labels).sum() == 4  # 2 defect types x 4 images, 4 normal test images
    auroc = roc_auc_score(labels, scores)
    print(f"tiny tree, 2 epochs: image AUROC {auroc:.3f}, anomalib's {results['image_AUROC']:.3f}")
    assert auroc >= 0.8, f"planted defects not ranked above normals: AUROC {auroc:.3f}, scores {scores}"
    assert results["image_AUROC"] == pytest.approx(auroc, abs=1e-6)  # anomalib's metric on our raw scores


def test_pixel_metric_without_masks_is_a_clear_error(fitted, tmp_path):
    _, model, _, _, _ = fitted
    root = make_tiny_tree("folder", tmp_path / "data", categories=("alpha",), size=SIZE, n=4)
    datamodule = Folder(
        name="nomasks", root=root / "alpha", normal_dir="good", abnormal_dir="bad", num_workers=0, eval_batch_size=8
    )
    with pytest.raises(MissingMasksError, match="gt_mask=None.*mask_dir"):
        _engine(tmp_path / "run").test(model=model, datamodule=datamodule)


def test_unknown_backbone_and_stage_are_clear_errors():
    with pytest.raises(BackboneError, match="'resnet_does_not_exist' is not a timm model name"):
        WTFlow(backbone="resnet_does_not_exist", pretrained=False, **SMALL)
    with pytest.raises(BackboneError, match=r"no stage \['layer9'\].*blocks\.4"):
        WTFlow(layer="layer9", pretrained=False, **SMALL)
    with pytest.raises(ValueError, match="wt"):
        WTFlow(wt="groupnorm", pretrained=False, **SMALL)


def test_import_wtflow_does_not_import_lightning():
    code = "import sys, wtflow, wtflow.integrations; print([m for m in ('lightning', 'anomalib') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_offline_weights_reach_the_backbone():
    """The Lite0 file's tensors (other names, same order) end up in anomalib's feature extractor."""
    file_state = torch.load(efficientnet_lite0_file(), map_location="cpu", weights_only=True)
    extractor = WTFlow(**SMALL).model.extractor.feature_extractor.state_dict()
    assert torch.equal(extractor["conv_stem.weight"], file_state["_conv_stem.weight"])
    assert torch.equal(extractor["bn1.running_var"], file_state["_bn0.running_var"])


def test_backbone_passed_as_a_module():
    """An ``nn.Module`` backbone (here timm's ResNet-18, random weights) is traced by anomalib's extractor."""
    import timm

    module = timm.create_model("resnet18", pretrained=False)
    model = WTFlow(backbone=module, layer="layer3", **SMALL)
    assert model.model.flow.event_shape == (256, SIZE // 16, SIZE // 16)
    with pytest.raises(BackboneError, match="weights=PATH cannot be combined"):
        WTFlow(backbone=module, layer="layer3", weights="w.pth", **SMALL)
