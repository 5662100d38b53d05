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
# # 5. Anomaly separation in the toys
#
# WT-Flow scores a sample by where its flow ends: with $\phi_\theta(x)$ the endpoint at $t = 1$ (per coordinate), the
# density proxy is $\mathcal{A}(x) = 1 - \frac{1}{\sqrt{2\pi}}\exp(-\frac{1}{2}\phi_\theta^2(x))$ (eq. 2), high where
# the endpoint lands in the Gaussian's tail. Normal data are held back by the centripetal field (notebook 2), so their
# endpoints stay near the mode; anomalies far from the training manifold are not.
#
# Suppl. XI-C sorts anomalies by their support relative to the normals: **disjoint** (detectable), **intersecting**
# (Fig. 8: "WT-Flow lacks the capacity to enforce constraints") and **overlapping** (not detectable without an explicit
# definition of outliers). `toys.supports` trains on $N(0, I)$ normals and scores the three kinds across training
# epochs; `toys.radial` adds off-manifold anomalies in high dimension, scored after one Euler step ($K = 1$) and after
# many (Table VII compares step counts on MVTec).

# %%
# %matplotlib inline

# %% tags=["parameters"]
import os

QUICK = bool(os.environ.get("CI")) or os.environ.get("WTFLOW_QUICK") == "1"
SEED = 0

# %%
# theory/, toys/ and paper_figs/ are the repository's research code, not installed packages, and the kernel starts in
# notebooks/: put the repository root on the import path.
import sys
from pathlib import Path

sys.path.insert(0, str(next(p for p in (Path.cwd(), *Path.cwd().parents) if (p / "toys").is_dir())))

# %% [markdown]
# ## Fig. 8 and its companions: disjoint, intersecting and overlapping supports

# %%
from toys import supports

result = supports.simulate(quick=QUICK, seed=SEED)
figs = supports.plot(result)

# %% [markdown]
# AUROC of the density proxy (eq. 2) and of $\|\phi\|$ per case, field and epoch (Euler $K = 20$). An AUROC below 0.5
# means the anomalies look *more* normal than the normals: overlapping anomalies sit at the mode, where eq. 2 is
# smallest.

# %%
import pandas as pd

auroc = pd.DataFrame(result.table("auroc"))
euler20 = auroc[auroc.solver == "euler20"]
euler20.pivot_table(index=["case", "score"], columns=["field", "epoch"], values="auroc").round(3)

# %% [markdown]
# ## Off-manifold anomalies in high dimension: one step or many?

# %%
from toys import radial

radial_result = radial.simulate(quick=QUICK, seed=SEED)
radial_auroc = pd.DataFrame(radial_result.table("auroc"))
radial_auroc.pivot_table(index=["wt", "D", "field"], columns=["solver", "score"], values="auroc").round(3)

# %% [markdown]
# ## What to take away
#
# - Anomalies whose support is disjoint from the normals are detected; intersecting and overlapping ones are not
#   (Suppl. XI-C): a flow trained on normals has no reason to treat points inside their support as anomalous.
# - An AUROC below 0.5 is informative: overlapping anomalies sit at the mode, where the density proxy of eq. 2 is
#   smallest.
# - In high dimension one Euler step ($K = 1$) can separate off-manifold anomalies as well as, or better than, many
#   steps, because it reads the learned contraction at $t = 0$ (notebook 7 shows the same on real features).
#
# ## Exercises
#
# 1. Before running: for anomalies drawn from a wider Gaussian around the normals, which score ($\|\phi\|$ or eq. 2)
#    do you expect to work better, and at which epochs?
# 2. In the radial table, find a setting where more Euler steps help; explain it with notebook 4's radius curves.
# 3. Write down why no detector trained on normals only can flag "overlapping" anomalies without a definition of
#    what an outlier is.
