"""Instagram (Katsurai & Satoh, ICASSP 2016): ≈42K crawled images, binary sentiment.

Crawled and released like its Flickr sibling (``datamodules/vea/flickr.py``): ``{positive,negative}/
<file>.jpg`` (or the generic split-file form), no official split, so the customary stratified,
seeded 80/5/15 split is built. Only the name and the default root differ.
"""

from __future__ import annotations

from typing import Any

from affectlab.datamodules.vea.flickr import Flickr
from affectlab.datamodules.vea.layouts import ClassFolders, SplitFiles


class Instagram(Flickr):
    """Instagram sentiment: negative / positive, seeded 80/5/15."""

    benchmark = "Instagram"
    layouts = (
        ClassFolders(subdir="", description="the crawled Instagram release: {positive,negative}/<file>.jpg"),
        SplitFiles(),
    )

    def __init__(self, root: str = "data/Instagram", **kwargs: Any) -> None:
        super().__init__(root=root, **kwargs)
