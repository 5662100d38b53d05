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
# # 2. The centripetal potential field (CPF)
#
# The marginal rFM field is $u(x, t) = \mathbb{E}[X_1 \mid X_t = x] - \mathbb{E}[X_0 \mid X_t = x]$ (eq. 8). As
# $t \to 0$ the path forgets $x_1$, so $\mathbb{E}[X_1 \mid X_t = x] \to \mathbb{E}[X_1] = 0$ and
# $\mathbb{E}[X_0 \mid X_t = x] \to x$: **Proposition 1** (eq. 12) gives $u(x, 0^+) = -x$, a pull towards the
# target's mean. Eq. 13 illustrates it in 2-D: for a point at distance $d$ from the centre of a ring of radius $R$
# the average of the conditional directions is $V(d) = -d$, so the pull grows with $d$ - the *centripetal potential
# field*.
#
# The paper's Fig. 1 shows the consequence for a Gaussian pushed onto a ring: points first drift inward, and points
# near the source centre are trapped before reaching the ring; Fig. 5 shows the CPF for a 4-component mixture confined
# to radius $d$. `toys.ring` and `toys.mixture` reproduce both, with the learned field beside the exact field of the
# population source and the exact field of the $n$ training points. theory/ERRATA.md qualifies Proposition 1 and
# eq. 13 (the printed cells below show the corrections).

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

Markdown(claims_markdown(["prop1", "eq13", "obs2"], SIZE))

# %% [markdown]
# ## Fig. 1: a Gaussian pushed onto a ring
#
# Rows are sources $N(\mu, \sigma^2 I)$ (one with $\mu \neq 0$); columns are the learned MLP after increasing numbers
# of full-batch epochs, then the two exact fields. The same start points and the same adaptive solver are used for all.

# %%
from toys import ring

ring_result = ring.simulate(quick=QUICK, seed=SEED)
ring_figs = ring.plot(ring_result)

# %% [markdown]
# Per source, field, epoch and solver: the fraction of points whose first move is inward ($x_0 \cdot v(x_0, t_0) < 0$),
# mean minimum and end radius, the fraction trapped below $0.9R$, and Spearman's $\rho$ between the distance of $x_0$
# from the source centre and its end radius (positive: nearer points end lower, the paper's "stronger trapping").

# %%
import pandas as pd

summary = pd.DataFrame(ring_result.table("summary"))
summary[summary.solver == "adaptive"].drop(columns=["radius"]).round(3)

# %% [markdown]
# ## Fig. 5: the CPF strength against the confinement radius $d$
#
# A symmetric 4-component mixture inside radius $d$ is pushed to the ring $R = 10$. Left: mean $|u(x, 0^+)|$ against
# $d$; the exact population field gives exactly $\|x\|$ (eq. 12), the learned field and the exact $n$-point field
# do not. Right: the inward component per point.

# %%
from toys import mixture

mixture_result = mixture.simulate(quick=QUICK, seed=SEED)
mixture_figs = mixture.plot(mixture_result)

# %%
pd.DataFrame(mixture_result.table("cpf")).round(3)

# %% [markdown]
# ## What to take away
#
# - At $t = 0^+$ the marginal rFM field is $-x$ for a smooth source (Proposition 1, eq. 12): every point is first
#   pulled towards the target's mean, with a strength that grows with its distance - the centripetal potential field.
# - Pushing a Gaussian onto a ring therefore starts with an inward move, and points near the source centre can end
#   below the ring: the "trapping" of Fig. 1, measured in the table rather than eyeballed.
# - The learned field and the exact $n$-point field differ from the population field near $t = 0$ (Fig. 5): the CPF
#   of eq. 12 is a property of the population, which a finite training set only approximates.
#
# ## Exercises
#
# 1. Change the ring radius (`ring.RingConfig(radius=...)`) and predict how the fraction of inward first moves and the
#    trapped fraction change before you run it.
# 2. In `toys.mixture`, why does the exact population field give exactly $\|x\|$ for $|u(x, 0^+)|$ while the exact
#    $n$-point field does not? Use notebook 1's discussion of the two fields.
# 3. Derive eq. 13's $V(d) = -d$ for a point at distance $d$ from the centre of a ring; compare with
#    theory/ERRATA.md.
