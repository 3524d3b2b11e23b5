"""Robust decoding: whatever decodes becomes RGB, whatever cannot gives None (docs/datasets.md)."""

import io

import numpy as np
import pytest
from PIL import Image

from affectlab.datamodules.images import SkipReport, load_rgb


@pytest.fixture
def photo():
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8))


@pytest.mark.parametrize("mode", ["CMYK", "L", "P", "RGBA", "LA", "1", "I;16"])
def test_every_mode_decodes_to_rgb(tmp_path, photo, mode):
    path = tmp_path / f"img_{mode.replace(';', '')}.png"
    image = photo.convert("L").convert(mode) if mode == "I;16" else photo.convert(mode)
    image.save(path if mode != "CMYK" else path.with_suffix(".jpg"))
    decoded = load_rgb(path if mode != "CMYK" else path.with_suffix(".jpg"))
    assert decoded is not None and decoded.mode == "RGB" and decoded.size == (50, 40)


def test_alpha_is_composited_on_white(tmp_path):
    clear = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    clear.save(tmp_path / "clear.png")
    assert np.asarray(load_rgb(tmp_path / "clear.png")).min() == 255


def test_png_named_jpg_and_truncated_jpeg_decode(tmp_path, photo):
    photo.save(tmp_path / "really_png.jpg", format="PNG")
    assert load_rgb(tmp_path / "really_png.jpg").size == (50, 40)
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG")
    (tmp_path / "truncated.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    assert load_rgb(tmp_path / "truncated.jpg").size == (50, 40)


def test_undecodable_files_give_none(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not an image")
    for name in ("empty.jpg", "text.jpg", "missing.jpg"):
        assert load_rgb(tmp_path / name) is None


def test_skip_report_counts_and_keeps_first_paths():
    report = SkipReport(keep=2)
    report.add("train", ["a.jpg", "b.jpg", "c.jpg"])
    report.add("validate", ["d.jpg"])
    assert report.total() == 4 and report.total("train") == 3
    assert report.examples["train"] == ["a.jpg", "b.jpg"]
    assert "train: 3" in report.summary()
