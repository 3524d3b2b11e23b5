"""XDoG line drawings (docs/advae.md): deterministic, batched, on the input's device, cacheable."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from affectlab.datamodules.samples import write_sample
from affectlab.datamodules.samples.faces import face_image, random_attributes
from affectlab.datamodules.sketch import DrawingCache, LineDrawings, XDoG


@pytest.fixture(scope="module")
def faces() -> torch.Tensor:
    """Four synthetic faces, ``4×3×64×64`` in [0, 1] (the centre square of the 78×64 canvas)."""
    rng = np.random.default_rng(0)
    images = [face_image(random_attributes(["Black_Hair", "Blond_Hair"], rng), rng) for _ in range(4)]
    array = np.stack([np.asarray(image)[7:71] for image in images]) / 255.0
    return torch.tensor(array, dtype=torch.float32).permute(0, 3, 1, 2)


def test_xdog_is_deterministic_and_batched(faces):
    xdog = XDoG()
    batch = xdog(faces)
    assert batch.shape == (4, 1, 64, 64)
    assert torch.equal(batch, xdog(faces))
    one_by_one = torch.cat([xdog(face[None]) for face in faces])
    torch.testing.assert_close(batch, one_by_one)


def test_xdog_draws_contours_and_leaves_flat_regions_white(faces):
    drawing = XDoG()(faces)
    assert 0 <= drawing.min() and drawing.max() <= 1
    assert (drawing < 0.5).float().mean() > 0.01  # there are lines
    assert (drawing > 0.99).float().mean() > 0.7  # mostly paper
    flat = torch.full((2, 3, 32, 32), 0.2)
    assert torch.equal(XDoG()(flat), torch.ones(2, 1, 32, 32))


def test_xdog_parameters_change_the_drawing(faces):
    assert not torch.equal(XDoG(sigma=0.6)(faces), XDoG(sigma=1.2)(faces))


@pytest.mark.parametrize("device", ["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
def test_xdog_runs_on_the_device_of_its_input(faces, device):
    drawing = XDoG()(faces.to(device))
    assert drawing.device.type == device
    torch.testing.assert_close(drawing.cpu(), XDoG()(faces), atol=2e-3, rtol=0)


def test_cache_returns_the_drawings_of_mirrored_images_too(faces):
    xdog, cache = XDoG(), DrawingCache()
    keys = ["a", "b", "c", "d"]
    first = cache(xdog, faces, keys)
    assert len(cache) == 4
    torch.testing.assert_close(first, xdog(faces), atol=1 / 255, rtol=0)
    flipped = torch.tensor([True, False, True, False])
    mirrored = torch.where(flipped[:, None, None, None], faces.flip(-1), faces)
    again = cache(xdog, mirrored, keys, flipped)  # served from the cache
    torch.testing.assert_close(again, xdog(mirrored), atol=1 / 255 + 1e-5, rtol=0)


def test_line_drawings_turns_a_photo_folder_into_drawings_with_a_style(tmp_path):
    overrides = write_sample(LineDrawings, tmp_path / "photos")
    style = tmp_path / "photos" / "face_0.png"
    dm = LineDrawings(root=overrides["root"], kind="auto", style_photo=str(style), image_size=32, batch_size=3)
    dm.setup("predict")
    loader = dm.predict_dataloader()
    batch = dm.on_after_batch_transfer(next(iter(loader)), 0)
    assert batch["drawing"].shape == (3, 1, 32, 32) and batch["style"].shape == (1, 3, 32, 32)
    assert dm._photos and (batch["drawing"] < 0.5).any()
    # A folder of drawings (gray) is used as it is.
    from torchvision.utils import save_image

    (tmp_path / "drawings").mkdir()
    save_image(batch["drawing"][0], tmp_path / "drawings" / "d.png")
    dm2 = LineDrawings(root=str(tmp_path / "drawings"), image_size=32)
    dm2.setup("predict")
    batch2 = dm2.on_after_batch_transfer(next(iter(dm2.predict_dataloader())), 0)
    assert not dm2._photos
    torch.testing.assert_close(batch2["drawing"][0], batch["drawing"][0], atol=1 / 255 + 1e-5, rtol=0)
