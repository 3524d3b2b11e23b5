"""Cross-validation protocols (Twitter I, Twitter II) and EmotionROI's stimuli maps."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from affectlab.datamodules.samples import write_sample
from affectlab.datamodules.vea import EmotionROI, TwitterI, TwitterII
from affectlab.datamodules.vea.layouts import VoteTable


def folds_of(cls, root, **kwargs):
    """The test sets of the five folds, and each fold's full split."""
    out = []
    for fold in range(5):
        dm = cls(root=str(root), fold=fold, num_workers=0, cache_index=False, **kwargs)
        dm.setup("fit")
        out.append(dm.splits)
    return out


@pytest.fixture(scope="module")
def twitter1(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("twitter1")
    write_sample(TwitterI, root)
    return root


def test_twitter1_csv_has_the_release_columns(twitter1):
    with open(twitter1 / "amt_result.csv") as handle:
        rows = list(csv.reader(handle))
    assert len(rows) == 31 and len(rows[0]) == 4
    votes = VoteTable(csv_file="amt_result.csv", image_dir="Agg_AMT_Candidates").votes(twitter1)
    assert all(p + n == 5 for _, p, n in votes)


@pytest.mark.parametrize("agree,size", [(5, 10), (4, 20), (3, 30)])
def test_twitter1_agreement_subsets(twitter1, agree, size):
    """5/0 and 0/5 votes are in every subset, 4/1 from agree 4 on, 3/2 only in agree 3."""
    splits = folds_of(TwitterI, twitter1, agree=agree)
    for s in splits:
        assert sum(len(v) for v in s.values()) == size
    labels = {p: label for s in splits for v in s.values() for p, label in v}
    votes = {f"Agg_AMT_Candidates/{name}": (p, n) for name, p, n in
             VoteTable(csv_file="amt_result.csv", image_dir="Agg_AMT_Candidates").votes(twitter1)}
    for path, label in labels.items():
        p, n = votes[path]
        assert max(p, n) >= agree and label == int(p > n)  # sentiment: 0 negative, 1 positive


@pytest.mark.parametrize("agree", [5, 3])
def test_twitter1_folds_are_disjoint_covering_stratified_and_seeded(twitter1, agree):
    splits = folds_of(TwitterI, twitter1, agree=agree)
    tests = [set(p for p, _ in s["test"]) for s in splits]
    every = set().union(*tests)
    assert sum(len(t) for t in tests) == len(every) == sum(len(v) for v in splits[0].values())
    for s, t in zip(splits, tests, strict=True):
        assert not t & {p for p, _ in s["train"] + s["val"]}
        labels = [label for _, label in s["test"]]
        assert abs(labels.count(0) - labels.count(1)) <= 1  # the sample is balanced: so is every fold
    assert splits == folds_of(TwitterI, twitter1, agree=agree)
    other_seed = TwitterI(root=str(twitter1), agree=agree, seed=1, num_workers=0, cache_index=False)
    other_seed.setup("fit")
    assert other_seed.splits["test"] != splits[0]["test"]


def test_twitter1_rejects_impossible_protocols(twitter1):
    with pytest.raises(ValueError, match="agree"):
        TwitterI(root=str(twitter1), agree=2)
    with pytest.raises(ValueError, match="fold"):
        TwitterI(root=str(twitter1), fold=5)


def test_twitter1_headerless_csv_is_read_only_with_named_columns(tmp_path):
    write_sample(TwitterI, tmp_path)
    rows = (tmp_path / "amt_result.csv").read_text().splitlines()[1:]
    (tmp_path / "amt_result.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(ValueError, match=r"amt_result.csv has no header row.*--data.columns"):
        TwitterI(root=str(tmp_path), agree=4, num_workers=0, cache_index=False).setup("fit")
    named = TwitterI(root=str(tmp_path), agree=4, num_workers=0, cache_index=False,
                     columns=["image", "total", "positive", "negative"])
    named.setup("fit")
    assert sum(len(v) for v in named.splits.values()) == 20
    labels = dict(s for split in named.splits.values() for s in split)
    assert labels["Agg_AMT_Candidates/1000.jpg"] == 0  # 0 positive votes, 5 negative
    swapped = TwitterI(root=str(tmp_path), agree=4, num_workers=0, cache_index=False,
                       columns=["image", "total", "negative", "positive"])
    swapped.setup("fit")
    assert dict(s for split in swapped.splits.values() for s in split)["Agg_AMT_Candidates/1000.jpg"] == 1


def test_twitter2_folds_are_disjoint_covering_and_stratified(tmp_path):
    write_sample(TwitterII, tmp_path)  # 16 positive, 8 negative
    splits = folds_of(TwitterII, tmp_path)
    tests = [{p for p, _ in s["test"]} for s in splits]
    assert sum(map(len, tests)) == len(set().union(*tests)) == 24
    for s in splits:
        negatives = sum(label == 0 for _, label in s["test"])
        assert negatives in (1, 2) and len(s["test"]) in (4, 5)
        assert not {p for p, _ in s["test"]} & {p for p, _ in s["train"] + s["val"]}


def test_twitter2_pre_split_folders_win_over_folds(tmp_path):
    write_sample(TwitterII, tmp_path / "train")
    write_sample(TwitterII, tmp_path / "test")
    for fold in (0, 3):
        dm = TwitterII(root=str(tmp_path), fold=fold, num_workers=0, cache_index=False)
        dm.setup("fit")
        assert len(dm.splits["test"]) == 24 and all(p.startswith("test/") for p, _ in dm.splits["test"])
        assert len(dm.splits["train"]) + len(dm.splits["val"]) == 24


def test_emotionroi_lists_use_the_release_format(tmp_path):
    write_sample(EmotionROI, tmp_path)
    first = (tmp_path / "training_testing_split" / "training.txt").read_text().splitlines()[0]
    assert first == "anger/1.jpg"
    dm = EmotionROI(root=str(tmp_path), num_workers=0, cache_index=False)
    dm.setup("fit")
    assert dm.splits["test"][0] == ("images/anger/7.jpg", 0)


def test_emotionroi_stimuli_maps_come_only_when_asked(tmp_path):
    write_sample(EmotionROI, tmp_path)
    (tmp_path / "ground_truth" / "joy" / "2.jpg").unlink()
    plain = EmotionROI(root=str(tmp_path), num_workers=0, batch_size=64, image_size=32, cache_index=False)
    plain.setup("fit")
    assert "stimuli" not in next(iter(plain.test_dataloader()))
    dm = EmotionROI(root=str(tmp_path), with_stimuli=True, num_workers=0, batch_size=64, image_size=32,
                    cache_index=False)
    dm.setup("fit")
    assert dm.stimuli_path("images/anger/1.jpg") == tmp_path / "ground_truth" / "anger" / "1.jpg"
    assert dm.stimuli_path("images/joy/2.jpg") is None
    for loader in (dm.train_dataloader(), dm.test_dataloader()):
        batch = next(iter(loader))
        stimuli = batch["stimuli"]
        assert stimuli.shape == (batch["image"].shape[0], 1, 32, 32)
        present = [i for i, p in enumerate(batch["path"]) if p != "images/joy/2.jpg"]
        assert stimuli[present].min() >= 0 and stimuli[present].max() <= 1
        assert (stimuli[present].flatten(1).max(1).values > 0.5).any()  # the bright disc survives the crop
    train = dict(zip(*[next(iter(dm._loader("train")))[k] for k in ("path", "stimuli")], strict=True))
    if "images/joy/2.jpg" in train:
        assert torch.all(train["images/joy/2.jpg"] == -1)


def test_emotionroi_stimuli_follow_the_eval_crop(tmp_path):
    """Eval transform (resize + centre crop) maps the stimuli exactly like the image: compare to a manual crop."""
    write_sample(EmotionROI, tmp_path)
    dm = EmotionROI(root=str(tmp_path), with_stimuli=True, num_workers=0, batch_size=1, image_size=42,
                    cache_index=False)
    dm.setup("test")
    item = dm.dataset("test")[0]
    from PIL import Image
    from torchvision.transforms import v2

    raw = Image.open(dm.stimuli_path(item["path"])).convert("L")
    expected = v2.Compose([v2.PILToTensor(), v2.Resize(48, interpolation=v2.InterpolationMode.NEAREST),
                           v2.CenterCrop(42)])(raw).float() / 255
    assert torch.allclose(item["stimuli"], expected, atol=1 / 255 + 1e-6)


def test_twitter1_votes_found_by_header_name_in_any_column_order(tmp_path):
    write_sample(TwitterI, tmp_path)
    rows = [r.split(",") for r in (tmp_path / "amt_result.csv").read_text().splitlines()]
    reordered = [[r[0], r[3], r[1], r[2]] for r in rows]  # image, negative, total, positive
    (tmp_path / "amt_result.csv").write_text("\n".join(",".join(r) for r in reordered) + "\n")
    votes = VoteTable(csv_file="amt_result.csv", image_dir="Agg_AMT_Candidates").votes(tmp_path)
    assert votes[0] == ("1000.jpg", 0, 5) and votes[16] == ("1016.jpg", 4, 1)
