"""Compatibility module: ``paper_figs.theory_figs.prop2_figure`` still imports its style from here.

Everything that lived here moved: generic helpers to ``wtflow.utils``, the toys' own parts to ``toys._cache``,
``toys._solvers``, ``toys._planar``, ``toys._result`` and ``toys._cli``. Remove this file once that import reads
``from wtflow.utils import OKABE_ITO, figure_style``.
"""

from wtflow.utils import OKABE_ITO, figure_style

__all__ = ["OKABE_ITO", "figure_style"]
