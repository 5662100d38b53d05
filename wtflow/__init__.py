"""wtflow: one engine for time-reversed flow matching (rFM) and WT-Flow.

The same code path serves a 2-D toy, an (N, 512) feature vector and a
(B, C, H, W) feature map.
"""

from .distributions import TARGETS, GaussianMixture, Point, StandardGaussian, UniformSphere, make_target
from .paths import PathSample, fm_path, linear_path, rfm_path, sample_time
from .solvers import ODESolution, euler, solve_adaptive

__version__ = "0.1.0"
