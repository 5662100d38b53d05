"""How many unseen normals a fitted detector flags, with the threshold from training scores and cross-fitted.

    python -m benchmarks.vectors.calibration_check --data /path/to/mvtec_ad_resnet18 --categories screw bottle

Per category (one-class split, seed 0): fit each method once with ``calibration="cross-fit"``; the training-score
threshold (PyOD's rule, ``calibration="train"``) is the same quantile of ``decision_scores_``, because both
settings share the model and its scores. Prints the fraction of test normals and of test anomalies above each
threshold at ``contamination`` (default 0.1).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np

import wtflow

from ..data import DataError, Split, one_class_split
from .cli import load_datasets

__all__ = ["CHECK_METHODS", "flag_rates", "main"]

# name -> (detector class in wtflow, constructor arguments)
CHECK_METHODS: dict[str, tuple[str, dict[str, Any]]] = {
    "RFM-W": ("RFM", {"preprocessing": "whiten"}),
    "RFM": ("RFM", {}),
    "WTFlow-LN": ("WTFlow", {"wt": "layernorm"}),
}


def flag_rates(
    split: Split, kind: str = "RFM", contamination: float = 0.1, seed: int = 0, **params: Any
) -> dict[str, float]:
    """Fractions of test normals / anomalies flagged under both thresholds for ``wtflow.<kind>(**params)``.

    Returns keys ``normals_train``, ``anomalies_train`` (threshold from training scores) and
    ``normals_cross_fit``, ``anomalies_cross_fit`` (the cross-fitted ``threshold_``).
    """
    klass = getattr(wtflow, kind)
    det = klass(calibration="cross-fit", contamination=contamination, seed=seed, device="cpu", **params)
    det.fit(split.X_train)
    scores = det.decision_function(split.X_test)
    normal, anomalous = split.y_test == 0, split.y_test == 1
    thresholds = {
        "train": float(np.percentile(det.decision_scores_, 100.0 * (1.0 - contamination))),
        "cross_fit": det.threshold_,
    }
    out = {}
    for name, threshold in thresholds.items():
        out[f"normals_{name}"] = float((scores[normal] > threshold).mean())
        out[f"anomalies_{name}"] = float((scores[anomalous] > threshold).mean())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.vectors.calibration_check", description=__doc__)
    parser.add_argument("--data", default=None, help="ADBench .npz folder or 'digits' (as benchmarks.vectors)")
    parser.add_argument("--categories", nargs="+", default=["screw", "bottle"])
    parser.add_argument("--contamination", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        datasets, _, where = load_datasets(args.data, args.categories)
    except (DataError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"data {where}; contamination {args.contamination}; seed {args.seed}")
    print("category | method | normals flagged (train / cross-fit) | anomalies flagged (train / cross-fit)")
    for ds in datasets:
        split = one_class_split(ds, args.seed)
        for method, (kind, params) in CHECK_METHODS.items():
            r = flag_rates(split, kind, args.contamination, args.seed, **params)
            print(
                f"{ds.name} | {method} | {r['normals_train']:.3f} / {r['normals_cross_fit']:.3f} | "
                f"{r['anomalies_train']:.3f} / {r['anomalies_cross_fit']:.3f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
