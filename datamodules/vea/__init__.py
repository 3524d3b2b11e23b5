"""The visual emotion analysis (VEA) benchmarks: one shared loading mechanism, one small reader each.

``base.VEADataModule`` holds the mechanism; ``layouts`` the reusable release layouts and split
protocols; ``index_cache`` the cached sample index; ``download`` WEBEmo's image fetcher. Every
benchmark module only declares its taxonomy, its layouts and its protocol arguments:
WEBEmo, FI, EmotionROI, Twitter I, Twitter II, Flickr, Instagram and (beyond the paper) EmoSet.
"""

from datamodules.vea.base import VEADataModule
from datamodules.vea.emoset import EmoSet
from datamodules.vea.emotionroi import EmotionROI
from datamodules.vea.fi import FI
from datamodules.vea.flickr import Flickr
from datamodules.vea.instagram import Instagram
from datamodules.vea.layouts import LayoutError
from datamodules.vea.twitter import TwitterI, TwitterII
from datamodules.vea.webemo import WEBEmo

BENCHMARKS = (WEBEmo, FI, EmotionROI, TwitterI, TwitterII, Flickr, Instagram, EmoSet)

__all__ = ["BENCHMARKS", "FI", "EmoSet", "EmotionROI", "Flickr", "Instagram", "LayoutError", "TwitterI",
           "TwitterII", "VEADataModule", "WEBEmo"]
