"""The command line of every toy: ``python -m toys.<name> [--quick] [--seed S] [--out DIR] [--no-progress]``."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from wtflow.utils import ensure_writable_dir, format_value, save_figure

from ._result import ToyResult

__all__ = ["run_cli", "summary_lines"]


def run_cli(
    name: str,
    simulate: Callable[..., ToyResult],
    plot: Callable[[ToyResult], dict[str, Any]],
    argv: Sequence[str] | None = None,
    description: str = "",
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> ToyResult:
    """Simulate, then write the tables (CSV + JSON) and each figure (PNG + PDF) as soon as it exists.

    The output folder is created and tested for writing before any compute; trained models are in the cache, so
    a run killed while plotting keeps its tables and loses no training.
    """
    default_out = f"runs/toys/{name}"
    parser = argparse.ArgumentParser(prog=f"python -m toys.{name}", description=description)
    parser.add_argument("--quick", action="store_true", help="reduced size (seconds instead of minutes)")
    parser.add_argument("--seed", type=int, default=0, help="base seed of every random choice (default 0)")
    parser.add_argument("--out", default=default_out, help=f"output directory (default {default_out})")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        out = ensure_writable_dir(args.out, "--out")
    except OSError as err:
        parser.error(str(err))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    extra = {k: v for k, v in vars(args).items() if k not in ("quick", "seed", "out", "no_progress")}
    start = time.perf_counter()
    result = simulate(quick=args.quick, seed=args.seed, progress=False if args.no_progress else None, **extra)
    written = result.write(out)
    for fig_name, fig in plot(result).items():
        written += save_figure(fig, out, fig_name)
        plt.close(fig)
    print(f"toys.{name}: {len(written)} files in {args.out} ({time.perf_counter() - start:.1f} s)")
    for line in summary_lines(result):
        print("  " + line)
    return result


def _short(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return f"{float(value):.4g}"
    return format_value(value)


def summary_lines(result: ToyResult) -> list[str]:
    """The ``summary`` table (if any) as aligned text lines."""
    table = result.tables.get("summary")
    if not table:
        return []
    header = list(table)
    rows = [[_short(v) for v in row] for row in zip(*table.values())]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return lines
