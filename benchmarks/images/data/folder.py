"""A user's own line in a generic folder layout: ``<root>/<category>/{<normal_dir>, <abnormal_dir>, [<mask_dir>],
[<normal_test_dir>]}``.

Masks in ``mask_dir`` pair with abnormal images by stem (``a.png`` <-> ``a.png`` or ``a_mask.png``); without a
mask dir the abnormal images get no mask (image-level metrics only). Without ``normal_test_dir`` the normal images
are split deterministically: every image whose sorted position ``i`` satisfies ``floor((i + 1) * r) > floor(i * r)``
(``r = normal_split_ratio``) goes to test, i.e. an evenly spread fraction ``r``.
"""

from __future__ import annotations

from pathlib import Path

from .core import ImageDataError, Sample, list_images, pair_masks_by_stem, require_dir

__all__ = ["SPLITS", "list_categories", "load_split"]

SPLITS = ("train", "test")


def list_categories(root: str | Path, normal_dir: str = "good") -> list[str]:
    """Sorted names of the folders under ``root`` that hold a ``normal_dir`` folder."""
    root = require_dir(Path(root), "dataset root")
    found = sorted(p.name for p in root.iterdir() if (p / normal_dir).is_dir())
    if not found:
        raise ImageDataError(f"no category under {root}: expected <category>/{normal_dir} folders")
    return found


def _normal_split(images: list[Path], ratio: float) -> tuple[list[Path], list[Path]]:
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"normal_split_ratio must lie in (0, 1), got {ratio!r}")
    test = [p for i, p in enumerate(images) if int((i + 1) * ratio) > int(i * ratio)]
    chosen = set(test)
    return [p for p in images if p not in chosen], test


def load_split(
    root: str | Path,
    category: str,
    split: str,
    normal_dir: str = "good",
    abnormal_dir: str = "bad",
    mask_dir: str | None = "mask",
    normal_test_dir: str | None = None,
    normal_split_ratio: float = 0.2,
) -> list[Sample]:
    """The samples of ``split`` ("train": normals only; "test": held-out normals then abnormals)."""
    if split not in SPLITS:
        raise ImageDataError(f"unknown split {split!r} for the folder layout; expected one of {', '.join(SPLITS)}")
    base = require_dir(Path(root) / category, f"category folder {category!r}")
    normals = list_images(base / normal_dir, "normal folder")
    if normal_test_dir is None:
        train, test_normals = _normal_split(normals, normal_split_ratio)
    else:
        train, test_normals = normals, list_images(base / normal_test_dir, "normal test folder")
    if split == "train":
        return [Sample(p, (), 0, "good", category, split) for p in train]
    abnormal = list_images(base / abnormal_dir, "abnormal folder")
    if mask_dir is None:
        masks: list[tuple[Path, ...]] = [()] * len(abnormal)
    else:
        mask_files = list_images(base / mask_dir, "mask folder")
        masks = [(m,) for m in pair_masks_by_stem(abnormal, mask_files, f"{base / abnormal_dir} vs {base / mask_dir}")]
    normal_samples = [Sample(p, (), 0, "good", category, split) for p in test_normals]
    return normal_samples + [Sample(p, m, 1, abnormal_dir, category, split) for p, m in zip(abnormal, masks)]
