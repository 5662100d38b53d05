"""A label-free tuning proxy for MVTec: real CNN embeddings of texture photos with synthetic defects.

    python -m benchmarks.textures --out DIR          # writes DIR/Textures_<name>.npz (ADBench format)
    python -m benchmarks.vectors --data DIR          # any detector, one-class protocol

Why: the vector defaults must be chosen without MVTec test labels, and scikit-learn's digits (64 raw
pixels) are far from pooled CNN features. This builds data of the same kind as the MVTec embeddings --
ImageNet-pretrained CNN features, global-average pooled, of images that differ from normal ones by a
small local defect -- from photos that ship with scikit-image (no download): ``brick``, ``grass``,
``gravel`` (grey) and ``immunohistochemistry`` (colour).

Per texture: ``n_normal`` random 128 x 128 crops (random flips and quarter turns) and ``n_anomalous``
crops carrying one synthetic defect, drawn uniformly from: a square patch pasted from another texture,
a scratch (a straight bright or dark stroke), a spot (an elliptic blob darkened or brightened) and a
smudge (a disc blurred). Crops are resized to 224 x 224 and embedded by ``benchmarks.backbones``
(offline efficientnet-lite0 by default: 1280-d). ``y`` = 1 marks the defective crops.

The defect magnitudes were fixed before any detector was run on this data; the files are a function of
(``seed``, sizes, backbone) only.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from wtflow.utils import write_atomic, write_json

from .backbones import BACKBONES, load_backbone, pooled_features

__all__ = [
    "DEFECTS",
    "TEXTURES",
    "add_defect",
    "build_texture_dataset",
    "default_folder",
    "ensure_texture_dataset",
    "random_crops",
    "texture_images",
]

TEXTURES = ("brick", "grass", "gravel", "immunohistochemistry")
DEFECTS = ("patch", "scratch", "spot", "smudge")
CROP = 128
INPUT_SIZE = 224


def texture_images() -> dict[str, np.ndarray]:
    """The texture photos as float RGB arrays (H, W, 3) in [0, 1] (grey photos repeated over channels)."""
    import skimage.data

    out = {}
    for name in TEXTURES:
        img = np.asarray(getattr(skimage.data, name)(), dtype=np.float64) / 255.0
        out[name] = np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img[..., :3]
    return out


def random_crops(image: np.ndarray, n: int, rng: np.random.Generator, size: int = CROP) -> np.ndarray:
    """``n`` random (size, size, 3) crops of ``image`` with random flips and quarter turns -> (n, size, size, 3)."""
    h, w, _ = image.shape
    out = np.empty((n, size, size, 3))
    for i in range(n):
        r, c = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
        crop = image[r : r + size, c : c + size]
        crop = np.rot90(crop, k=int(rng.integers(4)))
        out[i] = crop[:, ::-1] if rng.random() < 0.5 else crop
    return out


def _disc_mask(size: int, center: tuple[float, float], radii: tuple[float, float], angle: float) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    dy, dx = yy - center[0], xx - center[1]
    cos, sin = np.cos(angle), np.sin(angle)
    u, v = cos * dx + sin * dy, -sin * dx + cos * dy
    return (u / radii[0]) ** 2 + (v / radii[1]) ** 2 <= 1.0


def add_defect(crop: np.ndarray, kind: str, rng: np.random.Generator, other: np.ndarray) -> np.ndarray:
    """One synthetic defect of ``kind`` (see ``DEFECTS``) on a (S, S, 3) crop; ``other``: a crop of another texture."""
    size = crop.shape[0]
    out = crop.copy()
    center = tuple(rng.uniform(0.25 * size, 0.75 * size, size=2))
    if kind == "patch":
        side = int(rng.integers(size // 6, size // 4 + 1))
        r, c = int(center[0]) - side // 2, int(center[1]) - side // 2
        out[r : r + side, c : c + side] = other[r : r + side, c : c + side]
    elif kind == "scratch":
        length, angle = rng.uniform(0.3, 0.6) * size, rng.uniform(0, np.pi)
        mask = _disc_mask(size, center, (length / 2, rng.uniform(1.0, 2.0)), angle)
        out[mask] = 0.95 if rng.random() < 0.5 else 0.05
    elif kind == "spot":
        radii = tuple(rng.uniform(0.05, 0.1, size=2) * size)
        mask = _disc_mask(size, center, radii, rng.uniform(0, np.pi))
        out[mask] = np.clip(out[mask] * 0.4, 0, 1) if rng.random() < 0.5 else np.clip(out[mask] + 0.35, 0, 1)
    elif kind == "smudge":
        from scipy.ndimage import gaussian_filter

        mask = _disc_mask(size, center, (0.15 * size, 0.15 * size), 0.0)
        blurred = gaussian_filter(crop, sigma=(3.0, 3.0, 0.0))
        out[mask] = blurred[mask]
    else:
        raise ValueError(f"unknown defect {kind!r}; choose from {', '.join(DEFECTS)}")
    return out


def _to_tensor(crops: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(crops.transpose(0, 3, 1, 2))).float()
    return torch.nn.functional.interpolate(t, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True)


def build_texture_dataset(
    out: str | Path,
    n_normal: int = 250,
    n_anomalous: int = 100,
    seed: int = 0,
    backbone: str = "efficientnet_lite0",
    weights: str | None = None,
    progress: bool = True,
) -> list[Path]:
    """Write ``Textures_<name>.npz`` (``X`` (n, C) float32 embeddings, ``y`` (n,) 0/1) per texture to ``out``."""
    from tqdm.auto import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = load_backbone(backbone, weights)
    images = texture_images()
    written = []
    for name in tqdm(TEXTURES, desc="textures", disable=not progress):
        rng = np.random.default_rng([seed, TEXTURES.index(name)])
        normal = random_crops(images[name], n_normal, rng)
        defective = random_crops(images[name], n_anomalous, rng)
        others = [t for t in TEXTURES if t != name]
        for i in range(n_anomalous):
            other = random_crops(images[others[int(rng.integers(len(others)))]], 1, rng)[0]
            defective[i] = add_defect(defective[i], DEFECTS[i % len(DEFECTS)], rng, other)
        crops = np.concatenate([normal, defective])
        X = pooled_features(model, _to_tensor(crops)).numpy()
        y = np.r_[np.zeros(n_normal, dtype=np.int64), np.ones(n_anomalous, dtype=np.int64)]
        path = out / f"Textures_{name}.npz"

        def write(tmp, X=X, y=y):
            with open(tmp, "wb") as f:
                np.savez(f, X=X, y=y)

        write_atomic(path, write)
        written.append(path)
    meta = {
        "backbone": backbone,
        "weights": model.weights,
        "n_normal": n_normal,
        "n_anomalous": n_anomalous,
        "seed": seed,
        "textures": list(TEXTURES),
        "defects": list(DEFECTS),
        "crop": CROP,
        "input_size": INPUT_SIZE,
    }
    write_json(meta, out / "textures.json")
    return written


def default_folder() -> Path:
    """``$WTFLOW_CACHE/textures`` if the variable is set, else ``benchmarks/_cache/textures`` (git-ignored)."""
    env = os.environ.get("WTFLOW_CACHE")
    return (Path(env) if env else Path(__file__).resolve().parent / "_cache") / "textures"


def ensure_texture_dataset(folder: str | Path | None = None, progress: bool = True) -> Path:
    """The folder of the default texture files, built first (about a minute on 2 cores) when any is missing."""
    folder = Path(folder) if folder is not None else default_folder()
    if not all((folder / f"Textures_{name}.npz").is_file() for name in TEXTURES):
        build_texture_dataset(folder, progress=progress)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.textures", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        default=None,
        help="folder for the files (default: $WTFLOW_CACHE/textures or benchmarks/_cache/textures)",
    )
    parser.add_argument("--n-normal", type=int, default=250)
    parser.add_argument("--n-anomalous", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--backbone", default="efficientnet_lite0", help=f"one of {', '.join(BACKBONES)} or a timm name"
    )
    parser.add_argument("--weights", default=None, help="a local weights file (no download)")
    args = parser.parse_args(argv)
    if args.n_normal < 10 or args.n_anomalous < 1:
        parser.error("--n-normal must be >= 10 and --n-anomalous >= 1")
    start = time.perf_counter()
    out = args.out if args.out is not None else default_folder()
    paths = build_texture_dataset(out, args.n_normal, args.n_anomalous, args.seed, args.backbone, args.weights)
    print(f"wrote {len(paths)} files to {out} in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
