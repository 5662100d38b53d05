"""wtflow: one engine for time-reversed flow matching (rFM) and WT-Flow.

The same code path serves a 2-D toy, an (N, 512) feature vector and a
(B, C, H, W) feature map: distributions and targets, the linear path, WT maps,
velocity networks, the flow-matching loss and trainer, ODE solvers and scores.
"""

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .detectors import RFM, TCCM, FeatureMapDetector, FlowMismatch, WTFlow
from .distributions import TARGETS, GaussianMixture, Point, StandardGaussian, UniformSphere, make_target
from .losses import LOSSES, ContractionLoss, ForwardFMLoss, RFMLoss, make_loss
from .model import FlowModel, flow_matching_loss
from .networks import NETWORKS, ContractionMLP, MiniUNet, VelocityMLP, count_parameters, make_velocity_net
from .paths import PathSample, fm_path, linear_path, rfm_path, sample_time
from .scores import SCORES, anomaly_map, density_proxy, image_score, score_endpoints
from .solvers import ODESolution, euler, solve, solve_adaptive
from .trainer import TrainConfig, TrainResult, train
from .wt import WT_MAPS, BatchNormWT, IdentityWT, LayerNormWT, make_wt_map

__version__ = "0.1.0"
