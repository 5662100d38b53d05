"""``python -m paper_figs [--quick] [--out DIR] [--rerun-bench] [--only NAME ...] [--jobs N] [--seed S] [--list]``

Regenerates every figure and table the toolkit reproduces (PNG + PDF + CSV, Markdown tables) and MANIFEST.md.
Exit status 0 if every entry was built (or is "not available", e.g. uncommitted benchmark results), 1 if any
failed, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

from wtflow.utils import ensure_writable_dir

from . import DEFAULT_OUT, REGISTRY, build, spec_by_name
from ._core import STATUS_FAILED, STATUS_OK


def _default_jobs() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m paper_figs",
        description="Regenerate the WT-Flow paper's figures and tables reproduced by this toolkit.",
    )
    parser.add_argument("--quick", action="store_true", help="reduced sizes (< 2 minutes on 2 cores)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="output folder (default: paper_figs/out)")
    parser.add_argument(
        "--rerun-bench",
        action="store_true",
        help="re-run the vector benchmark (into OUT/vectors_run) instead of rendering its committed results",
    )
    parser.add_argument("--only", nargs="+", metavar="NAME", help="build only these entries (see --list)")
    parser.add_argument(
        "--jobs",
        type=int,
        default=_default_jobs(),
        help="worker processes for independent figure groups (default: min(2, CPUs); 1 = in this process)",
    )
    parser.add_argument("--seed", type=int, default=0, help="base seed of every simulation (default 0)")
    parser.add_argument("--list", action="store_true", help="list the entries and exit")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    if args.only:
        for name in args.only:
            try:
                spec_by_name(name)
            except ValueError as err:
                parser.error(str(err))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for spec in REGISTRY:
            print(f"{spec.name:18} {spec.paper}: {spec.title}")
        return 0
    n = len(args.only) if args.only else len(REGISTRY)
    command = "python -m paper_figs " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    print(
        f"[paper_figs] {n} entries at {'quick' if args.quick else 'full'} scale into {args.out} "
        f"({args.jobs} worker process(es))",
        flush=True,
    )
    start = time.perf_counter()
    try:
        ensure_writable_dir(args.out, "--out")
    except OSError as err:
        print(f"python -m paper_figs: error: {err}", file=sys.stderr)
        return 2
    reports = build(args.only, args.out, args.quick, args.seed, args.rerun_bench, args.jobs, command.strip())
    wall = time.perf_counter() - start
    print(f"\n[paper_figs] done in {wall:.1f} s; manifest: {Path(args.out) / 'MANIFEST.md'}")
    width = max(len(r.name) for r in reports)
    for r in reports:
        detail = r.verdict if r.status == STATUS_OK else (r.error.splitlines()[0] if r.error else "; ".join(r.notes))
        print(f"  {r.name:{width}}  {r.status:13}  {r.seconds:7.1f} s  {detail}")
    failed = [r.name for r in reports if r.status == STATUS_FAILED]
    if failed:
        print(f"[paper_figs] FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
