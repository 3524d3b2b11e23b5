"""The fake releases: one entry point, and the VEA samples written from each reader's own layout description."""

from __future__ import annotations

import lightning as L
import pytest

from affectlab.datamodules.samples import ensure_sample, reader_class, write_sample
from affectlab.datamodules.vea import FI, EmotionROI, Flickr, Instagram, VEADataModule
from affectlab.datamodules.vea.layouts import ClassFolders, ClassPathLists, SplitFiles


def splits_of(cls, root, **kwargs) -> dict[str, int]:
    dm = cls(root=str(root), num_workers=0, cache_index=False, **kwargs)
    dm.setup("fit")
    return {split: len(samples) for split, samples in dm.splits.items()}


def test_a_reader_is_named_by_its_class_its_class_path_or_its_name():
    assert reader_class(FI) is FI
    assert reader_class("affectlab.datamodules.vea.FI") is FI
    assert reader_class("FI") is FI and reader_class("CelebA").__name__ == "CelebA"
    with pytest.raises(ValueError, match="no reader named 'FII'"):
        reader_class("FII")


def test_the_sample_follows_the_layout_the_reader_declares(tmp_path):
    """Other folder and list names in the reader's layouts: the same plan lands where the reader looks."""

    class MovedFI(FI):
        layouts = (ClassFolders(subdir="photos/by_class", description="moved"), SplitFiles())

    class MovedROI(EmotionROI):
        layouts = (ClassPathLists(files={"train": "lists/a.txt", "test": "lists/b.txt"}, prefix="pics"),)

    assert write_sample(MovedFI, tmp_path / "fi") == {"root": str(tmp_path / "fi"), "image_size": 64}
    assert len(list((tmp_path / "fi" / "photos" / "by_class" / "awe").glob("*.jpg"))) == 12
    assert splits_of(MovedFI, tmp_path / "fi") == {"train": 80, "val": 8, "test": 8}
    write_sample(MovedROI, tmp_path / "roi")
    assert (tmp_path / "roi" / "lists" / "a.txt").read_text().splitlines()[0] == "anger/1.jpg"
    assert (tmp_path / "roi" / "pics" / "anger" / "1.jpg").is_file()
    assert (tmp_path / "roi" / "ground_truth" / "anger" / "1.jpg").is_file()  # the reader's stimuli folder
    assert splits_of(MovedROI, tmp_path / "roi") == {"train": 30, "val": 6, "test": 12}


def test_a_subclass_takes_its_parents_plan_and_options_change_the_counts(tmp_path):
    write_sample(Instagram, tmp_path / "insta", per_class=4, size=32)
    assert sorted(p.relative_to(tmp_path / "insta").as_posix() for p in (tmp_path / "insta").rglob("*.jpg"))[:2] == [
        "negative/0000.jpg", "negative/0001.jpg"]
    assert sum(splits_of(Instagram, tmp_path / "insta").values()) == 8
    write_sample(EmotionROI, tmp_path / "roi", per_class={"train": 2, "test": 1})
    assert splits_of(EmotionROI, tmp_path / "roi")["test"] == 6
    with pytest.raises(ValueError, match="split .train, test.: give per_class as split → count"):
        write_sample(EmotionROI, tmp_path / "roi2", per_class=3)


def test_a_reader_without_a_writer_or_a_plan_is_refused_by_name(tmp_path):
    class Elsewhere(L.LightningDataModule):
        pass

    class NewBenchmark(VEADataModule):
        layouts = (SplitFiles(),)

    with pytest.raises(ValueError, match="Elsewhere has no sample writer"):
        write_sample(Elsewhere, tmp_path)
    with pytest.raises(ValueError, match="NewBenchmark has no sample plan"):
        write_sample(NewBenchmark, tmp_path)

    class FlickrFromLists(Flickr):
        layouts = (SplitFiles(),)

    with pytest.raises(ValueError, match="FlickrFromLists declares no ClassFolders layout"):
        write_sample(FlickrFromLists, tmp_path)


def test_ensure_sample_writes_once(tmp_path):
    root = tmp_path / "fi"
    assert ensure_sample(FI, root, per_class=2, size=16)["image_size"] == 64
    (root / "emotion_dataset" / "awe" / "awe_0000.jpg").unlink()
    assert ensure_sample(FI, root, per_class=2, size=16) == {"root": str(root)}
    assert not (root / "emotion_dataset" / "awe" / "awe_0000.jpg").exists()
