"""Evaluate detector settings without MVTec test labels: digits AUROC and held-out normals of a training split.

    python -m benchmarks.tuning.tune digits WTFlow '{"wt": "layernorm", "train_steps": 600}'
    python -m benchmarks.tuning.tune holdout WTFlow '{"wt": "layernorm"}'
    python -m benchmarks.tuning.tune textures WTFlow '{"wt": "layernorm", "preprocessing": "whiten"}'

``digits``: the one-class digits protocol of ``benchmarks.vectors --data digits`` (10 digits x seeds);
prints the mean AUROC (category mean per seed, then mean over seeds).

``textures``: the same protocol on the texture proxy of ``benchmarks.textures`` (pooled efficientnet-lite0
features of scikit-image texture crops, synthetic defects; built into the cache on first use).

``holdout``: on the MVTec embeddings, only the *training* normals of each one-class split are used
(no anomaly, no test normal): 80 % fit the detector, 20 % are held out. Printed: the mean AUROC of
held-out normals against the fitted normals' own scores (0.5 = the detector scores unseen normals
like the ones it was trained on; near 1 = it memorised its training set), and the fraction of held-out
normals above the training ``1 - contamination`` threshold (ideal: the contamination, 0.1).

Every call appends one JSON line (command, settings, numbers) to ``runs.jsonl`` next to this file.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

import wtflow
from benchmarks.data import digits_datasets, load_folder, one_class_split, resolve_data
from benchmarks.vectors import Mahalanobis, Standardized, pyod_factory
from wtflow.utils import auroc, limit_threads

LOG = Path(__file__).resolve().parent / "runs.jsonl"


def make_detector(kind: str, params: dict, seed: int, d: int):
    if kind in ("RFM", "WTFlow", "TCCM", "FlowMismatch"):
        return getattr(wtflow, kind)(seed=seed, **params)
    if kind == "Mahalanobis":
        return Mahalanobis()
    base, _, prep = kind.partition(":")
    det = pyod_factory(base, quick=False)(seed, d)
    return Standardized(det) if prep == "std" else det


def one_class_auroc(kind: str, params: dict, datasets, seeds=(0, 1, 2)) -> dict:
    """Mean AUROC over ``datasets`` in the one-class protocol (category mean per seed, then mean over seeds)."""
    per_seed, per_cat = [], {}
    for seed in seeds:
        aucs = []
        for ds in datasets:
            split = one_class_split(ds, seed)
            det = make_detector(kind, params, seed, split.X_train.shape[1]).fit(split.X_train)
            auc = auroc(split.y_test, det.decision_function(split.X_test))
            aucs.append(auc)
            per_cat.setdefault(ds.name, []).append(auc)
        per_seed.append(float(np.mean(aucs)))
    return {
        "auroc_mean": float(np.mean(per_seed)),
        "auroc_std": float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else 0.0,
        "per_category": {k: round(float(np.mean(v)), 4) for k, v in per_cat.items()},
    }


def digits(kind: str, params: dict, seeds=(0, 1, 2), categories=None) -> dict:
    """Mean AUROC on scikit-learn's digits (one digit normal, the others anomalous)."""
    return one_class_auroc(kind, params, digits_datasets(categories), seeds)


def textures(kind: str, params: dict, seeds=(0, 1, 2), categories=None, folder=None) -> dict:
    """Mean AUROC on the texture proxy (``benchmarks.textures``), built into the cache on first use."""
    from benchmarks.textures import ensure_texture_dataset

    return one_class_auroc(kind, params, load_folder(ensure_texture_dataset(folder), categories), seeds)


def holdout(kind: str, params: dict, seeds=(0,), categories=None, fit_fraction=0.8) -> dict:
    gaps, exceed, per_cat = [], [], {}
    for ds in load_folder(resolve_data(None), categories):
        for seed in seeds:
            X = one_class_split(ds, seed).X_train  # training normals only: no test data is touched
            perm = np.random.default_rng(1000 + seed).permutation(len(X))
            n_fit = int(fit_fraction * len(X))
            X_fit, X_hold = X[perm[:n_fit]], X[perm[n_fit:]]
            det = make_detector(kind, params, seed, X.shape[1]).fit(X_fit)
            s_fit, s_hold = det.decision_function(X_fit), det.decision_function(X_hold)
            y = np.r_[np.zeros(len(s_fit)), np.ones(len(s_hold))]
            gap = auroc(y, np.r_[s_fit, s_hold])
            gaps.append(gap)
            exceed.append(float((s_hold > np.quantile(s_fit, 0.9)).mean()))
            per_cat[ds.name] = round(float(gap), 3)
    return {"gap_auroc": float(np.mean(gaps)), "holdout_above_q90": float(np.mean(exceed)), "per_category": per_cat}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    mode, kind = argv[0], argv[1]
    params = json.loads(argv[2]) if len(argv) > 2 else {}
    extra = json.loads(argv[3]) if len(argv) > 3 else {}
    start = time.perf_counter()
    modes = {"digits": digits, "textures": textures, "holdout": holdout}
    if mode not in modes:
        raise SystemExit(f"unknown mode {mode!r}; choose from {', '.join(modes)}")
    with limit_threads(1):  # small detectors on a shared CPU: one thread for torch and the BLAS pools
        result = modes[mode](kind, params, **extra)
    result["wall_s"] = round(time.perf_counter() - start, 1)
    record = {"mode": mode, "detector": kind, "params": params, "extra": extra, **result}
    record["command"] = "python -m benchmarks.tuning.tune " + " ".join(f"'{a}'" if " " in a else a for a in argv)
    with LOG.open("a") as f:
        f.write(json.dumps(record) + "\n")
    short = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in result.items() if k != "per_category"}
    print(mode, kind, json.dumps(params), short, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
