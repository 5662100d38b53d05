"""Vector anomaly-detection data for ``benchmarks.vectors``: ADBench-format ``.npz`` folders and digits.

* A folder of ADBench-format files: each ``<name>.npz`` holds ``X`` (n, d) float and ``y`` (n,) in {0, 1}
  (1 = anomaly). The default is the 15 MVTec AD categories embedded by an ImageNet-pretrained
  ResNet-18 that ADBench publishes (``adbench/datasets/CV_by_ResNet18/MVTec-AD_<category>.npz``).
  It is found through ``--data``, the ``WTFLOW_DATA`` environment variable, or
  ``../shared/data/mvtec_ad_resnet18`` next to the repository (or the working directory).
* ``digits``: scikit-learn's bundled 8x8 digits (no download); category ``digit_k`` has digit k
  as the normal class and the other nine digits as anomalies -- the data the defaults were tuned on.

One-class protocol (``one_class_split``): per category and seed, ``train_fraction`` = 70 % of the
normals train; the remaining normals plus all anomalies test.

Bad data raises ``DataError`` naming the file and the problem.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "DEFAULT_DATA_NAME",
    "ENV_VAR",
    "DataError",
    "Dataset",
    "Split",
    "digits_datasets",
    "load_folder",
    "load_npz",
    "one_class_split",
    "resolve_data",
]

ENV_VAR = "WTFLOW_DATA"
DEFAULT_DATA_NAME = "mvtec_ad_resnet18"
TRAIN_FRACTION = 0.7
REPO_ROOT = Path(__file__).resolve().parent.parent

ADBENCH_HINT = (
    "ADBench publishes these embeddings as adbench/datasets/CV_by_ResNet18/MVTec-AD_<category>.npz in the "
    "ADBench repository (https://github.com/Minqi824/ADBench); put the 15 files in a folder and pass it with "
    f"--data DIR or the {ENV_VAR} environment variable (or run with --data digits, which needs no download)"
)


class DataError(ValueError):
    """A data file or folder that cannot be used; the message names it and the problem."""


@dataclass
class Dataset:
    """One category: ``X`` (n, d) float64, ``y`` (n,) int64 in {0, 1}; ``source`` names where it came from."""

    name: str
    X: np.ndarray
    y: np.ndarray
    source: str


@dataclass
class Split:
    """A one-class split: training normals and a labelled test set."""

    X_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def _validate(X, y, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Check shapes, finiteness, labels and class counts; return float64 X and int64 y."""
    X = np.asarray(X)
    y = np.asarray(y)
    if X.dtype == object or not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise DataError(f"{source}: X must be a numeric array, got dtype {X.dtype}")
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise DataError(f"{source}: X must have shape (n, d) with n, d >= 1, got shape {X.shape}")
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise DataError(f"{source}: y must have shape ({X.shape[0]},) to match X {X.shape}, got shape {y.shape}")
    X = X.astype(np.float64)
    if not np.isfinite(X).all():
        n_nan, n_inf = int(np.isnan(X).sum()), int(np.isinf(X).sum())
        raise DataError(f"{source}: X must be finite, got {n_nan} NaN and {n_inf} inf entries")
    if y.dtype == object or not (np.issubdtype(y.dtype, np.number) or y.dtype == bool):
        raise DataError(f"{source}: y must hold the labels 0 (normal) and 1 (anomaly), got dtype {y.dtype}")
    bad = ~np.isin(y, (0, 1))
    if bad.any():
        values = np.unique(y[bad])[:5].tolist()
        raise DataError(f"{source}: y must hold only 0 (normal) and 1 (anomaly), got other values {values}")
    y = y.astype(np.int64)
    n_normal, n_anomal = int((y == 0).sum()), int((y == 1).sum())
    if n_normal == 0:
        raise DataError(f"{source}: no normal samples (y == 0); the one-class protocol trains on normals")
    n_train = _n_train(n_normal)
    if n_train < 2 or n_normal - n_train < 1:
        raise DataError(
            f"{source}: too few normal samples to split: {n_normal} normal(s) give {n_train} for training and "
            f"{n_normal - n_train} for testing; need >= 2 and >= 1 ({TRAIN_FRACTION:.0%} / rest split, "
            "i.e. at least 3 normals)"
        )
    if n_anomal == 0:
        raise DataError(f"{source}: no anomalies (y == 1); AUROC and AUPRC need both classes in the test set")
    return X, y


def _n_train(n_normal: int, train_fraction: float = TRAIN_FRACTION) -> int:
    return int(np.floor(train_fraction * n_normal))


