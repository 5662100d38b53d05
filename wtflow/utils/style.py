"""The figure style of the toolkit: Okabe-Ito colours, small fonts, a light grid, atomic PNG + PDF output.

matplotlib is imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path

from .io import write_atomic

__all__ = ["OKABE_ITO", "STYLE", "epoch_colors", "figure_style", "log_ticks", "save_figure"]

# Okabe & Ito (2008), safe for the common colour-vision deficiencies.
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
}

STYLE = {
    "figure.dpi": 110,
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 7.5,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.2,
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
}


@contextlib.contextmanager
def figure_style():
    """The toolkit's matplotlib style (Okabe-Ito colour cycle, small fonts, light grid); Agg-safe."""
    import matplotlib
    import matplotlib.pyplot as plt

    cycle = matplotlib.cycler(color=[OKABE_ITO[k] for k in ("blue", "vermillion", "green", "orange", "purple", "sky")])
    with plt.rc_context({**STYLE, "axes.prop_cycle": cycle}):
        yield


def epoch_colors(n: int) -> list:
    """``n`` colours from the colour-blind-safe sequential map cividis (early -> late)."""
    import matplotlib

    cmap = matplotlib.colormaps["cividis"]
    return [cmap(0.1 + 0.8 * i / max(1, n - 1)) for i in range(n)]


def log_ticks(ax, values: Sequence[float], axis: str = "x") -> None:
    """Log-scale ``axis`` with ticks at ``values`` labelled in plain numbers (no 3 x 10^0 labels)."""
    import matplotlib.ticker as mticker

    values = sorted({float(v) for v in values})
    set_scale = ax.set_xscale if axis == "x" else ax.set_yscale
    target = ax.xaxis if axis == "x" else ax.yaxis
    set_scale("log")
    target.set_major_locator(mticker.FixedLocator(values))
    target.set_major_formatter(mticker.FixedFormatter([f"{v:g}" for v in values]))
    target.set_minor_locator(mticker.NullLocator())


def save_figure(fig, out_dir: str | os.PathLike, name: str) -> list[Path]:
    """Write ``fig`` as ``name.png`` and ``name.pdf`` in ``out_dir`` atomically; returns both paths."""
    out = Path(out_dir)
    paths = []
    for ext in ("png", "pdf"):
        paths.append(write_atomic(out / f"{name}.{ext}", lambda tmp, ext=ext: fig.savefig(tmp, format=ext)))
    return paths
