"""FI in both of its layouts, with the bad files real releases contain."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from affectlab.datamodules.hierarchy import MIKELS
from affectlab.datamodules.samples import write_sample
from affectlab.datamodules.samples.pictures import class_image, write_bad_files
from affectlab.datamodules.vea import FI, LayoutError
from affectlab.datamodules.vea.fi import WSCNET_ALIASES

ABBREVIATED = {v: k for k, v in WSCNET_ALIASES.items()}  # amusement -> amuse, ...
DECODABLE_BAD = {"bad_cmyk.jpg", "bad_gray.jpg", "bad_palette.png", "bad_png_named.jpg", "bad_truncated.jpg"}
UNDECODABLE_BAD = {"bad_empty.jpg", "bad_garbage.jpg"}


def drain(loader) -> tuple[int, list[str]]:
    """Images served and paths skipped over one pass."""
    served, skipped = 0, []
    for batch in loader:
        served += batch["image"].shape[0]
        skipped += batch["skipped"]
        assert batch["image"].dtype == torch.uint8  # standardised on the device (modules/emotion.py)
        assert batch["image"].shape[1:] == (3, 32, 32) or not batch["image"].numel()
    return served, skipped


def test_release_layout_with_bad_files_skips_and_counts_the_undecodable(tmp_path):
    write_sample(FI, tmp_path, per_class=4, size=32, bad_files=True)
    dm = FI(root=str(tmp_path), num_workers=0, batch_size=64, image_size=32, cache_index=False)
    dm.setup("fit")
    everything = [p for s in dm.splits.values() for p, _ in s]
    assert len(everything) == 8 * 4 + 7  # every image file is indexed, good or bad
    # All splits together: the five decodable bad files (CMYK, grey, palette, PNG-as-JPEG, truncated) are
    # served as RGB, the zero-byte and garbage files are skipped with their paths.
    served, skipped = 0, []
    for split in ("train", "val", "test"):
        n, bad = drain(dm._loader(split))
        served, skipped = served + n, skipped + bad
    assert served == 8 * 4 + len(DECODABLE_BAD)
    assert {p.rsplit("/", 1)[1] for p in skipped} == UNDECODABLE_BAD


def write_wscnet(root, per_split=(3, 1, 1)):
    rng = np.random.default_rng(0)
    for split, n in zip(("train", "val", "test"), per_split, strict=True):
        for label, name in enumerate(MIKELS):
            folder = root / split / ABBREVIATED.get(name, name)
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                class_image(label, rng, 32).save(folder / f"{name}_{i}.jpg")


def test_wscnet_split_folders_with_abbreviated_names(tmp_path):
    write_wscnet(tmp_path)
    dm = FI(root=str(tmp_path), num_workers=0, cache_index=False)
    dm.setup("fit")
    assert {k: len(v) for k, v in dm.splits.items()} == {"train": 24, "val": 8, "test": 8}
    for samples in dm.splits.values():
        for path, label in samples:  # amuse/ → amusement, content/ → contentment, excit/, sad/
            assert path.split("/")[1] == ABBREVIATED.get(MIKELS[label], MIKELS[label])
    assert dm.class_counts("train").tolist() == [3] * 8


def test_wscnet_without_val_carves_it_from_train(tmp_path):
    write_wscnet(tmp_path, per_split=(10, 0, 2))
    shutil.rmtree(tmp_path / "val")
    dm = FI(root=str(tmp_path), num_workers=0, cache_index=False)
    dm.setup("fit")
    assert {k: len(v) for k, v in dm.splits.items()} == {"train": 72, "val": 8, "test": 16}


def test_listed_but_missing_files_are_dropped_and_counted(tmp_path):
    write_sample(FI, tmp_path, per_class=2, size=32)
    lines = [f"emotion_dataset/{name}/{name}_{i:04d}.jpg {name}" for name in MIKELS for i in range(2)]
    (tmp_path / "train.txt").write_text("\n".join(lines + ["emotion_dataset/awe/gone.jpg awe"]) + "\n")
    (tmp_path / "test.txt").write_text("emotion_dataset/fear/fear_0000.jpg fear\nemotion_dataset/fear/lost.jpg fear\n")
    shutil.move(tmp_path / "emotion_dataset", tmp_path / "images_renamed")  # only split files can match now
    for name in ("train.txt", "test.txt"):
        (tmp_path / name).write_text((tmp_path / name).read_text().replace("emotion_dataset/", "images_renamed/"))
    dm = FI(root=str(tmp_path), num_workers=0, cache_index=False)
    dm.setup("fit")
    assert dm.missing == {"train": [("images_renamed/awe/gone.jpg", 2)], "test": [("images_renamed/fear/lost.jpg", 6)]}
    assert len(dm.splits["test"]) == 1 and sum(len(dm.splits[s]) for s in ("train", "val")) == 16


def test_an_empty_folder_is_not_an_fi_release(tmp_path):
    (tmp_path / "emotion_dataset" / "not_a_class").mkdir(parents=True)
    with pytest.raises(LayoutError, match="emotion_dataset/<class>/<file>.jpg"):
        FI(root=str(tmp_path), cache_index=False).setup("fit")


def test_wscnet_layout_with_bad_files_serves_the_decodable_ones(tmp_path):
    write_wscnet(tmp_path, per_split=(2, 1, 1))
    names = write_bad_files(tmp_path / "train" / "amuse", np.random.default_rng(1))
    dm = FI(root=str(tmp_path), num_workers=0, batch_size=64, image_size=32, cache_index=False)
    dm.setup("fit")
    bad = [(p, label) for p, label in dm.splits["train"] if p.rsplit("/", 1)[1] in names]
    assert len(bad) == 7 and {label for _, label in bad} == {0}  # amuse/ → amusement
    served, skipped = drain(dm.train_dataloader())
    assert served == 8 * 2 + len(DECODABLE_BAD)
    assert {p.rsplit("/", 1)[1] for p in skipped} == UNDECODABLE_BAD
