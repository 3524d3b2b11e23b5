"""``affectlab-data shrink``: a resized copy with the same layout, idempotent and resumable."""

import os

import numpy as np
import pytest
from PIL import Image

from affectlab.datamodules.hierarchy import MIKELS
from affectlab.datamodules.images import load_rgb
from affectlab.datamodules.samples.pictures import photo, write_bad_files, write_class_photos
from affectlab.datamodules.shrink import PART, SETTINGS_FILE, shrink_release
from affectlab.datamodules.stats import main as data_main
from affectlab.datamodules.stats import stats_rows
from affectlab.datamodules.vea.fi import FI


@pytest.fixture
def release(tmp_path):
    """FI's layout: large and small photos, a PNG named .jpg, the usual bad files and a list file."""
    root = tmp_path / "FI"
    rng = np.random.default_rng(0)
    write_class_photos(root, {"big": (400, 300), "small": (90, 120)}, rng)
    photo(320, 200, rng).save(root / "emotion_dataset" / MIKELS[0] / "png_named.jpg", format="PNG")
    write_bad_files(root / "emotion_dataset" / MIKELS[2], rng)
    (root / "notes.txt").write_text("emotion_dataset/amusement/amusement_big.jpg 0\n")
    return root


def snapshot(folder):
    return {p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_copy_has_the_layout_with_images_resized_and_the_rest_untouched(release, tmp_path):
    copy = tmp_path / "FI-100"
    counts = shrink_release(release, copy, short_side=100, progress=False)
    sources = sorted(p.relative_to(release) for p in release.rglob("*") if p.is_file())
    assert sorted(p.relative_to(copy) for p in copy.rglob("*") if p.is_file() and p.name != SETTINGS_FILE) == sources
    big = Image.open(copy / "emotion_dataset" / "awe" / "awe_big.jpg")
    assert big.size == (133, 100) and big.format == "JPEG"
    assert Image.open(copy / "emotion_dataset" / MIKELS[0] / "png_named.jpg").format == "PNG"  # format kept
    for rel in ("notes.txt", "emotion_dataset/awe/awe_small.jpg", f"emotion_dataset/{MIKELS[2]}/bad_empty.jpg",
                f"emotion_dataset/{MIKELS[2]}/bad_garbage.jpg"):
        assert (copy / rel).read_bytes() == (release / rel).read_bytes()  # lists, small and bad files as they were
    # the resized photo is the original, smaller: compare against a plain resize of the source
    original = load_rgb(release / "emotion_dataset" / "awe" / "awe_big.jpg").resize((133, 100), Image.BILINEAR)
    assert np.abs(np.asarray(load_rgb(copy / "emotion_dataset" / "awe" / "awe_big.jpg"), float)
                  - np.asarray(original, float)).mean() < 6
    # 8 photos and the PNG resized; the small photos, the list and the (64 px) bad files copied; 2 undecodable
    assert counts["resized"] == 9 and counts["unreadable"] == 2 and counts["copied"] == 8 + 1 + 5


def test_a_datamodule_reads_the_copy_like_the_release(release, tmp_path):
    copy = tmp_path / "FI-100"
    shrink_release(release, copy, short_side=100, progress=False)
    dm_src = FI(root=str(release), cache_index=False, num_workers=0)
    dm_dst = FI(root=str(copy), cache_index=False, num_workers=0)
    rows_src, rows_dst = stats_rows(dm_src, progress=False), stats_rows(dm_dst, progress=False)
    assert dm_src.splits == dm_dst.splits
    assert rows_src == rows_dst  # same images per class, same unreadable count


def test_second_run_does_nothing_and_an_interrupted_run_resumes(release, tmp_path):
    copy = tmp_path / "FI-100"
    shrink_release(release, copy, short_side=100, progress=False)
    before = snapshot(copy)
    again = shrink_release(release, copy, short_side=100, progress=False)
    assert again["done"] == sum(again.values()) and snapshot(copy) == before  # idempotent
    # an interruption: one copy never written, one left half-written under its temporary name
    lost = copy / "emotion_dataset" / "awe" / "awe_big.jpg"
    lost.unlink()
    half = copy / "emotion_dataset" / "fear" / "fear_big.jpg"
    half.rename(half.with_name(half.name + PART))
    half.with_name(half.name + PART).write_bytes(b"\xff\xd8 half")
    # and a source changed since the copy was made
    changed = release / "notes.txt"
    changed.write_text("changed\n")
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    resumed = shrink_release(release, copy, short_side=100, progress=False)
    assert resumed["resized"] == 2 and resumed["copied"] == 1 and resumed["done"] == sum(resumed.values()) - 3
    assert (copy / "notes.txt").read_text() == "changed\n"
    after = snapshot(copy)
    assert Image.open(lost).size == Image.open(half).size == (133, 100)
    assert not list(copy.rglob(f"*{PART}"))
    assert {k: v for k, v in after.items() if k not in {"notes.txt", "emotion_dataset/awe/awe_big.jpg",
                                                          "emotion_dataset/fear/fear_big.jpg"}} == \
        {k: v for k, v in before.items() if k not in {"notes.txt", "emotion_dataset/awe/awe_big.jpg",
                                                       "emotion_dataset/fear/fear_big.jpg"}}


def test_other_settings_into_the_same_copy_are_refused_and_the_cli_runs(release, tmp_path, capsys):
    copy = tmp_path / "FI-100"
    assert data_main(["shrink", str(release), str(copy), "--short-side", "100"]) == 0
    assert "resized" in capsys.readouterr().out
    with pytest.raises(ValueError, match="short_side"):
        shrink_release(release, copy, short_side=200, progress=False)
    with pytest.raises(ValueError, match="another folder"):
        shrink_release(release, release, short_side=100, progress=False)
    capsys.readouterr()
    assert data_main(["shrink", str(tmp_path / "nowhere"), str(copy)]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        f"affectlab-data: error: the release folder {tmp_path / 'nowhere'} does not exist"]