def load_npz(path: str | os.PathLike, name: str | None = None) -> Dataset:
    """Load and validate one ADBench-format ``.npz`` file (arrays ``X`` and ``y``)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = sorted(archive.files)
            missing = [k for k in ("X", "y") if k not in keys]
            if missing:
                raise DataError(f"{path}: missing array(s) {missing}; an ADBench .npz holds 'X' and 'y', found {keys}")
            X, y = archive["X"], archive["y"]
    except DataError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise DataError(f"{path}: cannot read it as a .npz archive of plain arrays ({err})") from err
    X, y = _validate(X, y, str(path))
    return Dataset(name=name or path.stem, X=X, y=y, source=str(path))


def _short_names(stems: list[str]) -> list[str]:
    """Drop a prefix shared by all stems up to an underscore: MVTec-AD_bottle -> bottle."""
    if len(stems) < 2:
        return stems
    prefix = os.path.commonprefix(stems)
    cut = prefix.rfind("_") + 1
    short = [s[cut:] for s in stems]
    return short if cut > 0 and all(short) else stems


def load_folder(folder: str | os.PathLike, categories: list[str] | None = None) -> list[Dataset]:
    """Load every ``*.npz`` of ``folder`` (sorted), optionally only ``categories`` (short or full names)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a directory of ADBench .npz files. {ADBENCH_HINT}")
    files = sorted(folder.glob("*.npz"))
    if not files:
        raise DataError(f"{folder}: holds no .npz files. {ADBENCH_HINT}")
    names = _short_names([f.stem for f in files])
    chosen = list(zip(names, files))
    if categories:
        known = {n: f for n, f in chosen} | {f.stem: f for f in files}
        unknown = [c for c in categories if c not in known]
        if unknown:
            raise DataError(f"{folder}: unknown categories {unknown}; available: {', '.join(names)}")
        by_file = {f: n for n, f in chosen}
        chosen = [(by_file[known[c]], known[c]) for c in categories]
    return [load_npz(f, name=n) for n, f in chosen]


def digits_datasets(categories: list[str] | None = None) -> list[Dataset]:
    """scikit-learn's digits (1797 x 64, bundled): ``digit_k`` = digit k normal, all other digits anomalous."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = digits.data.astype(np.float64)
    all_names = [f"digit_{k}" for k in range(10)]
    names = categories or all_names
    unknown = [c for c in names if c not in all_names]
    if unknown:
        raise DataError(f"digits: unknown categories {unknown}; available: {', '.join(all_names)}")
    out = []
    for name in names:
        k = int(name.split("_")[1])
        y = (digits.target != k).astype(np.int64)
        Xv, yv = _validate(X, y, f"digits[{name}]")
        out.append(Dataset(name=name, X=Xv, y=yv, source="sklearn.datasets.load_digits"))
    return out


def _default_candidates() -> list[Path]:
    rel = Path("..") / "shared" / "data" / DEFAULT_DATA_NAME
    return [REPO_ROOT / rel, Path.cwd() / rel]


def resolve_data(spec: str | None) -> str | Path:
    """``"digits"``, or the folder to read: ``spec``, else ``$WTFLOW_DATA``, else ``../shared/data/...``.

    Raises ``DataError`` with the ADBench download hint when nothing is found.
    """
    if spec == "digits":
        return "digits"
    if spec:
        path = Path(spec).expanduser()
        if not path.is_dir():
            raise DataError(f"--data {spec}: not a directory. {ADBENCH_HINT}")
        return path
    env = os.environ.get(ENV_VAR)
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise DataError(f"{ENV_VAR}={env}: not a directory. {ADBENCH_HINT}")
        return path
    for candidate in _default_candidates():
        if candidate.is_dir():
            return candidate.resolve()
    tried = ", ".join(str(c) for c in _default_candidates())
    raise DataError(f"no data folder found (no --data, no {ENV_VAR}, none of {tried}). {ADBENCH_HINT}")


def one_class_split(dataset: Dataset, seed: int, train_fraction: float = TRAIN_FRACTION) -> Split:
    """Per seed: a random ``train_fraction`` of the normals trains; the other normals and all anomalies test."""
    rng = np.random.default_rng(seed)
    normal = np.flatnonzero(dataset.y == 0)
    anomal = np.flatnonzero(dataset.y == 1)
    perm = rng.permutation(normal)
    n_train = _n_train(len(normal), train_fraction)
    train_idx, test_normal = perm[:n_train], perm[n_train:]
    test_idx = np.concatenate([test_normal, anomal])
    return Split(X_train=dataset.X[train_idx], X_test=dataset.X[test_idx], y_test=dataset.y[test_idx])
