"""Shared utilities of the toolkit's scripts (toys, paper figures, benchmarks): atomic IO, tidy tables and CSV,
run provenance, the figure style, thread limits, progress bars and metrics.

Each module has one job; matplotlib, scikit-learn and tqdm are imported only when a function needs them.
"""

from .io import ensure_writable_dir, jsonable, write_atomic, write_json, write_text_atomic
from .metrics import auroc, separation_auroc
from .progress import progress_bar, progress_enabled
from .provenance import config_hash, derive_seed, git_state, package_versions, tensor_digest
from .style import OKABE_ITO, epoch_colors, figure_style, log_ticks, save_figure
from .tables import (
    Table,
    concat_tables,
    format_value,
    make_table,
    n_rows,
    select,
    table_to_csv,
    unique,
    write_csv,
)
from .threads import limit_threads, torch_threads

__all__ = [
    "OKABE_ITO",
    "Table",
    "auroc",
    "concat_tables",
    "config_hash",
    "derive_seed",
    "ensure_writable_dir",
    "epoch_colors",
    "figure_style",
    "format_value",
    "git_state",
    "jsonable",
    "limit_threads",
    "log_ticks",
    "make_table",
    "n_rows",
    "package_versions",
    "progress_bar",
    "progress_enabled",
    "save_figure",
    "select",
    "separation_auroc",
    "table_to_csv",
    "tensor_digest",
    "torch_threads",
    "unique",
    "write_atomic",
    "write_csv",
    "write_json",
    "write_text_atomic",
]
