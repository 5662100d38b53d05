"""Initial singularity (Theorem 1) and truncation (Theorem 2): errors of the learned field near t = 0."""

import numpy as np

from toys import singularity
from wtflow.utils import select


def _err(result, **where):
    s = select(result.table("errors"), **where)
    order = np.argsort(s["t"])
    return s["t"][order], s["mse_per_dim"][order]


def test_error_table_layout(singularity_result):
    cfg = singularity_result.config
    e = singularity_result.table("errors")
    assert len(e["t"]) == len(cfg["dims"]) * len(cfg["truncations"]) * 3 * 2 * cfg["n_t"]
    assert np.all(e["mse_per_dim"] >= 0)
    assert np.all(e["extrapolated"] == (e["t"] < e["T"]))


def test_empirical_field_diverges_like_one_over_t_off_the_training_points(singularity_result):
    """||u_emp - u_pop||^2 ~ 1/t^2 at held-out points: over two decades of t it grows by >= 10^3."""
    for dim in singularity_result.config["dims"]:
        t, mse = _err(singularity_result, D=dim, T=0.0, comparison="population_vs_empirical", start="held_out")
        small = mse[np.argmin(np.abs(t - t[0]))]
        later = mse[np.argmin(np.abs(t - 100 * t[0]))]
        assert small > 1e3 * later


def test_on_training_paths_the_two_exact_fields_differ_by_the_target_noise(singularity_result):
    """On x_t = (1 - t) m_k + t x_1 at small t the n-point field is x_1 - m_k and the population field about -m_k:
    they differ by about x_1, i.e. by about 1 per coordinate, not by a diverging amount."""
    for dim in singularity_result.config["dims"]:
        _, mse = _err(singularity_result, D=dim, T=0.0, comparison="population_vs_empirical", start="train")
        assert 0.3 < mse[0] < 3.0


def test_learned_field_tracks_the_population_not_the_training_set(singularity_result):
    for dim in singularity_result.config["dims"]:
        _, to_pop = _err(singularity_result, D=dim, T=0.0, comparison="learned_vs_population", start="held_out")
        _, to_emp = _err(singularity_result, D=dim, T=0.0, comparison="learned_vs_empirical", start="held_out")
        assert to_pop[0] < 1.0
        assert to_emp[0] > 100 * to_pop[0]


def test_summary_and_plot(singularity_result):
    import matplotlib.pyplot as plt

    s = singularity_result.table("summary")
    assert np.all(s["t_start"] >= np.minimum(s["T"], s["t_smallest"]))
    figs = singularity.plot(singularity_result)
    assert set(figs) == set(singularity_result.figures)
    for f in figs.values():
        plt.close(f)
