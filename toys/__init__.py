"""Toy simulators: the paper's phenomena reproduced at small scale, learned fields beside exact ones.

Each module ``toys.<name>`` has a config dataclass (full scale by default, ``.quick()`` for seconds), a
``simulate(config=None, *, quick=False, seed=None, progress=None, use_cache=True) -> ToyResult`` returning tidy
tables with the full configuration, a ``plot(result) -> {figure name: matplotlib Figure}`` and a command line
``python -m toys.<name> [--quick] [--seed S] [--out DIR]`` writing PNG + PDF + CSV + JSON.

* ``ring`` (Fig. 1): inward first move and trapping vs distance from the source centre;
* ``mixture`` (Fig. 5, eq. 12-13): CPF strength |u(x, 0+)| vs the confinement radius d;
* ``supports`` (Fig. 8, Suppl. XI-C): AUROC vs epochs for disjoint / intersecting / overlapping anomalies;
* ``radial`` (Fig. 4F, Tables XII-XIV, Observations 1-2): mean ||x_t|| per Euler step, endpoint vs sqrt(D);
* ``singularity`` (Theorems 1-2): field error near t = 0 vs D and the truncation T.

In every toy "exact" comes twice: the exact field of the population source and the exact field of the n-point
training set (``theory.exact_field``), integrated with the same solvers as the learned field. Trained models are
cached by a hash of their configuration in ``$WTFLOW_CACHE`` (default ``toys/_cache``).
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path
from types import ModuleType

from wtflow.utils import ensure_writable_dir, save_figure

from ._cache import CACHE_ENV, CacheRebuildWarning, cache_dir
from ._result import ToyResult
from ._solvers import Solver

__all__ = ["CACHE_ENV", "SIMULATORS", "CacheRebuildWarning", "Solver", "ToyResult", "cache_dir", "load", "run_all"]

SIMULATORS = ("ring", "mixture", "supports", "radial", "singularity")


def load(name: str) -> ModuleType:
    """The simulator module ``toys.<name>`` (imported on first use)."""
    if name not in SIMULATORS:
        raise ValueError(f"unknown toy simulator {name!r}; expected one of {', '.join(map(repr, SIMULATORS))}")
    return importlib.import_module(f"{__name__}.{name}")


def run_all(
    names=SIMULATORS,
    quick: bool = False,
    seed: int = 0,
    out: str | Path | None = None,
    progress: bool | None = None,
) -> dict[str, tuple[ToyResult, dict]]:
    """Simulate and plot several toys; with ``out``, write their PNG + PDF + CSV + JSON there.

    Returns:
        name -> (result, {figure name: Figure}); each result's ``info["wall_seconds"]`` holds the time of its
        simulation and plotting.
    """
    import matplotlib.pyplot as plt

    if out is not None:
        ensure_writable_dir(out)
    results = {}
    for name in names:
        module = load(name)
        start = time.perf_counter()
        result = module.simulate(quick=quick, seed=seed, progress=progress)
        figs = module.plot(result)
        result.info["wall_seconds"] = time.perf_counter() - start
        if out is not None:  # written as soon as each toy is done: a later failure keeps the earlier toys
            result.write(out)
            for fig_name, fig in figs.items():
                save_figure(fig, out, fig_name)
                plt.close(fig)
        results[name] = (result, figs)
    return results
