"""Ring (Fig. 1): learned beside exact population and exact n-point fields."""

import math

import numpy as np

from toys import ring
from wtflow.utils import select


def test_tables_and_configuration(ring_result):
    r = ring_result
    cfg = ring.RingConfig.quick()
    assert r.config["seed"] == 0 and r.config["radius"] == cfg.radius
    assert r.config["snapshots"] == list(cfg.snapshots)
    ends = r.table("endpoints")
    n_fields = len(cfg.snapshots) + 2
    assert len(ends["r_end"]) == len(cfg.sources) * n_fields * len(cfg.solvers) * cfg.n_trajectories
    for col in ("r_min", "t_at_min", "r_end", "first_inward", "dist_to_centre", "trapped"):
        assert col in ends
    assert set(ends["field"]) == {"learned", "exact_population", "exact_empirical"}
    assert np.all(ends["r_min"] <= ends["r0"] + 1e-12)
    assert np.all((ends["t_at_min"] >= cfg.t0 - 1e-12) & (ends["t_at_min"] <= 1.0))
    s = r.table("summary")
    assert np.all((s["frac_first_inward"] >= 0) & (s["frac_first_inward"] <= 1))
    assert len(r.table("train_points")["x"]) == len(cfg.sources) * cfg.n_train


def test_trajectories_start_at_x0(ring_result):
    traj = select(ring_result.table("trajectories"), step=0)
    ends = ring_result.table("endpoints")
    key = lambda t: np.lexsort((t["traj"], t["solver"], t["epoch"], t["field"], t["setting"]))  # noqa: E731
    a, b = key(traj), key(ends)
    assert np.allclose(traj["x"][a], ends["x0"][b]) and np.allclose(traj["y"][a], ends["y0"][b])
    assert np.all(traj["t"] == ring_result.config["t0"])


def test_exact_population_field_is_centripetal_with_strength_norm_x(ring_result):
    """Eq. 12: u(x, 0+) = -x, so at t0 = 1e-3 every start point moves inward with speed about ||x||."""
    e = ring_result.table("endpoints", field="exact_population", solver="euler20")
    assert np.all(e["first_inward"])
    assert 0.9 < np.median(e["v0_norm"] / e["r0"]) < 1.1
    assert np.all(-e["v0_radial"] > 0.8 * e["r0"])


def test_exact_population_flow_ends_on_the_ring(ring_result):
    radius = ring_result.config["radius"]
    e = ring_result.table("endpoints", field="exact_population", solver="euler20")
    assert np.all(np.abs(e["r_end"] - radius) < 0.02 * radius)
    # and it dips inward before going out when the source is off-centre (mu != 0)
    off = select(e, setting=1)
    assert np.mean(off["r_min"] < off["r0"] - 0.05) > 0.8


def test_exact_empirical_field_first_move_is_not_centripetal(ring_result):
    """Off the training points the n-point field points away from the nearest training point (Theorem 1):
    only about half of the start points move inward first, unlike the population field."""
    e = ring_result.table("endpoints", field="exact_empirical", solver="euler20")
    frac = np.mean(e["first_inward"])
    assert 0.2 < frac < 0.8
    assert np.median(e["v0_norm"]) > 2 * np.median(e["r0"])


def test_learned_field_after_training_moves_points_to_the_ring(ring_result):
    radius = ring_result.config["radius"]
    last = ring_result.config["snapshots"][-1]
    for solver in ("euler20", "adaptive"):
        e = ring_result.table("endpoints", field="learned", epoch=last, solver=solver)
        close = np.abs(e["r_end"] - radius) < 0.25 * radius
        assert np.mean(close) > 0.8, (solver, np.mean(close))
    first = ring_result.config["snapshots"][0]
    early = ring_result.table("endpoints", field="learned", epoch=first, solver="euler20")
    late = ring_result.table("endpoints", field="learned", epoch=last, solver="euler20")
    assert np.mean(np.abs(late["r_end"] - radius)) < np.mean(np.abs(early["r_end"] - radius))


def test_plot_returns_the_declared_figures(ring_result, tmp_path):
    import matplotlib.pyplot as plt

    from wtflow.utils import save_figure

    figs = ring.plot(ring_result)
    assert set(figs) == set(ring_result.figures)
    paths = save_figure(figs["ring_trajectories"], tmp_path, "ring_trajectories")
    assert all(p.stat().st_size > 1000 for p in paths)
    for f in figs.values():
        plt.close(f)
    assert math.isclose(ring_result.config["model_scale"], ring_result.config["radius"] / math.sqrt(2))
