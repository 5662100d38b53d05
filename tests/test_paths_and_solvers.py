import math

import pytest
import torch

from wtflow.paths import fm_path, linear_path, rfm_path, sample_time
from wtflow.solvers import euler, solve, solve_adaptive


@pytest.mark.parametrize("shape", [(6, 2), (6, 512), (2, 64, 8, 8)])
def test_path_endpoints(shape):
    x_0, x_1 = torch.randn(shape, dtype=torch.float64), torch.randn(shape, dtype=torch.float64)
    torch.testing.assert_close(rfm_path(x_0, x_1, 0.0).x_t, x_0)
    torch.testing.assert_close(rfm_path(x_0, x_1, 1.0).x_t, x_1)
    torch.testing.assert_close(rfm_path(x_0, x_1, 0.3).dx_t, x_1 - x_0)


def test_dx_t_is_the_time_derivative():
    x_0, x_1 = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    t = torch.rand(5, dtype=torch.float64) * 0.8 + 0.1
    h = 1e-6
    fd = (linear_path(x_0, x_1, t + h).x_t - linear_path(x_0, x_1, t - h).x_t) / (2 * h)
    torch.testing.assert_close(fd, linear_path(x_0, x_1, t).dx_t, rtol=1e-7, atol=1e-8)


def test_forward_and_reversed_share_the_path():
    noise, data = torch.randn(4, 2), torch.randn(4, 2)
    torch.testing.assert_close(fm_path(noise, data, 0.25).x_t, rfm_path(noise, data, 0.25).x_t)


def test_path_bad_input():
    x = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="x_0 and x_1 must have the same shape"):
        rfm_path(x, torch.zeros(3, 3), 0.5)
    with pytest.raises(ValueError, match=r"t must lie in \[0.0, 1.0\]"):
        rfm_path(x, x, 1.5)
    with pytest.raises(ValueError, match=r"t must lie in"):
        rfm_path(x, x, torch.tensor([0.1, -0.2, 0.3]))
    with pytest.raises(ValueError, match="x_0 must be finite"):
        rfm_path(torch.full((3, 2), float("nan")), x, 0.5)
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        rfm_path(x, x, torch.tensor([0.1, 0.2]))


def test_truncated_time_sampling():
    t = sample_time(10000, torch.Generator().manual_seed(0), t_min=0.2)
    assert float(t.min()) >= 0.2 and float(t.max()) <= 1.0
    assert abs(float(t.mean()) - 0.6) < 0.01
    with pytest.raises(ValueError, match="t_min"):
        sample_time(3, t_min=1.0)


@pytest.mark.parametrize("steps", [1, 3, 20])
@pytest.mark.parametrize("t0", [0.0, 0.25])
def test_euler_integrates_constant_field_exactly(steps, t0):
    c = torch.tensor([[1.5, -2.0]], dtype=torch.float64)
    x_0 = torch.randn(4, 2, dtype=torch.float64)
    sol = euler(lambda x, t: c.expand_as(x), x_0, steps=steps, t0=t0)
    torch.testing.assert_close(sol.x_end, x_0 + (1 - t0) * c, rtol=0, atol=1e-14)


def test_euler_is_first_order_on_a_linear_field():
    # dx/dt = -x has x(1) = x(0) e^{-1}; Euler gives (1 - 1/K)^K: the error must halve when K doubles.
    x_0 = torch.ones(1, 1, dtype=torch.float64)
    errors = [abs(float(euler(lambda x, t: -x, x_0, steps=k).x_end) - math.exp(-1)) for k in (10, 20, 40, 80)]
    for k, err in zip((10, 20, 40, 80), errors):
        assert err == pytest.approx(abs((1 - 1 / k) ** k - math.exp(-1)), rel=1e-12)
    ratios = [errors[i] / errors[i + 1] for i in range(3)]
    assert all(1.9 < r < 2.1 for r in ratios)


def test_euler_records_trajectory_and_norms():
    x_0 = torch.randn(3, 2, 4, 4, dtype=torch.float64)
    traj = euler(lambda x, t: x * t.view(-1, 1, 1, 1), x_0, steps=5, record="trajectory")
    assert traj.trajectory.shape == (6, 3, 2, 4, 4) and traj.times.shape == (6,)
    torch.testing.assert_close(traj.trajectory[0], x_0)
    torch.testing.assert_close(traj.trajectory[-1], traj.x_end)
    norms = euler(lambda x, t: x * t.view(-1, 1, 1, 1), x_0, steps=5, record="norms").norms
    torch.testing.assert_close(norms, traj.trajectory.flatten(2).norm(dim=2))


def test_adaptive_solver_matches_exact_solution():
    x_0 = torch.randn(5, 3, dtype=torch.float64)
    # dx/dt = t x  =>  x(1) = x(t0) exp((1 - t0^2)/2)
    sol = solve_adaptive(lambda x, t: x * t.view(-1, 1), x_0, t0=0.1, record="norms", n_record=11)
    torch.testing.assert_close(sol.x_end, x_0 * math.exp((1 - 0.01) / 2), rtol=1e-5, atol=1e-8)
    assert sol.norms.shape == (11, 5)


def test_solver_bad_input():
    x = torch.zeros(2, 2)
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        euler(lambda x, t: x, x, steps=0)
    with pytest.raises(ValueError, match=r"t0 must lie in \[0, 1\)"):
        euler(lambda x, t: x, x, t0=1.0)
    with pytest.raises(ValueError, match=r"t0 must lie in \[0, 1\)"):
        solve_adaptive(lambda x, t: x, x, t0=-0.1)
    with pytest.raises(ValueError, match="unknown record"):
        euler(lambda x, t: x, x, record="all")
    with pytest.raises(ValueError, match="velocity returned shape"):
        euler(lambda x, t: x[:, :1], x)
    x0 = torch.ones(3, 2, dtype=torch.float64)
    exact = math.exp(-1)
    err = {
        m: abs(float(solve(lambda x, t: -x, x0, m, steps=10).x_end[0, 0]) - exact) for m in ("euler", "midpoint", "rk4")
    }
    assert err["rk4"] < 1e-6 < err["midpoint"] < 1e-3 < err["euler"]
    ad = solve(lambda x, t: -x, x0, "dopri5", rtol=1e-10, atol=1e-12).x_end
    assert torch.allclose(ad, torch.full_like(ad, exact), atol=1e-8)


def test_solve_backwards_inverts_forward():
    x0 = torch.randn(4, 3, dtype=torch.float64)

    def v(x, t):
        return torch.sin(x) * t.view(-1, 1)

    fwd = solve(v, x0, "rk4", steps=200, t_start=0.1, t_end=0.9).x_end
    back = solve(v, fwd, "rk4", steps=200, t_start=0.9, t_end=0.1).x_end
    assert torch.allclose(back, x0, atol=1e-9)


def test_solve_rejects_bad_input():
    x = torch.zeros(2, 2)
    with pytest.raises(ValueError, match="unknown solver method 'euler20'"):
        solve(lambda x, t: x, x, "euler20")
    with pytest.raises(ValueError, match="t_end must be a number in"):
        solve(lambda x, t: x, x, t_end=1.5)
    with pytest.raises(ValueError, match="must differ"):
        solve(lambda x, t: x, x, t_start=0.5, t_end=0.5)
