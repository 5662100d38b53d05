"""Write the real-image set in the MVTec AD layout, with a manifest, deterministically from a seed."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from wtflow.checkpoint import write_text_atomic

from .defects import DEFECTS, SIZE_CLASSES, make_defect
from .photos import GUARD, PHOTOS, TRAIN_FRACTION, load_photo, random_origins, split_regions

__all__ = ["MANIFEST_COLUMNS", "RealSetConfig", "build_realset"]

MANIFEST_COLUMNS = (
    "category", "split", "file", "mask_file", "label", "defect", "size_class", "area",
    "bbox_r0", "bbox_c0", "bbox_r1", "bbox_c1", "crop_row", "crop_col", "source", "params",
)  # fmt: skip
VERSION = 1


@dataclass(frozen=True)
class RealSetConfig:
    """What determines the files: change any field and every file may change."""

    categories: tuple[str, ...] = tuple(PHOTOS)
    crop: int = 128
    n_train: int = 200
    n_test_good: int = 50
    n_test_bad: int = 100
    seed: int = 0
    defects: tuple[str, ...] = DEFECTS
    size_classes: tuple[str, ...] = tuple(SIZE_CLASSES)
    version: int = VERSION
    regions: dict = field(default_factory=lambda: {"train_fraction": TRAIN_FRACTION, "guard_rows": GUARD})

    def check(self) -> None:
        unknown = [c for c in self.categories if c not in PHOTOS]
        if unknown:
            raise ValueError(f"unknown categories {unknown}; expected some of {', '.join(PHOTOS)}")
        for name in ("crop", "n_train", "n_test_good", "n_test_bad"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


def _save_png(array: np.ndarray, path: Path) -> None:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())


def _row(category, split, file, label, defect="good", mask_file="", **extra) -> dict:
    row = dict.fromkeys(MANIFEST_COLUMNS, "")
    row.update(category=category, split=split, file=file, mask_file=mask_file, label=label, defect=defect, **extra)
    return row


def _crops(photo: np.ndarray, origins, crop: int):
    return [photo[r : r + crop, c : c + crop] for r, c in origins]


def _build_category(config: RealSetConfig, name: str, folder: Path) -> list[dict]:
    """Write one category into ``folder`` (created here) and return its manifest rows."""
    rng = np.random.default_rng([config.seed, list(PHOTOS).index(name)])
    photo, crop = load_photo(name), config.crop
    regions = split_regions(photo.shape[0], crop)
    others = [p for p in PHOTOS if p != name]
    rows = []
    train = random_origins(rng, regions["train"], photo.shape[1], crop, config.n_train)
    test = random_origins(rng, regions["test"], photo.shape[1], crop, config.n_test_good + config.n_test_bad)
    for sub in ["train/good", "test/good", *(f"{d}/{k}" for d in ("test", "ground_truth") for k in config.defects)]:
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for i, ((r, c), image) in enumerate(zip(train, _crops(photo, train, crop))):
        _save_png(image, folder / "train" / "good" / f"{i:03d}.png")
        rows.append(_row(name, "train", f"{name}/train/good/{i:03d}.png", 0, crop_row=r, crop_col=c))
    good, bad = test[: config.n_test_good], test[config.n_test_good :]
    for i, ((r, c), image) in enumerate(zip(good, _crops(photo, good, crop))):
        _save_png(image, folder / "test" / "good" / f"{i:03d}.png")
        rows.append(_row(name, "test", f"{name}/test/good/{i:03d}.png", 0, crop_row=r, crop_col=c))
    counters = dict.fromkeys(config.defects, 0)
    for j, ((r, c), image) in enumerate(zip(bad, _crops(photo, bad, crop))):
        kind = config.defects[j % len(config.defects)]
        size_class = config.size_classes[(j // len(config.defects)) % len(config.size_classes)]
        source = others[int(rng.integers(len(others)))]
        source_photo = load_photo(source) if kind == "patch" else None
        foreign = (random_origins(rng, (0, source_photo.shape[0]), source_photo.shape[1], crop, 1)[0]
                   if source_photo is not None else None)  # fmt: skip
        foreign_crop = _crops(source_photo, [foreign], crop)[0] if foreign is not None else None
        defective, mask, info = make_defect(kind, image, size_class, rng, foreign_crop)
        k = counters[kind]
        counters[kind] += 1
        file, mask_file = f"{name}/test/{kind}/{k:03d}.png", f"{name}/ground_truth/{kind}/{k:03d}_mask.png"
        _save_png(defective, folder / "test" / kind / f"{k:03d}.png")
        _save_png(mask.astype(np.uint8) * 255, folder / "ground_truth" / kind / f"{k:03d}_mask.png")
        rr, cc = np.nonzero(mask)
        rows.append(_row(name, "test", file, 1, kind, mask_file, size_class=size_class, area=int(mask.sum()),
                         bbox_r0=int(rr.min()), bbox_c0=int(cc.min()), bbox_r1=int(rr.max()) + 1,
                         bbox_c1=int(cc.max()) + 1, crop_row=r, crop_col=c,
                         source=f"{source}@{foreign[0]},{foreign[1]}" if foreign else "",
                         params=json.dumps(info, sort_keys=True)))  # fmt: skip
    return rows


def _manifest_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def build_realset(out: str | Path, config: RealSetConfig = RealSetConfig(), progress: bool = True) -> dict:
    """Build the set under ``out`` (MVTec AD layout, one folder per category, ``manifest.csv``, ``realset.json``).

    A category is written to ``<name>.partial`` and renamed when complete, so an interrupted build leaves no
    half-written category; a re-run with the same config skips finished categories. A different config in an
    existing ``out`` raises. Returns the summary written to ``realset.json``.
    """
    from tqdm.auto import tqdm

    config.check()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    wanted = asdict(config)
    wanted["categories"] = list(config.categories)
    meta_path, rows_dir = out / "realset.json", out / ".manifest_parts"
    if meta_path.is_file() and json.loads(meta_path.read_text())["config"] != json.loads(json.dumps(wanted)):
        raise FileExistsError(f"{out} holds a real-image set built with another config ({meta_path}); choose --out")
    write_text_atomic(out / "config.json", json.dumps(wanted, indent=1, sort_keys=True))
    rows_dir.mkdir(exist_ok=True)
    start = time.perf_counter()
    for name in tqdm(config.categories, desc="realset", disable=not progress):
        part = rows_dir / f"{name}.json"
        if (out / name).is_dir() and part.is_file():
            continue
        partial = out / f"{name}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(out / name, ignore_errors=True)
        rows = _build_category(config, name, partial)
        os.replace(partial, out / name)
        write_text_atomic(part, json.dumps(rows))
    rows = [row for name in config.categories for row in json.loads((rows_dir / f"{name}.json").read_text())]
    write_text_atomic(out / "manifest.csv", _manifest_csv(rows))
    summary = {
        "config": wanted,
        "images": len(rows),
        "per_category": {n: sum(r["category"] == n for r in rows) for n in config.categories},
        "build_seconds_this_run": round(time.perf_counter() - start, 2),
    }
    write_text_atomic(meta_path, json.dumps(summary, indent=1, sort_keys=True))
    return summary
