"""EmoSet-118K (Yang et al., ICCV 2023), beyond the paper: 118,102 images in the eight Mikels emotions.

Release layout: ``image/<class>/<class>_NNNNN.jpg``, ``annotation/<class>/<class>_NNNNN.json``
(attributes, unused here), ``info.json`` and the official split files ``train.json``,
``val.json``, ``test.json`` whose entries are ``[label, id, image_path, annotation_path]``. The
release's label indices (``info.json``'s ``label2idx``) put the positive emotions first:
amusement 0, awe 1, contentment 2, excitement 3, anger 4, disgust 5, fear 6, sadness 7; integer
labels in split files are read in that order.
"""

from __future__ import annotations

from affectlab.datamodules.vea.base import VEADataModule
from affectlab.datamodules.vea.layouts import JSONSplits, SplitFiles

#: EmoSet's official label indices (info.json, label2idx), which differ from the project's alphabetical leaves
EMOSET_ORDER = ("amusement", "awe", "contentment", "excitement", "anger", "disgust", "fear", "sadness")


class EmoSet(VEADataModule):
    """EmoSet-118K at two levels: sentiment (2) → Mikels emotion (8), the official splits."""

    benchmark = "EmoSet"
    taxonomy_name = "mikels"
    index_order = EMOSET_ORDER
    layouts = (
        JSONSplits(description="the EmoSet-118K release: image/<class>/<class>_NNNNN.jpg and "
                               "train.json / val.json / test.json with [label, id, image_path, annotation_path]"),
        SplitFiles(),
    )
