"""The one-class protocol: fit every method on every split, score the test set, keep each finished cell at once.

Every (category, seed, method) cell becomes one row. Rows are appended to ``cells.jsonl`` in the output
folder as they finish (one JSON line each, flushed and fsynced), so an interrupted run keeps what it finished
and the next run with the same data and budget skips those cells. The journal is removed once the result
files are written.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from wtflow.utils import limit_threads

from ..data import Dataset, Split, one_class_split
from .methods import SPEED_VECTORS, MethodSpec, Standardized

__all__ = ["JOURNAL_NAME", "Journal", "check_writable", "limit_threads", "measure_scoring_speed", "run_benchmark"]

JOURNAL_NAME = "cells.jsonl"


def check_writable(out: Path) -> None:
    """Create ``out`` and write and remove a probe file in it; ``OSError`` naming the folder if that fails."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_text("ok\n")
        probe.unlink()
    except OSError as err:
        raise OSError(f"the output folder {out} is not writable ({err.strerror or err}); choose another --out") from err


class Journal:
    """Append-only record of finished cells of one run configuration (``config``) in ``path`` (JSON lines).

    A journal written with another configuration (other data or budget) is refused, naming the keys that
    differ; a partial last line (a kill in the middle of a write) is dropped with a message.
    """

    def __init__(self, path: Path, config: dict[str, Any], log: Callable[[str], None] = print):
        self.path, self.config = path, config
        self.rows: dict[tuple[str, int, str], dict[str, Any]] = {}
        if not path.is_file():
            return
        lines = path.read_text().split("\n")
        complete, partial = lines[:-1], lines[-1]
        if partial.strip():
            log(f"{path}: dropped a partial last line (the previous run was interrupted while writing it)")
        for number, line in enumerate(complete, 1):
            entry = json.loads(line)
            if entry["config"] != config:
                old = entry["config"]
                differ = sorted(k for k in config.keys() | old.keys() if config.get(k) != old.get(k))
                raise ValueError(
                    f"{path} line {number} comes from a run with other settings ({', '.join(differ)} differ); "
                    "use another --out or delete the file"
                )
            row = entry["row"]
            self.rows[(row["category"], int(row["seed"]), row["method"])] = row
        if partial.strip():
            path.write_text("".join(line + "\n" for line in complete))
        if self.rows:
            log(f"resuming: {len(self.rows)} finished cell(s) in {path} are kept and not recomputed")

    def get(self, category: str, seed: int, method: str) -> dict[str, Any] | None:
        return self.rows.get((category, seed, method))

    def append(self, row: dict[str, Any]) -> None:
        """Write one finished row durably before the next cell starts."""
        with self.path.open("a") as f:
            f.write(json.dumps({"config": self.config, "row": row}, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.rows[(row["category"], int(row["seed"]), row["method"])] = row

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def _auroc_auprc(y: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    return float(roc_auc_score(y, scores)), float(average_precision_score(y, scores))


def _mean_radius(detector, X: np.ndarray) -> float:
    if len(X) == 0:
        return float("nan")
    return float(np.linalg.norm(detector.transform(X), axis=1).mean())


class _SplitRun:
    """The fitted detectors of one split; methods that share a fit (K = 20 rows) reuse their base's model."""

    def __init__(self, split: Split, seed: int, specs: list[MethodSpec]):
        self.split, self.seed, self.d = split, seed, split.X_train.shape[1]
        self.by_name = {s.name: s for s in specs}
        self.fitted: dict[str, tuple[Any, float]] = {}

    def fit(self, spec: MethodSpec) -> tuple[Any, float]:
        if spec.name not in self.fitted:
            detector = spec.make(self.seed, self.d)
            if spec.standardize:
                detector = Standardized(detector)
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                detector.fit(self.split.X_train)
            self.fitted[spec.name] = (detector, time.perf_counter() - start)
        return self.fitted[spec.name]

    def detector(self, spec: MethodSpec) -> tuple[Any, float]:
        """(detector, fit seconds) for ``spec``, with its ``rescore`` parameters set on a copy of a shared fit."""
        if spec.shares_fit is None:
            return self.fit(spec)
        base = self.by_name.get(spec.shares_fit) or MethodSpec(spec.shares_fit, "flow", spec.make, base=spec.shares_fit)
        base_detector, fit_s = self.fit(base)
        return copy.deepcopy(base_detector).set_params(**spec.rescore), fit_s


def _score_row(run: _SplitRun, spec: MethodSpec, category: str) -> tuple[dict[str, Any], Any]:
    """Fit (or reuse) and score one method on one split: (result row, detector)."""
    from .methods import describe_preprocessing

    split = run.split
    detector, fit_s = run.detector(spec)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = np.asarray(detector.decision_function(split.X_test), dtype=np.float64)
    score_s = time.perf_counter() - start
    if not np.isfinite(scores).all():
        raise FloatingPointError(f"{spec.name} produced non-finite scores on {category}, seed {run.seed}")
    auroc, auprc = _auroc_auprc(split.y_test, scores)
    row = {
        "category": category,
        "seed": run.seed,
        "method": spec.name,
        "base": spec.base,
        "family": spec.family,
        "preprocessing": describe_preprocessing(spec, detector),
        "n_train": len(split.X_train),
        "n_test": len(split.X_test),
        "n_test_anomalies": int(split.y_test.sum()),
        "auroc": auroc,
        "auprc": auprc,
        "fit_s": fit_s,
        "fit_shared_with": spec.shares_fit or "",
        "score_s": score_s,
        "sqrt_d": math.sqrt(run.d),
    }
    if spec.family == "flow" and hasattr(detector, "transform"):
        row["radius_train"] = _mean_radius(detector, split.X_train)
        row["radius_test_normal"] = _mean_radius(detector, split.X_test[split.y_test == 0])
        row["radius_test_anomaly"] = _mean_radius(detector, split.X_test[split.y_test == 1])
    return row, detector


def run_benchmark(
    datasets: list[Dataset],
    specs: list[MethodSpec],
    seeds: list[int],
    progress: bool = True,
    log: Callable[[str], None] = print,
    journal: Journal | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run every spec on every dataset and seed; returns (rows, extras).

    Cells already in ``journal`` are taken from it; new ones are appended to it as they finish.
    ``extras`` holds the one-step scoring time of ``SPEED_VECTORS`` vectors (WTFlow-LN if run).
    """
    from tqdm.auto import tqdm

    rows: list[dict[str, Any]] = []
    bar = tqdm(total=len(datasets) * len(seeds) * len(specs), desc="vectors", unit="fit", disable=not progress)
    speed: tuple[Any, np.ndarray] | None = None
    for ds in datasets:
        for seed in seeds:
            run = None
            for spec in specs:
                row = journal.get(ds.name, seed, spec.name) if journal is not None else None
                if row is None:
                    bar.set_postfix_str(f"{ds.name} s{seed} {spec.name}")
                    run = run or _SplitRun(one_class_split(ds, seed), seed, specs)
                    row, detector = _score_row(run, spec, ds.name)
                    if journal is not None:
                        journal.append(row)
                    if spec.name == "WTFlow-LN":
                        speed = (detector, run.split.X_test)
                rows.append(row)
                bar.update(1)
    bar.close()
    if speed is None and any(spec.name == "WTFlow-LN" for spec in specs):
        # Every WTFlow-LN cell came from the journal: fit the last one again for the timing.
        (spec,) = [s for s in specs if s.name == "WTFlow-LN"]
        run = _SplitRun(one_class_split(datasets[-1], seeds[-1]), seeds[-1], specs)
        speed = (run.fit(spec)[0], run.split.X_test)
    extras = {} if speed is None else {"one_step_scoring": measure_scoring_speed(*speed)}
    return rows, extras


def measure_scoring_speed(detector, X: np.ndarray, n: int = SPEED_VECTORS, repeats: int = 3) -> list[dict[str, Any]]:
    """Wall time of ``decision_function`` on ``n`` vectors (test rows tiled), median of ``repeats`` runs.

    Measured with 1 thread and with all CPUs (torch and BLAS pools), whatever ``--threads`` is.
    """
    big = np.resize(X, (n, X.shape[1]))
    out = []
    for threads in sorted({1, os.cpu_count() or 1}):
        with limit_threads(threads):
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                detector.decision_function(big)
                times.append(time.perf_counter() - start)
        out.append(
            {
                "method": "WTFlow-LN",
                "n_vectors": n,
                "dim": X.shape[1],
                "ode_steps": int(detector.ode_steps),
                "median_s": float(np.median(times)),
                "threads": threads,
            }
        )
    return out
