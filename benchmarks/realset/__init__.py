"""A pixel-level anomaly set from real photos that ship offline, in the MVTec AD layout.

    python -m benchmarks.realset --out DIR

See ``README.md`` next to this file for the photos, regions, defects and limits.
"""

from .build import MANIFEST_COLUMNS, RealSetConfig, build_realset
from .defects import DEFECTS, SIZE_CLASSES, make_defect
from .photos import PHOTOS, load_photo, split_regions

__all__ = [
    "DEFECTS",
    "MANIFEST_COLUMNS",
    "PHOTOS",
    "SIZE_CLASSES",
    "RealSetConfig",
    "build_realset",
    "load_photo",
    "make_defect",
    "split_regions",
]
