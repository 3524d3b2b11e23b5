"""Flickr (Katsurai & Satoh, ICASSP 2016): ≈60K crawled images, binary sentiment.

Release layout after crawling: ``{positive,negative}/<file>.jpg`` (or the generic split-file
form). No official split: the customary stratified, seeded 80/5/15 split is built.
"""

from __future__ import annotations

from typing import Any

from affectlab.datamodules.hierarchy import SENTIMENT
from affectlab.datamodules.vea.base import VEADataModule
from affectlab.datamodules.vea.layouts import ClassFolders, SplitFiles


class Flickr(VEADataModule):
    """Flickr sentiment: negative / positive, seeded 80/5/15."""

    benchmark = "Flickr"
    taxonomy_name = "sentiment"
    index_order = SENTIMENT  # 0 negative, 1 positive: Twitter I's agreement lists and public code (docs/datasets.md)
    layouts = (
        ClassFolders(subdir="", description="the crawled Flickr release: {positive,negative}/<file>.jpg"),
        SplitFiles(),
    )

    def __init__(self, root: str = "data/Flickr", **kwargs: Any) -> None:
        super().__init__(root=root, **kwargs)
