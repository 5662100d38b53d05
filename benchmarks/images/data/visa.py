"""VisA as released, read through its official one-class split ``split_csv/1cls.csv``.

The CSV has the columns ``object,split,label,image,mask`` with paths relative to the dataset root, e.g.
``candle,test,anomaly,candle/Data/Images/Anomaly/000.JPG,candle/Data/Masks/Anomaly/000.png``. Raw masks hold
class values rather than 0/255; they are binarised on reading (any non-zero is anomalous).

A tree already converted by VisA's ``prepare_data.py`` (``visa_pytorch/<object>/{train/good, test/good, test/bad,
ground_truth/bad}``) is in the MVTec AD layout: read it with the ``mvtec`` reader.
"""

from __future__ import annotations

import csv
from pathlib import Path

from .core import ImageDataError, Sample, require_dir

__all__ = ["CATEGORIES", "SPLITS", "SPLIT_CSV", "list_categories", "load_split"]

CATEGORIES = (
    "candle", "capsules", "cashew", "chewinggum", "fryum", "macaroni1",
    "macaroni2", "pcb1", "pcb2", "pcb3", "pcb4", "pipe_fryum",
)  # fmt: skip
SPLITS = ("train", "test")
SPLIT_CSV = Path("split_csv") / "1cls.csv"
_COLUMNS = ("object", "split", "label", "image", "mask")


def _rows(root: Path) -> list[dict[str, str]]:
    path = require_dir(root, "dataset root") / SPLIT_CSV
    if not path.is_file():
        raise ImageDataError(f"missing VisA split file {path} (the official split_csv/1cls.csv)")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in _COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise ImageDataError(f"{path}: missing column(s) {', '.join(missing)}; expected {','.join(_COLUMNS)}")
        return list(reader)


def list_categories(root: str | Path) -> list[str]:
    """The objects named in ``split_csv/1cls.csv``, sorted."""
    names = sorted({row["object"] for row in _rows(Path(root))})
    if not names:
        raise ImageDataError(f"{Path(root) / SPLIT_CSV} lists no object")
    return names


def load_split(root: str | Path, category: str, split: str) -> list[Sample]:
    """The samples of ``split`` ("train" or "test") of ``category`` in CSV order; every listed file must exist."""
    if split not in SPLITS:
        raise ImageDataError(f"unknown split {split!r} for VisA; expected one of {', '.join(SPLITS)}")
    root = Path(root)
    rows = _rows(root)
    if not any(row["object"] == category for row in rows):
        raise ImageDataError(
            f"unknown VisA object {category!r}; {root / SPLIT_CSV} lists {', '.join(list_categories(root))}"
        )
    samples, missing, mismatched = [], [], []
    for row in rows:
        if row["object"] != category or row["split"] != split:
            continue
        image = root / row["image"]
        anomalous = row["label"] == "anomaly"
        if row["label"] not in ("normal", "anomaly"):
            raise ImageDataError(
                f"{root / SPLIT_CSV}: label {row['label']!r} for {row['image']}; expected normal/anomaly"
            )
        masks = (root / row["mask"],) if anomalous else ()
        if anomalous and not row["mask"]:
            raise ImageDataError(f"{root / SPLIT_CSV}: anomalous image {image} has no mask entry")
        missing += [p for p in (image, *masks) if not p.is_file()]
        mismatched += [p for p in masks if p.stem != image.stem]
        samples.append(Sample(image, masks, int(anomalous), "anomaly" if anomalous else "good", category, split))
    if missing:
        raise ImageDataError(f"VisA {category!r}/{split}: {len(missing)} listed file(s) missing, first: {missing[:5]}")
    if mismatched:
        raise ImageDataError(f"VisA {category!r}/{split}: masks whose stem differs from their image: {mismatched[:5]}")
    if not samples:
        raise ImageDataError(f"empty split: {root / SPLIT_CSV} lists no {split!r} row for {category!r}")
    return samples
