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
# # 7. The detectors on real feature vectors
#
# The earlier notebooks study rFM and WT-Flow on toys. Here the detectors meet real data: 512-d ResNet-18 embeddings
# of MVTec AD images (one vector per image, the data of `python -m benchmarks.vectors`). A detector is trained on
# normal images only (Algorithm 1: $x_0 = \mathrm{WT}(x)$, the loss of eq. 4), pushes a test vector along the learned
# flow for $K$ Euler steps, and scores it by where it lands: $\|\phi(x)\|$ or the density proxy of eq. 2.
#
# The detectors follow scikit-learn and PyOD: `fit(X)`, `decision_function(X)` (higher = more anomalous),
# `predict(X)` (0/1 at `threshold_`), `score_samples(X)` (scikit-learn's sign), and they sit at the end of a
# `Pipeline`. The helpers of this notebook live in `benchmarks.vectors.features_notebook`.
#
# Without the shared embeddings on your machine, the notebook uses scikit-learn's digits instead (it says so) — the
# steps are the same. Put the ADBench files in a folder and set `WTFLOW_DATA` to use MVTec AD.

# %%
# %matplotlib inline

# %% tags=["parameters"]
import os

QUICK = bool(os.environ.get("CI")) or os.environ.get("WTFLOW_QUICK") == "1"
SEED = 0
CATEGORY = "bottle"

# %%
# benchmarks/ is the repository's research code, not an installed package, and the kernel starts in notebooks/:
# put the repository root on the import path.
import sys
from pathlib import Path

sys.path.insert(0, str(next(p for p in (Path.cwd(), *Path.cwd().parents) if (p / "benchmarks").is_dir())))

# %% [markdown]
# ## The data: one category, one-class split
#
# 70 % of the normal images train; the other normals and all anomalous images test (`benchmarks.data.one_class_split`).

# %%
from benchmarks.vectors import features_notebook as fn

example = fn.load_example(CATEGORY, seed=SEED)
print(example.source)
print(
    "train",
    example.split.X_train.shape,
    "test normals",
    example.normal.shape,
    "test anomalies",
    example.anomalous.shape,
)

# %% [markdown]
# ## Fit three detectors and score the test set
#
# `RFM` on raw features, `RFM` on whitened features (`preprocessing="whiten"`), and `WTFlow` with the LayerNorm WT
# map (Lemma 5: every $x_0$ lies on the sphere of radius $\sqrt{D}$). Defaults: one Euler step ($K = 1$), the norm
# score. Each fit also fits the detector a few more times on parts of the training set to set its threshold (below).

# %%
import pandas as pd

detectors = fn.fit_detectors(example, quick=QUICK, seed=SEED)
pd.DataFrame(fn.score_table(example, detectors)).round(3)

# %%
fig = fn.plot_roc(example, detectors)

# %% [markdown]
# ## Scores, and where the threshold goes
#
# A detector scores its own training vectors lower than unseen normals: the network, and with whitening also the
# covariance, were fitted on them. The dotted line is PyOD's rule, the $1 - $`contamination` quantile of the training
# scores; with whitening it sits far inside the unseen normals, and `predict` flags most of them (last column of the
# table above). The dashed line is what the detectors use by default (`calibration="cross-fit"`): every training
# vector gets a score from a copy of the detector fitted without it, and the threshold is the quantile of those
# honest scores. The scores themselves, and so the ROC curve, do not change.

# %%
fig = fn.plot_scores(example, detectors["RFM-W (whitened)"], title="RFM on whitened features")

# %% [markdown]
# ## What whitening does
#
# Pooled CNN features are strongly correlated: a handful of directions carry most of the variance and hundreds carry
# almost none. Whitening (Ledoit-Wolf shrunk covariance, `wtflow.detectors.preprocessing`) rescales every direction
# to unit variance, so a change along a direction that is quiet on normal images — often where a defect shows — counts
# as much as one along the dominant directions. $\|z\|^2$ of a whitened vector is its Mahalanobis distance; the
# benchmark's `Mahalanobis` row is that score alone, and RFM-W is the flow on top of it.

# %%
fig = fn.plot_spectra(fn.whitening_spectra(example))

# %% [markdown]
# ## One step or twenty: K = 1 vs K = 20
#
# With the Gaussian target the exact rFM field at $t = 0$ is $u(x, 0) = \mathbb{E}[X_1] - x = -x$ for any smooth source
# (eq. 12; notebook 0 shows it in 2-D). After whitening the training features are roughly zero-mean with identity
# covariance, so a well-trained network sends a normal $x_0$ close to $0$ in one step, $\phi = x_0 + v(x_0, 0)$,
# while off the training manifold it extrapolates and $\phi$ stays large: one-step inference is a learned
# contraction. With $K = 20$ steps the flow follows the transport to the target, on which normals and anomalies both
# land near radius $\sqrt{D}$ (Observation 1), and the separation shrinks. The table fixes the trained weights and
# changes only $K$ (`set_params(ode_steps=K)`).

# %%
pd.DataFrame(fn.steps_table(example, detectors["RFM-W (whitened)"])).round(3)

# %% [markdown]
# How close is the learned field at $t = 0$ to the exact $-x_0$? The relative deviation
# $\|v(x_0, 0) + x_0\| / \|x_0\|$ is 0 for the exact field; the network gets closest on the vectors it was trained
# on. The theory of the whitened Gaussian case is worked out in `theory/` (see its README).

# %%
pd.DataFrame(fn.one_step_vs_exact(example, detectors["RFM-W (whitened)"])).round(3)

# %% [markdown]
# ## In a scikit-learn pipeline
#
# The detectors are scikit-learn outlier detectors, so preprocessing and model travel together. `predict_confidence`
# (PyOD's ExCeeD) says how sure each 0/1 label is.

# %%
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import wtflow

steps = {"train_steps": 100} if QUICK else {}
pipe = make_pipeline(StandardScaler(), wtflow.WTFlow(calibration="train", device="cpu", seed=SEED, **steps))
pipe.fit(example.split.X_train)
labels, confidence = pipe[-1].predict(pipe[0].transform(example.anomalous), return_confidence=True)
print("anomalies flagged:", labels.mean().round(3), " mean confidence:", confidence.mean().round(3))

# %% [markdown]
# ## What to take away
#
# - The vector detectors are ordinary scikit-learn / PyOD estimators: fit on normal vectors, rank with
#   `decision_function`, cut with `predict`. Rankings (AUROC) and thresholds are separate questions.
# - Training scores are optimistic, above all after whitening; the cross-fitted threshold (the default) flags about
#   `contamination` of unseen normals, PyOD's training-score rule flags many more.
# - Whitening equalises the directions of the feature space and is where much of RFM-W's strength comes from
#   (compare the Mahalanobis row of the benchmark). One Euler step reads the learned field at $t = 0$, a contraction
#   towards $-x$ (eq. 12); twenty steps follow the transport to the Gaussian, where everything looks alike.
#
# ## Exercises
#
# 1. Change `CATEGORY` to `"screw"` and compare the last column of the score table with the flagged normals: why is
#    the gap largest for the whitened detector?
# 2. Fit `wtflow.RFM(preprocessing="whiten", score="density")` and compare its AUROC and `steps_table` with the norm
#    score. Which score keeps the most information at $K = 20$?
# 3. Plot `fn.one_step_vs_exact` for a detector trained with `train_steps=50` and `train_steps=800`: does the
#    one-step AUROC follow how close the field gets to $-x_0$?
