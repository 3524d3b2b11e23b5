"""One way to publish a picture: the run folder and W&B, with the datamodule's own normalisation."""

from __future__ import annotations

from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from affectlab.callbacks.publish import display_rgb, input_normalization, media_path, publish  # noqa: E402
from affectlab.datamodules.crops import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402


class RecordingWandb:
    """Counts as W&B for ``publish`` and records what it was given."""

    def __init__(self) -> None:
        self.logged: list[dict] = []

    def log_image(self, **kwargs) -> None:
        self.logged.append(kwargs)


@pytest.fixture
def trainer(tmp_path, monkeypatch):
    import affectlab.callbacks.publish as module

    monkeypatch.setattr(module, "WandbLogger", RecordingWandb)
    return SimpleNamespace(default_root_dir=str(tmp_path), current_epoch=3, global_step=42, is_global_zero=True,
                           loggers=[RecordingWandb(), object()], datamodule=None)


@pytest.mark.parametrize("picture", [
    torch.rand(3, 8, 8),
    (np.random.default_rng(0).random((8, 8, 3)) * 255).astype(np.uint8),
    Image.new("RGB", (8, 8)),
    "figure",
])
def test_every_kind_of_picture_lands_under_one_name_and_in_wandb(trainer, picture):
    if isinstance(picture, str):
        picture = plt.figure(figsize=(1, 1))
    path = publish(trainer, "val/some_grid", picture, caption="rows: images")
    assert path == media_path(trainer, "val/some_grid") and path.name == "val_some_grid_e003.png"
    assert Image.open(path).size[0] > 0
    wandb = trainer.loggers[0]
    assert wandb.logged == [{"key": "val/some_grid", "images": [str(path)], "step": 42, "caption": ["rows: images"]}]


def test_only_rank_zero_publishes(trainer):
    trainer.is_global_zero = False
    assert publish(trainer, "val/x", torch.rand(3, 4, 4)) is None
    assert not list(media_path(trainer, "val/x").parent.glob("*.png"))
    assert trainer.loggers[0].logged == []


def test_a_written_png_is_logged_as_it_is(trainer, tmp_path):
    png = tmp_path / "filters.png"
    Image.new("RGB", (4, 4)).save(png)
    assert publish(trainer, "inversion/filters", png) == png
    assert trainer.loggers[0].logged[0]["images"] == [str(png)]


def test_pictures_are_shown_with_the_datamodules_own_normalisation():
    grey = torch.full((1, 1, 2, 2), 0.5)  # standardised grey value 0.5 → 0.25 + 0.5·0.5 = 0.5
    trainer = SimpleNamespace(datamodule=SimpleNamespace(input_normalization=((0.25,), (0.5,))))
    shown = display_rgb(grey, input_normalization(trainer))
    assert shown.shape == (1, 3, 2, 2)
    torch.testing.assert_close(shown, torch.full((1, 3, 2, 2), 0.5))
    # Without a declaration, ImageNet's statistics; uint8 batches are only scaled.
    assert input_normalization(SimpleNamespace(datamodule=None)) == (IMAGENET_MEAN, IMAGENET_STD)
    torch.testing.assert_close(display_rgb(torch.full((3, 2, 2), 255, dtype=torch.uint8)), torch.ones(3, 2, 2))
