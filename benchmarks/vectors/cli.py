"""Command line of the vector benchmark: ``python -m benchmarks.vectors`` (see the package docstring)."""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from pathlib import Path

from ..data import DEFAULT_DATA_NAME, DataError, Dataset, digits_datasets, load_folder, resolve_data
from .methods import DEFAULT_SEEDS, METHODS, QUICK_CATEGORIES, build_methods
from .protocol import JOURNAL_NAME, Journal, check_writable, limit_threads, run_benchmark
from .report import claims, git_state, project_targets, summarize, versions, write_results

__all__ = ["DESCRIPTION", "load_datasets", "main", "parse_args"]

DESCRIPTION = "Flow-matching detectors against classic PyOD detectors on vector data (one-class protocol)."


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.vectors", description=DESCRIPTION)
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
    default_out = Path(__file__).resolve().parents[1] / "results" / "vectors"
    out = Path(args.out) if args.out else default_out / (data_name + ("-quick" if args.quick else ""))
    try:
        check_writable(out)
        journal = Journal(out / JOURNAL_NAME, {"data": data_where, "quick": args.quick})
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(
        f"{len(datasets)} categories x {len(seeds)} seed(s) x {len(specs)} runs per split; "
        f"data {data_where}; out {out}",
        flush=True,
    )
    git = git_state()  # before the run: the code that produced the numbers
    start = time.perf_counter()
    with limit_threads(args.threads):
        rows, extras = run_benchmark(datasets, specs, seeds, progress=not args.no_progress, journal=journal)
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
        "versions": versions(),
        "git": git,
        "machine": f"{platform.platform()}, {os.cpu_count()} CPU(s)",
    }
    written = write_results(out, rows, summary, per_category, meta, extras)
    journal.remove()
    print(f"wall time {wall:.1f} s")
    for line in claims(summary, extras, project_targets(data_name)):
        print(line)
    print("wrote " + ", ".join(str(p) for p in written))
    return 0
