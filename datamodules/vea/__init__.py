"""The visual emotion analysis (VEA) benchmarks: one shared loading mechanism, one small reader each.

``base.VEADataModule`` holds the mechanism; ``layouts`` the reusable release layouts and split
protocols; every benchmark module (``fi``, ...) only declares its taxonomy and layouts.
"""

from datamodules.vea.base import VEADataModule
from datamodules.vea.fi import FI
from datamodules.vea.layouts import LayoutError

__all__ = ["FI", "LayoutError", "VEADataModule"]
