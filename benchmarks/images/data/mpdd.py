"""MPDD: six categories of metal parts in the MVTec AD layout (PNG, ``ground_truth/<defect>/<id>_mask.png``)."""

from __future__ import annotations

from .mvtec import SPLITS, list_categories, load_split

__all__ = ["CATEGORIES", "SPLITS", "list_categories", "load_split"]

CATEGORIES = ("bracket_black", "bracket_brown", "bracket_white", "connector", "metal_plate", "tubes")
