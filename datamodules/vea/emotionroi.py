"""EmotionROI (Peng et al., CVPR 2016): 1,980 images, 330 per Ekman emotion, with stimuli maps.

Release layout: ``images/<class>/<file>.jpg``, the stimuli maps ``ground_truth/<class>/<file>``
(where people looked for the emotion) and the official split ``training_testing_split/``
``training.txt`` / ``testing.txt`` with lines ``<class>/<file>.jpg``. Validation is carved from
training. MDAN's attention maps are compared with the stimuli maps (docs/mdan.md), so a caller
may ask for them: ``with_stimuli=True`` adds ``"stimuli"`` (B×1×S×S in [0, 1], cropped like the
image; −1 where a map is missing) to every batch, and ``stimuli_path`` finds one map.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from affectlab.datamodules.vea.base import VEADataModule
from affectlab.datamodules.vea.layouts import IMAGE_EXTENSIONS, ClassPathLists, SplitFiles

SPLIT_DIR = "training_testing_split"
STIMULI_DIR = "ground_truth"


class EmotionROI(VEADataModule):
    """EmotionROI at two levels: sentiment (2) → Ekman emotion (6).

    Args:
        with_stimuli: add each image's stimuli map to its sample (``"stimuli"``).
        **kwargs: see ``VEADataModule``.
    """

    benchmark = "EmotionROI"
    taxonomy_name = "ekman"
    layouts = (
        ClassPathLists(files={"train": f"{SPLIT_DIR}/training.txt", "test": f"{SPLIT_DIR}/testing.txt"},
                       prefix="images",
                       description="the EmotionROI release: images/<class>/<file>.jpg, ground_truth/<class>/<file> "
                                   f"and {SPLIT_DIR}/training.txt, testing.txt with lines '<class>/<file>.jpg'"),
        SplitFiles(),
    )

    def __init__(self, root: str = "data/EmotionROI", with_stimuli: bool = False, **kwargs: Any) -> None:
        super().__init__(root=root, **kwargs)
        self.with_stimuli = with_stimuli

    def stimuli_path(self, rel: str) -> Path | None:
        """The stimuli map of image ``rel`` (``images/<class>/<file>``): same name under ``ground_truth/``.

        The maps may be saved with another image extension than the photo; ``None`` when absent.
        """
        parts = Path(rel).parts
        inner = Path(*parts[1:]) if parts and parts[0] == "images" else Path(rel)
        base = self.root / STIMULI_DIR / inner
        if base.exists():
            return base
        for ext in IMAGE_EXTENSIONS:
            candidate = base.with_suffix(ext)
            if candidate.exists():
                return candidate
        return None

    def stimuli_source(self) -> Callable[[str], Path | None] | None:
        return self.stimuli_path if self.with_stimuli else None
