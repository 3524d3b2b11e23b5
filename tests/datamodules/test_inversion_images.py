"""The content/style images of feature map inversion: paths or sample photos, square crops, one item per step."""

from __future__ import annotations

import pytest
import torch

from affectlab.datamodules.inversion import InversionImages, PhotoPatches
from affectlab.datamodules.samples import write_sample


def test_the_sample_is_read_from_paths_and_cropped_square(tmp_path):
    overrides = write_sample(InversionImages, tmp_path)
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


def test_photo_patches_are_labelled_seeded_crops_of_the_sample_photos():
    data = PhotoPatches(photos=["astronaut", "brick", "coffee"], image_size=20, train_size=8, val_size=6,
                        test_size=4, batch_size=4)
    assert data.taxonomy.num_classes[-1] == 3 and data.num_channels == 3
    batch = next(iter(data.val_dataloader()))
    assert batch["image"].shape == (4, 3, 20, 20) and batch["label"].max() < 3
    again = PhotoPatches(photos=["astronaut", "brick", "coffee"], image_size=20, train_size=8, val_size=6,
                         test_size=4, batch_size=4)
    assert torch.equal(next(iter(again.val_dataloader()))["image"], batch["image"])   # fixed validation crops
    train = data.datasets["train"]
    first = train[0]["image"]
    train.epoch = 1
    assert not torch.equal(train[0]["image"], first)                                   # fresh crops each epoch
    with pytest.raises(ValueError, match="two photos"):
        PhotoPatches(photos=["astronaut"])
    with pytest.raises(ValueError, match="no sample"):
        PhotoPatches(photos=["astronaut", "nothing"]).setup()
