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
# # 1. The initial singularity and the Lipschitz bounds
#
# In time-reversed flow matching (rFM) the data $x_0$ sit at $t = 0$ and the Gaussian target $x_1$ at $t = 1$, on
# the straight path $x_t = (1 - t)\,x_0 + t\,x_1$ (eq. 7: the conditional velocity is $x_1 - x_0$). As a field of
# $(x, t)$ given the start point this velocity is $u(x, t \mid x_0) = (x - x_0)/t$ (eq. 6 for this path,
# Suppl. eq. 16): it diverges like $1/t$ for every $x \neq x_0$. **Theorem 1** calls this the *initial singularity*.
#
# The network learns the marginal field $u(x, t) = \mathbb{E}[X_1 - X_0 \mid X_t = x]$ (eq. 8), which Lemma 2
# rewrites with the score of $p_t$ (eq. 9). **Lemmas 3-4** bound how fast it may change on $[T, 1]$:
# $\sup \|\partial_t u\| = O(D^2/T^4)$ (eq. 10) and $\sup \|\nabla_x u\| \le \max\{1/T, (1-T)D/T^3\}$ (eq. 11);
# **Theorem 2** concludes that $u$ is Lipschitz on $[T, 1]$ with a constant that explodes as $T \to 0$, which the paper
# blames for rFM's poor fit near $t = 0$.
#
# Below we (i) check these statements with `theory.claims`, (ii) measure how tight the bounds are, and (iii) train
# small networks (`toys.singularity`) to see *which* field is singular: the exact field of the $n$ training points, or
# the field of the population they were drawn from. Where theory/ERRATA.md says the paper is wrong, the printed
# "correction" lines say so.

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
# ## Theorem 1, Lemma 2 and the derivative formulas, checked
#
# Each check compares a closed form with an independent computation (autograd, posterior means) in float64.

# %%
from IPython.display import Markdown

from paper_figs.theory_figs import bounds_figure, claims_markdown

Markdown(claims_markdown(["theorem1", "lemma2", "eq24"], SIZE))

# %% [markdown]
# ## How tight are Lemmas 3 and 4?
#
# For sources on $[0, 1]^D$ (Assumption 1) the checks compute the supremum of $\|\partial_t u\|$ between an explicit
# construction and an upper bound, and the supremum of $\|\nabla_x u\|$ exactly (Popoviciu's inequality bounds the
# posterior variance by $D/4$ per direction), then divide by the paper's bounds. A ratio below 1 means the bound is
# valid; far below 1 means it is loose. Eq. 28 is printed with "=", so any ratio below 1 contradicts it.

# %%
fig, tables = bounds_figure(SIZE)

# %%
Markdown(claims_markdown(["lemma3", "eq28", "lemma4", "eq32", "theorem2"], SIZE))

# %% [markdown]
# ## Which field is singular? Learned against exact near $t = 0$
#
# `toys.singularity` trains an MLP by flow matching (eq. 4) on $n$ points of a 4-component Gaussian mixture in
# $\mathbb{R}^D$, with training times $t \sim U(T, 1)$ for several truncations $T$, and compares on a log grid of $t$
# (start points on the straight path, held out or from the training set):
#
# * learned vs the exact field of the *population* mixture, which is finite at $t = 0$ ($u(x, 0) = -x$, eq. 12);
# * learned vs the exact field of the *n training points* (the minimiser of the training loss), which inherits the
#   $1/t$ singularity of Theorem 1 away from the training points;
# * the two exact fields against each other.

# %%
from toys import singularity

result = singularity.simulate(quick=QUICK, seed=SEED)
figs = singularity.plot(result)

# %%
import pandas as pd

pd.DataFrame(result.table("summary")).round(4)

# %% [markdown]
# Read the table with the MANIFEST entry `singularity` of `python -m paper_figs`: the exact $n$-point field moves away
# from the population field like $1/t^2$ in squared error (Theorem 1), while the trained network stays far closer to
# the smooth population field than to the singular one. Training on $[T, 1]$ with $T > 0$ lowers the error inside
# $[T, 1]$ (Theorem 2's regime) and leaves the network to extrapolate below $T$.

# %% [markdown]
# ## What to take away
#
# - The conditional velocity $(x - x_0)/t$ of one straight path diverges as $t \to 0$ (Theorem 1). Which *marginal*
#   field inherits that singularity depends on the source: the exact field of $n$ training points does, the field of
#   a smooth population does not ($u(x, 0) = -x$, eq. 12).
# - The Lipschitz bounds of Lemmas 3-4 are checked as code: a ratio below 1 means the bound holds, far below 1 that it
#   is loose; theory/ERRATA.md lists where the printed statements need a correction.
# - A trained network sits much closer to the smooth population field than to the singular $n$-point field, and a
#   truncation $T > 0$ only changes where the network has to extrapolate.
#
# ## Exercises
#
# 1. Rerun `singularity.simulate(singularity.SingularityConfig(n_train=1024), seed=SEED)`: does the learned field
#    move towards the $n$-point field or towards the population field? Why?
# 2. In notebook 0's 2-D primer, shrink the blobs' standard deviation towards 0 and watch $u(x, t)$ near $t = 0$
#    between the blobs: relate what you see to Theorem 1.
# 3. Pick one check of `theory.claims` printed above and recompute its closed form by hand for $D = 1$.
