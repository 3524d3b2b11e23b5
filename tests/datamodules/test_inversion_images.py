"""The content/style images of feature map inversion: paths or sample photos, square crops, one item per step."""

from __future__ import annotations

import pytest
import torch

from affectlab.datamodules.inversion import InversionImages


def test_the_sample_is_read_from_paths_and_cropped_square(tmp_path):
    overrides = InversionImages.write_sample(tmp_path)
    data = InversionImages(**overrides)
    loader = data.train_dataloader()
    assert len(loader) == overrides["iterations"]
    batch = next(iter(loader))
    assert batch["content"].shape == batch["style"].shape == (1, 3, 16, 16)
    assert 0 <= batch["content"].min() and batch["content"].max() <= 1
    assert not torch.equal(batch["content"], batch["style"])


def test_scikit_image_photos_by_name_and_a_clear_error_for_a_missing_file(tmp_path):
    data = InversionImages(content="chelsea", style=None, image_size=20, iterations=2)
    batch = next(iter(data.train_dataloader()))
    assert batch["content"].shape == (1, 3, 20, 20) and "style" not in batch
    with pytest.raises(FileNotFoundError, match="astronaut"):
        InversionImages(content="missing.png", root=str(tmp_path)).setup()
