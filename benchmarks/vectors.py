"""Flow-matching detectors against classic PyOD detectors on vector data (one-class protocol).

    python -m benchmarks.vectors                      # MVTec AD ResNet-18 embeddings, 15 categories x seeds 0, 1, 2
    python -m benchmarks.vectors --data digits        # scikit-learn digits, one digit normal (the tuning data)
    python -m benchmarks.vectors --quick              # 3 categories, seed 0, small budgets (smoke run)
    python -m benchmarks.vectors --methods WTFlow-LN TCCM KNN --categories bottle screw --seeds 0

Per category and seed, 70 % of the normals train and the other normals plus all anomalies test
(``benchmarks.data.one_class_split``). Every detector runs with its default settings -- no
per-category tuning. PyOD baselines run on raw and on standardised inputs (training statistics);
the better of the two (by mean AUROC) counts as the baseline. For every flow method the run also
records the endpoint radius ||phi|| of training normals, test normals and test anomalies against
sqrt(d) (Observation 1). Writes to ``--out``: ``results.csv`` (one row per method, category and
seed), ``summary.csv``, ``per_category.csv``, ``summary.md`` (tables, the paper's claims checked on
this data, the exact command, versions and seeds), ``heatmap.png`` and ``run.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import csv
import io
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

import wtflow
from wtflow.checkpoint import write_atomic, write_text_atomic
from wtflow.detectors.preprocessing import fit_preprocessor

from .data import DEFAULT_DATA_NAME, DataError, Dataset, digits_datasets, load_folder, one_class_split, resolve_data

__all__ = ["METHODS", "MethodSpec", "build_methods", "main", "run_benchmark", "summarize"]

DEFAULT_SEEDS = (0, 1, 2)
QUICK_CATEGORIES = 3
PYOD_METHODS = ("KNN", "LOF", "IForest", "OCSVM", "PCA", "ECOD", "DeepSVDD")
FLOW_METHODS = (
    "WTFlow-LN",
    "WTFlow-LN-K20",
    "WTFlow-BN",
    "WTFlow-BN-K20",
    "RFM",
    "RFM-K20",
    "RFM-W",
    "RFM-W-K20",
    "TCCM",
    "FlowMismatch",
)
# The whitening of RFM-W alone (its squared norm is the Ledoit-Wolf Mahalanobis distance): what the flow adds.
REFERENCE_METHODS = ("Mahalanobis",)
METHODS = FLOW_METHODS + REFERENCE_METHODS + PYOD_METHODS
SPEED_VECTORS = 10_000

# --quick budgets: enough to exercise every code path, not to reach the reported quality.
QUICK_FLOW_STEPS = 100
QUICK_TCCM_EPOCHS = 10
QUICK_DEEPSVDD_EPOCHS = 10


@dataclass
class MethodSpec:
    """How to build and run one benchmarked method.

    Attributes:
        name: row label, e.g. ``"WTFlow-LN"`` or ``"KNN (std)"``.
        family: ``"flow"``, ``"reference"`` (the flows' preprocessing alone) or ``"pyod"``.
        make: ``make(seed, d) -> detector`` with PyOD's ``fit`` / ``decision_function``.
        base: the method name the user selects (``"KNN"`` for both ``"KNN (raw)"`` and ``"KNN (std)"``).
        standardize: standardise inputs with training statistics before the detector (PyOD baselines).
        shares_fit: reuse the fitted detector of this method, changing only ``rescore`` parameters
            (e.g. the Euler steps): same weights, so only the scoring differs.
        rescore: parameters set on the copy of the shared detector.
    """

    name: str
    family: str
    make: Callable[[int, int], Any]
    base: str
    standardize: bool = False
    shares_fit: str | None = None
    rescore: dict[str, Any] = field(default_factory=dict)


class _Mahalanobis:
    """Squared Mahalanobis distance under the Ledoit-Wolf shrunk Gaussian of the training data.

    It is the squared norm of the ``"whiten"`` preprocessing of the flow detectors, so the row shows how
    much of RFM-W's result the whitening alone gives.
    """

    preprocessing = "whiten"

    def fit(self, X):
        self.transform_ = fit_preprocessor(X, "whiten")
        return self

    def decision_function(self, X):
        return (self.transform_(X) ** 2).sum(axis=1)


class _Standardized:
    """A PyOD detector behind a StandardScaler-style transform fitted on the training data."""

    def __init__(self, detector):
        self.detector = detector

    def fit(self, X):
        self.transform_ = fit_preprocessor(X, "standardize")
        self.detector.fit(self.transform_(X))
        return self

    def decision_function(self, X):
        return self.detector.decision_function(self.transform_(X))


@contextlib.contextmanager
def _isolated_global_rng(seed: int):
    """Seed numpy's and torch's global generators for code that draws from them, then restore them."""
    state = np.random.get_state()  # noqa: NPY002 (PyOD's DeepSVDD shuffles with the global generator)
    np.random.seed(seed)  # noqa: NPY002
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


class _SeededDeepSVDD:
    """PyOD's DeepSVDD on the CPU with a fixed seed (it draws from the global torch and numpy generators)."""

    def __init__(self, seed: int, d: int, epochs: int | None):
        self.seed, self.d, self.epochs = seed, d, epochs

    def fit(self, X):
        from pyod.models.deep_svdd import DeepSVDD

        kwargs = {} if self.epochs is None else {"epochs": self.epochs}
        with _isolated_global_rng(self.seed):
            # preprocessing=False: the benchmark's raw / std variants decide the input scaling.
            self.detector = DeepSVDD(
                n_features=self.d, random_state=self.seed, verbose=0, preprocessing=False, **kwargs
            )
            self.detector.fit(X)
        return self

    def decision_function(self, X):
        return self.detector.decision_function(X)


def _pyod_factory(name: str, quick: bool) -> Callable[[int, int], Any]:
    def make(seed: int, d: int):
        from pyod.models.ecod import ECOD
        from pyod.models.iforest import IForest
        from pyod.models.knn import KNN
        from pyod.models.lof import LOF
        from pyod.models.ocsvm import OCSVM
        from pyod.models.pca import PCA

        if name == "KNN":
            return KNN()
        if name == "LOF":
            return LOF()
        if name == "IForest":
            return IForest(random_state=seed)
        if name == "OCSVM":
            return OCSVM()
        if name == "PCA":
            return PCA(random_state=seed)
        if name == "ECOD":
            return ECOD()
        return _SeededDeepSVDD(seed, d, QUICK_DEEPSVDD_EPOCHS if quick else None)

    return make


def _flow_factory(name: str, quick: bool) -> Callable[[int, int], Any]:
    steps = {"train_steps": QUICK_FLOW_STEPS} if quick else {}

    def make(seed: int, d: int):
        if name == "WTFlow-LN":
            return wtflow.WTFlow(wt="layernorm", seed=seed, **steps)
        if name == "WTFlow-BN":
            return wtflow.WTFlow(wt="batchnorm", seed=seed, **steps)
        if name == "RFM":
            return wtflow.RFM(seed=seed, **steps)
        if name == "RFM-W":
            return wtflow.RFM(preprocessing="whiten", seed=seed, **steps)
        if name == "TCCM":
            return wtflow.TCCM(seed=seed, **({"epochs": QUICK_TCCM_EPOCHS} if quick else {}))
        if name == "FlowMismatch":
            return wtflow.FlowMismatch(seed=seed, **steps)
        raise ValueError(f"unknown flow method {name!r}")

    return make


def build_methods(names: list[str] | None = None, quick: bool = False) -> list[MethodSpec]:
    """The method specs for ``names`` (default: all of ``METHODS``), in table order."""
    names = list(METHODS) if not names else list(names)
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
    specs = []
    for name in METHODS:
        if name not in names:
            continue
        if name in REFERENCE_METHODS:
            specs.append(MethodSpec(name, "reference", lambda seed, d: _Mahalanobis(), base=name))
        elif name in PYOD_METHODS:
            make = _pyod_factory(name, quick)
            specs.append(MethodSpec(f"{name} (raw)", "pyod", make, base=name))
            specs.append(MethodSpec(f"{name} (std)", "pyod", make, base=name, standardize=True))
        elif name.endswith("-K20"):
            base = name[: -len("-K20")]
            specs.append(
                MethodSpec(
                    name, "flow", _flow_factory(base, quick), base=name, shares_fit=base, rescore={"ode_steps": 20}
                )
            )
        else:
            specs.append(MethodSpec(name, "flow", _flow_factory(name, quick), base=name))
    return specs


def describe_preprocessing(spec: MethodSpec, detector: Any) -> str:
    """Input preprocessing of a method as stated in the tables, e.g. ``"standardize + LayerNorm WT"``."""
    if spec.family == "pyod":
        return "standardize" if spec.standardize else "raw"
    label = getattr(detector, "preprocessing", "raw")
    if label == "whiten":
        label = "whiten (Ledoit-Wolf)"
    wt = getattr(detector, "wt", None)
    if wt == "layernorm":
        label += " + LayerNorm WT"
    elif wt == "batchnorm":
        label += " + BatchNorm WT"
    return label


def _auroc_auprc(y: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    return float(roc_auc_score(y, scores)), float(average_precision_score(y, scores))


def _mean_radius(detector, X: np.ndarray) -> float:
    if len(X) == 0:
        return float("nan")
    return float(np.linalg.norm(detector.transform(X), axis=1).mean())


def run_benchmark(
    datasets: list[Dataset],
    specs: list[MethodSpec],
    seeds: list[int],
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run every spec on every dataset and seed; returns (rows, extras).

    ``extras`` holds the one-step scoring time of ``SPEED_VECTORS`` vectors (WTFlow-LN if run).
    """
    from tqdm.auto import tqdm

    rows: list[dict[str, Any]] = []
    extras: dict[str, Any] = {}
    bar = tqdm(total=len(datasets) * len(seeds) * len(specs), desc="vectors", unit="fit", disable=not progress)
    speed_detector = None
    speed_X = None
    for ds in datasets:
        for seed in seeds:
            split = one_class_split(ds, seed)
            d = split.X_train.shape[1]
            fitted: dict[str, tuple[Any, float]] = {}
            by_name = {s.name: s for s in specs}

            def fit(spec: MethodSpec, split=split, seed=seed, d=d, fitted=fitted) -> tuple[Any, float]:
                if spec.name in fitted:
                    return fitted[spec.name]
                detector = spec.make(seed, d)
                if spec.standardize:
                    detector = _Standardized(detector)
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    detector.fit(split.X_train)
                fitted[spec.name] = (detector, time.perf_counter() - start)
                return fitted[spec.name]

            for spec in specs:
                bar.set_postfix_str(f"{ds.name} s{seed} {spec.name}")
                if spec.shares_fit is not None:
                    base_spec = by_name.get(spec.shares_fit) or MethodSpec(
                        spec.shares_fit, "flow", spec.make, base=spec.shares_fit
                    )
                    base_detector, fit_s = fit(base_spec)
                    detector = copy.deepcopy(base_detector).set_params(**spec.rescore)
                else:
                    detector, fit_s = fit(spec)
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    scores = np.asarray(detector.decision_function(split.X_test), dtype=np.float64)
                score_s = time.perf_counter() - start
                if not np.isfinite(scores).all():
                    raise FloatingPointError(f"{spec.name} produced non-finite scores on {ds.name}, seed {seed}")
                auroc, auprc = _auroc_auprc(split.y_test, scores)
                row = {
                    "category": ds.name,
                    "seed": seed,
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
                    "sqrt_d": math.sqrt(d),
                }
                if spec.family == "flow" and hasattr(detector, "transform"):
                    row["radius_train"] = _mean_radius(detector, split.X_train)
                    row["radius_test_normal"] = _mean_radius(detector, split.X_test[split.y_test == 0])
                    row["radius_test_anomaly"] = _mean_radius(detector, split.X_test[split.y_test == 1])
                rows.append(row)
                if spec.name == "WTFlow-LN":
                    speed_detector, speed_X = detector, split.X_test
                bar.update(1)
    bar.close()
    if speed_detector is not None:
        extras["one_step_scoring"] = measure_scoring_speed(speed_detector, speed_X)
    return rows, extras


def measure_scoring_speed(detector, X: np.ndarray, n: int = SPEED_VECTORS, repeats: int = 3) -> list[dict[str, Any]]:
    """Wall time of ``decision_function`` on ``n`` vectors (test rows tiled), median of ``repeats`` runs.

    Measured with 1 thread and with all CPUs (torch and BLAS pools), whatever ``--threads`` is.
    """
    big = np.resize(X, (n, X.shape[1]))
    out = []
    for threads in sorted({1, os.cpu_count() or 1}):
        with _limit_threads(threads):
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


@contextlib.contextmanager
def _limit_threads(n: int):
    """torch and the BLAS / OpenMP pools of numpy and scikit-learn to ``n`` threads.

    Oversubscribed pools are slow on a small shared CPU: PyOD's PCA on 190 x 512 vectors took
    1.7 s with 2 OpenBLAS threads on a busy 2-core machine and 0.17 s with 1.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # scikit-learn brings it; without it only torch is limited
        threadpool_limits = None
    try:
        if threadpool_limits is None:
            yield
        else:
            with threadpool_limits(n):
                yield
    finally:
        torch.set_num_threads(previous)


# ---------------------------------------------------------------------- aggregation


def _std(values: list[float]) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def summarize(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, dict[str, float]]]:
    """Per-method summary rows and per-category mean AUROC/AUPRC (over seeds).

    For each method and seed the AUROC is averaged over categories; the summary gives the mean and the
    sample standard deviation of that category mean over seeds. PyOD baselines are marked
    ``baseline=True`` on the better of their raw / standardised variants.
    """
    methods = list(dict.fromkeys(r["method"] for r in rows))
    summary = []
    per_category: dict[str, dict[str, float]] = {}
    for method in methods:
        mrows = [r for r in rows if r["method"] == method]
        seeds = sorted({r["seed"] for r in mrows})
        cats = list(dict.fromkeys(r["category"] for r in mrows))
        per_seed = {
            metric: [float(np.mean([r[metric] for r in mrows if r["seed"] == s])) for s in seeds]
            for metric in ("auroc", "auprc")
        }
        for metric in ("auroc", "auprc"):
            per_category[f"{method}|{metric}"] = {
                c: float(np.mean([r[metric] for r in mrows if r["category"] == c])) for c in cats
            }
        first = mrows[0]
        entry = {
            "method": method,
            "base": first["base"],
            "family": first["family"],
            "preprocessing": first["preprocessing"],
            "auroc_mean": float(np.mean(per_seed["auroc"])),
            "auroc_std": _std(per_seed["auroc"]),
            "auprc_mean": float(np.mean(per_seed["auprc"])),
            "auprc_std": _std(per_seed["auprc"]),
            "fit_s_mean": float(np.mean([r["fit_s"] for r in mrows])),
            "fit_s_total": float(np.sum([r["fit_s"] for r in mrows])),
            "fit_shared_with": first["fit_shared_with"],
            "score_s_mean": float(np.mean([r["score_s"] for r in mrows])),
            "n_runs": len(mrows),
        }
        for key in ("radius_train", "radius_test_normal", "radius_test_anomaly", "sqrt_d"):
            if key in first:
                entry[key] = float(np.mean([r[key] for r in mrows]))
        summary.append(entry)
    for base in {e["base"] for e in summary if e["family"] == "pyod"}:
        variants = [e for e in summary if e["base"] == base]
        best = max(variants, key=lambda e: e["auroc_mean"])
        for e in variants:
            e["baseline"] = e is best
    return summary, per_category


# ---------------------------------------------------------------------- reporting


def _fmt(mean: float, std: float) -> str:
    return f"{mean:.3f} ± {std:.3f}"


def _radius_cell(e: dict[str, Any]) -> str:
    if "radius_train" not in e:
        return "–"
    return (
        f"{e['radius_train']:.2f} / {e['radius_test_normal']:.2f} / {e['radius_test_anomaly']:.2f}"
        f" (√d = {e['sqrt_d']:.1f})"
    )


def claims(summary: list[dict[str, Any]], extras: dict[str, Any]) -> list[str]:
    """Sentences checking the paper's claims and the issue's targets on this run's numbers."""
    by = {e["method"]: e for e in summary}
    out = []

    def auc(m):
        return by[m]["auroc_mean"]

    def compare(a, b, claim):
        if a in by and b in by:
            holds = auc(a) < auc(b)
            out.append(
                f"- {claim}: {a} {auc(a):.4f} vs {b} {auc(b):.4f} -> "
                f"{'holds' if holds else 'does not hold'} on this data."
            )

    compare("RFM", "WTFlow-LN", "rFM < WT-Flow (Table I), one-step")
    compare("RFM-K20", "WTFlow-LN-K20", "rFM < WT-Flow (Table I), 20 steps")
    compare("WTFlow-BN", "WTFlow-LN", "BatchNorm < LayerNorm WT map (Table IV), one-step")
    compare("WTFlow-BN-K20", "WTFlow-LN-K20", "BatchNorm < LayerNorm WT map (Table IV), 20 steps")
    for base in ("WTFlow-LN", "WTFlow-BN", "RFM"):
        if base in by and f"{base}-K20" in by:
            one, many = auc(base), auc(f"{base}-K20")
            verdict = "one-step is better" if one > many else "20 steps are better" if many > one else "equal"
            out.append(
                f"- one-step vs 20-step (Table VII, image-level here), {base}: "
                f"K=1 {one:.4f}, K=20 {many:.4f} -> {verdict}."
            )
    if "RFM-W" in by and "Mahalanobis" in by:
        gain = auc("RFM-W") - auc("Mahalanobis")
        out.append(
            f"- what the flow adds to its whitening: RFM-W {auc('RFM-W'):.4f} vs Mahalanobis (Ledoit-Wolf) "
            f"{auc('Mahalanobis'):.4f}, difference {gain:+.4f}."
        )
    flows = [e for e in summary if e["family"] == "flow" and e["method"] != "TCCM"]
    baselines = [e for e in summary if e.get("baseline")]
    if flows:
        best_flow = max(flows, key=lambda e: e["auroc_mean"])
        line = f"- best flow detector: {best_flow['method']} {best_flow['auroc_mean']:.3f} (target >= 0.82: "
        line += "met" if best_flow["auroc_mean"] >= 0.82 else "not met"
        if baselines:
            best_base = max(baselines, key=lambda e: e["auroc_mean"])
            verdict = "above" if best_flow["auroc_mean"] > best_base["auroc_mean"] else "not above"
            line += f"; {verdict} the best PyOD baseline {best_base['method']} {best_base['auroc_mean']:.3f}"
        if "TCCM" in by:
            verdict = "above" if best_flow["auroc_mean"] > auc("TCCM") else "not above"
            line += f"; {verdict} TCCM {auc('TCCM'):.3f}"
        out.append(line + ").")
    for method in ("WTFlow-LN", "RFM-W"):
        if method in by and "TCCM" in by:
            ratio = by[method]["fit_s_total"] / max(by["TCCM"]["fit_s_total"], 1e-12)
            out.append(
                f"- fit time: {method} {by[method]['fit_s_total']:.1f} s vs TCCM {by['TCCM']['fit_s_total']:.1f} s "
                f"in total over the run, ratio {ratio:.2f} (target <= 2)."
            )
    for speed in extras.get("one_step_scoring", []):
        out.append(
            f"- one-step scoring of {speed['n_vectors']} vectors with WTFlow-LN (d = {speed['dim']}, "
            f"{speed['threads']} thread(s)): {speed['median_s']:.3f} s (median of 3; target < 1 s)."
        )
    return out


def markdown_report(
    rows: list[dict[str, Any]],
    summary: list[dict[str, Any]],
    per_category: dict[str, dict[str, float]],
    meta: dict[str, Any],
    extras: dict[str, Any],
) -> str:
    """The ``summary.md`` text: headline table, per-category AUROC, claims, command and versions."""
    lines = [f"# Vector benchmark: {meta['data_name']}", ""]
    lines += [
        f"One-class protocol: {meta['train_fraction']:.0%} of the normals train, the rest plus all anomalies test; "
        f"seeds {', '.join(map(str, meta['seeds']))}; {len(meta['categories'])} categories; default settings, "
        "no per-category tuning. AUROC / AUPRC: mean over categories per seed, then mean ± sample std over seeds. "
        "Radius: mean ||phi|| of training normals / test normals / test anomalies. Fit / score: seconds per fit "
        "(K=20 rows reuse the K=1 model: their fit is the shared one). PyOD rows marked * are the better of "
        "raw / standardised and count as the baseline.",
        "",
        "| method | preprocessing | AUROC | AUPRC | fit s | score s | radius train / test normal / test anomaly |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in summary:
        name = e["method"] + (" *" if e.get("baseline") else "")
        shared = f" (= {e['fit_shared_with']})" if e["fit_shared_with"] else ""
        lines.append(
            f"| {name} | {e['preprocessing']} | {_fmt(e['auroc_mean'], e['auroc_std'])} | "
            f"{_fmt(e['auprc_mean'], e['auprc_std'])} | {e['fit_s_mean']:.2f}{shared} | {e['score_s_mean']:.3f} | "
            f"{_radius_cell(e)} |"
        )
    lines += ["", "## Checks against the paper and the targets", ""]
    lines += claims(summary, extras)
    cats = meta["categories"]
    for metric in ("auroc", "auprc"):
        lines += ["", f"## Per-category {metric.upper()} (mean over seeds)", ""]
        lines.append("| method | " + " | ".join(cats) + " | mean |")
        lines.append("|---" * (len(cats) + 2) + "|")
        for e in summary:
            vals = per_category[f"{e['method']}|{metric}"]
            cells = " | ".join(f"{vals[c]:.3f}" for c in cats)
            lines.append(f"| {e['method']} | {cells} | {np.mean([vals[c] for c in cats]):.3f} |")
    lines += [
        "",
        "## Reproduce",
        "",
        "```",
        meta["command"],
        "```",
        "",
        f"Data: `{meta['data']}`. Seeds: {meta['seeds']}. Torch threads: {meta['threads']}. "
        f"Wall time of the run: {meta['wall_s']:.0f} s. Git: {meta['git']}.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + ".",
        "",
        f"Machine: {meta['machine']}.",
        "",
    ]
    return "\n".join(lines)


def _csv_text(rows: list[dict[str, Any]]) -> str:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()


def write_heatmap(path: Path, summary: list[dict[str, Any]], per_category: dict[str, dict[str, float]], cats) -> bool:
    """Per-category AUROC heatmap (methods x categories); returns False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    methods = [e["method"] for e in summary]
    grid = np.array([[per_category[f"{m}|auroc"][c] for c in cats] for m in methods])
    fig, ax = plt.subplots(figsize=(1.0 + 0.65 * len(cats), 1.0 + 0.38 * len(methods)))
    im = ax.imshow(grid, cmap="viridis", vmin=max(0.0, float(grid.min())), vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(cats)), cats, rotation=45, ha="right")
    ax.set_yticks(range(len(methods)), methods)
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=6, color="w")
    fig.colorbar(im, ax=ax, label="AUROC (mean over seeds)")
    ax.set_title("Per-category AUROC")
    fig.tight_layout()

    def write(tmp):
        fig.savefig(tmp, dpi=120, format="png")

    write_atomic(path, write)
    plt.close(fig)
    return True


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version(), "wtflow": wtflow.__version__}
    for pkg in ("torch", "numpy", "scikit-learn", "pyod", "scipy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _git_state() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "wtflow", "benchmarks/vectors.py", "benchmarks/data.py"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    changed = [line[3:] for line in dirty if line.strip()]
    if changed:
        return f"{commit} with uncommitted changes in {', '.join(changed)}"
    return f"{commit} (wtflow/ and the benchmark code as committed)"


def write_results(out: Path, rows, summary, per_category, meta, extras) -> list[Path]:
    """Write all result files atomically into ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in (
        ("results.csv", _csv_text(rows)),
        ("summary.csv", _csv_text(summary)),
        (
            "per_category.csv",
            _csv_text(
                [
                    {"method": e["method"], "metric": metric, **per_category[f"{e['method']}|{metric}"]}
                    for e in summary
                    for metric in ("auroc", "auprc")
                ]
            ),
        ),
        ("summary.md", markdown_report(rows, summary, per_category, meta, extras)),
        ("run.json", json.dumps({**meta, "extras": extras, "summary": summary}, indent=2, sort_keys=True) + "\n"),
    ):
        write_text_atomic(out / name, text)
        written.append(out / name)
    if write_heatmap(out / "heatmap.png", summary, per_category, meta["categories"]):
        written.append(out / "heatmap.png")
    return written


# ---------------------------------------------------------------------- command line


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.vectors", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data",
        default=None,
        help=f"ADBench .npz folder or 'digits' (default: $WTFLOW_DATA, then ../shared/data/{DEFAULT_DATA_NAME})",
    )
    parser.add_argument("--methods", nargs="+", default=None, help=f"subset of: {' '.join(METHODS)}")
    parser.add_argument("--categories", nargs="+", default=None, help="category names (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="split / model seeds (default: 0 1 2)")
    parser.add_argument("--quick", action="store_true", help="3 categories, seed 0, small budgets (smoke run)")
    parser.add_argument("--out", default=None, help="output folder (default: benchmarks/results/vectors/<data>)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: small MLPs on a few hundred vectors gain nothing from more)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def load_datasets(spec: str | None, categories: list[str] | None) -> tuple[list[Dataset], str, str]:
    """(datasets, data name, data location) for ``--data`` / ``--categories``."""
    where = resolve_data(spec)
    if where == "digits":
        return digits_datasets(categories), "digits", "sklearn.datasets.load_digits"
    return load_folder(where, categories), Path(where).name, str(where)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads < 1:
        print(f"error: --threads must be >= 1, got {args.threads}", file=sys.stderr)
        return 2
    try:
        datasets, data_name, data_where = load_datasets(args.data, args.categories)
        specs = build_methods(args.methods, quick=args.quick)
    except (DataError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.quick and not args.categories:
        datasets = datasets[:QUICK_CATEGORIES]
    seeds = args.seeds if args.seeds is not None else ([0] if args.quick else list(DEFAULT_SEEDS))
    out = (
        Path(args.out)
        if args.out
        else Path(__file__).resolve().parent / "results" / "vectors" / (data_name + ("-quick" if args.quick else ""))
    )
    print(
        f"{len(datasets)} categories x {len(seeds)} seed(s) x {len(specs)} runs per split; "
        f"data {data_where}; out {out}",
        flush=True,
    )
    git = _git_state()  # before the run: the code that produced the numbers
    start = time.perf_counter()
    with _limit_threads(args.threads):
        rows, extras = run_benchmark(datasets, specs, seeds, progress=not args.no_progress)
    wall = time.perf_counter() - start
    summary, per_category = summarize(rows)
    meta = {
        "command": " ".join(
            ["python", "-m", "benchmarks.vectors", *(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))]
        ),
        "data": data_where,
        "data_name": data_name,
        "categories": [d.name for d in datasets],
        "seeds": seeds,
        "quick": args.quick,
        "train_fraction": 0.7,
        "threads": args.threads,
        "wall_s": wall,
        "versions": _versions(),
        "git": git,
        "machine": f"{platform.platform()}, {os.cpu_count()} CPU(s)",
    }
    written = write_results(out, rows, summary, per_category, meta, extras)
    print(f"wall time {wall:.1f} s")
    for line in claims(summary, extras):
        print(line)
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
