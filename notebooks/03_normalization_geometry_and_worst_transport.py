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
# # 3. LayerNorm / BatchNorm geometry and the "worst transport"
#
# WT-Flow applies a non-learnable normalisation to the data before matching (the WT map, Algorithm 1). Its geometry:
#
# * **LayerNorm** over all $D$ entries of a sample: $\|\mathrm{LN}(x)\|_2 = \sqrt{D}$ (**Lemma 5**, eq. 14), the
#   radius of the Gaussian annulus; with $\epsilon > 0$ it is $\sqrt{D\sigma^2/(\sigma^2 + \epsilon)}$ (Suppl. eq. 38),
#   where $\sigma^2$ is the sample's own variance.
# * **BatchNorm** with batch statistics: the batch average of $\|\mathrm{BN}(x)\|^2$ is
#   $\sum_c HW\sigma_c^2/(\sigma_c^2 + \epsilon) \to D$ (**Lemma 6**, Suppl. eqs. 39-42), but single samples of sparse
#   ReLU features fall below $\sqrt{D}$ (Suppl. X-C; the paper's Table XIII).
#
# **Proposition 2** then claims that at every normalised sample the initial field $u(x, 0)$ is orthogonal or opposite
# to the optimal-transport (OT) direction: the flow starts with the *worst* transport. theory/ERRATA.md refutes this
# for LayerNorm: on the $\sqrt{D}$ sphere the centripetal field of eq. 12 vanishes ($u(x, 0^+) = -P_T x = 0$), so
# there is no initial direction at all; "opposite" holds for isotropic BN-like sources inside the radius.

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

# %% [markdown]
# ## The WT maps on sparse, non-negative features
#
# Eight samples of ReLU features (about 84% zeros) in $D = 256$: LayerNorm without $\epsilon$ puts every sample on the
# sphere of radius $\sqrt{D}$; BatchNorm (batch statistics) only on average.

# %%
import torch

from wtflow import BatchNormWT, LayerNormWT

generator = torch.Generator().manual_seed(SEED)
x = torch.relu(torch.randn(8, 256, generator=generator, dtype=torch.float64) - 1.0)
ln_norms = LayerNormWT(eps=0.0)(x).norm(dim=1) / 256**0.5
bn_norms = BatchNormWT(256, eps=1e-5).train()(x).norm(dim=1) / 256**0.5
print("||LN(x)|| / sqrt(D):", ln_norms.numpy().round(12))
print("||BN(x)|| / sqrt(D):", bn_norms.numpy().round(3), " mean of squares:", float(bn_norms.pow(2).mean()))

# %% [markdown]
# ## Lemmas 5 and 6 against the paper's step-0 norms
#
# (a) LayerNorm follows eq. 38 exactly; the crosses mark the variance the paper's Table XIV step-0 norms would need.
# (b) Per-sample BatchNorm norms fall with sparsity. (c) The paper's step-0 norms for all 15 MVTec classes.

# %%
from IPython.display import Markdown

from paper_figs.theory_figs import claims_markdown, prop2_figure, radius_figure

fig, tables = radius_figure(SIZE, SEED)

# %%
Markdown(claims_markdown(["lemma5", "lemma6", "lemma6_per_sample"], SIZE))

# %% [markdown]
# ## Proposition 2: the angle between $u(x, 0^+)$ and the OT displacement
#
# For BN-like and LN-like sources, isotropic or on a low-dimensional subspace, with a Gaussian or a sphere target: the
# closed-form angle (exact field, exact OT map) and the angle to finite-sample OT plans (POT's `ot.emd`). In high
# dimension the finite-sample plans are dominated by sampling noise, so angles near 90 degrees there say nothing about
# orthogonality.

# %%
fig, tables = prop2_figure(SIZE)

# %%
Markdown(claims_markdown(["prop2"], SIZE))

# %% [markdown]
# ## What to take away
#
# - LayerNorm puts every sample on the sphere of radius $\sqrt{D}$ (Lemma 5, up to the $\epsilon$ of eq. 38), the
#   radius where a $D$-dimensional Gaussian lives; BatchNorm reaches $D$ only on average over a batch (Lemma 6), and
#   single samples of sparse features fall below it.
# - Proposition 2's "worst transport" needs care: on the LayerNorm sphere the centripetal field of eq. 12 vanishes in
#   the tangent directions, so there is no initial direction to compare (theory/ERRATA.md); "opposite to OT" holds for
#   isotropic BN-like sources inside the radius.
# - Angles to finite-sample OT plans in high dimension are dominated by sampling noise: compare with the closed form.
#
# ## Exercises
#
# 1. Make the ReLU features sparser (more zeros) and predict the per-sample BatchNorm norms before you plot them.
# 2. Show from the definition of LayerNorm that $\|\mathrm{LN}(x)\|^2 = D\sigma^2/(\sigma^2 + \epsilon)$ (eq. 38).
# 3. Why does the angle between $-x$ and the OT displacement tell us nothing on the $\sqrt{D}$ sphere? Write the
#    tangent and radial parts of $-x$ there.
