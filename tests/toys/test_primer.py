"""toys.primer (notebook 00): the exact field's identities, the straight paths, a learned field and the transport."""

import numpy as np
import pytest
import torch

from toys import primer


def test_straight_paths_start_and_end_on_the_pairs():
    x_0, x_1 = primer.sample_pairs(7, seed=1)
    lines = primer.straight_paths(x_0, x_1, np.array([0.0, 0.25, 1.0]))
    assert lines.shape == (3, 7, 2)
    np.testing.assert_allclose(lines[0], x_0.numpy())
    np.testing.assert_allclose(lines[2], x_1.numpy())
    np.testing.assert_allclose(lines[1], 0.75 * x_0.numpy() + 0.25 * x_1.numpy())


def test_exact_field_is_minus_x_at_zero_and_the_forward_field_is_it_read_backwards():
    x = primer.sample_pairs(50, seed=2)[0]
    torch.testing.assert_close(primer.exact_velocity(x, 0.0), -x, rtol=0, atol=1e-12)
    for s in (0.2, 0.7):
        torch.testing.assert_close(primer.exact_velocity(x, s, "forward"), -primer.exact_velocity(x, 1 - s))
    with pytest.raises(ValueError, match="direction must be 'reversed' or 'forward'"):
        primer.exact_velocity(x, 0.5, "sideways")


def test_exact_field_is_the_average_velocity_of_the_lines_through_a_point():
    """Monte Carlo of E[X_1 - X_0 | X_t = x]: weight each source sample by the density of x_1 = (x - (1-t) x_0) / t.

    With 200 000 source samples the effective sample size at these points is above 50 000 (asserted), so the weighted
    mean has a standard error below 0.01 per coordinate (measured 0.003-0.008); tolerance 0.04.
    """
    t, x = 0.5, torch.tensor([[0.3, 0.4], [-1.0, 0.2]], dtype=torch.float64)
    x_0 = primer.source_distribution().sample(200_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for point, u in zip(x, primer.exact_velocity(x, t)):
        x_1 = (point - (1 - t) * x_0) / t
        w = torch.softmax(-0.5 * (x_1**2).sum(1), dim=0)
        assert 1.0 / (w**2).sum() > 50_000, "too few effective samples for the stated error"
        mc = (w[:, None] * (x_1 - x_0)).sum(0)
        torch.testing.assert_close(mc, u, rtol=0, atol=0.04)


def test_a_briefly_trained_field_is_finite_and_moves_data_towards_the_gaussian():
    model = primer.train_learned_field(primer.PrimerConfig(n_train=256, epochs=3, batch_size=128, hidden=32, depth=2))
    errors = primer.field_errors(model, times=(0.0, 0.5), n=200)
    assert [t for t, _ in errors] == [0.0, 0.5] and all(np.isfinite(e) and e > 0 for _, e in errors)
    x = primer.sample_pairs(2000, seed=3)[0]
    exact_end = primer.transport(None, x, steps=50)
    # The exact flow carries the source onto N(0, I): mean 0 and unit variance within Monte Carlo (se 0.02)
    # and Euler error.
    assert exact_end.mean(0).abs().max() < 0.1 and (exact_end.std(0) - 1).abs().max() < 0.1
    assert primer.transport(model, x[:10], steps=5).shape == (10, 2)
