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

A run appends every finished (category, seed, method) row to ``cells.jsonl`` in ``--out`` (checked
writable before any compute); an interrupted run is resumed by the same command, which skips the
finished cells. This project's own targets ("target >= 0.82") are stated only for the shared MVTec AD
ResNet-18 embeddings.

Modules: ``methods`` (the method registry), ``protocol`` (fit, score, journal), ``report`` (tables,
claims, heatmap), ``cli`` (this command), ``features_notebook`` (helpers of notebook 07).
"""

from .cli import load_datasets, main, parse_args
from .methods import (
    DEFAULT_SEEDS,
    FLOW_METHODS,
    METHODS,
    PYOD_METHODS,
    REFERENCE_METHODS,
    Mahalanobis,
    MethodSpec,
    Standardized,
    build_methods,
    describe_preprocessing,
    flow_factory,
    pyod_factory,
)
from .protocol import Journal, check_writable, limit_threads, measure_scoring_speed, run_benchmark
from .report import claims, markdown_report, summarize, write_heatmap, write_results

__all__ = [
    "DEFAULT_SEEDS",
    "FLOW_METHODS",
    "METHODS",
    "PYOD_METHODS",
    "REFERENCE_METHODS",
    "Journal",
    "Mahalanobis",
    "MethodSpec",
    "Standardized",
    "build_methods",
    "check_writable",
    "claims",
    "describe_preprocessing",
    "flow_factory",
    "limit_threads",
    "load_datasets",
    "main",
    "markdown_report",
    "measure_scoring_speed",
    "parse_args",
    "pyod_factory",
    "run_benchmark",
    "summarize",
    "write_heatmap",
    "write_results",
]
