"""FI — Flickr & Instagram (You et al., AAAI 2016): 23,308 images in the eight Mikels emotions.

Release layout: ``emotion_dataset/<class>/<file>.jpg``; no official split, so the customary
stratified, seeded 80/5/15 split is built. WSCNet's re-release is already split into
``{train,val,test}/<class>/`` with abbreviated folder names (amuse, content, excit, sad).
"""

from affectlab.datamodules.vea.base import VEADataModule
from affectlab.datamodules.vea.layouts import ClassFolders, SplitFiles, SplitFolders

WSCNET_ALIASES = {"amuse": "amusement", "content": "contentment", "excit": "excitement", "sad": "sadness"}


class FI(VEADataModule):
    """FI at two levels: sentiment (2) → Mikels emotion (8)."""

    benchmark = "FI"
    taxonomy_name = "mikels"
    layouts = (
        ClassFolders(subdir="emotion_dataset", aliases=WSCNET_ALIASES,
                     description="the FI release: emotion_dataset/<class>/<file>.jpg"),
        SplitFolders(aliases=WSCNET_ALIASES,
                     description="WSCNet's split folders: {train,val,test}/<class>/<file>.jpg (amuse, anger, awe, ...)"),
        SplitFiles(aliases=WSCNET_ALIASES),
    )
