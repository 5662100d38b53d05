"""Dataset readers on tiny synthetic trees of every layout, and every kind of bad input."""

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from benchmarks.images.data import (
    DATASETS,
    AnomalyImageDataset,
    ImageDataError,
    check_mask_sizes,
    defect_regions,
    list_categories,
    load_split,
    make_tiny_tree,
    paper_settings,
    read_image,
    read_mask,
    splits,
)


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    return {name: make_tiny_tree(name, tmp_path_factory.mktemp(name)) for name in DATASETS}


@pytest.mark.parametrize("dataset", DATASETS)
def test_every_layout_reads_with_masks_that_match_the_defects(trees, dataset):
    root = trees[dataset]
    assert list_categories(dataset, root) == ["alpha", "beta"]
    for split in splits(dataset):
        samples = load_split(dataset, root, "alpha", split)
        assert samples, split
        if split != "test":
            assert all(s.label == 0 and s.masks == () for s in samples)
            continue
        labels = [s.label for s in samples]
        assert 0 in labels and 1 in labels
        assert all((s.label == 1) == bool(s.masks) for s in samples)
        data = AnomalyImageDataset(samples, resolution=16)
        for index in range(len(data)):
            image, mask, label, i = data[index]
            assert image.shape == (3, 16, 16) and image.dtype == torch.float32 and i == index
            assert 0.0 <= image.min() and image.max() <= 1.0
            assert mask.shape == (16, 16) and mask.dtype == torch.bool
            assert bool(mask.any()) == bool(label)


def test_visa_class_valued_masks_are_binarised(trees):
    sample = next(s for s in load_split("visa", trees["visa"], "alpha", "test") if s.label)
    raw = np.asarray(Image.open(sample.masks[0]))
    assert set(np.unique(raw)) - {0} and 255 not in np.unique(raw)  # the tree writes class values, not 0/255
    assert torch.equal(read_mask(sample.masks), torch.from_numpy(raw != 0))


def test_loco_keeps_every_mask_and_the_saturation_table(trees):
    samples = load_split("loco", trees["loco"], "alpha", "test")
    bad = [s for s in samples if s.label]
    assert bad and all(len(s.masks) == 2 for s in bad)
    assert {d.pixel_value for d in bad[0].defects} == {254, 255}
    regions = defect_regions(bad[0])
    first, second = (r for r, _ in regions)
    assert torch.equal(read_mask(bad[0].masks), torch.from_numpy(first | second))
    saturations = [sat for _, sat in regions]
    # 000.png (value 255): absolute 20 px; 001.png (value 254): relative 0.5 of its area
    assert saturations == [20.0, 0.5 * second.sum()]
    small = defect_regions(bad[0], size=(16, 16))
    assert small[0][1] == pytest.approx(20.0 / 4)  # absolute thresholds scale with the area ratio
    assert small[1][1] == pytest.approx(0.5 * small[1][0].sum())


def test_folder_splits_normals_evenly(trees):
    train = load_split("folder", trees["folder"], "alpha", "train")
    test = load_split("folder", trees["folder"], "alpha", "test")
    normals = {s.image for s in train} | {s.image for s in test if s.label == 0}
    assert len(normals) == 6 and not {s.image for s in train} & {s.image for s in test}
    assert sum(s.label == 0 for s in test) == 1  # 6 normals * 0.2, rounded down, spread evenly


def test_paper_settings_table():
    assert paper_settings("mvtec", "bottle") == {"resolution": 512, "layer": "layer3"}
    assert paper_settings("mvtec", "transistor")["resolution"] == 256
    assert paper_settings("visa", "macaroni2")["layer"] == "layer2"


def _copy(trees, dataset, tmp_path):
    return shutil.copytree(trees[dataset], tmp_path / dataset)


def test_missing_split_names_the_folder(trees, tmp_path):
    root = _copy(trees, "mvtec", tmp_path)
    shutil.rmtree(root / "alpha" / "test")
    with pytest.raises(ImageDataError, match=str(root / "alpha" / "test")):
        load_split("mvtec", root, "alpha", "test")
    with pytest.raises(ImageDataError, match="unknown split"):
        load_split("mvtec", root, "alpha", "validation")


def test_image_without_mask_lists_the_unmatched_files(trees, tmp_path):
    root = _copy(trees, "mvtec", tmp_path)
    (root / "alpha" / "ground_truth" / "crack" / "001_mask.png").unlink()
    shutil.copy(
        root / "alpha" / "ground_truth" / "crack" / "000_mask.png",
        root / "alpha" / "ground_truth" / "crack" / "007_mask.png",
    )
    with pytest.raises(ImageDataError, match=r"1 image\(s\) without a mask, first: .*crack/001\.png") as err:
        load_split("mvtec", root, "alpha", "test")
    assert "007_mask.png" in str(err.value)  # and the mask without an image


