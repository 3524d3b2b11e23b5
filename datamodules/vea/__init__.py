"""The visual emotion analysis (VEA) benchmarks: one shared loading mechanism, one small reader each.

``base.VEADataModule`` holds the mechanism; ``layouts`` the reusable release layouts and split
protocols; ``index_cache`` the cached sample index; ``download`` WEBEmo's image fetcher. Every
benchmark module only declares its taxonomy, its layouts and its protocol arguments:
WEBEmo, FI, EmotionROI, Twitter I, Twitter II, Flickr, Instagram and (beyond the paper) EmoSet.
"""

from affectlab.datamodules.vea.base import VEADataModule
from affectlab.datamodules.vea.emoset import EmoSet
from affectlab.datamodules.vea.emotionroi import EmotionROI
from affectlab.datamodules.vea.fi import FI
from affectlab.datamodules.vea.flickr import Flickr
from affectlab.datamodules.vea.instagram import Instagram
from affectlab.datamodules.vea.layouts import LayoutError
from affectlab.datamodules.vea.twitter import TwitterI, TwitterII
from affectlab.datamodules.vea.webemo import WEBEmo

BENCHMARKS = (WEBEmo, FI, EmotionROI, TwitterI, TwitterII, Flickr, Instagram, EmoSet)

__all__ = ["BENCHMARKS", "FI", "EmoSet", "EmotionROI", "Flickr", "Instagram", "LayoutError", "TwitterI",
           "TwitterII", "VEADataModule", "WEBEmo"]
