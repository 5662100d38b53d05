"""Lemma 2 (eq. 9), Lemmas 3-4 (eqs. 10-11), Theorem 2 and the intermediate steps of their proofs (Suppl. X-B).

The checks live in one module per lemma (``lemma2``, ``lemma3``, ``lemma4``; shared numerics in ``_atoms``);
this module keeps the names the registry, tests and figures import.
"""

from ._atoms import batched_dtu, batched_grad_op_norm
from .lemma2 import check_eq24, check_lemma2
from .lemma3 import (
    check_eq28,
    check_lemma3,
    check_r_substitution,
    check_theorem2,
    eq27_bound,
    eq28_value,
    lemma3_construction,
    lemma3_upper_bound,
)
from .lemma4 import check_eq26, check_eq32, check_lemma4, lemma4_printed, lemma4_sup

__all__ = [
    "batched_dtu",
    "batched_grad_op_norm",
    "check_eq24",
    "check_eq26",
    "check_eq28",
    "check_eq32",
    "check_lemma2",
    "check_lemma3",
    "check_lemma4",
    "check_r_substitution",
    "check_theorem2",
    "eq27_bound",
    "eq28_value",
    "lemma3_construction",
    "lemma3_upper_bound",
    "lemma4_printed",
    "lemma4_sup",
]
