"""Theorem 1 (eq. 16), Proposition 1 (eq. 12), eq. 13, Proposition 2 and Observations 1-2 for the exact field.

The checks live in ``centripetal`` (Theorem 1, Prop. 1, eq. 13), ``prop2`` and ``observations``; this module keeps
the names the registry, tests and figures import.

Facts used (derived in the module functions' docstrings and checked numerically):

* For every target x = (1 - t) E0 + t E1, so u(x, t) = E1 - E0 = (x - E0) / t.
* Source with a density near x: E0 -> x and E1 -> E[X_1] = 0, so u(x, 0+) = -x with error O(t).
* Source on a k-dim manifold M (Assumption 2), x in M: X_0 = (x - t X_1)/(1 - t) must stay on M, which fixes
  the normal part of X_1 to the normal part of x as t -> 0 while the tangential part stays free, so
  E1 -> P_N x and u(x, 0+) = -P_T x (P_T: projection on the tangent space at x). Atoms (k = 0): 0.
  Spheres centred at 0 (LN outputs): x is normal, so u(x, 0+) = 0. Off M, u ~ (x - pi_M(x)) / t.
"""

from ._cpf_common import angles_deg, expected_chi
from .centripetal import check_eq13, check_proposition1, check_theorem1
from .observations import check_observation1, check_observation2
from .prop2 import check_proposition2, prop2_configurations

__all__ = [
    "angles_deg",
    "check_eq13",
    "check_observation1",
    "check_observation2",
    "check_proposition1",
    "check_proposition2",
    "check_theorem1",
    "expected_chi",
    "prop2_configurations",
]
