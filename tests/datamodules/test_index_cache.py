"""The sample index is built once per root and protocol, and rebuilt when the release changes."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from affectlab.datamodules.samples import write_sample
from affectlab.datamodules.vea import FI, TwitterI, WEBEmo, index_cache
from affectlab.datamodules.vea.layouts import ClassFolders, URLLists


@pytest.fixture
def read_calls(monkeypatch):
    """Count how often a layout actually reads the release."""
    calls = []
    for layout_cls in (ClassFolders, URLLists):
        original = layout_cls.read

        def counting(self, *args, _original=original, **kwargs):
            calls.append(type(self).__name__)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(layout_cls, "read", counting)
    return calls


def small_fi(root):
    """An FI release tree of 8 classes × 6 tiny images (indexing never decodes them)."""
    from affectlab.datamodules.samples import write_sample

    return Path(write_sample(FI, root, per_class=6, size=16)["root"])


def setup(cls, root, **kwargs):
    dm = cls(root=str(root), num_workers=0, **kwargs)
    dm.setup("fit")
    return dm


def test_second_start_is_a_cache_hit_with_the_same_splits(tmp_path, read_calls):
    root = small_fi(tmp_path / "fi")
    first = setup(FI, root)
    second = setup(FI, root)
    assert read_calls == ["ClassFolders"]
    assert first.splits == second.splits
    files = list(index_cache.cache_dir().glob("fi-*.index"))
    assert len(files) == 1 and os.environ["AFFECTLAB_RUNS"] in str(files[0])
    header = json.loads(files[0].read_text().splitlines()[0])
    assert ["splits", "train", len(first.splits["train"])] in header["parts"]


def test_adding_or_removing_an_image_invalidates(tmp_path, read_calls):
    root = small_fi(tmp_path / "fi")
    before = setup(FI, root)
    shutil.copy(root / "emotion_dataset" / "awe" / "awe_0000.jpg", root / "emotion_dataset" / "awe" / "new.jpg")
    added = setup(FI, root)
    (root / "emotion_dataset" / "fear" / "fear_0001.jpg").unlink()
    removed = setup(FI, root)
    assert read_calls == ["ClassFolders"] * 3
    total = lambda dm: sum(len(v) for v in dm.splits.values())  # noqa: E731
    assert total(added) == total(before) + 1 and total(removed) == total(before)


def test_protocol_and_seed_are_part_of_the_key(tmp_path):
    root = tmp_path / "t1"
    write_sample(TwitterI, root)
    folds = [setup(TwitterI, root, agree=3, fold=k).splits["test"] for k in range(2)]
    assert folds[0] != folds[1]
    assert setup(TwitterI, root, agree=5).splits != setup(TwitterI, root, agree=3).splits
    assert setup(TwitterI, root, agree=3, seed=1).splits["test"] != folds[0]
    assert len(list(index_cache.cache_dir().glob("twitteri-*.index"))) == 4


def test_editing_a_list_file_or_downloading_invalidates(tmp_path, read_calls):
    root = tmp_path / "webemo"
    write_sample(WEBEmo, root)
    setup(WEBEmo, root, download=False)
    setup(WEBEmo, root, download=False)
    assert read_calls == ["URLLists"]
    with open(root / "test25.txt", "a") as handle:
        handle.write("http://127.0.0.1:9/new.jpg 4\n")
    dm = setup(WEBEmo, root, download=False)
    assert read_calls == ["URLLists"] * 2
    assert dm.missing["test"] == [("images/" + index_cache_name("http://127.0.0.1:9/new.jpg"), 4)]
    cached = setup(WEBEmo, root, download=False)
    assert cached.missing == dm.missing and read_calls == ["URLLists"] * 2  # missing files are cached too
    (root / "images" / index_cache_name("http://127.0.0.1:9/new.jpg")).write_bytes(b"x")  # "downloaded"
    assert setup(WEBEmo, root, download=False).missing == {} and read_calls == ["URLLists"] * 3


def index_cache_name(url: str) -> str:
    from affectlab.datamodules.vea.layouts import url_file_name

    return url_file_name(url)


def test_cache_can_be_switched_off(tmp_path, read_calls):
    root = small_fi(tmp_path / "fi")
    setup(FI, root, cache_index=False)
    setup(FI, root, cache_index=False)
    assert read_calls == ["ClassFolders"] * 2 and not index_cache.cache_dir().exists()


def test_a_corrupt_cache_file_is_rebuilt(tmp_path, read_calls):
    root = small_fi(tmp_path / "fi")
    setup(FI, root)
    for file in index_cache.cache_dir().glob("*.index"):
        file.write_text("{not json")
    assert sum(len(v) for v in setup(FI, root).splits.values()) == 48 and len(read_calls) == 2


def test_a_truncated_cache_file_is_rebuilt(tmp_path, read_calls):
    root = small_fi(tmp_path / "fi")
    setup(FI, root)
    for file in index_cache.cache_dir().glob("*.index"):
        file.write_text(file.read_text()[:-6])  # cuts the end marker and the last label
    assert sum(len(v) for v in setup(FI, root).splits.values()) == 48 and len(read_calls) == 2


def test_a_listed_file_that_appears_later_invalidates(tmp_path, read_calls, monkeypatch):
    """EmotionROI's lists are watched, and so are the folders the listed images live in."""
    from affectlab.datamodules.vea import EmotionROI
    from affectlab.datamodules.vea.layouts import ClassPathLists

    calls = []
    original = ClassPathLists.read
    monkeypatch.setattr(ClassPathLists, "read", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    write_sample(EmotionROI, tmp_path)
    moved = tmp_path / "joy_1.jpg"
    (tmp_path / "images" / "joy" / "1.jpg").rename(moved)
    assert [s for lost in setup(EmotionROI, tmp_path).missing.values() for s in lost] == [("images/joy/1.jpg", 3)]
    assert setup(EmotionROI, tmp_path).missing and len(calls) == 1
    moved.rename(tmp_path / "images" / "joy" / "1.jpg")
    assert setup(EmotionROI, tmp_path).missing == {} and len(calls) == 2
