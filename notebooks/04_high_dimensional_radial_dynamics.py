# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 4. High-dimensional radial dynamics
#
# A $D$-dimensional standard Gaussian concentrates on a thin shell of radius $\sqrt{D}$ (**Lemma 1**, the Gaussian
# annulus). CNN features, by contrast, are sparse, non-negative and live near a low-dimensional manifold well inside
# that shell. The paper tracks $\|x_t\|$ along the Euler steps of the learned flow on MVTec AD (Fig. 4F, Suppl. Tables
# XII-XIV) and reports two observations: rFM fails to carry the data onto the annulus, $\|x_1\| < \sqrt{D}$
# (**Observation 1**), and $\|x_t\|$ first contracts, then expands (**Observation 2**, the centripetal field of
# notebook 2 at work). WT-Flow (LN) starts on the annulus (Lemma 5); WT-Flow (BN) starts inside it (Lemma 6).
#
# `toys.radial` builds such features synthetically - a $k$-dimensional Gaussian through a random linear map and a
# ReLU, embedded in $D$ dimensions - and records the same table for rFM, WT(BN) and WT(LN), beside the paper's numbers.
# theory/ERRATA.md corrects the constant of Lemma 1 and the feature radius of Suppl. eq. 48 (cells below).

# %%
# %matplotlib inline

# %% tags=["parameters"]
import os

QUICK = bool(os.environ.get("CI")) or os.environ.get("WTFLOW_QUICK") == "1"
SIZE = "quick" if QUICK else "full"
SEED = 0

# %%
# theory/, toys/ and paper_figs/ are the repository's research code, not installed packages, and the kernel starts in
# notebooks/: put the repository root on the import path.
import sys
from pathlib import Path

sys.path.insert(0, str(next(p for p in (Path.cwd(), *Path.cwd().parents) if (p / "toys").is_dir())))

# %%
from IPython.display import Markdown

from paper_figs.theory_figs import claims_markdown

Markdown(claims_markdown(["lemma1", "obs1", "obs2"] + ([] if QUICK else ["wrn50_radius"]), SIZE))

# %% [markdown]
# ## Mean $\|x_t\|$ per Euler step (Fig. 4F analogue)
#
# Solid: held-out normals; dashed: off-manifold anomalies rescaled to normal norms; dotted: training points; green:
# the exact field of the $n$ (WT-mapped) training points.

# %%
from toys import radial

result = radial.simulate(quick=QUICK, seed=SEED)
figs = radial.plot(result)

# %% [markdown]
# ## Against the paper's Tables XII-XIV
#
# The paper's curves are normalised by their radius (512, or 256 for Transistor), ours by $\sqrt{D}$.

# %%
from paper_figs.toy_figs import radial_markdown, radial_tables, radial_vs_paper_figure

fig = radial_vs_paper_figure(result)

# %%
Markdown(radial_markdown(radial_tables(result)))

# %% [markdown]
# ## What to take away
#
# - A $D$-dimensional Gaussian lives near radius $\sqrt{D}$ (Lemma 1); sparse CNN-like features live far inside it.
# - Along rFM's Euler steps the mean radius first contracts, then expands (Observation 2, the centripetal field),
#   and rFM ends short of $\sqrt{D}$ (Observation 1). WT(LN) starts on the annulus, WT(BN) inside it.
# - Off-manifold anomalies of the same norm follow other radius curves: the radius of the endpoint is a usable score,
#   which notebooks 5 and 7 turn into AUROC.
#
# ## Exercises
#
# 1. Change `latent_dim` of `radial.RadialConfig` and predict whether the contraction phase gets deeper or shallower.
# 2. Compare the dashed (anomaly) and solid (normal) curves: at which step are they furthest apart, and what does that
#    suggest about the number of Euler steps $K$ for detection?
# 3. Compute $\mathbb{E}\|z\|$ for $z \sim N(0, I_D)$ exactly (a ratio of Gamma functions) and compare with $\sqrt{D}$
#    for $D = 64$ and $1024$.
