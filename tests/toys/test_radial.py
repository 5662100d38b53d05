"""High-dimensional radial dynamics (Fig. 4F, Tables XII-XIV, Observations 1-2)."""

import math

import numpy as np
import torch

from toys import radial
from wtflow.utils import select


def test_manifold_data_is_sparse_and_non_negative():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(64, 4, generator=gen)
    x = radial.manifold_data(64, 4, 100, gen, 0.35, a)
    assert x.shape == (100, 64) and bool((x >= 0).all())
    assert 0.3 < float((x == 0).double().mean()) < 0.7
    # the points span (at most) a k-dimensional set before the ReLU: rank of the pre-activations is k
    assert torch.linalg.matrix_rank(torch.randn(100, 4, generator=gen) @ a.T) == 4


def test_paper_tables_layout(radial_result):
    t = radial_result.table("paper_tables")
    cfg = radial_result.config
    assert len(t["wt"]) == len(cfg["wt_maps"]) * len(cfg["dims"])
    assert [c for c in t if c.startswith("step_")] == [f"step_{k}" for k in range(0, cfg["steps"] + 1, 5)]


def test_layernorm_starts_on_the_gaussian_sphere(radial_result):
    """Lemma 5: ||LN(x)|| = sqrt(D) (eps = 1e-5 makes it a hair smaller)."""
    e = radial_result.table("endpoints", wt="layernorm", field="learned", solver="euler1")
    assert np.allclose(e["r0_over_sqrt_d"], 1.0, atol=1e-3)


def test_observation_1_rfm_endpoints_fall_short_of_sqrt_d(radial_result):
    many = f"euler{radial_result.config['steps']}"
    e = radial_result.table("endpoints", wt="none", field="learned", solver=many, group="normal")
    assert np.all(e["r_end_over_sqrt_d"] < 0.9)


def test_norm_curves_start_at_the_mapped_data(radial_result):
    n = radial_result.table("norms", step=0, field="learned")
    e = radial_result.table("endpoints", field="learned")
    for dim in set(n["D"].tolist()):
        for wt in set(n["wt"].tolist()):
            a = select(n, D=dim, wt=wt, solver="euler1", group="normal")["mean_norm"]
            b = select(e, D=dim, wt=wt, solver="euler1", group="normal")["mean_r0"]
            assert np.allclose(a, b)


def test_exact_empirical_field_keeps_training_points_and_throws_out_the_rest(radial_result):
    """Theorem 1: the n-point field is finite at its training points and ~ (x - m)/t elsewhere."""
    many = f"euler{radial_result.config['steps']}"
    e = radial_result.table("endpoints", field="exact_empirical", solver=many)
    for dim in set(e["D"].tolist()):
        train = select(e, D=dim, group="train")["r_end_over_sqrt_d"]
        held = select(e, D=dim, group="normal")["r_end_over_sqrt_d"]
        assert np.all(train < 2.0)
        assert np.all(held > 10 * train)


def test_auroc_in_unit_interval_and_layernorm_separates(radial_result):
    a = radial_result.table("auroc")
    assert np.all((a["auroc"] >= 0) & (a["auroc"] <= 1))
    dim = max(radial_result.config["dims"])
    ln = radial_result.table("auroc", D=dim, wt="layernorm", field="learned", score="density")
    assert np.all(ln["auroc"] > 0.8)


def test_plot(radial_result):
    import matplotlib.pyplot as plt

    figs = radial.plot(radial_result)
    assert set(figs) == set(radial_result.figures)
    assert math.isfinite(float(radial_result.table("paper_tables")["step_0"][0]))
    for f in figs.values():
        plt.close(f)
