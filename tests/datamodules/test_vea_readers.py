"""Every VEA reader on a sample in its exact release layout: counts, labels, determinism, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from affectlab.datamodules.hierarchy import get_taxonomy
from affectlab.datamodules.samples import write_sample
from affectlab.datamodules.vea import (
    BENCHMARKS,
    FI,
    EmoSet,
    EmotionROI,
    Flickr,
    Instagram,
    LayoutError,
    TwitterI,
    TwitterII,
    WEBEmo,
)

# Per benchmark: the sizes of train/val/test its sample must give under the customary protocol.
EXPECTED = {
    WEBEmo: {"train": 125, "val": 25, "test": 25},       # 6 listed per class, 1/6 carved for val
    FI: {"train": 80, "val": 8, "test": 8},              # 80/5/15 of 12 per class
    EmotionROI: {"train": 30, "val": 6, "test": 12},     # the official 6/2 lists, val carved from training
    TwitterI: {"train": 22, "val": 2, "test": 6},        # 30 images at agree 3, fold 0 of 5
    TwitterII: {"train": 17, "val": 2, "test": 5},       # 24 images, fold 0 of 5
    Flickr: {"train": 32, "val": 2, "test": 6},          # 80/5/15 of 20 per class
    Instagram: {"train": 32, "val": 2, "test": 6},
    EmoSet: {"train": 32, "val": 8, "test": 8},          # the official files
}
TAXONOMY = {WEBEmo: "webemo", FI: "mikels", EmotionROI: "ekman", TwitterI: "sentiment", TwitterII: "sentiment",
            Flickr: "sentiment", Instagram: "sentiment", EmoSet: "mikels"}


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> dict[type, dict]:
    """Each benchmark's sample, written once for the module."""
    return {cls: write_sample(cls, tmp_path_factory.mktemp(cls.__name__)) for cls in BENCHMARKS}


def build(cls, overrides, **kwargs):
    dm = cls(**{"num_workers": 0, "batch_size": 4, "cache_index": False, **overrides, **kwargs})
    dm.setup("fit")
    return dm


@pytest.mark.parametrize("cls", BENCHMARKS, ids=lambda c: c.__name__)
def test_counts_per_split_follow_the_protocol(cls, samples):
    dm = build(cls, samples[cls])
    assert {k: len(v) for k, v in dm.splits.items()} == EXPECTED[cls]
    assert dm.missing == {}


@pytest.mark.parametrize("cls", BENCHMARKS, ids=lambda c: c.__name__)
def test_label_class_name_and_taxonomy_agree(cls, samples):
    """The label of each sample is the index of the class its path or list names, in the declared taxonomy."""
    dm = build(cls, samples[cls])
    taxonomy = get_taxonomy(TAXONOMY[cls])
    assert dm.taxonomy == taxonomy and dm.taxonomy_spec == taxonomy.to_dict()
    seen = set()
    for samples_ in dm.splits.values():
        for path, label in samples_:
            seen.add(label)
            name = taxonomy.leaves[label]
            if cls in (FI, EmotionROI, EmoSet, TwitterII, Flickr, Instagram):
                assert name in Path(path).parts, (path, name)
            if cls is WEBEmo:
                assert path.startswith("images/")
    assert seen == set(range(len(taxonomy.leaves)))


@pytest.mark.parametrize("cls", BENCHMARKS, ids=lambda c: c.__name__)
def test_splits_are_disjoint_cover_the_data_and_repeat(cls, samples):
    first, second = build(cls, samples[cls]), build(cls, samples[cls])
    assert first.splits == second.splits
    paths = [p for s in first.splits.values() for p, _ in s]
    assert len(paths) == len(set(paths)) == sum(EXPECTED[cls].values())


@pytest.mark.parametrize("cls", BENCHMARKS, ids=lambda c: c.__name__)
def test_a_batch_holds_images_labels_and_paths(cls, samples):
    dm = build(cls, samples[cls], image_size=32)
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 3, 32, 32)
    assert batch["label"].max() < len(dm.taxonomy.leaves) and len(batch["path"]) == 4


@pytest.mark.parametrize("cls", BENCHMARKS, ids=lambda c: c.__name__)
def test_wrong_layout_names_the_expected_layout(cls, tmp_path):
    (tmp_path / "something_else").mkdir()
    (tmp_path / "something_else" / "x.jpg").write_bytes(b"")
    dm = cls(root=str(tmp_path), num_workers=0, cache_index=False)
    with pytest.raises(LayoutError) as err:
        dm.setup("fit")
    message = str(err.value)
    assert cls.layouts[0].description in message and "first missing path" in message


def test_missing_root_fails_at_once(tmp_path):
    with pytest.raises(LayoutError, match="does not exist"):
        EmoSet(root=str(tmp_path / "nowhere"), cache_index=False).setup("fit")


def test_every_reader_accepts_the_generic_split_files(tmp_path):
    """train.txt / test.txt with 'relative/path label' (label as name or index), for any benchmark."""
    write_sample(Flickr, tmp_path, per_class=5)  # positive/0000.jpg ... negative/0004.jpg
    (tmp_path / "train.txt").write_text("".join(f"positive/{i:04d}.jpg positive\nnegative/{i:04d}.jpg 0\n" for i in range(4)))
    (tmp_path / "test.txt").write_text("positive/0004.jpg 1\nnegative/0004.jpg negative\n")
    (tmp_path / "positive").rename(tmp_path / "pos")  # no class folders: only the split files can match
    (tmp_path / "negative").rename(tmp_path / "neg")
    for line_file in ("train.txt", "test.txt"):
        text = (tmp_path / line_file).read_text().replace("positive/", "pos/").replace("negative/", "neg/")
        (tmp_path / line_file).write_text(text)
    for cls in (TwitterII, Flickr, Instagram):
        dm = build(cls, {"root": str(tmp_path)})
        assert len(dm.splits["test"]) == 2 and len(dm.splits["train"]) + len(dm.splits["val"]) == 8
        assert sorted(label for _, label in dm.splits["test"]) == [0, 1]


def test_class_weights_are_inverse_train_frequency_with_mean_one(samples):
    assert build(TwitterII, samples[TwitterII]).class_weights is None
    dm = build(TwitterII, samples[TwitterII], class_weighted_loss=True)
    counts = dm.class_counts("train").tolist()           # more positives than negatives
    weights = dm.class_weights
    assert isinstance(weights, list) and len(weights) == 2
    assert abs(sum(weights) / 2 - 1) < 1e-6
    assert weights[0] / weights[1] == pytest.approx(counts[1] / counts[0])


LISTED = (WEBEmo, EmotionROI, TwitterI, EmoSet)  # releases that list their files (which may be missing)


@pytest.mark.parametrize("cls", BENCHMARKS, ids=lambda c: c.__name__)
def test_corrupt_files_are_skipped_and_listed_missing_files_counted(cls, tmp_path):
    overrides = write_sample(cls, tmp_path)
    dm = build(cls, overrides)
    (corrupt, _), (gone, gone_label) = dm.splits["train"][0], dm.splits["test"][0]
    (tmp_path / corrupt).write_bytes(b"\xff\xd8 not really a jpeg")
    (tmp_path / gone).unlink()
    dm = build(cls, overrides, image_size=32, batch_size=256)
    if cls in LISTED:
        assert dm.missing == {"test": [(gone, gone_label)]}
    else:  # a folder release simply no longer has the file
        assert dm.missing == {} and all(p != gone for s in dm.splits.values() for p, _ in s)
    skipped = [p for split in ("train", "val", "test") for batch in dm._loader(split) for p in batch["skipped"]]
    assert skipped == [corrupt]