def test_mask_of_another_size_is_refused(trees, tmp_path):
    root = _copy(trees, "mvtec", tmp_path)
    mask_path = root / "alpha" / "ground_truth" / "spot" / "000_mask.png"
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(mask_path)
    samples = load_split("mvtec", root, "alpha", "test")
    with pytest.raises(ImageDataError, match=str(mask_path)):
        check_mask_sizes(samples)
    with pytest.raises(ImageDataError, match="20x20"):
        read_mask([mask_path], expected_size=(32, 32))


def test_empty_category_and_unknown_names(trees, tmp_path):
    root = _copy(trees, "mvtec", tmp_path)
    for f in (root / "alpha" / "train" / "good").iterdir():
        f.unlink()
    with pytest.raises(ImageDataError, match="empty training folder.*alpha/train/good"):
        load_split("mvtec", root, "alpha", "train")
    with pytest.raises(ImageDataError, match="unknown category 'gamma'.*alpha, beta"):
        load_split("mvtec", root, "gamma", "train")
    with pytest.raises(ValueError, match="unknown dataset 'kitti'"):
        load_split("kitti", root, "alpha", "train")


def test_visa_and_loco_missing_metadata(trees, tmp_path):
    visa = _copy(trees, "visa", tmp_path)
    (visa / "split_csv" / "1cls.csv").unlink()
    with pytest.raises(ImageDataError, match="1cls.csv"):
        load_split("visa", visa, "alpha", "train")
    loco = _copy(trees, "loco", tmp_path)
    (loco / "alpha" / "defects_config.json").unlink()
    with pytest.raises(ImageDataError, match="defects_config.json"):
        load_split("loco", loco, "alpha", "test")
    (loco / "alpha" / "defects_config.json").write_text(json.dumps([{"defect_name": "x"}]))
    with pytest.raises(ImageDataError, match="not a list of defect entries"):
        load_split("loco", loco, "alpha", "test")


def test_visa_listed_file_missing(trees, tmp_path):
    root = _copy(trees, "visa", tmp_path)
    (root / "alpha" / "Data" / "Masks" / "Anomaly" / "000.png").unlink()
    with pytest.raises(ImageDataError, match="1 listed file.*000.png"):
        load_split("visa", root, "alpha", "test")


def test_corrupt_png_names_the_file(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(ImageDataError, match="broken.png"):
        read_image(path)
    with pytest.raises(ImageDataError, match="broken.png"):
        read_mask([path])


def test_grey_16bit_and_alpha_images(tmp_path):
    grey = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    Image.fromarray(grey).save(tmp_path / "grey.png")
    image = read_image(tmp_path / "grey.png")
    assert image.shape == (3, 8, 8)
    assert torch.equal(image[0], image[2]) and torch.allclose(image[1], torch.from_numpy(grey / 255.0).float())

    deep = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    assert torch.allclose(read_image(tmp_path / "deep.png")[1], torch.from_numpy(deep / 65535.0).float())

    rgba = np.full((8, 8, 4), 200, dtype=np.uint8)
    rgba[..., 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "opaque.png")
    assert torch.allclose(read_image(tmp_path / "opaque.png"), torch.full((3, 8, 8), 200 / 255.0))
    rgba[0, 0, 3] = 10
    Image.fromarray(rgba, "RGBA").save(tmp_path / "clear.png")
    with pytest.raises(ImageDataError, match="clear.png.*transparent"):
        read_image(tmp_path / "clear.png")


def test_resizing_image_and_mask(tmp_path):
    Image.fromarray(np.full((10, 20, 3), 128, np.uint8)).save(tmp_path / "wide.png")
    assert read_image(tmp_path / "wide.png", 6).shape == (3, 6, 6)
    mask = np.zeros((10, 20), np.uint8)
    mask[:, 10:] = 1
    Image.fromarray(mask).save(tmp_path / "half.png")
    small = read_mask([tmp_path / "half.png"], 4, expected_size=(10, 20))
    assert small.tolist() == [[False, False, True, True]] * 4
    assert read_mask([], (3, 5)).shape == (3, 5) and not read_mask([], 3).any()


def test_unsupported_image_format_is_refused_and_text_files_ignored(trees, tmp_path):
    root = _copy(trees, "mvtec", tmp_path)
    good = root / "alpha" / "train" / "good"
    (good / "README.txt").write_text("notes")
    assert len(load_split("mvtec", root, "alpha", "train")) == 4
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(good / "extra.gif")
    with pytest.raises(ImageDataError, match="unsupported image format.*extra.gif"):
        load_split("mvtec", root, "alpha", "train")


def test_loco_saturation_above_the_area_is_capped(trees, tmp_path):
    root = _copy(trees, "loco", tmp_path)
    config = json.loads((root / "alpha" / "defects_config.json").read_text())
    config[0]["saturation_threshold"] = 10_000  # pixel value 255, absolute: larger than any tiny defect
    (root / "alpha" / "defects_config.json").write_text(json.dumps(config))
    sample = next(s for s in load_split("loco", root, "alpha", "test") if s.label)
    region, saturation = defect_regions(sample)[0]
    assert saturation == region.sum() > 0
