"""CelebA DataModule on a generated tree in the official layout (docs/advae.md, docs/datasets.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from affectlab.datamodules.celeba import ATTR_FILE, DEFAULT_ATTRIBUTES, CelebA, CelebAFormatError
from affectlab.datamodules.face_attributes import CELEBA_ATTRIBUTES
from affectlab.datamodules.samples import write_sample
from affectlab.datamodules.samples.faces import HAIR_COLOURS, hair_probe_colour
from affectlab.datamodules.vea.layouts import LayoutError


@pytest.fixture(scope="module")
def celeba_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("celeba")
    write_sample(CelebA, root, counts=(24, 8, 8))
    return root


def file_values(root: Path) -> dict[str, list[int]]:
    lines = (root / ATTR_FILE).read_text().splitlines()
    return {f"img_align_celeba/{row.split()[0]}": [int(v) for v in row.split()[1:]] for row in lines[2:]}


def first_batch(dm: CelebA, split: str = "train") -> dict:
    dm.setup("fit")
    loader = dm.train_dataloader() if split == "train" else dm.val_dataloader()
    return dm.on_after_batch_transfer(next(iter(loader)), 0)


def test_sample_is_in_the_official_layout(celeba_root):
    lines = (celeba_root / ATTR_FILE).read_text().splitlines()
    assert lines[0] == "40" and lines[1].split() == list(CELEBA_ATTRIBUTES)
    assert all(len(row.split()) == 41 for row in lines[2:])
    assert (celeba_root / "img_align_celeba" / "000001.jpg").is_file()
    codes = [row.split()[1] for row in (celeba_root / "list_eval_partition.txt").read_text().splitlines()]
    assert codes.count("0") == 24 and codes.count("1") == 8 and codes.count("2") == 8


@pytest.mark.parametrize("size", [32, 128])
def test_batches_hold_cropped_photos_attributes_and_drawings(celeba_root, size):
    dm = CelebA(root=str(celeba_root), image_size=size, batch_size=8, num_workers=0)
    batch = first_batch(dm)
    assert [len(dm.splits[s][0]) for s in ("train", "val", "test")] == [24, 8, 8]  # official partition
    assert dm.attributes == DEFAULT_ATTRIBUTES
    assert batch["image"].shape == (8, 3, size, size)
    assert 0 <= batch["image"].min() and batch["image"].max() <= 1
    assert batch["drawing"].shape == (8, 1, size, size)
    values = file_values(celeba_root)
    columns = [CELEBA_ATTRIBUTES.index(a) for a in DEFAULT_ATTRIBUTES]
    expected = torch.tensor([[values[p][c] > 0 for c in columns] for p in batch["path"]]).float()
    assert torch.equal(batch["attributes"], expected)


def test_attribute_subset_is_configurable(celeba_root):
    dm = CelebA(root=str(celeba_root), attributes=["Male", "Pale_Skin"], image_size=32, batch_size=8,
                num_workers=0, drawings=False)
    batch = first_batch(dm, "val")
    values = file_values(celeba_root)
    expected = torch.tensor([[values[p][CELEBA_ATTRIBUTES.index(a)] > 0 for a in ("Male", "Pale_Skin")]
                             for p in batch["path"]]).float()
    assert torch.equal(batch["attributes"], expected) and "drawing" not in batch


def test_synthetic_faces_show_their_hair_colour(celeba_root):
    dm = CelebA(root=str(celeba_root), image_size=32, batch_size=24, num_workers=0, hflip=False, drawings=False)
    batch = first_batch(dm)
    palette = torch.tensor(list(HAIR_COLOURS.values())) / 255
    nearest = torch.cdist(hair_probe_colour(batch["image"]), palette).argmin(1)
    hair = batch["attributes"][:, :4].argmax(1)  # Black, Blond, Brown, Gray come first
    assert torch.equal(nearest, hair)


def test_undecodable_files_are_skipped_and_counted(tmp_path):
    write_sample(CelebA, tmp_path, counts=(12, 4, 4), bad_files=True)
    dm = CelebA(root=str(tmp_path), image_size=32, batch_size=4, num_workers=0)
    dm.setup("fit")
    seen = sum(len(dm.on_after_batch_transfer(b, 0)["image"]) for b in dm.train_dataloader())
    assert dm.skip_report.total() == 2 and seen == 10
    assert "000001.jpg" in dm.skip_report.summary()


def test_malformed_attribute_file_fails_naming_file_and_line(tmp_path):
    write_sample(CelebA, tmp_path, counts=(4, 2, 2))
    lines = (tmp_path / ATTR_FILE).read_text().splitlines()
    lines[4] = " ".join(lines[4].split()[:-3])  # line 5 loses three values
    (tmp_path / ATTR_FILE).write_text("\n".join(lines) + "\n")
    with pytest.raises(CelebAFormatError, match=r"list_attr_celeba\.txt, line 5: 37 values for 40 attributes"):
        CelebA(root=str(tmp_path)).setup("fit")
    lines[0] = "many"
    (tmp_path / ATTR_FILE).write_text("\n".join(lines) + "\n")
    with pytest.raises(CelebAFormatError, match=r"line 1: the image count is not an integer"):
        CelebA(root=str(tmp_path)).setup("fit")


def test_wrong_root_and_unknown_attribute_fail_clearly(celeba_root, tmp_path):
    with pytest.raises(LayoutError, match="first missing path: .*img_align_celeba"):
        CelebA(root=str(tmp_path)).setup("fit")
    with pytest.raises(CelebAFormatError, match="no attribute named Blue_Hair"):
        CelebA(root=str(celeba_root), attributes=["Blue_Hair"]).setup("fit")


def test_correlated_sample_ties_the_training_attributes_and_keeps_validation_independent():
    """As in real CelebA: gray hair only on old men, rosy cheeks mostly on women (training split)."""
    import numpy as np

    from affectlab.datamodules.samples.faces import random_attributes

    rng = np.random.default_rng(0)
    train = [random_attributes(DEFAULT_ATTRIBUTES, rng, correlated=True) for _ in range(2000)]
    assert all(sum(f[h] for h in HAIR_COLOURS) == 1 for f in train)
    gray = [f for f in train if f["Gray_Hair"]]
    assert gray and all(f["Male"] and not f["Young"] for f in gray)  # never seen: young or female gray hair
    male = [f for f in train if f["Male"]]
    assert sum(f["Rosy_Cheeks"] for f in male) / len(male) < 0.1
    pale = sum(f["Pale_Skin"] for f in train if f["Blond_Hair"]) / sum(f["Blond_Hair"] for f in train)
    assert pale > 0.6
    independent = [random_attributes(DEFAULT_ATTRIBUTES, rng) for _ in range(2000)]
    assert sum(f["Gray_Hair"] and f["Young"] and not f["Male"] for f in independent) > 100


def test_write_sample_correlates_the_training_split_only(tmp_path):
    write_sample(CelebA, tmp_path, counts=(48, 48, 4), correlated=True)
    dm = CelebA(root=str(tmp_path), image_size=32, num_workers=0)
    dm.setup("fit")
    gray, male, young = (DEFAULT_ATTRIBUTES.index(n) for n in ("Gray_Hair", "Male", "Young"))
    train, val = dm.splits["train"][1], dm.splits["val"][1]
    on_gray = train[train[:, gray] == 1]
    assert len(on_gray) and (on_gray[:, male] == 1).all() and (on_gray[:, young] == 0).all()
    val_gray = val[val[:, gray] == 1]
    assert ((val_gray[:, male] == 0) | (val_gray[:, young] == 1)).any()  # the combinations training lacks


def test_label_noise_flips_training_labels_only_and_keeps_the_faces(tmp_path):
    """Noisy annotations as on real CelebA: about the asked share of training labels flipped, the
    images byte-identical to the noise-free release, validation labels true."""
    clean, noisy = tmp_path / "clean", tmp_path / "noisy"
    write_sample(CelebA, clean, counts=(200, 40, 4), correlated=True)
    write_sample(CelebA, noisy, counts=(200, 40, 4), correlated=True, label_noise=0.2)
    splits = {}
    for root in (clean, noisy):
        dm = CelebA(root=str(root), image_size=32, num_workers=0)
        dm.setup("fit")
        splits[root] = dm.splits
    flipped = (splits[clean]["train"][1] != splits[noisy]["train"][1]).float().mean().item()
    assert 0.15 < flipped < 0.25
    assert torch.equal(splits[clean]["val"][1], splits[noisy]["val"][1])
    for name in ("000001.jpg", "000150.jpg", "000230.jpg"):
        assert (clean / "img_align_celeba" / name).read_bytes() == (noisy / "img_align_celeba" / name).read_bytes()
    with pytest.raises(ValueError, match="label_noise"):
        write_sample(CelebA, tmp_path / "bad", counts=(4, 2, 2), label_noise=0.5)
