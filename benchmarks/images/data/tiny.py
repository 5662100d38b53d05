"""Tiny synthetic trees in every supported layout, for tests and smoke runs (nothing is downloaded).

Normal images are smooth random colour fields; an anomalous image carries a bright square whose exact mask is
written next to it (0/255 PNG; VisA masks use class values, as its raw release does). Sizes are tiny so that a
whole tree is written in milliseconds.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

__all__ = ["TINY_DEFECTS", "make_tiny_tree"]

TINY_DEFECTS = ("crack", "spot")


def _normal(rng: np.random.Generator, size: int) -> np.ndarray:
    coarse = rng.integers(40, 200, size=(4, 4, 3)).astype(np.float64)
    up = np.kron(coarse, np.ones((size // 4 + 1, size // 4 + 1, 1)))[:size, :size]
    return np.clip(up + rng.normal(0, 6, up.shape), 0, 255).astype(np.uint8)


def _defective(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    image = _normal(rng, size)
    side = max(2, size // 5)
    r, c = rng.integers(0, size - side, size=2)
    mask = np.zeros((size, size), dtype=np.uint8)
    mask[r : r + side, c : c + side] = 255
    image[mask > 0] = 250
    return image, mask


def _save(array: np.ndarray, path: Path) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def _mvtec_like(root: Path, category: str, rng, size: int, n: int, suffix: str = "_mask") -> None:
    for i in range(n):
        _save(_normal(rng, size), root / category / "train" / "good" / f"{i:03d}.png")
    for i in range(max(1, n // 2)):
        _save(_normal(rng, size), root / category / "test" / "good" / f"{i:03d}.png")
    for defect in TINY_DEFECTS:
        for i in range(max(1, n // 2)):
            image, mask = _defective(rng, size)
            _save(image, root / category / "test" / defect / f"{i:03d}.png")
            _save(mask, root / category / "ground_truth" / defect / f"{i:03d}{suffix}.png")


def _visa(root: Path, categories, rng, size: int, n: int) -> None:
    rows = []
    for category in categories:
        base = root / category / "Data"
        for i in range(n + max(1, n // 2)):
            rel = f"{category}/Data/Images/Normal/{i:04d}.JPG"
            _save(_normal(rng, size), root / rel)
            rows.append([category, "train" if i < n else "test", "normal", rel, ""])
        for i in range(n):
            image, mask = _defective(rng, size)
            _save(image, base / "Images" / "Anomaly" / f"{i:03d}.JPG")
            _save((mask > 0).astype(np.uint8) * (1 + i % 3), base / "Masks" / "Anomaly" / f"{i:03d}.png")
            rows.append([category, "test", "anomaly", f"{category}/Data/Images/Anomaly/{i:03d}.JPG",
                         f"{category}/Data/Masks/Anomaly/{i:03d}.png"])  # fmt: skip
    (root / "split_csv").mkdir(parents=True, exist_ok=True)
    with open(root / "split_csv" / "1cls.csv", "w", newline="") as f:
        csv.writer(f).writerows([["object", "split", "label", "image", "mask"], *rows])


LOCO_CONFIG = [
    {"defect_name": "missing_part", "pixel_value": 255, "saturation_threshold": 20, "relative_saturation": False},
    {"defect_name": "extra_part", "pixel_value": 254, "saturation_threshold": 0.5, "relative_saturation": True},
]


def _loco(root: Path, category: str, rng, size: int, n: int) -> None:
    for split in ("train", "validation"):
        for i in range(n):
            _save(_normal(rng, size), root / category / split / "good" / f"{i:03d}.png")
    for i in range(max(1, n // 2)):
        _save(_normal(rng, size), root / category / "test" / "good" / f"{i:03d}.png")
    for kind in ("logical_anomalies", "structural_anomalies"):
        for i in range(max(1, n // 2)):
            image, first = _defective(rng, size)
            second = np.zeros_like(first)
            second[: size // 4, -size // 4 :] = 254
            image[second > 0] = 10
            _save(image, root / category / "test" / kind / f"{i:03d}.png")
            _save(first, root / category / "ground_truth" / kind / f"{i:03d}" / "000.png")
            _save(second, root / category / "ground_truth" / kind / f"{i:03d}" / "001.png")
    (root / category / "defects_config.json").write_text(json.dumps(LOCO_CONFIG, indent=1))


def _mvtec3d(root: Path, category: str, rng, size: int, n: int) -> None:
    for split, count in (("train", n), ("validation", max(1, n // 2))):
        for i in range(count):
            _save(_normal(rng, size), root / category / split / "good" / "rgb" / f"{i:03d}.png")
    for label in ("good", *TINY_DEFECTS):
        for i in range(max(1, n // 2)):
            image, mask = _defective(rng, size) if label != "good" else (_normal(rng, size), None)
            _save(image, root / category / "test" / label / "rgb" / f"{i:03d}.png")
            _save(mask if mask is not None else np.zeros((size, size), np.uint8),
                  root / category / "test" / label / "gt" / f"{i:03d}.png")  # fmt: skip


def _folder(root: Path, category: str, rng, size: int, n: int) -> None:
    for i in range(n + max(1, n // 2)):
        _save(_normal(rng, size), root / category / "good" / f"n{i:03d}.png")
    for i in range(n):
        image, mask = _defective(rng, size)
        _save(image, root / category / "bad" / f"d{i:03d}.png")
        _save(mask, root / category / "mask" / f"d{i:03d}.png")


def make_tiny_tree(
    dataset: str, root: str | Path, categories=("alpha", "beta"), size: int = 32, n: int = 4, seed: int = 0
) -> Path:
    """Write a tiny tree of ``dataset``'s layout (see ``benchmarks.images.data.DATASETS``) under ``root``.

    ``n`` normal training images per category, ``n // 2`` (at least 1) test images per normal/defect type.
    Returns ``root``.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    if dataset == "visa":
        _visa(root, categories, rng, size, n)
        return root
    makers = {"mvtec": _mvtec_like, "mpdd": _mvtec_like, "loco": _loco, "mvtec3d": _mvtec3d, "folder": _folder}
    if dataset not in makers:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of visa, {', '.join(makers)}")
    for category in categories:
        makers[dataset](root, category, rng, size, n)
    return root
