"""The real-image set: a tiny build read back through the MVTec reader, exact masks, disjoint regions, determinism,
resume and refusal of a different config."""

import csv
import hashlib
import json

import numpy as np
import pytest
from PIL import Image

from benchmarks.images.data import load_split
from benchmarks.realset import DEFECTS, RealSetConfig, build_realset, load_photo, make_defect, split_regions
from benchmarks.realset.__main__ import main

TINY = RealSetConfig(categories=("brick", "immunohistochemistry"), crop=32, n_train=4, n_test_good=2, n_test_bad=10)


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("realset")
    build_realset(out, TINY, progress=False)
    return out


def _manifest(out):
    with open(out / "manifest.csv") as f:
        return list(csv.DictReader(f))


def test_layout_counts_and_reader(tiny_set):
    rows = _manifest(tiny_set)
    assert len(rows) == 2 * (4 + 2 + 10)
    for category in TINY.categories:
        train = load_split("mvtec", tiny_set, category, "train")
        test = load_split("mvtec", tiny_set, category, "test")
        assert len(train) == 4 and len(test) == 12
        assert sorted({s.defect for s in test}) == sorted({*DEFECTS, "good"})
        assert sum(s.label for s in test) == 10


def test_masks_are_exact_and_regions_disjoint(tiny_set):
    for row in _manifest(tiny_set):
        photo = load_photo(row["category"])
        r, c = int(row["crop_row"]), int(row["crop_col"])
        regions = split_regions(photo.shape[0], TINY.crop)
        start, stop = regions[row["split"]]
        assert start <= r and r + TINY.crop <= stop  # test crops never touch the training rows
        image = np.asarray(Image.open(tiny_set / row["file"]))
        clean = photo[r : r + TINY.crop, c : c + TINY.crop]
        if row["label"] == "0":
            assert np.array_equal(image, clean)
            continue
        mask = np.asarray(Image.open(tiny_set / row["mask_file"])) > 0
        assert np.array_equal(image[~mask], clean[~mask])  # nothing outside the mask changed
        assert np.abs(image[mask].astype(int) - clean[mask]).mean() > 2  # and the defect is visible inside
        rows, cols = np.nonzero(mask)
        assert int(row["area"]) == mask.sum()
        bbox = [int(row[k]) for k in ("bbox_r0", "bbox_c0", "bbox_r1", "bbox_c1")]
        assert bbox == [rows.min(), cols.min(), rows.max() + 1, cols.max() + 1]


def _digest(out):
    files = sorted(p for p in out.rglob("*.png"))
    return hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest(), len(files)


def test_deterministic_resumable_and_config_checked(tiny_set, tmp_path):
    other = tmp_path / "again"
    summary = main(["--out", str(other), "--categories", *TINY.categories, "--crop", "32", "--n-train", "4",
                    "--n-test-good", "2", "--n-test-bad", "10", "--quiet"])  # fmt: skip
    assert summary["images"] == 32
    assert _digest(other) == _digest(tiny_set)
    # an interrupted category (its .partial folder) is rebuilt, finished ones are skipped
    (other / "brick").rename(other / "brick.partial")
    build_realset(other, TINY, progress=False)
    assert _digest(other) == _digest(tiny_set) and not (other / "brick.partial").exists()
    with pytest.raises(FileExistsError, match="another config"):
        build_realset(other, RealSetConfig(categories=TINY.categories, crop=32, n_train=5), progress=False)
    assert json.loads((other / "realset.json").read_text())["images"] == 32


def test_defect_makers_change_only_the_mask():
    rng = np.random.default_rng(0)
    crop = np.asarray(load_photo("gravel")[:64, :64]).copy()
    foreign = np.asarray(load_photo("retina")[:64, :64])
    for kind in DEFECTS:
        for size in ("small", "large"):
            out, mask, _ = make_defect(kind, crop, size, rng, foreign)
            assert out.dtype == np.uint8 and mask.any() and np.array_equal(out[~mask], crop[~mask])
    with pytest.raises(ValueError, match="unknown defect"):
        make_defect("dent", crop, "small", rng, foreign)
    with pytest.raises(ValueError, match="does not fit"):
        split_regions(100, 64)
