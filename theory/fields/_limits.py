"""Streaming sizes and numerical tolerances of the exact fields (module attributes, so tests can shrink them)."""

# Streaming sizes: an (n_queries, n_components) float64 buffer holds at most _ENTRY_BUDGET entries
# (64 MiB) in the fast path, _GENERAL_ENTRY_BUDGET (16 MiB) where several such buffers are live;
# second-order passes hold (n, k, D) and (n, D, D) buffers of at most _TENSOR_BUDGET entries.
QUERY_CHUNK = 1024

FIRST_ORDER_BLOCK = 16384

ENTRY_BUDGET = 1 << 23

GENERAL_ENTRY_BUDGET = 1 << 21

TENSOR_BUDGET = 1 << 22

# Expanding ||x - (1 - t) m||^2 as a matrix product loses about eps * (||x||^2 + ||(1 - t) m||^2);
# where that exceeds this many units of the log-density, distances are computed by direct differences.
EXPANSION_TOLERANCE = 1e-10

SPHERE_TIE_TOLERANCE = 1e-9
# Largest |x| entry accepted: ||x||^2 stays far from float64 overflow (1.8e308) for any D.
MAX_ABS_X = 1e150
# Adaptive solvers evaluate past t = 1 within their last step (dopri5 was seen at t = 2.09 integrating 512 points in
# D = 64); torchdiffeq grows a step at most tenfold, so the Gaussian-target formulas are accepted up to here.
MAX_EXTRAPOLATED_T = 12.0
