import math

import pytest
import torch

from wtflow.distributions import GaussianMixture, Point, StandardGaussian, UniformSphere, make_target


@pytest.mark.parametrize("shape", [2, 512, (64, 8, 8)])
def test_sample_shapes_and_dtype(shape):
    gen = torch.Generator().manual_seed(0)
    for dist in (StandardGaussian(shape), UniformSphere(shape), Point(shape)):
        x = dist.sample(5, generator=gen)
        expected = (5, shape) if isinstance(shape, int) else (5, *shape)
        assert x.shape == expected
        assert x.dtype == torch.get_default_dtype()


@pytest.mark.parametrize("shape", [2, 3, 512, (4, 4, 4)])
def test_sphere_radius_is_exact(shape):
    dist = UniformSphere(shape)
    x = dist.sample(1000, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    torch.testing.assert_close(x.flatten(1).norm(dim=1), torch.full((1000,), math.sqrt(dist.dim), dtype=torch.float64))
    ring = UniformSphere(2, radius=10.0).sample(100, dtype=torch.float64)
    torch.testing.assert_close(ring.norm(dim=1), torch.full((100,), 10.0, dtype=torch.float64))


def test_sphere_is_uniform_in_2d():
    # Angles of a uniform ring are uniform on (-pi, pi]: check the first two circular moments vanish.
    x = UniformSphere(2).sample(20000, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    angle = torch.atan2(x[:, 1], x[:, 0])
    for k in (1, 2):
        assert abs(float(torch.cos(k * angle).mean())) < 4 / math.sqrt(20000)
        assert abs(float(torch.sin(k * angle).mean())) < 4 / math.sqrt(20000)


@pytest.mark.parametrize("d", [64, 1024, 4096])
def test_gaussian_norm_concentrates_near_sqrt_d(d):
    x = StandardGaussian(d).sample(400, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    norms = x.norm(dim=1)
    # ||x|| - sqrt(D) has standard deviation -> 1/sqrt(2): a few units at most, whatever D is.
    assert abs(float(norms.mean()) - math.sqrt(d)) < 0.2
    assert float((norms - math.sqrt(d)).abs().max()) < 4.0


def test_gaussian_log_prob_matches_torch():
    x = torch.randn(7, 3, dtype=torch.float64)
    ref = torch.distributions.MultivariateNormal(torch.zeros(3, dtype=torch.float64), torch.eye(3, dtype=torch.float64))
    torch.testing.assert_close(StandardGaussian(3).log_prob(x), ref.log_prob(x))


def test_point_is_origin():
    assert Point((2, 3)).sample(4).abs().sum() == 0


def test_mixture_sampling_and_log_prob():
    means = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    mix = GaussianMixture(means, stds=torch.tensor([0.5, 2.0]), weights=torch.tensor([0.25, 0.75]))
    x = mix.sample(40000, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    frac_right = float((x[:, 0] > 5).double().mean())
    assert abs(frac_right - 0.75) < 0.02
    # log_prob against an explicit mixture built from torch.distributions.
    comp = torch.distributions.Independent(
        torch.distributions.Normal(means.double(), torch.tensor([[0.5, 0.5], [2.0, 2.0]], dtype=torch.float64)), 1
    )
    ref = torch.distributions.MixtureSameFamily(torch.distributions.Categorical(torch.tensor([0.25, 0.75])), comp)
    pts = torch.randn(11, 2, dtype=torch.float64) * 3
    torch.testing.assert_close(mix.log_prob(pts), ref.log_prob(pts))


def test_empirical_mixture_reproduces_training_points():
    x = torch.randn(5, 3)
    mix = GaussianMixture.empirical(x)
    assert mix.is_empirical and mix.n_components == 5
    draws = mix.sample(50, generator=torch.Generator().manual_seed(0))
    dist = (draws[:, None] - x[None]).norm(dim=2).min(dim=1).values
    assert float(dist.max()) < 1e-6
    with pytest.raises(NotImplementedError, match="no density"):
        mix.log_prob(x)


def test_event_shaped_mixture():
    mix = GaussianMixture(torch.zeros(3, 2, 4, 4), stds=1.0)
    assert mix.event_shape == (2, 4, 4) and mix.dim == 32
    assert mix.sample(6).shape == (6, 2, 4, 4)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(stds=-1.0), "stds must be non-negative"),
        (dict(weights=torch.tensor([0.5, 0.6])), "sum to one"),
        (dict(weights=torch.tensor([1.5, -0.5])), "non-negative"),
        (dict(stds=torch.tensor([1.0, 1.0, 1.0])), "shape"),
    ],
)
def test_mixture_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GaussianMixture(torch.zeros(2, 2), **kwargs)


def test_bad_names_and_shapes():
    with pytest.raises(ValueError, match="unknown target 'laplace'"):
        make_target("laplace", 2)
    with pytest.raises(ValueError, match="event_shape"):
        StandardGaussian(0)
    with pytest.raises(ValueError, match="must have shape"):
        StandardGaussian(3).log_prob(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="finite"):
        StandardGaussian(2).log_prob(torch.tensor([[float("nan"), 0.0]]))
    with pytest.raises(ValueError, match="means must be finite"):
        GaussianMixture(torch.tensor([[float("inf"), 0.0]]))
