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
# # 0. Primer: flow matching in 2-D from scratch
#
# This notebook is the starting point: no theorem yet, just the objects every other notebook uses, in the plane
# where you can see them. The data are three Gaussian blobs; the other end of the flow is the standard Gaussian
# $N(0, I)$.
#
# **The path.** Flow matching joins a data point $x_0$ and a noise point $x_1$ by the straight line
# $x_t = (1 - t)\,x_0 + t\,x_1$, $t \in [0, 1]$, and trains a network $v_\theta(x_t, t)$ on the line's velocity:
# $\mathcal{L} = \mathbb{E}\,\|v_\theta(x_t, t) - (x_1 - x_0)\|^2$ (eq. 4). Generative models walk the lines from noise
# to data (the *forward* path); rFM, the paper's detector, walks them from data to noise (the *reversed* path,
# Sec. III-B) and scores a test point by where it lands.
#
# **The marginal field.** Many lines pass through the same point $x$ at time $t$, with different velocities. The
# loss is minimised by their average, the marginal field $u(x, t) = \mathbb{E}[X_1 - X_0 \mid X_t = x]$ (eq. 8). For
# Gaussian blobs it has a closed form, which `theory.fields` evaluates exactly; at $t = 0$ it is $u(x, 0) = -x$
# (eq. 12): every point is first pulled straight to the origin. The code lives in `toys.primer`; the cells only call it.

# %%
# %matplotlib inline

# %% tags=["parameters"]
import os

QUICK = bool(os.environ.get("CI")) or os.environ.get("WTFLOW_QUICK") == "1"
SEED = 0

# %%
# theory/ and toys/ are the repository's research code, not installed packages, and the kernel starts in notebooks/:
# put the repository root on the import path.
import sys
from pathlib import Path

sys.path.insert(0, str(next(p for p in (Path.cwd(), *Path.cwd().parents) if (p / "toys").is_dir())))

# %% [markdown]
# ## Forward vs reversed: the same lines, walked in opposite directions

# %%
from toys import primer

fig = primer.plot_paths(n=40, seed=SEED)

# %% [markdown]
# Lines cross: a point in the middle of the picture is reached by lines heading in many directions. A network that
# sees only $(x_t, t)$ cannot know which line it is on, so it learns the average direction, $u(x, t)$.
#
# ## The exact marginal field
#
# Top row of the next figure: $u(x, t)$ on a grid at $t = 0$, $0.5$ and $0.9$ (crosses: the blob centres, shrunk by
# $1 - t$ as the path carries them to the origin). At $t = 0$ the field is exactly $-x$; the forward field is the
# same field read backwards, $u_\mathrm{forward}(x, s) = -u(x, 1 - s)$.

# %%
x = primer.sample_pairs(1000, seed=SEED)[0]
print("max |u(x, 0) + x| =", float((primer.exact_velocity(x, 0.0) + x).abs().max()))
print(
    "max |u_forward(x, 0.3) + u(x, 0.7)| =",
    float((primer.exact_velocity(x, 0.3, "forward") + primer.exact_velocity(x, 0.7)).abs().max()),
)

# %% [markdown]
# ## A learned field beside the exact one
#
# Train a small MLP with the loss of eq. 4 (`wtflow.train`, under a minute on a laptop CPU) and draw it under the exact
# field. The relative error $\|v_\theta - u\| / \|u\|$ is measured at points of the path itself, where training put
# its samples.

# %%
cfg = primer.PrimerConfig.quick() if QUICK else primer.PrimerConfig()
model = primer.train_learned_field(cfg)
fig = primer.plot_fields(model)

# %%
import pandas as pd

pd.DataFrame(primer.field_errors(model), columns=["t", "relative RMS error"]).round(3)

# %% [markdown]
# ## Where the flow ends
#
# Integrating $dx/dt = u(x, t)$ from $t = 0$ to $1$ (Euler, 50 steps, `wtflow.solvers.solve`) carries the blobs onto
# $N(0, I)$; the learned field does nearly the same. An anomaly detector built on this flow (rFM) scores a test
# point by its endpoint: points the field was not trained on end in the wrong place. Notebook 5 and notebook 7 do
# exactly that.

# %%
fig = primer.plot_transport(model, n=500, seed=SEED)

# %% [markdown]
# ## What to take away
#
# - Flow matching regresses a network on the velocities $x_1 - x_0$ of straight lines; the best it can learn is the
#   marginal field $u(x, t) = \mathbb{E}[X_1 - X_0 \mid X_t = x]$ (eq. 8), an average over all lines through $x$.
# - rFM uses the reversed path (data at $t = 0$, noise at $t = 1$); the forward, generative path has the same field
#   read backwards in time. At $t = 0$ the reversed field of a smooth source is $-x$ (eq. 12).
# - A small network learns the field well where the path has samples; `theory.fields` gives the exact answer to
#   compare against, which is how every later notebook checks the paper.
#
# ## Exercises
#
# 1. Move one blob (edit `primer.BLOB_MEANS` or pass your own `GaussianMixture` to `theory.fields.marginal_velocity`)
#    and predict how $u(x, 0.5)$ changes before you plot it.
# 2. Set `BLOB_STD` to 0.05 and compare $u(x, t)$ near $t = 0$ with the 0.3 case: what happens to the field between
#    the blobs as the source approaches a set of points? (Notebook 1 answers this: the initial singularity.)
# 3. Train with `epochs=10` and `epochs=300` and compare `field_errors` at $t = 0$ and $t = 0.95$: where does the
#    network learn first, and why?
