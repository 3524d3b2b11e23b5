"""EmoSet-118K (Yang et al., ICCV 2023), beyond the paper: 118,102 images in the eight Mikels emotions.

Release layout: ``image/<class>/<class>_NNNNN.jpg``, ``annotation/<class>/<class>_NNNNN.json``
(attributes, unused here), ``info.json`` and the official split files ``train.json``,
``val.json``, ``test.json`` whose entries are ``[label, id, image_path, annotation_path]``. The
release's label indices (``info.json``'s ``label2idx``) put the positive emotions first:
amusement 0, awe 1, contentment 2, excitement 3, anger 4, disgust 5, fear 6, sadness 7; integer
labels in split files are read in that order.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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

    @classmethod
    def write_sample(cls, root: str | Path) -> dict[str, Any]:
        """8 classes × 6 images (4/1/1) with annotation files and the three split files."""
        import numpy as np

        from affectlab.datamodules.hierarchy import MIKELS, MIKELS_POSITIVE
        from affectlab.datamodules.synthetic import class_image

        root = Path(root)
        rng = np.random.default_rng(0)
        splits: dict[str, list[list[str]]] = {"train": [], "val": [], "test": []}
        for label, name in enumerate(MIKELS):
            (root / "image" / name).mkdir(parents=True, exist_ok=True)
            (root / "annotation" / name).mkdir(parents=True, exist_ok=True)
            for i in range(6):
                image_id = f"{name}_{i:05d}"
                image, annotation = f"image/{name}/{image_id}.jpg", f"annotation/{name}/{image_id}.json"
                class_image(label, rng, 48, positive=name in MIKELS_POSITIVE).save(root / image)
                (root / annotation).write_text(json.dumps({"emotion": name, "brightness": 0.5}))
                split = "train" if i < 4 else ("val" if i == 4 else "test")
                splits[split].append([name, image_id, image, annotation])
        for split, entries in splits.items():
            (root / f"{split}.json").write_text(json.dumps(entries))
        (root / "info.json").write_text(json.dumps({"label2idx": {n: i for i, n in enumerate(EMOSET_ORDER)}}))
        return {"root": str(root), "image_size": 64}
