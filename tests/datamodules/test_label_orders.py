"""Labels by name, indices by the release (docs/datasets.md, "Label indices")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from affectlab.datamodules.hierarchy import get_taxonomy
from affectlab.datamodules.samples import write_sample
from affectlab.datamodules.vea import FI, EmoSet, WEBEmo
from affectlab.datamodules.vea.emoset import EMOSET_ORDER


def labels_by_path(dm) -> dict[str, int]:
    dm.setup("fit")
    return {path: label for split in dm.splits.values() for path, label in split}


def test_emoset_integer_labels_follow_the_releases_order_not_the_alphabet(tmp_path):
    write_sample(EmoSet, tmp_path)
    assert json.loads((tmp_path / "info.json").read_text())["label2idx"]["anger"] == 4  # the release's own
    for split in ("train", "val", "test"):  # rewrite every entry with its official index
        entries = json.loads((tmp_path / f"{split}.json").read_text())
        (tmp_path / f"{split}.json").write_text(json.dumps([[EMOSET_ORDER.index(e[0]), *e[1:]] for e in entries]))
    labels = labels_by_path(EmoSet(root=str(tmp_path), num_workers=0, cache_index=False))
    leaves = get_taxonomy("mikels").leaves
    # awe is 1 in the release; the alphabetical leaf 1 would be anger.
    assert all(leaves[label] == path.split("/")[1] for path, label in labels.items())
    assert len(labels) == 48


def test_integer_labels_without_an_official_order_fail_naming_file_and_line(tmp_path):
    from affectlab.datamodules.samples import write_sample

    root = Path(write_sample(FI, tmp_path / "fi", per_class=2, size=16)["root"])
    files = sorted(p.relative_to(root).as_posix() for p in (root / "emotion_dataset").rglob("*.jpg"))
    leaves = get_taxonomy("mikels").leaves
    (root / "train.txt").write_text("".join(f"{f} {f.split('/')[1]}\n" for f in files[:-2]))
    (root / "test.txt").write_text(f"{files[-2]} sadness\n{files[-1]} 7\n")
    (root / "emotion_dataset").rename(root / "images_by_class")  # only the split files can match now
    for name in ("train.txt", "test.txt"):
        (root / name).write_text((root / name).read_text().replace("emotion_dataset/", "images_by_class/"))
    with pytest.raises(ValueError, match=r"test.txt:2: .*no official index order.*--data.label_order"):
        labels_by_path(FI(root=str(root), num_workers=0, cache_index=False))
    # Named by the user, the order is used as given.
    order = list(reversed(leaves))
    labels = labels_by_path(FI(root=str(root), num_workers=0, cache_index=False, label_order=order))
    assert leaves[labels[files[-1].replace("emotion_dataset/", "images_by_class/")]] == order[7]
    with pytest.raises(ValueError, match="each class"):
        FI(root=str(root), label_order=order[:-1])
    (root / "test.txt").write_text(f"{files[-1]} 8\n".replace("emotion_dataset/", "images_by_class/"))
    with pytest.raises(ValueError, match=r"test.txt:1: .*outside 0..7"):
        labels_by_path(FI(root=str(root), num_workers=0, cache_index=False, label_order=order))


def test_webemo_urls_listed_in_train_and_test_are_dropped_from_train_and_counted(tmp_path, capsys):
    write_sample(WEBEmo, tmp_path)
    train = (tmp_path / "train25.txt").read_text().splitlines()
    test = (tmp_path / "test25.txt").read_text().splitlines()
    (tmp_path / "train25.txt").write_text("\n".join(train + test[:3]) + "\n")  # three test URLs leak into train
    dm = WEBEmo(root=str(tmp_path), download=False, num_workers=0, cache_index=False)
    dm.setup("fit")
    test_paths = {p for p, _ in dm.splits["test"]}
    assert not test_paths & {p for p, _ in dm.splits["train"] + dm.splits["val"]}
    assert len(dm.splits["train"]) + len(dm.splits["val"]) == len(train)
    assert dm.notes() == ["3 URLs of train25.txt are also listed in test25.txt: dropped from train"]
    from affectlab.datamodules.stats import format_table, stats_rows

    assert "note: 3 URLs of train25.txt" in format_table(stats_rows(dm, decode=False, progress=False), dm)
